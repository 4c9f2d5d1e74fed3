import type {Handler} from '../generated/handlers.js'
import {AckStatus} from '../generated/protocol.js'
import {logout} from '../directory.js'

/** Logout: the user's groups hear it and the user id is free; acknowledged, then the connection closes. */
export const onLogout: Handler<'Logout'> = async (session, message, server) => {
  await logout(server, session)
  session.send('Ack', {seq: message.seq, status: AckStatus.ok})
  session.close()
}
