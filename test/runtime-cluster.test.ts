// Names and groups of the runtime's Server, alone and as two shards on a NATS server the
// test starts: one winner per name however binds race, sends by name and broadcasts that
// reach the other shard, interest that follows membership, and a dead shard reaped (its
// sessions reported once) or, if it is only silent, fenced.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {BROADCAST_MARK, EVENT_GEN, EVENT_INDEX, EVENT_KIND, EVENT_LEN, EVENT_REASON, EVENT_SIZE, EVENT_TYPE, EventKind} from '../runtime/src/bridge.js'
import {ClusterBus, type LostSession} from '../runtime/src/cluster.js'
import {type Codec, type Protocol, RUNTIME_API} from '../runtime/src/protocol.js'
import {Server} from '../runtime/src/server.js'
import type {Session} from '../runtime/src/session.js'
import {Reader} from '../runtime/src/wire.js'
import {type Nats, startNats} from './support/nats.js'

type Note = {text: string}
interface Types {
  messages: {Note: Note}
  inbound: 'Note'
  outbound: 'Note'
}
const note: Codec<Note> = {id: 1, encode: (w, m) => w.string(m.text, 200, 2), decode: (r) => ({text: r.string(200, 2)}), minSize: 2, maxSize: 202}
const protocol: Protocol<Types> = {api: RUNTIME_API, codecs: {Note: note}, settings: {maxFrame: 1024}}

function event(kind: number, index: number, gen: number, body: Buffer): Buffer {
  const b = Buffer.alloc(EVENT_SIZE + body.length)
  b[EVENT_KIND] = kind
  b[EVENT_REASON] = 0
  b.writeUInt16LE(0, EVENT_TYPE)
  b.writeUInt32LE(index, EVENT_INDEX)
  b.writeUInt32LE(gen, EVENT_GEN)
  b.writeUInt32LE(body.length, EVENT_LEN)
  body.copy(b, EVENT_SIZE)
  return b
}

/** What a shard's stand-in core was asked to send: text per connection slot. */
type Sent = Map<number, string[]>

/** Reads a send batch as the addon does: plain records and broadcast records. */
function record(batch: Buffer, sent: Sent): void {
  let off = 0
  const text = (start: number, end: number) => note.decode(new Reader(batch, start + 6, end)).text
  while (off < batch.length) {
    const index = batch.readUInt32LE(off)
    const gen = batch.readUInt32LE(off + 4)
    const len = batch.readUInt32LE(off + 8)
    off += 12
    const targets: number[] = []
    if (index === BROADCAST_MARK) {
      for (let i = 0; i < gen; i++) targets.push(batch.readUInt32LE(off + i * 8))
      off += gen * 8
    } else {
      targets.push(index)
    }
    for (const t of targets) sent.set(t, [...(sent.get(t) ?? []), text(off, off + len)])
    off += len
  }
}

interface Shard {
  server: Server<Types, object>
  sent: Sent
  closed: number[]
  open(index: number): Session<Types, object>
  bus?: ClusterBus
}

/** A server over a stand-in core; with `url`, on the cluster bus of that NATS server. */
async function shard(index: number, url?: string, timing = {heartbeatMs: 200, leaseMs: 800}): Promise<Shard> {
  const server = new Server<Types, object>({protocol, handlers: {Note: () => {}}, initialState: () => ({})})
  const sent: Sent = new Map()
  const closed: number[] = []
  const inner = server as unknown as {native: unknown; closeReasons: string[]; onEvents(b: Buffer): void; session(id: number): Session<Types, object>; bus?: ClusterBus; clusterHost(): never}
  inner.native = {close: (i: number) => (closed.push(i), true), send: (b: Buffer) => (record(Buffer.from(b), sent), 0), stats: () => ({}), stop: () => {}}
  inner.closeReasons = ['peer']
  const s: Shard = {
    server,
    sent,
    closed,
    open: (slot) => {
      inner.onEvents(event(EventKind.open, slot, 1, Buffer.from('127.0.0.1')))
      return server.session(slot + 1 * 2 ** 22)!
    },
  }
  if (url) {
    const bus = new ClusterBus({subject: 'rt', url, maxPendingBytes: 1 << 20, ...timing}, inner.clusterHost(), index)
    await bus.start()
    inner.bus = bus
    s.bus = bus
  }
  return s
}
const closeSlot = (s: Shard, slot: number) => (s.server as unknown as {onEvents(b: Buffer): void}).onEvents(event(EventKind.close, slot, 1, Buffer.alloc(0)))
const tick = () => new Promise((r) => setTimeout(r, 0))
/** Stops shards as a process would: the server, then (already by the server) its bus. */
async function stopAll(...shards: Shard[]): Promise<void> {
  for (const s of shards) await s.server.stop()
}

