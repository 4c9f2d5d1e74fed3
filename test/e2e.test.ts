// End to end: generate a project, build it on @iocpgen/runtime (the root's build, native
// addon included), start the server, and exchange every message type with real TCP clients.
import {type ChildProcess, spawn} from 'node:child_process'
import {rmSync, writeFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {connect, type Socket} from 'node:net'
import {dirname, join} from 'node:path'
import {pathToFileURL} from 'node:url'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {compileProject, projectDir, requireRuntimeBuilt, root} from './support/project.js'
import {runOrThrow} from './support/run.js'

let dir: string
let server: ChildProcess
let port = 0
let exited: Promise<number | null>

type Codec = {id: number; encode(w: unknown, m: unknown): void; decode(r: unknown): unknown}
let codecs: Record<string, Codec>
let Writer: new () => {beginFrame(t: number): number; endFrame(s: number, max: number): void; view(): Buffer}
let Reader: new (b: Buffer, s?: number, e?: number) => {done(): void}

beforeAll(async () => {
  dir = projectDir('roundtrip')
  await runOrThrow(process.execPath, [join(root, 'bin', 'run.js'), 'new', dir, '--spec', join(root, 'test/fixtures/specs/roundtrip.yaml'), '--no-install'], {cwd: root})
  // Faults the Fault message arms: which user code throws next.
  writeFileSync(join(dir, 'src/faults.ts'), `export const faults = {open: 0, state: 0, close: new WeakSet<object>(), states: 0}
`)
  writeFileSync(join(dir, 'src/session-state.ts'), `import {faults} from './faults.js'
export interface SessionState {
  [key: string]: unknown
}
export const initialState = (): SessionState => {
  faults.states++
  if (faults.state > 0 && faults.state--) throw new Error('initialState fault')
  return {}
}
`)
  // Handlers that send every message straight back.
  writeFileSync(join(dir, 'src/handlers/index.ts'), `import type {Handlers} from '../generated/handlers.js'
import {faults} from '../faults.js'
export const handlers: Handlers = {
  Numbers: (session, message) => void session.send('Numbers', message),
  Texts: (session, message) => void session.send('Texts', message),
  Nested: (session, message) => void session.send('Nested', message),
  Nothing: (session, message) => void session.send('Nothing', message),
  Big: (session, message) => void session.send('Big', message),
  Join: (session, message, server) => {
    server.join(message.group, session)
    session.send('Nothing', {})
  },
  Shout: (session, message, server) => void server.broadcast(message.group, 'Shout', {...message, from: session.id % 4194304}, session),
  Slow: async (session, message) => {
    await new Promise((resolve) => setTimeout(resolve, message.ms))
    session.send('Done', {seq: message.seq})
  },
  Spin: (session, message) => {
    const until = process.hrtime.bigint() + BigInt(message.micros) * 1000n
    while (process.hrtime.bigint() < until);
    session.send('Done', {seq: message.seq})
  },
  // 1: reply, then throw. 2: reply later, then reject. 3: this session's close listener
  // throws. 4: the next open listener throws. 5: the next initialState() throws. 6: throw a
  // value that cannot even be turned into a string.
  Fault: (session, message) => {
    if (message.kind === 1) {
      session.send('Done', {seq: message.seq})
      throw new Error('sync fault')
    }
    if (message.kind === 2) {
      return (async () => {
        await new Promise((resolve) => setTimeout(resolve, 20))
        session.send('Done', {seq: message.seq})
        throw new Error('async fault')
      })()
    }
    if (message.kind === 6) throw {toString: () => { throw new Error('not even a string') }}
    if (message.kind === 3) faults.close.add(session)
    if (message.kind === 4) faults.open++
    if (message.kind === 5) faults.state++
    session.send('Done', {seq: message.seq})
  },
}
`)
  // A main that takes the runtime's options from the environment.
  writeFileSync(join(dir, 'src/e2e-main.ts'), `import {createServer} from './generated/server.js'
import {faults} from './faults.js'
import {handlers} from './handlers/index.js'
const server = createServer(handlers, {port: 0, host: '127.0.0.1', eventQueueLimit: Number(process.env.EVENT_QUEUE_LIMIT ?? 64 * 1024 * 1024)})
server.on('open', () => {
  if (faults.open > 0 && faults.open--) throw new Error('open fault')
})
server.on('close', (session) => {
  if (faults.close.has(session)) throw new Error('close fault')
})
const {port, backend} = await server.start()
console.log(\`e2e listening on port \${port} (\${backend})\`)
process.stdin.on('data', () => console.log('stats ' + JSON.stringify(server.stats())))
process.once('SIGTERM', () => void server.stop().then(() => process.exit(0)))
`)
  // A main with no listeners: sessions are made on first use.
  writeFileSync(join(dir, 'src/lazy-main.ts'), `import {createServer} from './generated/server.js'
import {faults} from './faults.js'
import {handlers} from './handlers/index.js'
const server = createServer(handlers, {port: 0, host: '127.0.0.1'})
const {port, backend} = await server.start()
console.log(\`lazy listening on port \${port} (\${backend})\`)
process.stdin.on('data', () => console.log('stats ' + JSON.stringify({...server.stats(), states: faults.states})))
process.once('SIGTERM', () => void server.stop().then(() => process.exit(0)))
`)
  await compileProject(dir)
  requireRuntimeBuilt('linux')
  codecs = (await import(pathToFileURL(join(dir, 'dist/src/generated/protocol.js')).href)).codecs
  // The runtime the project resolves: the root's, through node_modules/@iocpgen/runtime.
  ;({Writer, Reader} = await import(pathToFileURL(createRequire(join(dir, 'package.json')).resolve('@iocpgen/runtime')).href))

  ;({child: server, port, exited} = await startServer('dist/src/main.js', {PORT: '0'}))
}, 240_000)

/** Starts a server script of the generated project; resolves once it listens. */
async function startServer(script: string, env: Record<string, string>) {
  const child = spawn(process.execPath, [script], {cwd: dir, env: {...process.env, ...env}, stdio: ['pipe', 'pipe', 'pipe']})
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', () => {
      const m = / listening on port (\d+) \((\w+)\)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    child.on('exit', () => reject(new Error(`server exited: ${out}`)))
  })
  /** The server's stats, asked for over stdin. */
  const stats = async (): Promise<Record<string, unknown>> => {
    const from = out.length
    child.stdin!.write('\n')
    for (let i = 0; i < 500; i++) {
      const m = /stats (.*)\n/.exec(out.slice(from))
      if (m) return JSON.parse(m[1]!)
      await new Promise((r) => setTimeout(r, 10))
    }
    throw new Error('no stats')
  }
  return {child, port, exited, stats, stderr: () => err}
}

