import type {Handler} from '../generated/handlers.js'
import {AckStatus} from '../generated/protocol.js'
import {login} from '../directory.js'

/** Login: one session per user id across the cluster; the reply says how many users are online. */
export const onLogin: Handler<'Login'> = async (session, message, server) => {
  if (session.state.userId !== undefined || !(await login(server, session, message.userId, message.nick))) {
    session.send('Ack', {seq: message.seq, status: AckStatus.rejected})
    return
  }
  session.send('LoginOk', {userId: message.userId, online: server.online()})
  session.send('Ack', {seq: message.seq, status: AckStatus.ok})
}
