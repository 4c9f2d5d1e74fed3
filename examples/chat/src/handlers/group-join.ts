import type {Handler} from '../generated/handlers.js'
import {locks} from '../generated/locks.js'
import {AckStatus, PresenceEvent} from '../generated/protocol.js'
import {requireLogin, userIdOf} from '../directory.js'

/**
 * GroupJoin: the members, on every shard, hear about the newcomer; the newcomer gets the
 * member list. Under the group's lock (cluster-wide), so no other join or leave of the group
 * lands between the list and the notices: the list is exactly who the newcomer hears about.
 */
export const onGroupJoin: Handler<'GroupJoin'> = async (session, message, server) => {
  const userId = requireLogin(session, message.seq)
  if (userId === undefined) return
  const {group} = message
  await locks.group(group).lock(async () => {
    if (!server.join(group, session)) {
      session.send('Ack', {seq: message.seq, status: AckStatus.rejected})
      return
    }
    const member = {userId, nick: session.state.nick ?? ''}
    server.broadcast(group, 'Presence', {group, member, event: PresenceEvent.joined}, session)
    const named = await server.namedMembers(group)
    const members = named.flatMap(({name, meta}) => {
      const id = userIdOf(name)
      return id === undefined ? [] : [{userId: id, nick: meta}]
    })
    // Acknowledged once the bus has the join: from then on every shard's broadcasts reach it.
    await server.settle()
    session.send('GroupMembers', {group, members: members.slice(0, 64)})
    session.send('Ack', {seq: message.seq, status: AckStatus.ok})
  })
}
