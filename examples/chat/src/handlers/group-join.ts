import type {Handler} from '../generated/handlers.js'
import {AckStatus, PresenceEvent} from '../generated/protocol.js'
import {requireLogin} from '../directory.js'

/** GroupJoin: the members hear about the newcomer; the newcomer gets the member list. */
export const onGroupJoin: Handler<'GroupJoin'> = (session, message, server) => {
  const userId = requireLogin(session, message.seq)
  if (userId === undefined) return
  const {group} = message
  if (!server.join(group, session)) {
    session.send('Ack', {seq: message.seq, status: AckStatus.rejected})
    return
  }
  const member = {userId, nick: session.state.nick ?? ''}
  server.broadcast(group, 'Presence', {group, member, event: PresenceEvent.joined}, session)
  const members = [...server.members(group)].slice(0, 64).map((s) => ({userId: s.state.userId ?? 0, nick: s.state.nick ?? ''}))
  session.send('GroupMembers', {group, members})
  session.send('Ack', {seq: message.seq, status: AckStatus.ok})
}
