import type {Handler} from '../generated/handlers.js'
import {AckStatus, NoticeLevel} from '../generated/protocol.js'
import {login} from '../directory.js'

/**
 * Login: one session per user id across the cluster; the reply says how many users are online.
 * A refused login gets a Notice saying why, then its Ack with status rejected.
 */
export const onLogin: Handler<'Login'> = async (session, message, server) => {
  const why =
    session.state.userId !== undefined
      ? `this connection is already logged in as user id ${session.state.userId}`
      : !(await login(server, session, message.userId, message.nick))
        ? `user id ${message.userId} is already logged in`
        : undefined
  if (why) {
    session.send('Notice', {level: NoticeLevel.warning, text: why})
    session.send('Ack', {seq: message.seq, status: AckStatus.rejected})
    return
  }
  session.send('LoginOk', {userId: message.userId, online: server.online()})
  session.send('Ack', {seq: message.seq, status: AckStatus.ok})
}
