// The generated TypeScript client (src/generated/client.ts), run in this process against the
// generated round-trip server (support/clients.ts): edge values of every message, each echo
// checked bit for bit, and what the client sent must be what the server decoded. Then what a
// client library must do besides: refuse bad fields, drop a connection that sends a bad frame,
// reconnect, heartbeat, backpressure.
import {type ChildProcess, spawn} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {createServer, type Server, type Socket} from 'node:net'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {canonicalMessage} from './support/canonical.js'
import {clientsProject, clientsTypes, type RoundTripServer, startRoundTripServer} from './support/clients.js'

// The compiled client's surface, as this test uses it (its own types live in the project).
type Incoming = {name: string; message: Record<string, unknown>}
interface Client {
  connected(): Promise<void>
  closed(): Promise<{error?: Error; reconnecting: boolean}>
  close(): Promise<unknown>
  send(name: string, message: object): boolean
  drain(): Promise<void>
  readonly bufferedAmount: number
  readonly isOpen: boolean
  on(event: string, listener: (...args: never[]) => void): Client
  once(event: string, listener: (...args: never[]) => void): Client
}
interface ClientModule {
  connect(options: Record<string, unknown>): Client
  MessageEncodeError: new (...args: never[]) => Error & {field: string}
  SendError: new (...args: never[]) => Error & {reason: string}
  ProtocolError: new (...args: never[]) => Error
}

const f32 = (bits: number) => new DataView(new Uint32Array([bits]).buffer).getFloat32(0, true)
const f64 = (bits: bigint) => new DataView(new BigUint64Array([bits]).buffer).getFloat64(0, true)
const U64_MAX = 2n ** 64n - 1n
const I64_MIN = -(2n ** 63n)
const I64_MAX = 2n ** 63n - 1n
// 1-, 2-, 3- and 4-byte characters: 10 bytes, 7000 times is exactly 70000.
const LONG = 'aé€😀'.repeat(7000)
const EMOJI3 = '😀🎉🚀'
const full = (n: number, f: (i: number) => number) => Uint8Array.from({length: n}, (_, i) => f(i))
const zeroInner = {id: 0n, tags: [], event: 0}
const fullInner = {id: U64_MAX, tags: ['€a', '😀'], event: -128}
const zeroOuter = {inner: zeroInner, points: [], small: 0, object: []}
const fullOuter = {
  inner: fullInner,
  points: [{x: f32(0x7fc00000), y: f64(0x7ff8000000000000n)}, {x: -0, y: Number.MIN_VALUE}, {x: f32(0x7f7fffff), y: Number.MAX_VALUE}],
  small: 255,
  object: [fullInner, {id: 1n, tags: ['abcd', ''], event: 127}],
}

