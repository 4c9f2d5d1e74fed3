// Who is online: user id -> session id. Session ids carry their slot's generation, so an id
// left behind by a client that disconnected never reaches the next client in that slot.
import type {Server, Session} from './generated/handlers.js'
import {AckStatus, PresenceEvent} from './generated/protocol.js'

const online = new Map<number, number>()

export const onlineCount = (): number => online.size
export const sessionOf = (userId: number): number | undefined => online.get(userId)

/** Registers a login; false if that user id is already online. */
export function login(session: Session, userId: number, nick: string): boolean {
  if (online.has(userId)) return false
  online.set(userId, session.id)
  session.state.userId = userId
  session.state.nick = nick
  return true
}

/** On disconnect: forget the user and tell each of its groups. */
export function disconnected(server: Server, session: Session): void {
  const {userId, nick} = session.state
  if (userId === undefined || online.get(userId) !== session.id) return
  online.delete(userId)
  for (const group of session.groups) {
    server.broadcast(group, 'Presence', {group, member: {userId, nick: nick ?? ''}, event: PresenceEvent.disconnected}, session)
  }
}

/** The user id of a logged-in session, or undefined after answering notLoggedIn. */
export function requireLogin(session: Session, seq: number): number | undefined {
  if (session.state.userId === undefined) session.send('Ack', {seq, status: AckStatus.notLoggedIn})
  return session.state.userId
}
