// serve(): what a project's main.ts calls. One shard runs its server in this process; more
// make this process a supervisor that forks its own script once per shard, shares the port
// among them (SO_REUSEPORT on Linux; one port per shard on Windows), restarts a shard that
// dies, stops every shard over IPC on SIGTERM/SIGINT, and adds their stats up.
import {type ChildProcess, fork} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {availableParallelism} from 'node:os'

import type {NativeOptions} from './bridge.js'
import type {Deployment} from './protocol.js'
import type {ServerOptions, ServerStats} from './server.js'

/** What serve() needs of a server: a generated project's Server is one. */
export interface ShardServer {
  start(): Promise<{port: number; backend: string}>
  stop(): Promise<void>
  stats(): ServerStats
  nativeOptions(): NativeOptions
}

/** The shard a server is made for. */
export interface Shard {
  /** 0 to count - 1; 0 without shards. */
  index: number
  count: number
  /**
   * The port (and port sharing) this shard must listen with: give them to the server after
   * your own options, so they win. Empty without shards.
   */
  options: ServerOptions
}

export interface ServeOptions {
  /** The project's name: the listening line starts with it. */
  name: string
  /** The spec's deployment (`deployment` in src/generated/spec.ts). Without it: one shard. */
  deployment?: Deployment
  /** Makes this process's server, not yet started: serve() starts and stops it. */
  server: (shard: Shard) => ShardServer
}

/** Where the server listens, once every shard does. */
export interface Serving {
  /** The port clients use (on Windows with shards: shard 0's). */
  port: number
  backend: string
  shards: number
  /** Each shard's port, by index: all the same on Linux. */
  ports: number[]
}

/** How long the supervisor waits for a shard's stats. */
const STATS_WAIT_MS = 1000
const BACKOFF_FIRST_MS = 100
const BACKOFF_MAX_MS = 5000
/** A shard up this long before it died is restarted after the first backoff again. */
const BACKOFF_RESET_MS = 10_000

/** Between the supervisor and a shard, over the fork's IPC channel. */
type ToShard = {t: 'stop'} | {t: 'stats'; id: number}
type FromShard =
  | {t: 'listening'; port: number; backend: string; requested: number}
  | {t: 'stats'; id: number; stats: ServerStats | undefined}
  /** It cannot start: the supervisor says why, once, in its own line. */
  | {t: 'failed'; message: string}

/** The shard count: IOCPGEN_SHARDS (a number or auto) over the spec's; 0 and auto: one per core. */
export function shardCount(deployment: Deployment | undefined, env: NodeJS.ProcessEnv = process.env): number {
  let n = deployment?.shards ?? 1
  const text = env.IOCPGEN_SHARDS
  if (text !== undefined && text !== '') {
    const v = text === 'auto' ? 0 : Number(text)
    if (!Number.isInteger(v) || v < 0 || (v === 0 && text !== 'auto')) throw new Error(`IOCPGEN_SHARDS=${text}: expected a whole number from 1, or auto`)
    n = v
  }
  return n === 0 ? availableParallelism() : n
}

/**
 * Runs the server of `options.server` as the deployment says: in this process for one shard,
 * else as a supervisor of one forked process per shard (this same script, run again with
 * IOCPGEN_SHARD_INDEX and IOCPGEN_SHARD_COUNT set). Resolves once every shard listens, after
 * printing one line `<name> listening on port <P> (<backend>[, N shards])`. From then on
 * SIGTERM and SIGINT stop the server gracefully and exit; STATS_FILE (every STATS_EVERY_MS,
 * default 1000) and SIGUSR1 (POSIX) give its stats as one JSON line, summed over shards.
 */
export async function serve(options: ServeOptions): Promise<Serving> {
  try {
    if (process.env.IOCPGEN_SHARD_INDEX !== undefined && process.send) return await runShard(options)
    const n = shardCount(options.deployment)
    return await (n === 1 ? runAlone(options) : new Supervisor(options, n).run())
  } catch (error) {
    // What an operator can fix (a port in use, NATS unreachable, a bad IOCPGEN_* value) reads
    // as one line, not a stack trace. A shard tells its supervisor, which says it (and starts
    // the shard again if it had been running).
    const message = error instanceof Error ? error.message : String(error)
    if (process.env.IOCPGEN_SHARD_INDEX !== undefined && process.connected) {
      process.send!({t: 'failed', message} satisfies FromShard, () => process.exit(1))
      return await new Promise<never>(() => {})
    }
    console.error(`${options.name}: cannot start: ${message}`)
    process.exit(1)
  }
}