/** Edge instances of every message of test/fixtures/specs/clients.yaml. */
const CASES: [string, object][] = [
  ['Empty', {}], ['Empty', {}], ['Empty', {}],
  ['Ints', {a: 0, b: 0, c: 0, d: 0n, e: 0, f: 0, g: 0, h: 0n}],
  ['Ints', {a: 255, b: 65535, c: 4294967295, d: U64_MAX, e: 127, f: 32767, g: 2147483647, h: I64_MAX}],
  ['Ints', {a: 1, b: 256, c: 65536, d: 2n ** 32n, e: -128, f: -32768, g: -2147483648, h: I64_MIN}],
  ['Floats', {single: 0, double: 0}],
  ['Floats', {single: -0, double: -0}],
  ['Floats', {single: Infinity, double: Infinity}],
  ['Floats', {single: -Infinity, double: -Infinity}],
  ['Floats', {single: f32(0x7fc00000), double: f64(0x7ff8000000000000n)}],
  ['Floats', {single: f32(1), double: Number.MIN_VALUE}],
  ['Floats', {single: f32(0x7f7fffff), double: Number.MAX_VALUE}],
  ['Floats', {single: 1.5, double: -2.25}],
  ['Floats', {single: -3.140625, double: 0.1}],
  ['Flags', {first: false, second: false}],
  ['Flags', {first: true, second: false}],
  ['Flags', {first: false, second: true}],
  ['Flags', {first: true, second: true}],
  ['Texts', {from: '', long: '', lambda: ''}],
  ['Texts', {from: EMOJI3, long: LONG, lambda: 'x'}],
  ['Texts', {from: 'é€a\u0000bc', long: '\uFEFF\uFFFD', lambda: '\u007f'}],
  ['Blobs', {small: new Uint8Array(0), large: new Uint8Array(0)}],
  ['Blobs', {small: full(16, (i) => (i % 2 ? 0xff : 0x00)), large: full(70000, (i) => i & 0xff)}],
  ['Blobs', {small: Uint8Array.of(0xff), large: Uint8Array.of(0)}],
  ['Enums', {small: 0, wide: 1, huge: 0, tiny: -128, short: -32768, long: -2147483648}],
  ['Enums', {small: 255, wide: 65535, huge: 4294967295, tiny: 127, short: 32767, long: 2147483647}],
  ['Enums', {small: 0, wide: 65535, huge: 0, tiny: 0, short: 32767, long: -2147483648}],
  ['Arrays', {ints: [], floats: [], singles: [], string: [], blobs: [], enums: [], bools: [], grid: [], wide: []}],
  [
    'Arrays',
    {
      ints: [I64_MIN, I64_MAX, 0n, -1n],
      floats: [f64(0x7ff8000000000000n), -Infinity, Number.MIN_VALUE],
      singles: [1.5, -0],
      string: ['', '12345678', 'é€x'],
      blobs: [Uint8Array.of(0, 255, 0, 255), new Uint8Array(0)],
      enums: [-32768, 32767],
      bools: [true, false, true],
      grid: [[0, 65535], [1, 2], [65535, 0]],
      wide: Array.from({length: 70000}, (_, i) => (i * 7) & 0xff),
    },
  ],
  ['Arrays', {ints: [1n], floats: [0], singles: [f32(0x7f800000)], string: ['😀'], blobs: [new Uint8Array(0)], enums: [32767], bools: [false], grid: [[], [7]], wide: [255]}],
  ['Structs', {is: zeroOuter, many: []}],
  ['Structs', {is: fullOuter, many: [fullOuter, zeroOuter]}],
  ['Structs', {is: {...zeroOuter, points: [{x: -Infinity, y: Infinity}]}, many: [zeroOuter]}],
  ['LastId', {u: 0}],
  ['LastId', {u: 4294967295}],
  ['LastId', {u: 12345}],
]

/** Messages received, awaited in order. */
function inbox(client: Client): () => Promise<Incoming> {
  const got: Incoming[] = []
  let wake: (() => void) | undefined
  client.on('message', (m: never) => {
    got.push(m)
    wake?.()
  })
  return async () => {
    const deadline = Date.now() + 5000
    while (got.length === 0) {
      if (Date.now() > deadline) throw new Error('no message from the server within 5 s')
      await new Promise<void>((resolve) => {
        wake = resolve
        setTimeout(resolve, 500)
      })
    }
    return got.shift()!
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A free TCP port on 127.0.0.1. */
async function freePort(): Promise<number> {
  const s = createServer()
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))
  const {port} = s.address() as {port: number}
  await new Promise((resolve) => s.close(resolve))
  return port
}

