// The runtime's Server driven with event batches as the addon writes them, over a stand-in
// for the native core: when sessions are made, what an idle client costs, the close rule,
// and the lifetime of bytes views in development and production.
import {afterEach, describe, expect, it} from 'vitest'

import {EVENT_GEN, EVENT_INDEX, EVENT_KIND, EVENT_LEN, EVENT_REASON, EVENT_SIZE, EVENT_TYPE, EventKind} from '../runtime/src/bridge.js'
import {MessageLifetimeError} from '../runtime/src/lifetime.js'
import {type Codec, type Protocol, RUNTIME_API} from '../runtime/src/protocol.js'
import {Server} from '../runtime/src/server.js'
import {type Session, sessionId} from '../runtime/src/session.js'
import {formatIPv4, parseIPv4} from '../runtime/src/slots.js'
import {Writer} from '../runtime/src/wire.js'

type Blob = {data: Uint8Array; list: Uint8Array[]}
interface Types {
  messages: {Blob: Blob}
  inbound: 'Blob'
  outbound: never
}
const blob: Codec<Blob> = {
  id: 1,
  encode: (w, m) => {
    w.bytes(m.data, 64, 2)
    w.count(m.list.length, 4, 2)
    for (const b of m.list) w.bytes(b, 8, 2)
  },
  decode: (r) => ({data: r.bytes(64, 2), list: r.array(4, 2, () => r.bytes(8, 2))}),
  minSize: 4,
  maxSize: 110,
}
const protocol: Protocol<Types> = {api: RUNTIME_API, codecs: {Blob: blob}, settings: {maxFrame: 1024}}
const CLOSE_REASONS = ['peer', 'handler_error', 'bad_payload']

function event(kind: number, index: number, gen: number, body: Buffer, type = 0, reason = 0): Buffer {
  const b = Buffer.alloc(EVENT_SIZE + body.length)
  b[EVENT_KIND] = kind
  b[EVENT_REASON] = reason
  b.writeUInt16LE(type, EVENT_TYPE)
  b.writeUInt32LE(index, EVENT_INDEX)
  b.writeUInt32LE(gen, EVENT_GEN)
  b.writeUInt32LE(body.length, EVENT_LEN)
  body.copy(b, EVENT_SIZE)
  return b
}
const opened = (index: number, gen: number, address: string, port: number) => event(EventKind.open, index, gen, Buffer.from(address, 'latin1'), port)
const closed = (index: number, gen: number) => event(EventKind.close, index, gen, Buffer.alloc(0))
function frame(index: number, gen: number, m: Blob): Buffer {
  const w = new Writer()
  blob.encode(w, m)
  return event(EventKind.frame, index, gen, Buffer.from(w.view()), blob.id)
}

type Handler = (s: Session<Types, {n: number}>, m: Blob) => void | Promise<void>

/** A server over a stand-in core that records what it is asked to close. */
function serverWith(handler: Handler, initialState: () => {n: number} = () => ({n: 0})) {
  const server = new Server<Types, {n: number}>({protocol, handlers: {Blob: (s, m) => handler(s, m)}, initialState})
  const closes: [number, number, number | undefined][] = []
  const inner = server as unknown as {native: unknown; closeReasons: string[]; sessions: unknown[]; onEvents(b: Buffer): void}
  inner.native = {close: (i: number, g: number, r?: number) => (closes.push([i, g, r]), true), send: () => 0, broadcast: () => 0, stats: () => ({})}
  inner.closeReasons = CLOSE_REASONS
  const made = () => inner.sessions.filter(Boolean).length
  return {server, closes, made, feed: (...events: Buffer[]) => inner.onEvents(Buffer.concat(events))}
}

const savedDev = process.env.IOCPGEN_DEV
afterEach(() => {
  if (savedDev === undefined) delete process.env.IOCPGEN_DEV
  else process.env.IOCPGEN_DEV = savedDev
})

