// A terminal chat client for trying the server in two terminals:
//   npm run client -- 1 alice        (user id, nick; HOST and PORT pick the server)
// Type /join <group>, /leave <group>, /say <group> <text>, /msg <user id> <text>, /quit,
// or plain text to say it in the last group you joined.
import {connect} from 'node:net'
import {createInterface} from 'node:readline'

import {Reader, Writer} from '@iocpgen/runtime'

import {AckStatus, codecById, codecs, HEARTBEAT_MS, type MessageName, type Messages, PresenceEvent} from './generated/protocol.js'

const [userArg, nick = `user${userArg}`] = process.argv.slice(2)
const userId = Number(userArg)
if (!Number.isInteger(userId) || userId <= 0) {
  console.error('usage: npm run client -- <user id> [nick]')
  process.exit(2)
}

const socket = connect(Number(process.env.PORT ?? 7000), process.env.HOST ?? '127.0.0.1')
let seq = 0
let lastGroup: string | undefined
const statusName = Object.fromEntries(Object.entries(AckStatus).map(([k, v]) => [v, k]))
const eventName = Object.fromEntries(Object.entries(PresenceEvent).map(([k, v]) => [v, k]))

function send<K extends MessageName>(type: K, message: Messages[K]): void {
  const w = new Writer()
  const start = w.beginFrame(codecs[type].id)
  ;(codecs[type].encode as (w: Writer, m: Messages[K]) => void)(w, message)
  w.endFrame(start, 1 << 30)
  socket.write(Buffer.from(w.view()))
}

function show(type: MessageName, m: Record<string, unknown>): void {
  switch (type) {
    case 'LoginOk':
      return console.log(`* logged in as ${m.userId}; ${m.online} online`)
    case 'Ack':
      if (m.status !== AckStatus.ok) console.log(`* message ${m.seq}: ${statusName[m.status as number]}`)
      return
    case 'PrivateDeliver':
      return console.log(`[private] ${m.from}: ${m.text}`)
    case 'GroupDeliver':
      return console.log(`[${m.group}] ${m.from}: ${m.text}`)
    case 'GroupMembers':
      return console.log(`* ${m.group}: ${(m.members as {nick: string}[]).map((x) => x.nick).join(', ')}`)
    case 'Presence': {
      const member = m.member as {userId: number; nick: string}
      return console.log(`* ${member.nick} (${member.userId}) ${eventName[m.event as number]} ${m.group}`)
    }
    case 'Notice':
      return console.log(`* notice: ${m.text}`)
    case 'QueuePosition':
      return console.log(m.position === 0 ? '* admitted' : `* the server is full; waiting to log in: position ${m.position}`)
    default:
  }
}

let buf = Buffer.alloc(0)
socket.on('data', (d) => {
  buf = Buffer.concat([buf, d])
  while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) {
    const len = buf.readUInt32LE(0)
    const codec = codecById.get(buf.readUInt16LE(4))
    if (codec) show(codec.name, codec.decode(new Reader(buf, 6, 4 + len)) as Record<string, unknown>)
    buf = buf.subarray(4 + len)
  }
})
socket.on('error', (e) => {
  console.error(`* ${e.message}`)
  process.exit(1)
})
socket.on('close', () => {
  console.log('* disconnected')
  process.exit(0)
})
socket.on('connect', () => {
  // Sent at once even when the server is full: it is read when this client is admitted.
  send('Login', {seq: ++seq, userId, nick})
  // The heartbeat keeps a quiet terminal from being closed as idle.
  if (HEARTBEAT_MS > 0) setInterval(() => send('Ping', {nonce: Date.now() >>> 0}), HEARTBEAT_MS).unref()
  const lines = createInterface({input: process.stdin})
  lines.on('line', (line) => {
    const [cmd, arg = '', ...rest] = line.trim().split(/\s+/)
    const text = rest.join(' ')
    if (cmd === '/join') send('GroupJoin', {seq: ++seq, group: (lastGroup = arg)})
    else if (cmd === '/leave') send('GroupLeave', {seq: ++seq, group: arg})
    else if (cmd === '/say') send('GroupSay', {seq: ++seq, group: arg, text})
    else if (cmd === '/msg') send('PrivateSend', {seq: ++seq, to: Number(arg), text})
    else if (cmd === '/quit') send('Logout', {seq: ++seq})
    else if (line.trim() && lastGroup) send('GroupSay', {seq: ++seq, group: lastGroup, text: line.trim()})
    else if (line.trim()) console.log('* join a group first: /join <group>')
  })
  lines.on('close', () => socket.end())
})
