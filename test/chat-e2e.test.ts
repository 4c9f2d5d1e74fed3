// The chat example under load, on Linux and on Windows (IOCP, under Wine): 200 clients log
// in, join groups and exchange private and group messages, each carrying a sequence number.
// Every message must arrive exactly once, in order per sender; abrupt disconnects must not
// disturb the others, and the pools must come back to where they started.
import {spawn} from 'node:child_process'
import {rmSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {type ChatCodec, Client as ChatClient, exchangeExactlyOnce, loadCodec, type Msg, prepareCopy, running, type Running, serverEnv, startLinux, type Stats, waitFor} from './support/chat.js'
import {readIfExists, startUnderWine, requireWindowsAddon, windowsToolsMissing} from './support/windows.js'

let codec: ChatCodec

interface Target {
  name: string
  missing?: string
  /** Builds a copy of the example once; start() runs servers from it. */
  prepare(): Promise<string>
  /** A server with the spec's settings, overridden by env (IOCPGEN_* variables). */
  start(dir: string, env?: Record<string, string>): Promise<Running>
}

let started = 0

const targets: Target[] = [
  {
    name: 'linux',
    async prepare() {
      const dir = await prepareCopy()
      codec = await loadCodec(dir)
      return dir
    },
    start: (dir, env = {}) => startLinux(dir, env),
  },
  {
    name: 'windows (IOCP, under Wine)',
    missing: windowsToolsMissing(),
    async prepare() {
      requireWindowsAddon()
      const dir = await prepareCopy()
      codec = await loadCodec(dir)
      return dir
    },
    async start(dir, env = {}) {
      const tag = `wine-${++started}`
      const e = serverEnv(dir, tag, env)
      const outFile = join(dir, `stdout-${tag}.txt`)
      const child = startUnderWine(dir, 'dist/src/main.js', e, outFile)
      return running(dir, child, () => readIfExists(outFile), e.STATS_FILE, 180_000)
    },
  },
]

let port = 0

/** The shared client, on this suite's server by default. */
class Client extends ChatClient {
  /** from: the source address; the spec limits each address to 64 connections, 20 a second. */
  constructor(userId: number, from = '127.0.0.1', to = port) {
    super(codec, userId, to, from)
  }
}

/** A person at the terminal client (dist/src/client.js, run on this machine's Node). */
function person(server: Running, id: number, nick: string) {
  const child = spawn(process.execPath, ['dist/src/client.js', String(id), nick], {cwd: server.dir, env: {...process.env, PORT: String(server.port)}})
  let out = ''
  child.stdout.on('data', (d: Buffer) => (out += d.toString()))
  const saw = (text: string) => waitFor(`${nick} to see "${text}"`, () => (out.includes(text) ? true : undefined), 20_000)
  const type = (line: string) => child.stdin.write(`${line}\n`)
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
  return {saw, type, exited, output: () => out}
}

const dirs = new Map<Target, string>()
afterAll(() => {
  for (const dir of dirs.values()) rmSync(dirname(dir), {recursive: true, force: true})
})

/** Runs the target's chat server (env: IOCPGEN_* overrides) for one describe block. */
function chatServer(target: Target, env?: Record<string, string>): () => Running {
  let server: Running | undefined
  beforeAll(async () => {
    if (target.missing) throw new Error(`cannot run on ${target.name}: ${target.missing}`)
    if (!dirs.has(target)) dirs.set(target, await target.prepare())
    server = await target.start(dirs.get(target)!, env)
  }, 600_000)
  afterAll(() => {
    server?.child.kill('SIGKILL')
  })
  return () => server!
}
const ack = (seq: number) => (m: Msg) => m.type === 'Ack' && m.seq === seq

for (const target of targets) {
  describe(`the chat example on ${target.name}`, () => {
    const running = chatServer(target)
    const stats = () => running().stats()
    beforeAll(() => {
      port = running().port
    })

    it('runs on the backend it is meant to', async () => {
      const backend = (await stats()).backend
      if (target.name.startsWith('windows')) expect(backend).toBe('iocp')
      else expect(['uring', 'epoll']).toContain(backend)
    })

    it('lets two people chat with the terminal client (npm run client)', async () => {
      const alice = person(running(), 501, 'alice')
      const bob = person(running(), 502, 'bob')
      await alice.saw('* logged in as alice (501)')
      await bob.saw('* logged in as bob (502)')
      alice.type('/join lobby')
      await alice.saw('* lobby: alice')
      bob.type('/join lobby')
      await alice.saw('* bob joined lobby')
      bob.type('hello there')
      await alice.saw('[lobby] bob: hello there')
      alice.type('/msg bob psst')
      await bob.saw('[private] alice: psst')
      alice.type('/quit')
      expect(await alice.exited).toBe(0)
      await bob.saw('* alice was disconnected from lobby')
      bob.type('/quit')
      expect(await bob.exited).toBe(0)
    }, 60_000)

    const N = 200
    const GROUPS = 4
    const K = 20
    const clients: Client[] = []
    let baseline: Awaited<ReturnType<typeof stats>>

    it(`${N} clients log in and join ${GROUPS} groups, each acknowledged`, async () => {
      // The terminal clients of the test before may still be closing on the server's side.
      baseline = await stats()
      for (let i = 0; i < 100 && baseline.sessions > 0; i++) {
        await new Promise((r) => setTimeout(r, 50))
        baseline = await stats()
      }
      expect(baseline.sessions).toBe(0)
      // Spread over 16 source addresses, within the spec's per-address limits.
      for (let i = 0; i < N; i++) clients.push(new Client(i + 1, `127.0.0.${10 + (i % 16)}`))
      await Promise.all(clients.map((c) => new Promise((r) => (c.s.connecting ? c.s.once('connect', r) : r(undefined)))))
      for (const c of clients) c.send('Login', {seq: 1, userId: c.userId, nick: `user${c.userId}`})
      await Promise.all(clients.map((c) => c.when(ack(1))))
      for (const c of clients) expect(c.got.find(ack(1))!.status).toBe(0)
      for (const c of clients) c.send('GroupJoin', {seq: 2, group: `g${c.userId % GROUPS}`})
      await Promise.all(clients.map((c) => c.when(ack(2))))
      for (const c of clients) expect(c.got.find(ack(2))!.status).toBe(0)
      // A second login with a taken user id is refused.
      const dup = new Client(1)
      dup.send('Login', {seq: 1, userId: 1, nick: 'again'})
      await dup.when(ack(1))
      expect(dup.got.find(ack(1))!.status).toBe(4)
      dup.s.destroy()
    }, 60_000)

    it('delivers every private and group message exactly once, in order per sender', async () => {
      await exchangeExactlyOnce(clients, GROUPS, K)
    }, 120_000)

    it('survives abrupt disconnects mid-traffic; the others are told, and keep talking', async () => {
      const gone = clients.filter((c) => c.userId % 4 === 0).slice(0, 40)
      const stay = clients.filter((c) => !gone.includes(c))
      for (const c of stay) c.send('GroupSay', {seq: 300, group: `g${c.userId % GROUPS}`, text: 'during'})
      for (const c of gone) c.s.resetAndDestroy()
      await Promise.all(gone.map((c) => c.closed))
      // Members of the groups the leavers were in hear that they disconnected.
      const watcher = stay.find((c) => c.userId % GROUPS === 0)!
      for (const c of gone) await watcher.when((m) => m.type === 'Presence' && (m.member as {userId: number}).userId === c.userId && m.event === 2)
      // Private messages to someone who left are refused; among those who stayed they work.
      const a = stay[0]!
      a.send('PrivateSend', {seq: 400, to: gone[0]!.userId, text: 'hello?'})
      await a.when(ack(400))
      expect(a.got.find(ack(400))!.status).toBe(2)
      const b = stay[1]!
      a.send('PrivateSend', {seq: 401, to: b.userId, text: 'still here'})
      await b.when((m) => m.type === 'PrivateDeliver' && m.seq === 401)
      expect((await stats()).sessions).toBe(stay.length)
    }, 60_000)

    it('returns every pool to its baseline once the clients are gone', async () => {
      for (const c of clients) c.s.destroy()
      await Promise.all(clients.map((c) => c.closed))
      let now = await stats()
      for (let i = 0; i < 100 && (now.sessions > 0 || now.socketPool.inUse > baseline.socketPool.inUse); i++) {
        await new Promise((r) => setTimeout(r, 50))
        now = await stats()
      }
      expect(now.sessions).toBe(0)
      expect(now.socketPool.inUse).toBe(baseline.socketPool.inUse)
      expect(now.ioPool.inUse).toBe(baseline.ioPool.inUse)
      expect(now.badPayloads).toBe(0)
    }, 60_000)

    it('refuses a connect flood from one address at accept and bans it; other addresses are served', async () => {
      const before = await stats()
      const delta = (now: Stats, reason: string) => (now.closes[reason] ?? 0) - (before.closes[reason] ?? 0)
      // 60 connects at once: the spec allows 20 a second from one address.
      const flood = Array.from({length: 60}, (_, i) => new Client(7000 + i, '127.0.0.70'))
      let now = before
      for (let i = 0; i < 200; i++) {
        now = await stats()
        if (delta(now, 'connect_rate') + delta(now, 'banned') + now.connectionsTotal - before.connectionsTotal >= 60) break
      }
      expect(delta(now, 'connect_rate')).toBe(1)  // the one that broke the limit; the rest are banned
      const admitted = now.connectionsTotal - before.connectionsTotal
      expect(admitted).toBeGreaterThanOrEqual(20)
      expect(admitted + delta(now, 'banned') + 1).toBe(60)
      expect(now.perIp.banned).toBe(1)
      // The refused ones were reset without a session; the admitted ones are connected.
      await waitFor('the refused clients to close', () => (flood.filter((c) => c.s.destroyed).length === 60 - admitted ? true : undefined), 10_000)
      const later = new Client(8001, '127.0.0.70')
      await later.closed
      expect(later.got).toEqual([])
      const other = new Client(8002, '127.0.0.71')
      other.send('Login', {seq: 1, userId: 8002, nick: 'other'})
      await other.when(ack(1))
      expect(other.got.find(ack(1))!.status).toBe(0)
      for (const c of [...flood, other]) c.s.destroy()
    }, 60_000)

    it('disconnects a group member that never reads once its send queue is full; the others get everything', async () => {
      const [talker, listener, stuck] = [new Client(9101, '127.0.0.90'), new Client(9102, '127.0.0.90'), new Client(9103, '127.0.0.90')]
      for (const c of [talker, listener, stuck]) {
        c.send('Login', {seq: 1, userId: c.userId, nick: `n${c.userId}`})
        await c.when(ack(1))
        c.send('GroupJoin', {seq: 2, group: 'busy'})
        await c.when(ack(2))
      }
      stuck.s.pause()  // reads nothing from now on: kernel buffers fill, then its send queue
      const before = (await stats()).closes.slow_consumer ?? 0
      const text = 'x'.repeat(1000)
      let sent = 0
      // 1 KB messages in rounds of 100 (100 KB, under the 256 KiB queue limit, so the members
      // that read keep up) until the core gives up on the stuck member.
      for (let round = 0; round < 400; round++) {
        for (let k = 0; k < 100; k++) talker.send('GroupSay', {seq: 10_000 + sent++, group: 'busy', text})
        await listener.when((m) => m.type === 'GroupDeliver' && m.seq === 10_000 + sent - 1)
        if (((await stats()).closes.slow_consumer ?? 0) > before) break
      }
      // (A paused socket does not notice the reset, so the server's count is the witness.)
      expect((await stats()).closes.slow_consumer).toBe(before + 1)
      expect(sent).toBeLessThan(40_000)
      await listener.when((m) => m.type === 'GroupDeliver' && m.seq === 10_000 + sent - 1)
      const seqs = listener.got.filter((m) => m.type === 'GroupDeliver').map((m) => m.seq)
      expect(seqs).toEqual(Array.from({length: sent}, (_, k) => 10_000 + k))
      for (const c of [talker, listener, stuck]) c.s.destroy()
    }, 120_000)
  })

  describe(`the chat example's limits on ${target.name} (4 contexts, a login queue of 3)`, () => {
    const running = chatServer(target, {IOCPGEN_MAX_CONNECTIONS: '4', IOCPGEN_LOGIN_QUEUE: '3', IOCPGEN_IDLE_TIMEOUT_MS: '1500', IOCPGEN_DRAIN_TIMEOUT_MS: '3000'})
    const stats = () => running().stats()
    const at = (id: number, from = '127.0.0.80') => new Client(id, from, running().port)
    const login = async (c: Client) => {
      c.send('Login', {seq: 1, userId: c.userId, nick: `u${c.userId}`})
      await c.when(ack(1))
      expect(c.got.find(ack(1))!.status).toBe(0)
    }
    const position = (n: number) => (m: Msg) => m.type === 'QueuePosition' && m.position === n


    it('closes a client silent past idleTimeout; one that sends heartbeats stays', async () => {
      const beating = at(2)
      await login(beating)
      const beat = setInterval(() => beating.send('Ping', {nonce: 7}), 300)
      const quiet = at(1)
      await new Promise((r) => quiet.s.once('connect', r))
      const t0 = Date.now()  // the quiet one's last bytes go out now
      try {
        await login(quiet)
        await quiet.closed
        const waited = Date.now() - t0
        expect(waited).toBeGreaterThanOrEqual(1400)
        expect(quiet.reset).toBe(false)  // a graceful close
        await new Promise((r) => setTimeout(r, 2000))
        expect(beating.s.destroyed).toBe(false)
        expect((await stats()).closes.idle_timeout).toBe(1)
      } finally {
        clearInterval(beat)
        beating.s.destroy()
      }
    }, 60_000)

    const full: Client[] = []
    const queued: Client[] = []

    it('queues logins when every context is taken, tells each its position, admits them in order', async () => {
      for (let i = 0; i < 100 && (await stats()).socketPool.inUse > 0; i++) await new Promise((r) => setTimeout(r, 50))
      for (let i = 0; i < 4; i++) {
        full.push(at(11 + i))
        await login(full[i]!)
      }
      // Each sends its login while waiting: it is handled once the client is admitted.
      for (let i = 0; i < 3; i++) {
        const q = at(21 + i)
        q.send('Login', {seq: 1, userId: q.userId, nick: `q${i}`})
        await q.when(position(i + 1))
        queued.push(q)
      }
      const turnedAway = at(30)
      await turnedAway.closed
      expect(turnedAway.got).toEqual([])
      let s = await stats()
      expect(s.closes.login_queue_full).toBe(1)
      expect(s.loginQueue).toMatchObject({waiting: 3, highWater: 3, queued: 3, admitted: 0})

      // Logout: its Ack arrives before the connection ends (a graceful close), and the
      // first in line takes the freed context.
      full[0]!.send('Logout', {seq: 2})
      await full[0]!.closed
      expect(full[0]!.got.filter(ack(2)).map((m) => m.status)).toEqual([0])
      expect(full[0]!.reset).toBe(false)
      await queued[0]!.when(ack(1))
      const seen = queued[0]!.got.map((m) => (m.type === 'QueuePosition' ? `pos ${m.position}` : m.type))
      expect(seen.slice(0, 4)).toEqual(['pos 1', 'pos 0', 'LoginOk', 'Ack'])
      await queued[1]!.when(position(1))
      await queued[2]!.when(position(2))

      full[1]!.s.destroy()
      await queued[1]!.when(ack(1))
      expect(queued[1]!.got.find(ack(1))!.status).toBe(0)
      await queued[2]!.when(position(1))
      s = await stats()
      expect(s.loginQueue).toMatchObject({waiting: 1, queued: 3, admitted: 2})
      expect(s.socketPool.inUse).toBe(4)
    }, 60_000)

    // Windows has no SIGTERM; Wine turns SIGINT into the Ctrl+C that Node reports as SIGINT.
    const stopSignal = target.name === 'linux' ? 'SIGTERM' : 'SIGINT'
    it(`stops on ${stopSignal} after delivering every message it accepted`, async () => {
      const [a, b] = [full[2]!, full[3]!]
      for (const c of [a, b]) c.send('GroupJoin', {seq: 3, group: 'last'})
      await Promise.all([a.when(ack(3)), b.when(ack(3))])
      for (let k = 0; k < 300; k++) a.send('GroupSay', {seq: 1000 + k, group: 'last', text: `m${k}`})
      await b.when((m) => m.type === 'GroupDeliver')
      running().child.kill(stopSignal)
      const code = await new Promise((r) => running().child.on('exit', r))
      expect(code).toBe(0)
      await Promise.all([...full.slice(2), ...queued].map((c) => c.closed))
      // Every message the server acknowledged to the sender reached the other member.
      const acked = a.got.filter((m) => m.type === 'Ack' && (m.seq as number) >= 1000).map((m) => m.seq)
      const delivered = b.got.filter((m) => m.type === 'GroupDeliver').map((m) => m.seq)
      expect(acked.length).toBeGreaterThan(0)
      expect(delivered).toEqual(acked)
      expect(a.reset || b.reset).toBe(false)
    }, 60_000)
  })

  describe(`the chat README's login-queue walkthrough on ${target.name}`, () => {
    const running = chatServer(target, {IOCPGEN_MAX_CONNECTIONS: '1'})

    it('IOCPGEN_MAX_CONNECTIONS=1: bob waits in line until alice quits, then logs in', async () => {
      const alice = person(running(), 1, 'alice')
      await alice.saw('* logged in as alice (1)')
      const bob = person(running(), 2, 'bob')
      await bob.saw('* the server is full; waiting to log in: position 1')
      expect(bob.output()).not.toContain('logged in')
      alice.type('/quit')
      expect(await alice.exited).toBe(0)
      await bob.saw('* admitted')
      await bob.saw('* logged in as bob (2)')
      bob.type('/quit')
      expect(await bob.exited).toBe(0)
    }, 60_000)
  })
}
