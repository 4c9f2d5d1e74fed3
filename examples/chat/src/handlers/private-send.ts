import type {Handler} from '../generated/handlers.js'
import {AckStatus} from '../generated/protocol.js'
import {requireLogin, userName} from '../directory.js'

/** PrivateSend: delivered to the user on whatever shard it is, then acknowledged to the sender. */
export const onPrivateSend: Handler<'PrivateSend'> = async (session, message, server) => {
  const from = requireLogin(session, message.seq)
  if (from === undefined) return
  const delivered = await server.sendTo(userName(message.to), 'PrivateDeliver', {from, seq: message.seq, text: message.text})
  session.send('Ack', {seq: message.seq, status: delivered ? AckStatus.ok : AckStatus.unknownUser})
}