describe('sessions made on first use', () => {
  it('counts idle clients without making a Session or running initialState()', () => {
    let states = 0
    const {server, feed, made} = serverWith(() => {}, () => ({n: states++}))
    feed(opened(0, 1, '10.0.0.7', 4000), opened(1, 1, '::1', 4001), opened(5000, 3, '192.168.1.255', 65535))
    expect(server.stats().sessions).toBe(3)
    expect(states).toBe(0)
    expect(made()).toBe(0)
  })

  it('makes the Session on the first frame, with its address and port, and runs initialState() then', () => {
    let states = 0
    const seen: [string, number, number, number][] = []
    const {server, feed} = serverWith((s) => void seen.push([s.address, s.port, s.id, s.state.n++]), () => ({n: 10 * ++states}))
    feed(opened(7, 2, '10.0.0.7', 4000), opened(8, 2, 'fe80::1%eth0', 4001))
    feed(frame(7, 2, {data: new Uint8Array(1), list: []}), frame(7, 2, {data: new Uint8Array(1), list: []}))
    expect(seen).toEqual([['10.0.0.7', 4000, sessionId(7, 2), 10], ['10.0.0.7', 4000, sessionId(7, 2), 11]])
    expect(states).toBe(1)
    // server.session() makes it too; an id of another generation finds nothing.
    expect(server.session(sessionId(8, 1))).toBeUndefined()
    const s = server.session(sessionId(8, 2))!
    expect([s.address, s.port, s.state.n, states]).toEqual(['fe80::1%eth0', 4001, 20, 2])
    expect(server.session(sessionId(8, 2))).toBe(s)
    expect(server.stats().sessions).toBe(2)
  })

  it("makes Sessions at open when 'open' is listened to", () => {
    const {server, feed, made} = serverWith(() => {})
    const seen: string[] = []
    server.on('open', (s) => void seen.push(`${s.address}:${s.port}`))
    feed(opened(3, 1, '127.0.0.1', 5555))
    expect(seen).toEqual(['127.0.0.1:5555'])
    expect(made()).toBe(1)
  })

  it('closes a client whose initialState() throws at its first frame, counted once, and drops the frame', () => {
    let handled = 0
    const {server, feed, closes} = serverWith(() => void handled++, () => {
      throw new Error('no state')
    })
    const errors: string[] = []
    server.on('error', (_e, s, source) => void errors.push(`${source} ${s === undefined}`))
    const closeEvents: string[] = []
    server.on('close', (_s, reason) => void closeEvents.push(reason))
    feed(opened(4, 9, '10.1.2.3', 1), frame(4, 9, {data: new Uint8Array(2), list: []}))
    expect(handled).toBe(0)
    expect(closes).toEqual([[4, 9, CLOSE_REASONS.indexOf('handler_error')]])
    expect(server.stats()).toMatchObject({sessions: 0, handlerErrors: 1, handlerErrorsByName: {'initialState()': 1}})
    expect(errors).toEqual(['initialState() true'])
    // The core's close event for it finds nothing: no 'close', nothing counted twice.
    feed(closed(4, 9))
    expect(closeEvents).toEqual([])
    expect(server.stats()).toMatchObject({sessions: 0, handlerErrors: 1})
  })

  it("gives a client that never had a Session a 'close' event only when 'close' is listened to", () => {
    let states = 0
    const {server, feed} = serverWith(() => {}, () => ({n: states++}))
    feed(opened(1, 1, '10.0.0.1', 1), closed(1, 1))
    expect(states).toBe(0)
    expect(server.stats().sessions).toBe(0)
    const seen: [string, boolean, string][] = []
    server.on('close', (s, reason) => void seen.push([s.address, s.open, reason]))
    feed(opened(2, 1, '10.0.0.2', 2), closed(2, 1))
    expect(seen).toEqual([['10.0.0.2', false, 'peer']])
    expect(states).toBe(1)
    expect(server.stats().sessions).toBe(0)
  })

  it('ignores frames and closes of an earlier client of the same slot', () => {
    let handled = 0
    const {server, feed} = serverWith(() => void handled++)
    feed(opened(6, 1, '10.0.0.6', 6), closed(6, 1), opened(6, 2, '10.0.0.6', 7))
    feed(frame(6, 1, {data: new Uint8Array(1), list: []}), closed(6, 1))
    expect(handled).toBe(0)
    expect(server.stats().sessions).toBe(1)
    expect(server.session(sessionId(6, 1))).toBeUndefined()
    expect(server.session(sessionId(6, 2))?.port).toBe(7)
  })
})

