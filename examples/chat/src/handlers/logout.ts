import type {Handler} from '../generated/handlers.js'

/** Logout (id 15, client-to-server) */
export const onLogout: Handler<'Logout'> = (session, message, server) => {
  // Handle Logout here. Reply with session.send(...), reach others with server.sendTo(...)
  // or server.broadcast(...).
  void session
  void message
  void server
}
