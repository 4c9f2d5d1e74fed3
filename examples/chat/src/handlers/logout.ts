import type {Handler} from '../generated/handlers.js'
import {AckStatus} from '../generated/protocol.js'

/** Logout: acknowledged, then the connection closes after the acknowledgement is sent. */
export const onLogout: Handler<'Logout'> = (session, message) => {
  session.send('Ack', {seq: message.seq, status: AckStatus.ok})
  session.close()
}
