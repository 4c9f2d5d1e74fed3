import type {Handler} from '../generated/handlers.js'

/** Ping (id 14, both) */
export const onPing: Handler<'Ping'> = (session, message, server) => {
  // Handle Ping here. Reply with session.send(...), reach others with server.sendTo(...)
  // or server.broadcast(...).
  void session
  void message
  void server
}
