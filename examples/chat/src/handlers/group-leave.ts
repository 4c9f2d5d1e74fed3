import type {Handler} from '../generated/handlers.js'
import {AckStatus, PresenceEvent} from '../generated/protocol.js'
import {requireLogin} from '../directory.js'

/** GroupLeave: the remaining members hear about it. */
export const onGroupLeave: Handler<'GroupLeave'> = (session, message, server) => {
  const userId = requireLogin(session, message.seq)
  if (userId === undefined) return
  if (!server.leave(message.group, session)) {
    session.send('Ack', {seq: message.seq, status: AckStatus.notInGroup})
    return
  }
  server.broadcast(message.group, 'Presence', {group: message.group, member: {userId, nick: session.state.nick ?? ''}, event: PresenceEvent.left})
  session.send('Ack', {seq: message.seq, status: AckStatus.ok})
}
