import type {Handler} from '../generated/handlers.js'
import {AckStatus} from '../generated/protocol.js'
import {requireLogin} from '../directory.js'

/** GroupSay: encoded once, fanned out natively to every other member. */
export const onGroupSay: Handler<'GroupSay'> = (session, message, server) => {
  const from = requireLogin(session, message.seq)
  if (from === undefined) return
  if (!session.groups.has(message.group)) {
    session.send('Ack', {seq: message.seq, status: AckStatus.notInGroup})
    return
  }
  server.broadcast(message.group, 'GroupDeliver', {group: message.group, from, seq: message.seq, text: message.text}, session)
  session.send('Ack', {seq: message.seq, status: AckStatus.ok})
}
