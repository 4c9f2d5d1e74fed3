import type {Handler} from '../generated/handlers.js'
import {AckStatus} from '../generated/protocol.js'
import {requireLogin, sessionOf} from '../directory.js'

/** PrivateSend: delivered to the user if online, then acknowledged to the sender. */
export const onPrivateSend: Handler<'PrivateSend'> = (session, message, server) => {
  const from = requireLogin(session, message.seq)
  if (from === undefined) return
  const to = sessionOf(message.to)
  const delivered = to !== undefined && server.sendTo(to, 'PrivateDeliver', {from, seq: message.seq, text: message.text})
  session.send('Ack', {seq: message.seq, status: delivered ? AckStatus.ok : AckStatus.unknownUser})
}