describe('TypeScript client', () => {
  let dir: string
  let server: RoundTripServer
  let mod: ClientModule
  const types = clientsTypes()
  const children: ChildProcess[] = []

  /** The round-trip project's server on a given port, idleTimeout as given (ms). */
  async function startOn(port: number, idleTimeoutMs?: number): Promise<ChildProcess> {
    const child = spawn(process.execPath, ['dist/src/tsclient-main.js'], {
      cwd: dir,
      env: {...process.env, ROUNDTRIP_LOG: join(dir, 'typescript-extra.jsonl'), PORT: String(port), ...(idleTimeoutMs ? {IOCPGEN_IDLE_TIMEOUT_MS: String(idleTimeoutMs)} : {})},
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    children.push(child)
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('listening') && resolve())
      child.on('exit', (code) => reject(new Error(`server exited with ${code}`)))
    })
    return child
  }
  const stop = (child: ChildProcess) =>
    new Promise<void>((resolve) => {
      child.once('exit', () => resolve())
      child.kill('SIGTERM')
    })

  beforeAll(async () => {
    dir = await clientsProject()
    server = await startRoundTripServer(dir, join(dir, 'typescript-log.jsonl'))
    mod = (await import(pathToFileURL(join(dir, 'dist', 'src', 'generated', 'client.js')).href)) as ClientModule
    // The same server on a port of the test's choosing, so a restarted one is found again.
    writeFileSync(
      join(dir, 'dist', 'src', 'tsclient-main.js'),
      `import {createServer} from './generated/server.js'
import {handlers} from './handlers/index.js'
const server = createServer(handlers, {port: Number(process.env.PORT), host: '127.0.0.1'})
await server.start()
console.log('listening')
process.once('SIGTERM', () => void server.stop().then(() => process.exit(0)))
`,
    )
  }, 240_000)
  afterAll(async () => {
    await server?.stop()
    for (const c of children) if (c.exitCode === null) c.kill('SIGKILL')
  })

  it('sends every message type at its edges, gets each back bit for bit, and the server decoded exactly what was sent', async () => {
    const client = mod.connect({port: server.port, heartbeat: false})
    const next = inbox(client)
    await client.connected()
    const lines: unknown[] = []
    for (const [name, message] of CASES) {
      expect(client.send(name, message)).toBe(true)
      const sent = canonicalMessage(types, name, message)
      lines.push(JSON.parse(JSON.stringify(sent)))
      const echo = await next()
      expect(echo.name).toBe(name)
      // Canonical forms compare floats by their bits, bytes by value.
      expect(canonicalMessage(types, name, echo.message), name).toEqual(sent)
    }
    await client.close()
    expect(lines).toEqual(server.decoded())
    expect(lines.length).toBeGreaterThanOrEqual(3 * Object.keys(types.messages).length)
    for (const t of Object.keys(types.messages)) expect(lines.filter((l) => (l as {type: string}).type === t).length, t).toBeGreaterThanOrEqual(3)
  })

  it('decodes bytes fields as copies: they outlive the frame', async () => {
    const client = mod.connect({port: server.port, heartbeat: false})
    const next = inbox(client)
    client.send('Blobs', {small: Uint8Array.of(1, 2, 3), large: full(3000, (i) => i & 0xff)})
    client.send('Blobs', {small: Uint8Array.of(9), large: full(10, () => 7)})
    const first = (await next()).message
    await next()
    expect(Array.from(first.small as Uint8Array)).toEqual([1, 2, 3])
    expect((first.large as Uint8Array).buffer.byteLength).toBe(3000)
    await client.close()
  })

  it('refuses a bad field before sending, naming the message and field', async () => {
    const client = mod.connect({port: server.port, heartbeat: false})
    const next = inbox(client)
    await client.connected()
    const before = server.decoded().length
    const refused: [string, object, string, RegExp][] = [
      ['Texts', {from: '😀😀😀a', long: '', lambda: ''}, 'Texts.from', /13 bytes of UTF-8 is over the bound 12/],
      ['Texts', {from: '', long: 'x'.repeat(70001), lambda: ''}, 'Texts.long', /70001 bytes/],
      ['Texts', {from: '\uD800', long: '', lambda: ''}, 'Texts.from', /lone surrogate/],
      ['Ints', {a: 256, b: 0, c: 0, d: 0n, e: 0, f: 0, g: 0, h: 0n}, 'Ints.a', /256 is not a u8/],
      ['Ints', {a: 0, b: 0, c: 0, d: -1n, e: 0, f: 0, g: 0, h: 0n}, 'Ints.d', /not a u64/],
      ['Ints', {a: 0, b: 0, c: 0, d: 0n, e: 0, f: 0, g: 1.5, h: 0n}, 'Ints.g', /1.5 is not a i32/],
      ['Ints', {a: 0, b: 0, c: 0, d: 0n, e: 0, f: 0, g: 0, h: 2n ** 63n}, 'Ints.h', /not a i64/],
      ['Arrays', {ints: [0n, 0n, 0n, 0n, 0n], floats: [], singles: [], string: [], blobs: [], enums: [], bools: [], grid: [], wide: []}, 'Arrays.ints', /5 items is over the bound 4/],
      ['Arrays', {ints: [], floats: [], singles: [], string: [], blobs: [], enums: [], bools: [], grid: [[1, 2, 3]], wide: []}, 'Arrays.grid[0]', /3 items is over the bound 2/],
      ['Arrays', {ints: [], floats: [], singles: [], string: ['', '123456789'], blobs: [], enums: [], bools: [], grid: [], wide: []}, 'Arrays.string[1]', /9 bytes/],
      ['Enums', {small: 1, wide: 1, huge: 0, tiny: 0, short: 32767, long: 2147483647}, 'Enums.small', /1 is not a value of Small/],
      ['Structs', {is: {...zeroOuter, inner: {id: 0n, tags: ['abcde'], event: 0}}, many: []}, 'Structs.is.inner.tags[0]', /5 bytes/],
      ['Blobs', {small: new Uint8Array(17), large: new Uint8Array(0)}, 'Blobs.small', /17 bytes is over the bound 16/],
    ]
    for (const [name, message, field, reason] of refused) {
      let error: unknown
      try {
        client.send(name, message)
      } catch (e) {
        error = e
      }
      expect(error, field).toBeInstanceOf(mod.MessageEncodeError)
      expect((error as {field: string}).field).toBe(field)
      expect((error as Error).message).toMatch(reason)
      expect((error as Error).message).toContain(field)
    }
    expect(() => client.send('NoSuch', {})).toThrow(/NoSuch is not a message the client sends/)
    // Nothing of the refused messages reached the server: the next thing it decodes is this.
    client.send('LastId', {u: 7})
    expect((await next()).message).toEqual({u: 7})
    expect(server.decoded().slice(before)).toEqual([{type: 'LastId', message: {u: '7'}}])
    await client.close()
  })

  it('reports a frame it cannot decode, drops the connection and reconnects', async () => {
    // A fake server: an unknown type id first, then a bool of 2, then a good frame.
    const bad = [
      Buffer.from([2, 0, 0, 0, 0x34, 0x12]),
      Buffer.from([4, 0, 0, 0, 3, 0, 2, 0]),
      Buffer.from([6, 0, 0, 0, 0xff, 0xff, 5, 0, 0, 0]),
    ]
    let accepted = 0
    const fake: Server = createServer((s: Socket) => {
      s.on('error', () => {})
      s.end(bad[Math.min(accepted++, 2)])
    })
    await new Promise<void>((resolve) => fake.listen(0, '127.0.0.1', resolve))
    const client = mod.connect({port: (fake.address() as {port: number}).port, heartbeat: false, reconnect: {initialDelay: 10, maxDelay: 20, attempts: 5}})
    const errors: Error[] = []
    client.on('error', (e: never) => errors.push(e))
    const got = new Promise<Record<string, unknown>>((resolve) => client.once('LastId', (m: never) => resolve(m)))
    expect(await got).toEqual({u: 5})
    await client.close()
    fake.close()
    expect(errors[0]).toBeInstanceOf(mod.ProtocolError)
    expect(errors[0]!.message).toMatch(/unknown message type id 4660/)
    expect(errors[1]!.message).toMatch(/Flags does not decode: bool is 2/)
    expect(accepted).toBeGreaterThanOrEqual(3)
  })

  it('close() resolves once what was sent is written and the socket has closed', async () => {
    // A server that takes its time to close its end after the client's.
    let received = 0
    let serverClosed = false
    const lazy: Server = createServer({allowHalfOpen: true}, (s: Socket) => {
      s.on('data', (d) => (received += d.length))
      s.on('end', () => setTimeout(() => ((serverClosed = true), s.end()), 300))
    })
    await new Promise<void>((resolve) => lazy.listen(0, '127.0.0.1', resolve))
    const client = mod.connect({port: (lazy.address() as {port: number}).port, heartbeat: false})
    await client.connected()
    let closeEvents = 0
    client.on('close', () => closeEvents++)
    client.send('Blobs', {small: new Uint8Array(0), large: full(70000, (i) => i & 0xff)})
    expect(() => client.send('LastId', {u: 1})).not.toThrow()
    const info = await client.close()
    expect(info).toEqual({reconnecting: false})
    expect(serverClosed).toBe(true)
    // length, type id, bytes<16> (u16 prefix), bytes<70000> (u32 prefix); then LastId with a u32.
    expect(received).toBe(4 + 2 + 2 + 4 + 70000 + (4 + 2 + 4))
    expect(closeEvents).toBe(1)
    expect(() => client.send('LastId', {u: 1})).toThrow(mod.SendError)
    lazy.close()
  })

  it('reconnects when the server restarts, and connected() resolves again', async () => {
    const port = await freePort()
    let child = await startOn(port)
    const client = mod.connect({port, heartbeat: false, reconnect: {initialDelay: 50, maxDelay: 200}})
    const next = inbox(client)
    const events: string[] = []
    for (const e of ['open', 'close', 'reconnecting']) client.on(e, () => events.push(e))
    await client.connected()
    await stop(child)
    await new Promise<void>((resolve) => client.once('reconnecting', () => resolve()))
    expect(client.isOpen).toBe(false)
    // Sent while disconnected: queued, and delivered on reconnect.
    expect(client.send('LastId', {u: 42})).toBe(true)
    child = await startOn(port)
    await client.connected()
    expect((await next()).message).toEqual({u: 42})
    expect(events.filter((e) => e === 'open').length).toBe(2)
    expect(events).toContain('close')
    await client.close()
    expect(await client.closed()).toEqual({reconnecting: false})
    expect(() => client.send('LastId', {u: 1})).toThrow(mod.SendError)
    await expect(client.connected()).rejects.toThrow(/closed/)
    await stop(child)
  })

  it('gives up after the attempts allowed, and queues only up to queueLimit while disconnected', async () => {
    const port = await freePort()
    const client = mod.connect({port, heartbeat: false, reconnect: {initialDelay: 10, maxDelay: 20, attempts: 2}, queueLimit: 100})
    expect(client.send('LastId', {u: 1})).toBe(true)
    let error: unknown
    try {
      for (let i = 0; i < 20; i++) client.send('LastId', {u: 1})
    } catch (e) {
      error = e
    }
    expect((error as {reason: string}).reason).toBe('queue-full')
    const info = await client.closed()
    expect(info.reconnecting).toBe(false)
    expect(info.error?.message).toMatch(/ECONNREFUSED/)
  })

  it('heartbeats: a client that sends nothing outlives idleTimeout, one with the heartbeat off does not', async () => {
    // The fixture's spec has a heartbeat but no Ping: the client wants one named.
    expect(() => mod.connect({port: 1})).toThrow(/heartbeat of 2000 ms but no message named Heartbeat, Ping or KeepAlive/)
    const port = await freePort()
    const child = await startOn(port, 1500)
    const beating = mod.connect({port, heartbeat: () => ['Empty', {}], heartbeatInterval: 400, reconnect: false})
    const silent = mod.connect({port, heartbeat: false, reconnect: false})
    await Promise.all([beating.connected(), silent.connected()])
    const started = Date.now()
    const silentClosed = await silent.closed()
    const after = Date.now() - started
    expect(silentClosed.reconnecting).toBe(false)
    expect(after).toBeGreaterThan(1000)
    await sleep(2500)
    expect(beating.isOpen).toBe(true)
    // A client that sends anyway sends no heartbeat.
    let beats = 0
    const busy = mod.connect({port, heartbeat: () => (beats++, ['Empty', {}]), heartbeatInterval: 400, reconnect: false})
    await busy.connected()
    for (let i = 0; i < 8; i++) {
      busy.send('LastId', {u: i})
      await sleep(150)
    }
    expect(beats).toBe(0)
    await sleep(700)
    expect(beats).toBeGreaterThanOrEqual(1)
    await busy.close()
    await beating.close()
    await stop(child)
  })

  it('backpressure: send returns false above the high-water mark, drain() resolves below it', async () => {
    // A server that does not read until told: the kernel's buffers fill, then the client's.
    let peer: Socket | undefined
    const slow: Server = createServer((s: Socket) => {
      s.pause()
      peer = s
    })
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve))
    const client = mod.connect({port: (slow.address() as {port: number}).port, heartbeat: false, highWaterMark: 200_000})
    await client.connected()
    const blob = {small: new Uint8Array(0), large: full(70000, (i) => i & 0xff)}
    let sent = 1
    while (client.send('Blobs', blob) && sent < 10_000) {
      sent++
      // Let the socket hand bytes to the kernel, as an application between sends would.
      if (sent % 16 === 0) await sleep(1)
    }
    expect(sent).toBeLessThan(10_000)
    expect(client.bufferedAmount).toBeGreaterThanOrEqual(200_000)
    let drained = false
    const drain = client.drain().then(() => (drained = true))
    await sleep(200)
    expect(drained).toBe(false)
    peer!.resume()
    await drain
    expect(client.bufferedAmount).toBeLessThan(200_000)
    await client.close()
    slow.close()
  })
})
