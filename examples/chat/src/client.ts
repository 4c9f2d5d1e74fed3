// A terminal chat client on the generated client (src/generated/client.ts):
//   npm run client -- 1 alice        (user id, nick; HOST and PORT pick the server)
// /help lists the commands. Users are named by nick: a nick is known once seen in a group
// you share (its member list, or someone joining it).
import {clearLine, createInterface, cursorTo} from 'node:readline'

import {type ClientMessageName, connect, MessageEncodeError, SendError} from './generated/client.js'
import {AckStatus, type Messages, NoticeLevel, PresenceEvent} from './generated/protocol.js'

const HELP = [
  '/join <group>         join a group (and make it the current one)',
  '/leave [group]        leave a group (the current one by default)',
  '/say <group> <text>   say something in a group',
  '/msg <nick> <text>    a private message',
  '/who                  the nicks you know, by group',
  '/help                 this list',
  '/quit                 log out and exit',
  '<text>                say it in the current group',
]

const [userArg, nickArg] = process.argv.slice(2)
const userId = Number(userArg)
if (!Number.isInteger(userId) || userId <= 0 || userId > 0xffffffff) {
  console.error('usage: npm run client -- <user id> [nick]')
  process.exit(2)
}
const nick = nickArg ?? `user${userId}`

const client = connect({host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 7000), reconnect: {maxDelay: 5000}})
const interactive = process.stdin.isTTY === true
const rl = createInterface({input: process.stdin, output: process.stdout, prompt: `${nick}> `, terminal: interactive})

/** Prints a line above the prompt, keeping what the user has typed so far. */
function print(line: string): void {
  if (!interactive) return void console.log(line)
  clearLine(process.stdout, 0)
  cursorTo(process.stdout, 0)
  process.stdout.write(`${line}\n`)
  rl.prompt(true)
}

// Nicks by user id, learned from member lists and presence; groups this client is in.
const nicks = new Map<number, string>([[userId, nick]])
const members = new Map<string, Set<number>>()
let current: string | undefined
let seq = 0
let loginSeq = 0
let loggedIn = false
let exitCode = 0
// What each message sent was, for its Ack.
const pending = new Map<number, string>()
// The server says why a login is refused in a warning Notice just before the Ack.
let refusal: string | undefined

const who = (id: number) => nicks.get(id) ?? `user ${id}`

function idOf(name: string): number | string {
  const ids = [...nicks].filter(([, n]) => n === name).map(([id]) => id)
  if (ids.length === 1) return ids[0]!
  if (ids.length > 1) return `${ids.length} users are called ${name} (ids ${ids.join(', ')})`
  return `unknown nick "${name}": nicks are learned from the groups you share (/join, /who)`
}

/** Sends, or prints why not; `what` names it in the reply to a failed Ack. */
function send<K extends ClientMessageName>(what: string, name: K, message: Messages[K]): void {
  try {
    client.send(name, message)
    if ('seq' in message) pending.set(message.seq, what)
  } catch (e) {
    if (e instanceof MessageEncodeError || e instanceof SendError) print(`* not sent: ${e.message}`)
    else throw e
  }
}

const STATUS: Record<number, string> = {
  [AckStatus.notLoggedIn]: 'not logged in',
  [AckStatus.unknownUser]: 'that user is not online',
  [AckStatus.notInGroup]: 'you are not in that group',
  [AckStatus.rejected]: 'refused',
}