afterAll(async () => {
  server?.kill('SIGKILL')
  if (dir) rmSync(dirname(dir), {recursive: true, force: true})
})

function encode(name: string, message: unknown): Buffer {
  const w = new Writer()
  const start = w.beginFrame(codecs[name]!.id)
  codecs[name]!.encode(w, message)
  w.endFrame(start, 1 << 30)
  return Buffer.from(w.view())
}

/** A client that collects whole frames. */
function client(to = port): Promise<{s: Socket; next(): Promise<Buffer>; closed: Promise<void>; unread: Buffer[]; error(): string | undefined}> {
  return new Promise((resolve, reject) => {
    const s = connect(to, '127.0.0.1')
    let buf = Buffer.alloc(0)
    const waiting: ((b: Buffer) => void)[] = []
    const frames: Buffer[] = []
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d])
      while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) {
        const n = 4 + buf.readUInt32LE(0)
        const f = buf.subarray(0, n)
        buf = buf.subarray(n)
        const w = waiting.shift()
        if (w) w(f)
        else frames.push(f)
      }
    })
    const closed = new Promise<void>((r) => s.on('close', () => r()))
    let code: string | undefined
    s.on('error', (e: NodeJS.ErrnoException) => (code ??= e.code))
    s.once('connect', () => resolve({s, closed, unread: frames, error: () => code, next: () => new Promise((r) => (frames.length ? r(frames.shift()!) : waiting.push(r)))}))
    s.once('error', reject)
  })
}

