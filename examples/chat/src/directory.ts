// Who is online. A user id is the session's bound name `user:<id>`, with the nick as its
// meta: the runtime keeps names cluster-wide (one login per user id on every shard) and
// releases them when the session closes or its shard dies.
import type {LostSession} from '@iocpgen/runtime'

import type {Server, Session} from './generated/handlers.js'
import {locks} from './generated/locks.js'
import {AckStatus, PresenceEvent} from './generated/protocol.js'

export const userName = (userId: number): string => `user:${userId}`
/** The user id of a name made by userName, or undefined for any other name. */
export const userIdOf = (name: string): number | undefined => (/^user:\d+$/.test(name) ? Number(name.slice(5)) : undefined)

/**
 * Registers a login, on every shard; false if that user id is already online anywhere.
 * Under the user id's lock, so a login waits for a logout of the same id still under way.
 */
export async function login(server: Server, session: Session, userId: number, nick: string): Promise<boolean> {
  return locks.user(userId).lock(async () => {
    if (!(await server.bind(session, userName(userId), nick))) return false
    session.state.userId = userId
    session.state.nick = nick
    return true
  })
}

/** Logout: each group hears that the user is gone, one group at a time, then the user id is free. */
export async function logout(server: Server, session: Session): Promise<void> {
  const {userId, nick} = session.state
  if (userId === undefined) return
  await locks.user(userId).lock(async (held) => {
    for (const group of [...session.groups]) {
      await held.group(group).lock(() => {
        if (server.leave(group, session)) server.broadcast(group, 'Presence', {group, member: {userId, nick: nick ?? ''}, event: PresenceEvent.disconnected})
      })
    }
    session.state.userId = undefined
    await server.unbind(session, userName(userId))
  })
}

/** On disconnect: tell each of the user's groups, on every shard, under that group's lock. */
export async function disconnected(server: Server, session: Session): Promise<void> {
  const {userId, nick} = session.state
  if (userId === undefined) return
  for (const group of [...session.groups]) {
    await locks.group(group).lock(() => {
      server.broadcast(group, 'Presence', {group, member: {userId, nick: nick ?? ''}, event: PresenceEvent.disconnected}, session)
    })
  }
}

/** A shard died: its users' groups hear that they disconnected (this shard reaped it). */
export function lost(server: Server, sessions: LostSession[]): void {
  for (const s of sessions) {
    const userId = userIdOf(s.name)
    if (userId === undefined) continue
    for (const group of s.groups) server.broadcast(group, 'Presence', {group, member: {userId, nick: s.meta}, event: PresenceEvent.disconnected})
  }
}

/** The user id of a logged-in session, or undefined after answering notLoggedIn. */
export function requireLogin(session: Session, seq: number): number | undefined {
  if (session.state.userId === undefined) session.send('Ack', {seq, status: AckStatus.notLoggedIn})
  return session.state.userId
}
