// Shared by the suites that run the chat example: copy and build it, start its server, read
// its stats file, and talk to it with a small framed client.
import {type ChildProcess, spawn} from 'node:child_process'
import {cpSync} from 'node:fs'
import {createRequire} from 'node:module'
import {connect, type Socket} from 'node:net'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'

import {expect} from 'vitest'

import type {ServerStats} from '../../runtime/src/server.js'
import {compileProject, projectDir, requireRuntimeBuilt, root} from './project.js'
import {readIfExists} from './windows.js'

export {root}

/** A line of the chat server's stats file: the runtime's stats and when they were taken. */
export type Stats = ServerStats & {at: number}

export interface Running {
  dir: string
  port: number
  child: ChildProcess
  output: () => string
  /** Stats written after this call. */
  stats: () => Promise<Stats>
}

type AnyCodec = {id: number; encode(w: unknown, m: unknown): void; decode(r: unknown): unknown; minSize: number; maxSize: number}
export interface WireWriter {
  beginFrame(t: number): number
  endFrame(s: number, max: number): void
  view(): Buffer
}

/** The generated codec of a built copy, loaded from its dist/. */
export interface ChatCodec {
  codecs: Record<string, AnyCodec>
  byId: Map<number, string>
  Writer: new () => WireWriter
  Reader: new (b: Buffer, s?: number, e?: number) => {done(): void}
  DecodeError: new (m: string) => Error
  MAX_FRAME: number
}

/**
 * A copy of examples/chat, compiled, under .cache/projects. `edit` runs on the copy before
 * it is compiled (to change its spec and regenerate, say).
 */
export async function prepareCopy(edit?: (dir: string) => void): Promise<string> {
  const dir = projectDir('chat')
  cpSync(join(root, 'examples', 'chat'), dir, {recursive: true, filter: (src) => !/node_modules|[/\\](build|dist)$/.test(src)})
  edit?.(dir)
  await compileProject(dir)
  return dir
}

