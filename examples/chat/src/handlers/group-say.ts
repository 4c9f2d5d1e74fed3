import type {Handler} from '../generated/handlers.js'

/** GroupSay (id 8, client-to-server) */
export const onGroupSay: Handler<'GroupSay'> = (session, message, server) => {
  // Handle GroupSay here. Reply with session.send(...), reach others with server.sendTo(...)
  // or server.broadcast(...).
  void session
  void message
  void server
}