describe('peer addresses kept as numbers', () => {
  it('parses exactly the dotted quads inet_ntop writes, and formats them back', () => {
    for (const a of ['0.0.0.0', '255.255.255.255', '1.2.3.4', '10.0.100.9']) {
      const b = Buffer.from(a)
      expect(formatIPv4(parseIPv4(b, 0, b.length))).toBe(a)
    }
    for (const a of ['01.2.3.4', '256.1.1.1', '1.2.3', '1.2.3.4.5', '1..2.3', '::ffff:1.2.3.4', '', '1.2.3.4 ', '1.2.3.1000']) {
      const b = Buffer.from(a)
      expect(parseIPv4(b, 0, b.length), a).toBe(-1)
    }
  })
})

describe('bytes fields: views, and their lifetime', () => {
  const sample = (): Blob => ({data: Uint8Array.from([1, 2, 3, 4]), list: [Uint8Array.from([9, 8])]})
  const later = () => new Promise((resolve) => setImmediate(resolve))

  it('in development, a view kept past its handler throws MessageLifetimeError naming the message and field', async () => {
    process.env.IOCPGEN_DEV = '1'
    let kept: Blob | undefined
    let view: Uint8Array | undefined
    let item: Uint8Array | undefined
    const {feed} = serverWith((_s, m) => {
      kept = m
      view = m.data
      item = m.list[0]
      expect([...m.data]).toEqual([1, 2, 3, 4])
    })
    feed(opened(0, 1, '10.0.0.1', 1), frame(0, 1, sample()))
    await later()
    expect(() => view!.length).toThrow(MessageLifetimeError)
    expect(() => view!.length).toThrow(/^Blob\.data was used after its handler returned or awaited/)
    expect(() => Buffer.from(view!)).toThrow(/Blob\.data/)
    expect(() => kept!.data).toThrow(/Blob\.data/)
    expect(() => kept!.list[0]).toThrow(/Blob\.list\[0\]/)
    expect(() => item!.slice()).toThrow(/Blob\.list\[0\]/)
    // Its memory is gone too: indexing reads nothing.
    expect(view![0]).toBeUndefined()
  })

  it('in development, an async handler may use its views until its first await', async () => {
    process.env.IOCPGEN_DEV = '1'
    const results: string[] = []
    const {feed, server} = serverWith(async (_s, m) => {
      results.push(`before ${m.data.length}`)
      await null
      results.push(`after ${m.data.length}`)
    })
    const errors: string[] = []
    server.on('error', (e, _s, source) => void errors.push(`${source} ${e.name}`))
    feed(opened(0, 1, '10.0.0.1', 1), frame(0, 1, sample()), frame(0, 1, sample()))
    await later()
    // The rejection closed the session: the frame queued behind it was dropped.
    expect(results).toEqual(['before 4'])
    expect(errors).toEqual(['Blob MessageLifetimeError'])
  })

  it('in development, a frame queued behind an async handler has its views while its own handler starts', async () => {
    process.env.IOCPGEN_DEV = '1'
    const results: string[] = []
    const {feed} = serverWith(async (_s, m) => {
      results.push(`${m.data[0]} ${m.data.length}`)
      await new Promise((resolve) => setTimeout(resolve, 5))
    })
    feed(opened(0, 1, '10.0.0.1', 1), frame(0, 1, sample()), frame(0, 1, {data: Uint8Array.from([7]), list: []}))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(results).toEqual(['1 4', '7 1'])
  })

  it('in development, a copy made with slice() keeps its content', async () => {
    process.env.IOCPGEN_DEV = '1'
    let copy: Uint8Array | undefined
    let item: Uint8Array | undefined
    const {feed} = serverWith((_s, m) => {
      copy = m.data.slice()
      item = m.list[0]!.slice()
    })
    feed(opened(0, 1, '10.0.0.1', 1), frame(0, 1, sample()))
    await later()
    expect([...copy!]).toEqual([1, 2, 3, 4])
    expect([...item!]).toEqual([9, 8])
  })

  it('in production, views are views of the received batch and nothing checks them', async () => {
    process.env.IOCPGEN_DEV = '0'
    let kept: Blob | undefined
    let view: Uint8Array | undefined
    const batch = Buffer.concat([opened(0, 1, '10.0.0.1', 1), frame(0, 1, sample())])
    const {feed} = serverWith((_s, m) => {
      kept = m
      view = m.data
    })
    feed(batch)
    await later()
    expect(Object.getPrototypeOf(view)).toBe(Uint8Array.prototype)
    // Whatever the bytes are by now, reading them does not throw.
    expect(() => [view!.length, kept!.data.length, kept!.list[0]!.length]).not.toThrow()
  })
})