describe('names and groups on one server, with no cluster', () => {
  it('one session per name; sendTo(name) reaches it; closing releases the name', async () => {
    const a = await shard(0)
    const [x, y] = [a.open(1), a.open(2)]
    expect(await a.server.bind(x, 'user:1', 'ann')).toBe(true)
    expect(await a.server.bind(y, 'user:1', 'bob')).toBe(false)
    expect(await a.server.whereIs('user:1')).toMatchObject({meta: 'ann', local: true})
    expect(await a.server.sendTo('user:1', 'Note', {text: 'hi'})).toBe(true)
    expect(await a.server.sendTo('user:2', 'Note', {text: 'nobody'})).toBe(false)
    await tick()
    expect(a.sent.get(1)).toEqual(['hi'])
    a.server.join('g', x)
    expect(await a.server.namedMembers('g')).toEqual([{name: 'user:1', meta: 'ann'}])
    closeSlot(a, 1)
    expect(await a.server.whereIs('user:1')).toBeUndefined()
    expect(await a.server.bind(y, 'user:1', 'bob')).toBe(true)
    expect(a.server.online()).toBe(1)
  })
})

describe('two shards on a NATS server', () => {
  let nats: Nats
  beforeAll(async () => {
    nats = await startNats()
  }, 30_000)
  afterAll(async () => {
    await nats?.dispose()
  })

  it('of binds racing on both shards for the same names, exactly one wins each', async () => {
    const [a, b] = [await shard(0, nats.url), await shard(1, nats.url)]
    try {
      const names = Array.from({length: 40}, (_, i) => `race:${i}`)
      const results = await Promise.all(names.flatMap((name, i) => [a.server.bind(a.open(100 + i), name), b.server.bind(b.open(100 + i), name)]))
      for (let i = 0; i < names.length; i++) expect(results[2 * i]! !== results[2 * i + 1]!, names[i]).toBe(true)
      const wonByA = names.filter((_, i) => results[2 * i])
      // Each side finds every name where it is.
      for (const name of names) expect((await b.server.whereIs(name))?.local).toBe(!wonByA.includes(name))
      expect(a.bus!.stats().bindsRefused + b.bus!.stats().bindsRefused).toBe(names.length)
    } finally {
      await stopAll(a, b)
    }
  }, 30_000)

  it('sends by name and broadcasts cross to the other shard; interest follows membership', async () => {
    const [a, b] = [await shard(0, nats.url), await shard(1, nats.url)]
    try {
      const [ann, bob] = [a.open(1), b.open(7)]
      expect(await a.server.bind(ann, 'user:ann', 'Ann')).toBe(true)
      expect(await b.server.bind(bob, 'user:bob', 'Bob')).toBe(true)
      expect(await a.server.sendTo('user:bob', 'Note', {text: 'to bob'})).toBe(true)
      expect(await a.server.sendTo('user:nobody', 'Note', {text: 'lost'})).toBe(false)
      expect(await a.server.whereIs('user:bob')).toMatchObject({shard: b.bus!.shard, meta: 'Bob', local: false})

      // No member of "g" on b yet: a's broadcast goes nowhere there.
      a.server.broadcast('g', 'Note', {text: 'before'})
      await a.server.settle()
      b.server.join('g', bob)
      a.server.join('g', ann)
      await b.server.settle()
      a.server.broadcast('g', 'Note', {text: 'one'})
      a.server.broadcast('g', 'Note', {text: 'two'}, ann)
      expect(await a.server.namedMembers('g')).toEqual([{name: 'user:ann', meta: 'Ann'}, {name: 'user:bob', meta: 'Bob'}])
      await waitFor(() => (b.sent.get(7)?.length ?? 0) >= 3)
      expect(b.sent.get(7)).toEqual(['to bob', 'one', 'two'])
      expect(a.sent.get(1)).toEqual(['one'])  // 'two' skipped its sender

      // Once b's last member leaves, b unsubscribes: nothing more arrives there.
      b.server.leave('g', bob)
      await b.server.settle()
      const received = b.bus!.stats().received
      a.server.broadcast('g', 'Note', {text: 'after'})
      await a.server.settle()
      await new Promise((r) => setTimeout(r, 200))
      expect(b.bus!.stats().received).toBe(received)
      expect(b.sent.get(7)).toEqual(['to bob', 'one', 'two'])
    } finally {
      await stopAll(a, b)
    }
  }, 30_000)

  it('namedMembers is done once every live shard has answered, members or none; a shard dead within its lease is waited for until waitMs', async () => {
    const [a, b, c] = [await shard(0, nats.url), await shard(1, nats.url), await shard(2, nats.url)]
    try {
      const [ann, bob, cat] = [a.open(1), b.open(1), c.open(1)]
      expect(await a.server.bind(ann, 'user:ann', 'Ann')).toBe(true)
      expect(await b.server.bind(bob, 'user:bob', 'Bob')).toBe(true)
      expect(await c.server.bind(cat, 'user:cat', 'Cat')).toBe(true)
      a.server.join('g', ann)
      b.server.join('g', bob)
      c.server.join('other', cat)  // c has no member of g, and answers all the same
      await Promise.all([a, b, c].map((s) => s.server.settle()))
      await new Promise((r) => setTimeout(r, 300))  // a heartbeat: every shard knows the others
      const sorted = (l: {name: string}[]) => l.map((m) => m.name).sort()
      const asked = Date.now()
      expect(sorted(await a.server.namedMembers('g', 5000))).toEqual(['user:ann', 'user:bob'])
      // Both others answered: no waiting out the 5 s for a silence.
      expect(Date.now() - asked).toBeLessThan(2500)

      // c dies without a goodbye; within its lease a still counts it, so waits until waitMs.
      await (c.bus as unknown as {nc: {close(): Promise<void>}}).nc.close()
      clearInterval((c.bus as unknown as {timer: NodeJS.Timeout}).timer)
      const again = Date.now()
      expect(sorted(await a.server.namedMembers('g', 400))).toEqual(['user:ann', 'user:bob'])
      expect(Date.now() - again).toBeGreaterThanOrEqual(390)
    } finally {
      await stopAll(a, b, c)
    }
  }, 30_000)

  it('a shard that dies is reaped by one survivor within the lease: its sessions are reported once and their names freed', async () => {
    const [a, b, c] = [await shard(0, nats.url), await shard(1, nats.url), await shard(2, nats.url)]
    const lost: LostSession[][] = []
    a.server.on('lost', (l) => void lost.push(l))
    b.server.on('lost', (l) => void lost.push(l))
    try {
      const [x, y] = [c.open(1), c.open(2)]
      expect(await c.server.bind(x, 'user:x', 'X')).toBe(true)
      expect(await c.server.bind(y, 'user:y', 'Y')).toBe(true)
      c.server.join('room', x)
      c.server.join('lobby', x)
      await tick()
      await c.server.settle()
      await new Promise((r) => setTimeout(r, 300))  // a heartbeat: a and b know c
      // c dies: no goodbye, no release.
      const died = Date.now()
      await (c.bus as unknown as {nc: {close(): Promise<void>}; timer: NodeJS.Timeout}).nc.close()
      clearInterval((c.bus as unknown as {timer: NodeJS.Timeout}).timer)
      await waitFor(() => lost.length > 0, 5000)
      expect(Date.now() - died).toBeLessThan(800 + 200 + 700)
      await new Promise((r) => setTimeout(r, 500))
      expect(lost).toHaveLength(1)  // one survivor reaps
      const sessions = lost[0]!.sort((p, q) => p.name.localeCompare(q.name))
      expect(sessions.map((s) => [s.name, s.meta, s.groups.sort(), s.shard])).toEqual([
        ['user:x', 'X', ['lobby', 'room'], c.bus!.shard],
        ['user:y', 'Y', [], c.bus!.shard],
      ])
      expect(await a.server.whereIs('user:x')).toBeUndefined()
      expect(await a.server.bind(a.open(5), 'user:x', 'X again')).toBe(true)
    } finally {
      await stopAll(a, b)
    }
  }, 30_000)

  it('a shard that stops says goodbye: its names are free at once, and nobody reaps it', async () => {
    const [a, b] = [await shard(0, nats.url), await shard(1, nats.url)]
    const lost: LostSession[][] = []
    b.server.on('lost', (l) => void lost.push(l))
    try {
      expect(await a.server.bind(a.open(1), 'user:leaving', 'L')).toBe(true)
      expect((await b.server.whereIs('user:leaving'))?.shard).toBe(a.bus!.shard)
      await a.server.stop()
      expect(await b.server.whereIs('user:leaving')).toBeUndefined()
      expect(await b.server.bind(b.open(1), 'user:leaving', 'L2')).toBe(true)
      await new Promise((r) => setTimeout(r, 1200))  // past the lease (800 ms)
      expect(lost).toEqual([])
      expect(b.bus!.stats().shardsReaped).toBe(0)
    } finally {
      await b.server.stop()
    }
  }, 30_000)

  it('while NATS is down a bind is refused and counted, not thrown; after NATS is back binds work again', async () => {
    const a = await shard(0, nats.url)
    try {
      await nats.stop()
      expect(await a.server.bind(a.open(1), 'user:outage')).toBe(false)
      expect(a.bus!.stats()).toMatchObject({bindErrors: 1, connected: 0})
      await nats.restart()
      await waitFor(() => a.bus!.stats().connected === 1, 10_000)
      expect(await a.server.bind(a.open(2), 'user:outage')).toBe(true)
    } finally {
      await a.server.stop()
    }
  }, 60_000)

  it('a shard silent past the lease but still connected is fenced: it closes its named sessions', async () => {
    const [a, b] = [await shard(0, nats.url), await shard(1, nats.url)]
    try {
      const x = b.open(3)
      b.open(4)  // no name: stays
      expect(await b.server.bind(x, 'user:silent', 'S')).toBe(true)
      await new Promise((r) => setTimeout(r, 300))
      // b stops announcing itself (a stalled event loop looks the same from outside).
      clearInterval((b.bus as unknown as {timer: NodeJS.Timeout}).timer)
      await waitFor(() => b.closed.length > 0, 5000)
      expect(b.closed).toEqual([3])
      expect(b.bus!.stats().fenced).toBe(1)
      // Its name is free for a new login elsewhere.
      const rebound = await a.server.bind(a.open(9), 'user:silent', 'S2')
      expect(rebound, JSON.stringify(a.bus!.stats())).toBe(true)
    } finally {
      await stopAll(a, b)
    }
  }, 30_000)
})

async function waitFor(test: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms
  while (!test()) {
    if (Date.now() > until) throw new Error('timed out')
    await new Promise((r) => setTimeout(r, 20))
  }
}