/** Operators read stats as one JSON line: on SIGUSR1 (POSIX), or every STATS_EVERY_MS ms in STATS_FILE. */
function statsHooks(collect: () => Promise<object>): void {
  let busy = false
  const line = async () => JSON.stringify({at: Date.now(), ...(await collect())})
  if (process.platform !== 'win32') {
    process.on('SIGUSR1', () => {
      line().then(
        (text) => console.log(`stats ${text}`),
        (error: unknown) => console.error('stats:', error),
      )
    })
  }
  const file = process.env.STATS_FILE
  if (!file) return
  const every = Number(process.env.STATS_EVERY_MS ?? 1000)
  setInterval(() => {
    if (busy) return
    busy = true
    // A failed write (a full disk, say) is tried again next time.
    void line()
      .then((text) => writeFileSync(file, text))
      .catch(() => {})
      .finally(() => (busy = false))
  }, every).unref()
}

/** One shard: the server in this process, as a project without shards always ran. */
async function runAlone(options: ServeOptions): Promise<Serving> {
  const server = options.server({index: 0, count: 1, options: {}})
  const {port, backend} = await server.start()
  console.log(`${options.name} listening on port ${port} (${backend})`)
  statsHooks(async () => server.stats())
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      server.stop().then(
        () => process.exit(0),
        (error: unknown) => {
          console.error(error)
          process.exit(1)
        },
      )
    })
  }
  return {port, backend, shards: 1, ports: [port]}
}

/** A forked shard: starts its server, answers the supervisor, stops when told or orphaned. */
async function runShard(options: ServeOptions): Promise<Serving> {
  const index = Number(process.env.IOCPGEN_SHARD_INDEX)
  const count = Number(process.env.IOCPGEN_SHARD_COUNT)
  const given = JSON.parse(process.env.IOCPGEN_SHARD_OPTIONS ?? '{}') as ServerOptions
  const tell = (m: FromShard) => {
    if (process.connected) process.send!(m)
  }
  let server: ShardServer | undefined
  let stopping = false
  const stop = () => {
    if (stopping) return
    stopping = true
    // Told while starting: stopped once started (below).
    if (!server) return
    server.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`shard ${index}: stop failed:`, error)
        process.exit(1)
      },
    )
  }
  process.on('message', (m: ToShard) => {
    if (m.t === 'stop') stop()
    else if (m.t === 'stats') tell({t: 'stats', id: m.id, stats: server && !stopping ? server.stats() : undefined})
  })
  // The supervisor is gone (killed, say): nobody would stop this shard, so it stops now.
  process.on('disconnect', stop)
  // Ctrl+C reaches the whole process group; the supervisor decides, and tells each shard.
  process.on('SIGINT', () => {})
  process.on('SIGTERM', stop)

  const made = options.server({index, count, options: given})
  const {port, backend} = await made.start()
  server = made
  if (given.port !== undefined && given.port !== 0 && port !== given.port) {
    throw new Error(`shard ${index} listens on port ${port}, not ${given.port}: give shard.options to the server last, so they win`)
  }
  tell({t: 'listening', port, backend, requested: made.nativeOptions().port ?? 0})
  if (stopping) {
    stopping = false
    stop()
  }
  return {port, backend, shards: count, ports: [port]}
}

interface ShardState {
  index: number
  options: ServerOptions
  child?: ChildProcess
  pid?: number
  port?: number
  /** When it last said it listens; undefined while starting. */
  upSince?: number
  restarts: number
  backoffMs: number
  timer?: NodeJS.Timeout
  /** Resolves when the current process exits, with its exit code (null: by a signal). */
  exited?: Promise<number | null>
  /** Why the current process could not start, as it said. */
  failure?: string
}

