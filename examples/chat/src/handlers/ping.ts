import type {Handler} from '../generated/handlers.js'

/** Ping: the heartbeat; answered with the same nonce. */
export const onPing: Handler<'Ping'> = (session, message) => {
  session.send('Ping', {nonce: message.nonce})
}
