import type {Handler} from '../generated/handlers.js'
import {locks} from '../generated/locks.js'
import {AckStatus, PresenceEvent} from '../generated/protocol.js'
import {requireLogin} from '../directory.js'

/** GroupLeave: the remaining members hear about it; under the group's lock, as every membership change. */
export const onGroupLeave: Handler<'GroupLeave'> = async (session, message, server) => {
  const userId = requireLogin(session, message.seq)
  if (userId === undefined) return
  const {group} = message
  const left = await locks.group(group).lock(() => {
    if (!server.leave(group, session)) return false
    server.broadcast(group, 'Presence', {group, member: {userId, nick: session.state.nick ?? ''}, event: PresenceEvent.left})
    return true
  })
  session.send('Ack', {seq: message.seq, status: left ? AckStatus.ok : AckStatus.notInGroup})
}