/** The generated codec of a built copy, with Reader and Writer of the runtime it resolves. */
export async function loadCodec(dir: string): Promise<ChatCodec> {
  const protocol = await import(pathToFileURL(join(dir, 'dist/src/generated/protocol.js')).href)
  const runtime = await import(pathToFileURL(createRequire(join(dir, 'package.json')).resolve('@iocpgen/runtime')).href)
  const codecs = protocol.codecs as Record<string, AnyCodec>
  return {
    codecs,
    byId: new Map(Object.entries(codecs).map(([name, c]) => [c.id, name])),
    Writer: runtime.Writer,
    Reader: runtime.Reader,
    DecodeError: runtime.DecodeError,
    MAX_FRAME: protocol.MAX_FRAME,
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export async function waitFor<T>(what: string, get: () => T | undefined, ms: number): Promise<T> {
  const until = Date.now() + ms
  for (;;) {
    const v = get()
    if (v !== undefined) return v
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await sleep(25)
  }
}

/** Waits for a server started with `serverEnv` to listen, and gives a way to read its stats. */
export function running(dir: string, child: ChildProcess, output: () => string, statsFile: string, startMs: number): Promise<Running> {
  const stats = async () => {
    const asked = Date.now()
    return waitFor('stats', () => {
      try {
        const s = JSON.parse(readIfExists(statsFile) || 'null') as Stats | null
        return s && s.at > asked ? s : undefined
      } catch {
        return undefined // caught mid-write
      }
    }, 15_000)
  }
  return waitFor('the server to listen', () => {
    const m = /listening on port (\d+)/.exec(output())
    if (child.exitCode !== null) throw new Error(`chat server exited: ${output()}`)
    return m ? {dir, port: Number(m[1]), child, output, stats} : undefined
  }, startMs)
}

let started = 0
/** Environment for a server on a free loopback port writing its stats every 50 ms; `tag` names the stats file. */
export const serverEnv = (dir: string, tag: string, env: Record<string, string>) => ({PORT: '0', HOST: '127.0.0.1', STATS_FILE: join(dir, `stats-${tag}.json`), STATS_EVERY_MS: '50', ...env})

/** Runs the built copy's server on this machine's Node (Linux). */
export function startLinux(dir: string, env: Record<string, string> = {}): Promise<Running> {
  requireRuntimeBuilt('linux')
  let out = ''
  const e = serverEnv(dir, `${process.pid}-${++started}`, env)
  const child = spawn(process.execPath, ['dist/src/main.js'], {cwd: dir, env: {...process.env, ...e}, stdio: ['ignore', 'pipe', 'pipe']})
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  return running(dir, child, () => out, e.STATS_FILE, 30_000)
}

export interface Msg {
  type: string
  [k: string]: unknown
}

/** A framed chat client: decodes what arrives, and resolves waits on matching messages. */
export class Client {
  readonly s: Socket
  private buf = Buffer.alloc(0)
  readonly got: Msg[] = []
  private waiters: {test: (m: Msg) => boolean; resolve: () => void}[] = []
  readonly closed: Promise<void>
  /** The connection ended with an error (a reset) rather than the server's FIN. */
  reset = false
  /** The error that ended it, if any (ECONNRESET for a reset). */
  error: NodeJS.ErrnoException | undefined
  /** The server's FIN arrived (a graceful close). */
  ended = false

  constructor(readonly codec: ChatCodec, readonly userId: number, port: number, from = '127.0.0.1', host = '127.0.0.1') {
    this.s = connect({port, host, localAddress: from})
    this.s.setNoDelay(true)
    this.s.on('error', (e) => {
      this.reset = true
      this.error ??= e
    })
    this.s.on('end', () => (this.ended = true))
    this.closed = new Promise((r) => this.s.on('close', () => r()))
    this.s.on('data', (d) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d
      let off = 0
      const {byId, codecs, Reader} = this.codec
      while (this.buf.length - off >= 4 && this.buf.length - off >= 4 + this.buf.readUInt32LE(off)) {
        const len = this.buf.readUInt32LE(off)
        const type = byId.get(this.buf.readUInt16LE(off + 4))!
        const m = {type, ...(codecs[type]!.decode(new Reader(this.buf, off + 6, off + 4 + len)) as object)}
        off += 4 + len
        this.got.push(m)
        this.waiters = this.waiters.filter((w) => (w.test(m) ? (w.resolve(), false) : true))
      }
      this.buf = this.buf.subarray(off)
    })
  }

  /** The encoded frame of a message, as the generated codec writes it. */
  frame(type: string, message: object): Buffer {
    const {codecs, Writer} = this.codec
    const w = new Writer()
    const f = w.beginFrame(codecs[type]!.id)
    codecs[type]!.encode(w, message)
    w.endFrame(f, 1 << 30)
    return Buffer.from(w.view())
  }

  send(type: string, message: object): void {
    this.s.write(this.frame(type, message))
  }

  /** Resolves when a message matching `test` has arrived (now or later). */
  when(test: (m: Msg) => boolean): Promise<void> {
    if (this.got.some(test)) return Promise.resolve()
    return new Promise((resolve) => this.waiters.push({test, resolve}))
  }

  count(test: (m: Msg) => boolean): number {
    return this.got.filter(test).length
  }
}

const acked = (seq: number) => (m: Msg) => m.type === 'Ack' && m.seq === seq

/**
 * The exactly-once exchange: `clients` (user ids 1..N, each in group g<id % groups>) each say
 * `k` group messages (seq 100 + i) and send `k` private messages (seq 200 + i) to the next user.
 * Every client must get each other member's group messages and the previous user's private
 * ones exactly once, in order, and an ok acknowledgement for each of its own.
 */
export async function exchangeExactlyOnce(clients: Client[], groups: number, k: number): Promise<void> {
  const n = clients.length
  for (let i = 0; i < k; i++) {
    for (const c of clients) {
      c.send('GroupSay', {seq: 100 + i, group: `g${c.userId % groups}`, text: `g ${c.userId} ${i}`})
      c.send('PrivateSend', {seq: 200 + i, to: (c.userId % n) + 1, text: `p ${c.userId} ${i}`})
    }
  }
  await Promise.all(clients.map((c) => c.when(acked(200 + k - 1))))
  const perGroup = n / groups
  // An ack reaches its sender, not the receivers: wait (bounded) for what each client is
  // owed on its own connection, group and private, before checking it.
  await Promise.all(clients.map(async (c) => {
    const owed = () => c.count((m) => m.type === 'GroupDeliver') < (perGroup - 1) * k || c.count((m) => m.type === 'PrivateDeliver') < k
    for (let i = 0; i < 500 && owed(); i++) await sleep(20)
  }))
  const seqs = (from: number) => Array.from({length: k}, (_, i) => from + i)
  for (const c of clients) {
    // Group: from each other member of the group, seq 100.. once each, in order.
    const bySender = new Map<number, number[]>()
    for (const m of c.got) if (m.type === 'GroupDeliver') bySender.set(m.from as number, [...(bySender.get(m.from as number) ?? []), m.seq as number])
    expect(bySender.size, `user ${c.userId} group senders`).toBe(perGroup - 1)
    for (const [from, got] of bySender) {
      expect(from % groups).toBe(c.userId % groups)
      expect(got, `user ${c.userId} from ${from}`).toEqual(seqs(100))
    }
    // Private: from the previous user, seq 200.. once each, in order.
    const priv = c.got.filter((m) => m.type === 'PrivateDeliver')
    expect(priv.map((m) => m.from)).toEqual(Array(k).fill(((c.userId - 2 + n) % n) + 1))
    expect(priv.map((m) => m.seq)).toEqual(seqs(200))
    // Every message was acknowledged ok.
    for (let i = 0; i < k; i++) {
      expect(c.got.filter(acked(100 + i)).map((m) => m.status)).toEqual([0])
      expect(c.got.filter(acked(200 + i)).map((m) => m.status)).toEqual([0])
    }
  }
}