const samples: Record<string, unknown> = {
  Numbers: {a: 255, b: 65535, c: 4294967295, d: 18446744073709551615n, e: -128, f: -32768, g: -2147483648, h: -9223372036854775808n, i: 1.5, j: Math.PI, k: true},
  Texts: {tiny: 'ünï', huge: 'x'.repeat(65000) + 'é', blob: new Uint8Array([0, 1, 254, 255]), empty: new Uint8Array(0)},
  Nested: {color: 65535, sign: -1, tagged: [{tag: 'a', points: [{x: 1, y: -1}]}, {tag: '', points: []}], grid: [[1, 2, 3], []], names: ['ab', 'cde']},
  Nothing: {},
  Big: {data: new Uint8Array(60000).map((_, i) => i & 0xff)},
}

describe('a generated server', () => {
  it('echoes every message type byte for byte, and each decodes to what was sent', async () => {
    const c = await client()
    for (const [name, message] of Object.entries(samples)) {
      const sent = encode(name, message)
      c.s.write(sent)
      const got = await c.next()
      expect(got.equals(sent), name).toBe(true)
      const r = new Reader(got, 6)
      expect(codecs[name]!.decode(r)).toEqual(message)
      r.done()
    }
    c.s.destroy()
  })

  it('echoes every message type in production mode too, where bytes are views of the receive batch', async () => {
    const prod = await startServer('dist/src/e2e-main.js', {NODE_ENV: 'production', IOCPGEN_DEV: ''})
    try {
      const c = await client(prod.port)
      // Several frames in one write, so their views share one batch.
      const sent = Object.entries(samples).map(([name, message]) => encode(name, message))
      c.s.write(Buffer.concat(sent))
      for (const f of sent) expect((await c.next()).equals(f)).toBe(true)
      c.s.destroy()
    } finally {
      prod.child.kill('SIGTERM')
      expect(await prod.exited).toBe(0)
    }
  })

  it('counts idle clients without making their sessions; a client gets one at its first message', async () => {
    const lazy = await startServer('dist/src/lazy-main.js', {})
    const statsWhen = async (ok: (s: Record<string, unknown>) => boolean) => {
      for (let i = 0; i < 200; i++) {
        const s = await lazy.stats()
        if (ok(s)) return s
        await new Promise((r) => setTimeout(r, 20))
      }
      return lazy.stats()
    }
    try {
      const idle = await Promise.all(Array.from({length: 20}, () => client(lazy.port)))
      expect(await statsWhen((s) => s.sessions === 20)).toMatchObject({sessions: 20, states: 0})
      idle[0]!.s.write(encode('Nothing', {}))
      expect((await idle[0]!.next()).equals(encode('Nothing', {}))).toBe(true)
      expect(await lazy.stats()).toMatchObject({sessions: 20, states: 1})
      for (const c of idle) c.s.destroy()
      // Nobody listens to 'close': the idle ones leave without a session ever being made.
      expect(await statsWhen((s) => s.sessions === 0)).toMatchObject({sessions: 0, states: 1})
    } finally {
      lazy.child.kill('SIGTERM')
      expect(await lazy.exited).toBe(0)
    }
  })

  it('keeps the order of many frames, split and coalesced across writes', async () => {
    const c = await client()
    const frames = Array.from({length: 500}, (_, i) => encode('Numbers', {...(samples.Numbers as object), c: i}))
    const all = Buffer.concat(frames)
    for (let off = 0; off < all.length; off += 997) c.s.write(all.subarray(off, off + 997))
    for (let i = 0; i < frames.length; i++) expect((await c.next()).equals(frames[i]!), `frame ${i}`).toBe(true)
    c.s.destroy()
  })

  it('closes only the connection that sends a malformed frame', async () => {
    const good = await client()
    const bad = await client()
    // A Numbers frame one byte short of its fixed size: refused natively (bad length).
    const short = encode('Numbers', samples.Numbers).subarray(0, -1)
    short.writeUInt32LE(short.length - 4, 0)
    bad.s.write(short)
    await bad.closed
    good.s.write(encode('Nothing', {}))
    expect((await good.next()).equals(encode('Nothing', {}))).toBe(true)
    good.s.destroy()
  })

  it('closes a connection whose payload fails to decode (an enum value out of range)', async () => {
    const c = await client()
    const f = encode('Nested', samples.Nested)
    f.writeUInt16LE(7, 6) // color: not a Color value
    c.s.write(f)
    await c.closed
  })

  it('broadcasts to a group once per member, skipping the sender, and drops members that leave', async () => {
    const [a, b, c] = await Promise.all([client(), client(), client()])
    for (const x of [a, b, c]) {
      x.s.write(encode('Join', {group: 'g'}))
      await x.next()
    }
    a.s.write(encode('Shout', {group: 'g', from: 0, text: 'hi all'}))
    for (const x of [b, c]) {
      const f = await x.next()
      const m = codecs.Shout!.decode(new Reader(f, 6)) as {text: string; group: string}
      expect(m).toMatchObject({group: 'g', text: 'hi all'})
    }
    a.s.destroy()
    await a.closed
    await new Promise((r) => setTimeout(r, 100))
    b.s.write(encode('Shout', {group: 'g', from: 0, text: 'still here?'}))
    const f = await c.next()
    expect((codecs.Shout!.decode(new Reader(f, 6)) as {text: string}).text).toBe('still here?')
    // The sender got nothing back from its own shouts.
    b.s.write(encode('Nothing', {}))
    expect((await b.next()).equals(encode('Nothing', {}))).toBe(true)
    b.s.destroy()
    c.s.destroy()
  })

  it('corks a burst of broadcasts: each member gets every message in order, in one socket send', async () => {
    const own = await startServer('dist/src/e2e-main.js', {})
    try {
      const members = await Promise.all(Array.from({length: 20}, () => client(own.port)))
      const sender = await client(own.port)
      for (const m of members) {
        m.s.write(encode('Join', {group: 'burst'}))
        await m.next()
      }
      const before = await own.stats()
      const k = 40
      // One write: the shouts arrive in one batch, so their broadcasts share one tick.
      sender.s.write(Buffer.concat(Array.from({length: k}, (_, i) => encode('Shout', {group: 'burst', from: 0, text: `m${i}`}))))
      for (const m of members) {
        for (let i = 0; i < k; i++) expect((codecs.Shout!.decode(new Reader(await m.next(), 6)) as {text: string}).text).toBe(`m${i}`)
      }
      const after = await own.stats()
      expect(Number(after.framesOut) - Number(before.framesOut)).toBe(k * members.length)
      // Uncorked, every member would take a send per message (or at least one per send
      // context and then per completion): k x 20 = 800.
      expect(Number(after.sendsPosted) - Number(before.sendsPosted)).toBe(members.length)
      for (const c of [...members, sender]) c.s.destroy()
    } finally {
      own.child.kill('SIGTERM')
      expect(await own.exited).toBe(0)
    }
  })

  it('handles one session in order even when a handler is async', async () => {
    const c = await client()
    c.s.write(Buffer.concat([encode('Slow', {ms: 50, seq: 1}), encode('Slow', {ms: 0, seq: 2}), encode('Nothing', {})]))
    expect((await c.next()).equals(encode('Done', {seq: 1}))).toBe(true)
    expect((await c.next()).equals(encode('Done', {seq: 2}))).toBe(true)
    expect((await c.next()).equals(encode('Nothing', {}))).toBe(true)
    c.s.destroy()
  })

  // I/O worker threads: a 2 KiB event queue and a handler that spins 300 µs per frame, so
  // the workers must wait for room. The JS thread driving I/O needs no such wait: it reads
  // nothing while handlers run, and the kernel holds the rest.
  it.each([
    ['I/O worker threads', '0'],
    ['the JS thread driving I/O', '1'],
  ])('loses nothing when JavaScript falls behind, with %s', async (_, jsThreadIo) => {
    const slow = await startServer('dist/src/e2e-main.js', {EVENT_QUEUE_LIMIT: '2048', IOCPGEN_JS_THREAD_IO: jsThreadIo})
    try {
      const c = await client(slow.port)
      const n = 2000
      c.s.write(Buffer.concat(Array.from({length: n}, (_, i) => encode('Spin', {micros: 300, seq: i}))))
      for (let i = 0; i < n; i++) expect((await c.next()).equals(encode('Done', {seq: i})), `reply ${i}`).toBe(true)
      const stats = await slow.stats()
      if (jsThreadIo === '0') expect(stats.backpressureWaits).toBeGreaterThan(0)
      expect(stats.ioThreads === 0).toBe(jsThreadIo === '1')
      expect(stats.framesIn).toBe(n)
      expect(stats.framesOut).toBe(n)
      c.s.destroy()
    } finally {
      slow.child.kill('SIGTERM')
      expect(await slow.exited).toBe(0)
    }
  })

  it('stops on SIGTERM and exits 0', async () => {
    const open = await client()
    server.kill('SIGTERM')
    await open.closed
    expect(await exited).toBe(0)
  })
})