client.on('open', () => {
  // Every connection logs in again, and rejoins the groups of the last one.
  loggedIn = false
  loginSeq = ++seq
  send('login', 'Login', {seq: loginSeq, userId, nick})
  for (const group of members.keys()) send(`/join ${group}`, 'GroupJoin', {seq: ++seq, group})
})
client.on('reconnecting', ({delay}) => print(`* connection lost; trying again in ${(delay / 1000).toFixed(1)} s`))
client.on('LoginOk', (m) => {
  loggedIn = true
  print(`* logged in as ${nick} (${m.userId}); ${m.online} online. /help lists the commands`)
})
client.on('Ack', (m) => {
  const what = pending.get(m.seq)
  pending.delete(m.seq)
  if (m.seq === loginSeq && m.status !== AckStatus.ok && !loggedIn) {
    print(`* login refused: ${refusal ?? STATUS[m.status]}; closing`)
    exitCode = 1
    void client.close()
    return
  }
  if (m.status !== AckStatus.ok) print(`* ${what ?? `message ${m.seq}`}: ${STATUS[m.status] ?? m.status}`)
})
client.on('PrivateDeliver', (m) => print(`[private] ${who(m.from)}: ${m.text}`))
client.on('GroupDeliver', (m) => print(`[${m.group}] ${who(m.from)}: ${m.text}`))
client.on('GroupMembers', (m) => {
  for (const x of m.members) nicks.set(x.userId, x.nick)
  members.set(m.group, new Set(m.members.map((x) => x.userId)))
  print(`* ${m.group}: ${m.members.map((x) => x.nick).join(', ')}`)
})
client.on('Presence', (m) => {
  nicks.set(m.member.userId, m.member.nick)
  const group = members.get(m.group)
  if (m.event === PresenceEvent.joined) group?.add(m.member.userId)
  else group?.delete(m.member.userId)
  const did = m.event === PresenceEvent.joined ? 'joined' : m.event === PresenceEvent.left ? 'left' : 'was disconnected from'
  print(`* ${m.member.nick} ${did} ${m.group}`)
})
client.on('Notice', (m) => {
  if (m.level === NoticeLevel.warning && !loggedIn) refusal = m.text
  print(`* ${m.level === NoticeLevel.info ? 'notice' : m.level === NoticeLevel.warning ? 'warning' : 'server shutting down'}: ${m.text}`)
})
client.on('QueuePosition', (m) => print(m.position === 0 ? '* admitted' : `* the server is full; waiting to log in: position ${m.position}`))

/** Runs one line typed by the user. */
function command(line: string): void {
  const text = line.trim()
  if (!text) return
  if (!text.startsWith('/')) {
    if (!current) return print('* join a group first: /join <group>')
    return send(`say in ${current}`, 'GroupSay', {seq: ++seq, group: current, text})
  }
  const [cmd, arg = '', ...rest] = text.split(/\s+/)
  const body = rest.join(' ')
  switch (cmd) {
    case '/help':
      return print(HELP.join('\n'))
    case '/join':
      if (!arg) return print('* /join needs a group name: /join <group>')
      current = arg
      if (!members.has(arg)) members.set(arg, new Set())
      return send(`/join ${arg}`, 'GroupJoin', {seq: ++seq, group: arg})
    case '/leave': {
      const group = arg || current
      if (!group) return print('* /leave which group? /leave <group>')
      members.delete(group)
      if (current === group) current = members.keys().next().value
      return send(`/leave ${group}`, 'GroupLeave', {seq: ++seq, group})
    }
    case '/say':
      if (!arg || !body) return print('* /say <group> <text>')
      return send(`say in ${arg}`, 'GroupSay', {seq: ++seq, group: arg, text: body})
    case '/msg': {
      if (!arg || !body) return print('* /msg <nick> <text>')
      const to = idOf(arg)
      if (typeof to === 'string') return print(`* ${to}`)
      return send(`/msg ${arg}`, 'PrivateSend', {seq: ++seq, to, text: body})
    }
    case '/who':
      if (members.size === 0) return print('* you are in no group')
      return print([...members].map(([g, ids]) => `* ${g}: ${[...ids].map(who).join(', ')}`).join('\n'))
    case '/quit':
      return quit()
    default:
      return print(`* unknown command ${cmd}; /help lists the commands`)
  }
}

let quitting = false
function quit(): void {
  if (quitting) return
  quitting = true
  if (client.isOpen && loggedIn) send('/quit', 'Logout', {seq: ++seq})
  void client.close()
}

rl.on('line', command)
rl.on('close', quit)
if (interactive) rl.prompt()

void client.closed().then(({error}) => {
  if (!quitting && exitCode === 0) {
    print(`* disconnected${error ? `: ${error.message}` : ''}`)
    exitCode = 1
  }
  rl.close()
  process.exit(exitCode)
})
