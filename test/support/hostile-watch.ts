// What the hostile suite watches while it attacks a server: a well-behaved client's round
// trips, the server's RSS and open fds, and raw connections that record how they ended.
import {readdirSync, readFileSync} from 'node:fs'
import {connect, type Socket} from 'node:net'

import {type ChatCodec, Client, sleep} from './chat.js'

/** Resident set size of a process in bytes (VmRSS). */
export function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m) throw new Error(`no VmRSS for ${pid}`)
  return Number(m[1]) * 1024
}

export const fdsOf = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length

/**
 * A well-behaved client: pings one at a time, all the time, and keeps each round trip's
 * latency; it also samples the server's RSS, so a window sees both.
 */
export class Prober {
  readonly client: Client
  readonly rtts: {at: number; ms: number}[] = []
  readonly rss: {at: number; bytes: number}[] = []
  private stopped = false
  private nonce = 0
  private sampler: NodeJS.Timeout | undefined
  private looping: Promise<void> = Promise.resolve()
  /** Set while quiet() holds the loop between round trips. */
  private gate: {parked: () => void; held: Promise<void>} | undefined
  /** Why the loop stopped early (a round trip that never came back). */
  failed: string | undefined

  constructor(codec: ChatCodec, port: number, private readonly pid: number, from = '127.0.0.2', private readonly giveUpMs = 10_000) {
    this.client = new Client(codec, 1, port, from)
  }

  async start(): Promise<void> {
    const connected = await Promise.race([new Promise((r) => this.client.s.once('connect', () => r(true))), sleep(10_000).then(() => false)])
    if (!connected) throw new Error('the well-behaved client could not connect in 10 s')
    this.sampler = setInterval(() => {
      try {
        this.rss.push({at: Date.now(), bytes: rssOf(this.pid)})
      } catch {
        // the server is gone; the test that stopped it knows
      }
    }, 100)
    this.looping = this.loop()
    await this.more(this.mark(), 3, 5_000)
  }

  private async loop(): Promise<void> {
    while (!this.stopped && !this.client.s.destroyed) {
      if (this.gate) {
        this.gate.parked()
        await this.gate.held
      }
      const n = ++this.nonce
      const t0 = Date.now()
      this.client.send('Ping', {nonce: n})
      const back = await Promise.race([this.client.when((m) => m.type === 'Ping' && m.nonce === n).then(() => true), sleep(this.giveUpMs).then(() => false)])
      if (!back) {
        this.failed = `ping ${n} had no answer in ${this.giveUpMs} ms`
        return
      }
      this.rtts.push({at: Date.now(), ms: Date.now() - t0})
      await sleep(20)
    }
  }

  /**
   * Runs `measure` with no round trip of the prober in flight, so the server's pools hold
   * only their steady state: a reply still being sent holds an I/O context for a moment.
   */
  async quiet<T>(measure: () => Promise<T>): Promise<T> {
    let release!: () => void
    const held = new Promise<void>((r) => (release = r))
    const parked = new Promise<void>((r) => (this.gate = {parked: r, held}))
    try {
      // The loop parks before its next ping, or has ended (stopped, or failed).
      await Promise.race([parked, this.looping])
      await sleep(50) // the last reply's send completes
      return await measure()
    } finally {
      this.gate = undefined
      release()
    }
  }

  /** A point in time to measure from. */
  mark(): {rtt: number; at: number} {
    return {rtt: this.rtts.length, at: Date.now()}
  }

  /** Waits for n round trips after the mark. */
  async more(from: {rtt: number}, n: number, ms: number): Promise<void> {
    const until = Date.now() + ms
    while (this.rtts.length < from.rtt + n && Date.now() < until && !this.failed) await sleep(10)
  }

  /** Round trips since the mark, the slowest (an unanswered one counts as it stands), and peak RSS. */
  since(from: {rtt: number; at: number}) {
    const rtts = this.rtts.slice(from.rtt)
    const pending = this.failed ? this.giveUpMs : 0
    const rss = this.rss.filter((s) => s.at >= from.at).map((s) => s.bytes)
    return {count: rtts.length, maxMs: Math.max(pending, ...rtts.map((r) => r.ms)), peakRss: Math.max(0, ...rss)}
  }

  stop(): void {
    this.stopped = true
    clearInterval(this.sampler)
    this.client.s.destroy()
  }
}

/** A raw connection that records how it ended: the server's FIN, or an error such as a reset. */
export class Raw {
  readonly s: Socket
  ended = false
  error: string | undefined
  closedAt: number | undefined
  readonly connected: Promise<void>
  readonly closed: Promise<void>
  received = 0

  constructor(port: number, from: string, opts: {allowHalfOpen?: boolean; read?: boolean} = {}) {
    this.s = connect({port, host: '127.0.0.1', localAddress: from, allowHalfOpen: opts.allowHalfOpen ?? false})
    this.s.setNoDelay(true)
    // A connection refused at once may close before 'connect' is seen.
    this.connected = new Promise((r) => {
      this.s.once('connect', () => r())
      this.s.once('close', () => r())
    })
    this.closed = new Promise((r) => this.s.once('close', () => {
      this.closedAt = Date.now()
      r()
    }))
    this.s.on('end', () => (this.ended = true))
    this.s.on('error', (e: NodeJS.ErrnoException) => (this.error ??= e.code ?? e.message))
    if (opts.read !== false) this.s.on('data', (d: Buffer) => (this.received += d.length))
  }

  /** Closed by a reset the client saw, with no FIN before it. */
  get wasReset(): boolean {
    return this.error === 'ECONNRESET' && !this.ended
  }

  /** How it ended, for messages. */
  get how(): string {
    if (this.closedAt === undefined) return 'still open'
    return [this.ended ? 'FIN' : '', this.error ?? ''].filter(Boolean).join(' then ') || 'closed'
  }

  /** Resolves true if closed within ms. */
  async closedWithin(ms: number): Promise<boolean> {
    await Promise.race([this.closed, sleep(ms)])
    return this.closedAt !== undefined
  }
}
