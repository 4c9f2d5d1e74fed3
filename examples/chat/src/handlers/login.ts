import type {Handler} from '../generated/handlers.js'
import {AckStatus} from '../generated/protocol.js'
import {login, onlineCount} from '../directory.js'

/** Login: one session per user id; the reply says how many users are online. */
export const onLogin: Handler<'Login'> = (session, message) => {
  if (session.state.userId !== undefined || !login(session, message.userId, message.nick)) {
    session.send('Ack', {seq: message.seq, status: AckStatus.rejected})
    return
  }
  session.send('LoginOk', {userId: message.userId, online: onlineCount()})
  session.send('Ack', {seq: message.seq, status: AckStatus.ok})
}