/** The process the user started, when there are shards: it serves nothing itself. */
class Supervisor {
  private readonly shards: ShardState[]
  private readonly windows = process.platform === 'win32'
  private stopping = false
  private restarts = 0
  private backend = ''
  /** The port shard 0 was asked to listen on (0: any), before it bound one. */
  private requestedPort = 0
  private nextAsk = 0
  private readonly asks = new Map<number, (stats: ServerStats | undefined) => void>()
  /** Initial starts wait on these: resolved when the shard listens, rejected if it exits first. */
  private readonly starting = new Map<number, {resolve: (port: number) => void; reject: (error: Error) => void}>()

  constructor(
    private readonly options: ServeOptions,
    private readonly count: number,
  ) {
    this.shards = Array.from({length: count}, (_, index) => ({index, options: {}, restarts: 0, backoffMs: BACKOFF_FIRST_MS}))
  }

  async run(): Promise<Serving> {
    const {name, deployment} = this.options
    const n = this.count
    if (!deployment?.cluster.url && !process.env.IOCPGEN_NATS_URL) {
      console.warn(`${name}: ${n} shards and no cluster: each shard serves its own clients alone (groups and sendTo stay within a shard); set IOCPGEN_NATS_URL to join them`)
    }
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => this.stop())
    try {
      // Shard 0 first: with port 0 its port is the one every other shard takes.
      const first = this.shards[0]!
      first.options = this.windows ? {} : {reusePort: true}
      const port = await this.startOne(first)
      const requested = this.requestedPort
      await Promise.all(
        this.shards.slice(1).map((s) => {
          s.options = this.windows ? {port: requested === 0 ? 0 : port + s.index} : {port, reusePort: true}
          return this.startOne(s)
        }),
      )
    } catch (error) {
      // Stopped by a signal while starting: stop() exits.
      if (this.stopping) return new Promise(() => {})
      console.error(`${name}: cannot start: ${error instanceof Error ? error.message : String(error)}`)
      await this.stopAll()
      process.exit(1)
    }
    const port = this.shards[0]!.port!
    const ports = this.shards.map((s) => s.port!)
    const where = this.windows ? `, ${n} shards, one port per shard behind a balancer: ${ports.join(', ')}` : `, ${n} shards`
    console.log(`${name}: shards ${this.shards.map((s) => `${s.index} pid ${s.pid}`).join(', ')}`)
    console.log(`${name} listening on port ${port} (${this.backend}${where})`)
    statsHooks(() => this.stats())
    return {port, backend: this.backend, shards: n, ports}
  }

  private startOne(s: ShardState): Promise<number> {
    return new Promise((resolve, reject) => {
      this.starting.set(s.index, {resolve, reject})
      this.launch(s)
    })
  }

  /** Forks shard s: this same script, told which shard it is and how to listen. */
  private launch(s: ShardState): void {
    s.timer = undefined
    s.upSince = undefined
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      IOCPGEN_SHARD_INDEX: String(s.index),
      IOCPGEN_SHARD_COUNT: String(this.count),
      IOCPGEN_SHARD_OPTIONS: JSON.stringify(s.options),
    }
    if (s.options.reusePort) env.IOCPGEN_REUSE_PORT = '1'
    const child = fork(process.argv[1]!, process.argv.slice(2), {env})
    s.child = child
    s.pid = child.pid
    s.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => {
        resolve(code)
        this.onExit(s, child, code, signal)
      })
    })
    child.on('error', (error) => console.error(`${this.options.name}: shard ${s.index}: ${error.message}`))
    child.on('message', (m: FromShard) => this.onMessage(s, m))
  }

  private onMessage(s: ShardState, m: FromShard): void {
    if (m.t === 'listening') {
      s.upSince = Date.now()
      // A restart takes the same port: with port 0 the others share it (Linux), or a balancer knows it (Windows).
      if (s.port === undefined && s.index === 0) this.requestedPort = m.requested
      s.port = m.port
      s.options = {...s.options, port: m.port}
      this.backend ||= m.backend
      const waiter = this.starting.get(s.index)
      this.starting.delete(s.index)
      waiter?.resolve(m.port)
      // Told to stop before it could hear it: tell it again.
      if (this.stopping && s.child?.connected) s.child.send({t: 'stop'} satisfies ToShard)
    } else if (m.t === 'stats') {
      this.asks.get(m.id)?.(m.stats)
      this.asks.delete(m.id)
    } else if (m.t === 'failed') {
      s.failure = m.message
    }
  }

  private onExit(s: ShardState, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (s.child !== child) return
    s.child = undefined
    const how = signal ? `signal ${signal}` : `code ${code}`
    const waiter = this.starting.get(s.index)
    const failure = s.failure
    s.failure = undefined
    if (waiter) {
      // It never listened: at launch that fails the whole start.
      this.starting.delete(s.index)
      waiter.reject(new Error(failure ? `shard ${s.index}: ${failure}` : `shard ${s.index} (pid ${s.pid}) exited with ${how} before it listened`))
      return
    }
    if (failure) console.error(`${this.options.name}: shard ${s.index} cannot start: ${failure}`)
    if (this.stopping) return
    // It died on its own: restart it, backing off while it keeps dying young.
    if (s.upSince !== undefined && Date.now() - s.upSince >= BACKOFF_RESET_MS) s.backoffMs = BACKOFF_FIRST_MS
    const delay = s.backoffMs
    s.backoffMs = Math.min(BACKOFF_MAX_MS, s.backoffMs * 2)
    s.restarts++
    this.restarts++
    console.error(`${this.options.name}: shard ${s.index} (pid ${s.pid}) exited with ${how}; restarting it in ${delay} ms (restart ${s.restarts} of this shard)`)
    s.timer = setTimeout(() => this.launch(s), delay)
  }

  /** Stops every shard over IPC and waits for each to exit. True when each exited with 0. */
  private async stopAll(): Promise<boolean> {
    this.stopping = true
    const waits: Promise<number | null>[] = []
    for (const s of this.shards) {
      if (s.timer) clearTimeout(s.timer)
      s.timer = undefined
      const child = s.child
      if (!child || !s.exited) continue
      if (child.connected) child.send({t: 'stop'} satisfies ToShard)
      else child.kill('SIGTERM')
      waits.push(s.exited)
    }
    const codes = await Promise.all(waits)
    return codes.every((c) => c === 0)
  }

  private stop(): void {
    if (this.stopping) {
      // A second signal: do not wait for the drain.
      for (const s of this.shards) s.child?.kill('SIGKILL')
      process.exit(1)
    }
    void this.stopAll().then((ok) => process.exit(ok ? 0 : 1))
  }

  /** One shard's stats, or undefined if it does not answer within STATS_WAIT_MS. */
  private ask(s: ShardState): Promise<ServerStats | undefined> {
    const child = s.child
    if (!child?.connected || s.upSince === undefined) return Promise.resolve(undefined)
    const id = ++this.nextAsk
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.asks.delete(id)
        resolve(undefined)
      }, STATS_WAIT_MS)
      this.asks.set(id, (stats) => {
        clearTimeout(timer)
        resolve(stats)
      })
      try {
        child.send({t: 'stats', id} satisfies ToShard)
      } catch {
        this.asks.delete(id)
        clearTimeout(timer)
        resolve(undefined)
      }
    })
  }

  /** Every answering shard's stats added up, with each shard's own in brief. */
  async stats(): Promise<object> {
    const answers = await Promise.all(this.shards.map(async (s) => ({s, stats: await this.ask(s)})))
    const got = answers.filter((a): a is {s: ShardState; stats: ServerStats} => a.stats !== undefined)
    const total = got.reduce<unknown>((sum, a) => addUp(sum, a.stats), undefined)
    return {
      ...(total as object),
      shards: this.count,
      shardsReporting: got.length,
      shardRestarts: this.restarts,
      perShard: got.map(({s, stats}) => ({index: s.index, pid: s.pid, port: s.port, restarts: s.restarts, connections: stats.connections, sessions: stats.sessions})),
    }
  }
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Numbers added, objects added key by key; anything else (text, flags) is the first one's. */
export function addUp(a: unknown, b: unknown): unknown {
  if (a === undefined) return b
  if (b === undefined) return a
  if (typeof a === 'number' && typeof b === 'number') return a + b
  if (isRecord(a) && isRecord(b)) {
    const out: Record<string, unknown> = {...a}
    for (const [k, v] of Object.entries(b)) out[k] = addUp(a[k], v)
    return out
  }
  return a
}
