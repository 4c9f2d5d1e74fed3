import type {Handler} from '../generated/handlers.js'

/** Login (id 1, client-to-server) */
export const onLogin: Handler<'Login'> = (session, message, server) => {
  // Handle Login here. Reply with session.send(...), reach others with server.sendTo(...)
  // or server.broadcast(...).
  void session
  void message
  void server
}