describe('failures stay with the connection that caused them', () => {
  let f: Awaited<ReturnType<typeof startServer>>
  beforeAll(async () => {
    f = await startServer('dist/src/e2e-main.js', {})
  })
  afterAll(() => {
    f?.child.kill('SIGKILL')
  })

  const done = (seq: number) => encode('Done', {seq})

  async function until(what: string, check: (stats: Record<string, any>) => boolean): Promise<Record<string, any>> {
    for (let i = 0; i < 200; i++) {
      const stats = await f.stats()
      if (check(stats)) return stats
      await new Promise((r) => setTimeout(r, 10))
    }
    throw new Error(`never: ${what}; stats ${JSON.stringify(await f.stats())}`)
  }

  /** Two new clients join a group and one hears the other: joins and broadcasts still work. */
  async function groupsWork(group: string) {
    const [a, b] = await Promise.all([client(f.port), client(f.port)])
    for (const x of [a, b]) {
      x.s.write(encode('Join', {group}))
      expect((await x.next()).equals(encode('Nothing', {}))).toBe(true)
    }
    a.s.write(encode('Shout', {group, from: 0, text: 'still there?'}))
    expect(codecs.Shout!.decode(new Reader(await b.next(), 6))).toMatchObject({group, text: 'still there?'})
    a.s.destroy()
    b.s.destroy()
    await until('both left', (s) => s.sessions === 0 && s.groups === 0)
  }

  /** A new client that has joined `group`. */
  async function member(group: string) {
    const c = await client(f.port)
    c.s.write(encode('Join', {group}))
    await c.next()
    return c
  }

  it('refuses invalid UTF-8 as a bad payload: the connection is reset and counted, no handler runs', async () => {
    const c = await client(f.port)
    // 8 × 0xFF in a string<8>: replaced, it would be 24 bytes, too long to echo back.
    const frame = encode('Texts', {tiny: 'aaaaaaaa', huge: '', blob: new Uint8Array(0), empty: new Uint8Array(0)})
    frame.fill(0xff, 8, 16)
    c.s.write(frame)
    await c.closed
    expect(c.unread).toEqual([])
    expect(c.error()).toBe('ECONNRESET')
    const stats = await until('counted', (s) => s.badPayloads === 1)
    expect(stats.closes.bad_payload).toBe(1)
    expect(stats.handlerErrors).toBe(0)
    await groupsWork('utf8')
  })

  it('a handler that throws: what it sent arrives, then the connection closes; later frames are not handled', async () => {
    const c = await member('sync')
    c.s.write(Buffer.concat([encode('Fault', {kind: 1, seq: 1}), encode('Nothing', {})]))
    expect((await c.next()).equals(done(1))).toBe(true)
    await c.closed
    expect(c.unread).toEqual([])
    const stats = await until('left its group', (s) => s.groups === 0 && s.sessions === 0)
    expect(stats.handlerErrorsByName).toEqual({Fault: 1})
    expect(stats.closes.handler_error).toBe(1)
    await groupsWork('sync')
  })

  it('an async handler that rejects: the same, and frames queued behind it are dropped', async () => {
    const c = await member('async')
    c.s.write(Buffer.concat([encode('Fault', {kind: 2, seq: 2}), encode('Nothing', {}), encode('Slow', {ms: 0, seq: 3})]))
    expect((await c.next()).equals(done(2))).toBe(true)
    await c.closed
    expect(c.unread).toEqual([])
    const stats = await until('left its group', (s) => s.groups === 0 && s.sessions === 0)
    expect(stats.handlerErrorsByName).toEqual({Fault: 2})
    expect(stats.closes.handler_error).toBe(2)
    await groupsWork('async')
    // Logged once for the handler, not once per failure.
    expect(f.stderr().match(/Fault failed/g)).toHaveLength(1)
  })

  it('an open listener that throws closes that client only', async () => {
    const control = await client(f.port)
    control.s.write(encode('Fault', {kind: 4, seq: 4}))
    expect((await control.next()).equals(done(4))).toBe(true)
    const victim = await client(f.port)
    await victim.closed
    expect(victim.unread).toEqual([])
    const stats = await until('counted', (s) => s.handlerErrorsByName['on:open'] === 1)
    expect(stats.closes.handler_error).toBe(3)
    control.s.write(encode('Nothing', {}))
    expect((await control.next()).equals(encode('Nothing', {}))).toBe(true)
    control.s.destroy()
    await groupsWork('open')
  })

  it('an initialState() that throws closes that client before any listener or handler sees it', async () => {
    const control = await client(f.port)
    control.s.write(encode('Fault', {kind: 5, seq: 5}))
    expect((await control.next()).equals(done(5))).toBe(true)
    const victim = await client(f.port)
    victim.s.write(encode('Nothing', {}))
    await victim.closed
    expect(victim.unread).toEqual([])
    const stats = await until('counted', (s) => s.handlerErrorsByName['initialState()'] === 1)
    expect(stats.closes.handler_error).toBe(4)
    control.s.destroy()
    await groupsWork('state')
  })

  it('a close listener that throws: the session still leaves its groups and the session table', async () => {
    const [x, y] = [await member('close'), await member('close')]
    x.s.write(encode('Fault', {kind: 3, seq: 6}))
    expect((await x.next()).equals(done(6))).toBe(true)
    x.s.destroy()
    await until('counted', (s) => s.handlerErrorsByName['on:close'] === 1 && s.sessions === 1)
    // y is alone in the group now: its shout reaches a newcomer, and nobody else.
    const z = await member('close')
    y.s.write(encode('Shout', {group: 'close', from: 0, text: 'who is here?'}))
    expect(codecs.Shout!.decode(new Reader(await z.next(), 6))).toMatchObject({text: 'who is here?'})
    y.s.destroy()
    z.s.destroy()
    const stats = await until('every group gone', (s) => s.groups === 0 && s.sessions === 0)
    // Failing on a client that had already gone closes nothing more.
    expect(stats.closes.handler_error).toBe(4)
    expect(stats.handlerErrors).toBe(5)
    expect(stats.handlerErrorsByName).toEqual({Fault: 2, 'on:open': 1, 'initialState()': 1, 'on:close': 1})
    expect(stats.closes.local_close ?? 0).toBe(0)
    await groupsWork('close')
  })

  it('a thrown value that cannot be turned into a string is contained all the same', async () => {
    const c = await member('odd')
    c.s.write(encode('Fault', {kind: 6, seq: 7}))
    await c.closed
    const stats = await until('counted', (s) => s.handlerErrorsByName.Fault === 3 && s.groups === 0)
    expect(stats.closes.handler_error).toBe(5)
    await groupsWork('odd')
  })
})
