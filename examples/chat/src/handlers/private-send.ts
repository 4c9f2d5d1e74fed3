import type {Handler} from '../generated/handlers.js'

/** PrivateSend (id 4, client-to-server) */
export const onPrivateSend: Handler<'PrivateSend'> = (session, message, server) => {
  // Handle PrivateSend here. Reply with session.send(...), reach others with server.sendTo(...)
  // or server.broadcast(...).
  void session
  void message
  void server
}
