import type {Handler} from '../generated/handlers.js'

/** GroupJoin (id 6, client-to-server) */
export const onGroupJoin: Handler<'GroupJoin'> = (session, message, server) => {
  // Handle GroupJoin here. Reply with session.send(...), reach others with server.sendTo(...)
  // or server.broadcast(...).
  void session
  void message
  void server
}
