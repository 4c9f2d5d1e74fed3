import type {Handler} from '../generated/handlers.js'

/** GroupLeave (id 7, client-to-server) */
export const onGroupLeave: Handler<'GroupLeave'> = (session, message, server) => {
  // Handle GroupLeave here. Reply with session.send(...), reach others with server.sendTo(...)
  // or server.broadcast(...).
  void session
  void message
  void server
}
