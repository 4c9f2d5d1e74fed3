// The server: starts the native core, turns its event batches into handler calls, and
// batches every send of a tick into one native call.
import {EventEmitter} from 'node:events'

import {type Addon, loadAddon, type NativeServer, type NativeStats} from './addon.js'
import {ClusterBus, type ClusterHost, type ClusterStats, type LostSession, type Whereabouts} from './cluster.js'
import {EVENT_GEN, EVENT_INDEX, EVENT_KIND, EVENT_LEN, EVENT_REASON, EVENT_SIZE, EVENT_TYPE, EventKind, BROADCAST_MARK, HANDLE_GEN, HANDLE_INDEX, HANDLE_SIZE, type NativeOptions, SEND_GEN, SEND_INDEX, SEND_LEN, SEND_SIZE} from './bridge.js'
import {type ClusterSettings, type Codec, type MessageOf, type Protocol, type ProtocolTypes, RUNTIME_API} from './protocol.js'
import {devMode, expire} from './lifetime.js'
import {addLeaseStore} from './locks.js'
import {type Connection, Session, type SessionHost, sessionId, SLOT_BITS} from './session.js'
import {Slots} from './slots.js'
import {DecodeError, Reader, Writer} from './wire.js'

/**
 * Overrides of the spec's settings, for one run. Each of ENV_OPTIONS can also come from the
 * environment; options given to the server win over the environment, which wins over the spec.
 */
export interface ServerOptions extends Omit<NativeOptions, 'messages'> {
  /** Path of a native addon to load instead of the one for this platform (also IOCPGEN_ADDON). */
  addon?: string
  /** The cluster: overrides of the spec's `cluster:` section. With a url (or IOCPGEN_NATS_URL) the server joins it. */
  cluster?: Partial<ClusterSettings>
}

/** Cluster settings for a spec generated before `cluster:` existed. */
const CLUSTER_DEFAULTS: ClusterSettings = {subject: 'iocpgen', heartbeatMs: 1000, leaseMs: 5000, maxPendingBytes: 8 * 1024 * 1024}

/** Environment variables an operator can set instead of regenerating with a changed spec. */
export const ENV_OPTIONS = {
  IOCPGEN_PORT: 'port',
  IOCPGEN_WORKERS: 'workers',
  IOCPGEN_JS_THREAD_IO: 'jsThreadIo',
  IOCPGEN_MAX_CONNECTIONS: 'maxConnections',
  IOCPGEN_LOGIN_QUEUE: 'loginQueue',
  IOCPGEN_IDLE_TIMEOUT_MS: 'idleTimeoutMs',
  IOCPGEN_DRAIN_TIMEOUT_MS: 'drainTimeoutMs',
  IOCPGEN_FRAME_TIMEOUT_MS: 'frameTimeoutMs',
  IOCPGEN_PER_IP_MAX_CONNECTIONS: 'perIpMaxConnections',
  IOCPGEN_PER_IP_CONNECTS_PER_SECOND: 'perIpConnectsPerSecond',
  IOCPGEN_PER_IP_BAN_MS: 'perIpBanMs',
  IOCPGEN_REUSE_PORT: 'reusePort',
} as const satisfies Record<string, keyof ServerOptions>

const BOOLEAN_OPTIONS: ReadonlySet<string> = new Set(['jsThreadIo', 'reusePort'])

/** The options ENV_OPTIONS sets in env: whole numbers, or 0/1 for the switches; anything else is an error. */
export function optionsFromEnv(env: NodeJS.ProcessEnv = process.env): ServerOptions {
  const out: Record<string, number | boolean> = {}
  for (const [name, key] of Object.entries(ENV_OPTIONS)) {
    const text = env[name]
    if (text === undefined || text === '') continue
    if (BOOLEAN_OPTIONS.has(key)) {
      if (text !== '0' && text !== '1') throw new Error(`${name}=${text}: expected 0 or 1`)
      out[key] = text === '1'
      continue
    }
    const n = Number(text)
    if (!Number.isInteger(n) || n < 0) throw new Error(`${name}=${text}: expected a whole number`)
    out[key] = n
  }
  return out
}

export type {NativeStats} from './addon.js'
export type {PoolStats} from './bridge.js'

export interface ServerStats extends NativeStats {
  sessions: number
  groups: number
  /** Frames whose payload did not decode; each closed its connection. */
  badPayloads: number
  /** Calls into user code that threw or rejected: handlers, listeners, initialState(). */
  handlerErrors: number
  /** The same by name: the message's name for a handler, else 'on:open', 'on:close', 'on:error', 'initialState()'. */
  handlerErrorsByName: Record<string, number>
  /** Sends refused because the session was gone or its queue was full. */
  sendsRefused: number
  /** Names bound on this shard (bind()). */
  names: number
  /** The cluster bus, when the server is part of a cluster. */
  cluster?: ClusterStats
}

export interface ServerEvents<T extends ProtocolTypes, S> {
  /** A client connected. While this is listened to, sessions are made at connect, not on first use. */
  open: [Session<T, S>]
  /** A client left. While this is listened to, a client that never had a session gets one for this. */
  close: [Session<T, S>, string]
  /** User code failed: `source` names it as handlerErrorsByName does. The session, if any, is being closed. */
  error: [Error, Session<T, S> | undefined, string]
  /**
   * Cluster: a shard died, and this shard reaped it. Its named sessions are gone, with the
   * groups they were in (say so to those groups: broadcast reaches every shard). Emitted on
   * one surviving shard per dead shard, within the lease of the spec's `cluster:` section.
   */
  lost: [LostSession[]]
}

/** Handles one message from a client. Frames of one session are handled in order. */
export type Handler<T extends ProtocolTypes, S, K extends T['inbound']> = (session: Session<T, S>, message: MessageOf<T, K>, server: Server<T, S>) => void | Promise<void>

/** One handler for every message a client may send. */
export type Handlers<T extends ProtocolTypes, S> = {[K in T['inbound']]: Handler<T, S, K>}

/** What a generated project gives its server: the protocol, the handlers, and the per-client state. */
export interface ServerDefinition<T extends ProtocolTypes, S> {
  protocol: Protocol<T>
  handlers: Handlers<T, S>
  /** Runs when a client's session is made: at its first message or first lookup, not at connect (see Server). */
  initialState: () => S
}

/** A thrown non-Error as text; its own toString may throw too. */
function describe(thrown: unknown): string {
  try {
    return String(thrown)
  } catch {
    return 'a value that cannot be converted to a string'
  }
}

/** Why the runtime itself closed a connection (the core counts them; bad_payload is a reset). */
type RuntimeClose = 'bad_payload' | 'handler_error'

// sendFrame writes send records field by field, in this order.
if (SEND_INDEX !== 0 || SEND_GEN !== 4 || SEND_LEN !== 8 || SEND_SIZE !== 12 || HANDLE_INDEX !== 0 || HANDLE_GEN !== 4 || HANDLE_SIZE !== 8) {
  throw new Error('@iocpgen/runtime: send records do not match bridge.json')
}

const OPEN = EventKind.open
const FRAME = EventKind.frame
const CLOSE = EventKind.close

type AnyHandler = (s: never, m: unknown, server: never) => unknown

/** What an inbound type id needs: found once per type, not per frame. */
interface Inbound {
  name: string
  decode: (r: Reader) => unknown
  handler: AnyHandler | undefined
}

/**
 * A server speaking protocol T, keeping state S per client. A client's Session is made when
 * first needed (its first frame, session(id), sendTo, or an 'open'/'close' listener), so an
 * idle client costs no JS object; stats().sessions counts every connected client.
 */
export class Server<T extends ProtocolTypes = ProtocolTypes, S = unknown> extends EventEmitter<ServerEvents<T, S>> implements SessionHost {
  private native: NativeServer | undefined
  /** Sessions made so far, by slot. A client gets one on first use (see materialize). */
  private sessions: (Session<T, S> | undefined)[] = []
  /** Every connected client, with or without a Session. */
  private readonly slots = new Slots()
  /** Development mode (devMode()): handlers get messages whose bytes expire loudly. */
  private readonly dev = devMode()
  private readonly groupMembers = new Map<string, Set<Session<T, S>>>()
  private readonly codecs: Readonly<Record<string, Codec<unknown>>>
  private readonly maxFrame: number
  private readonly initialState: () => S
  private readonly out = new Writer(64 * 1024)
  private readonly reader = new Reader(Buffer.alloc(0))
  private readonly inbound: (Inbound | undefined)[] = []
  private flushQueued = false
  private closeReasons: string[] = []
  private counters = {badPayloads: 0, handlerErrors: 0, sendsRefused: 0}
  private readonly errorsByName: Record<string, number> = {}
  /** Sources whose first error was logged; later ones are only counted. */
  private readonly logged = new Set<string>()
  /** Sessions the runtime closed, and why: their close event reports it, queued frames are dropped. */
  private readonly closedFor = new WeakMap<Session<T, S>, RuntimeClose>()
  private sessionCount = 0
  /** Names bound here, and each named session's names with their meta. */
  private readonly names = new Map<string, Session<T, S>>()
  private readonly namesOf = new WeakMap<Session<T, S>, Map<string, string>>()
  /** Owner records to refresh on the bus: named sessions whose groups changed this tick. */
  private readonly ownersDirty = new Set<Session<T, S>>()
  private bus: ClusterBus | undefined
  /** Removes the bus from where cluster-scope locks are leased. */
  private unleased: (() => void) | undefined
  /** Encodes frames that leave through the bus only. */
  private readonly scratch = new Writer(1024)

  constructor(
    private readonly definition: ServerDefinition<T, S>,
    private readonly options: ServerOptions = {},
  ) {
    super()
    const {protocol, handlers} = definition
    if (protocol.api !== RUNTIME_API) {
      throw new Error(`this project's generated code was written for @iocpgen/runtime API ${protocol.api}, and this runtime offers API ${RUNTIME_API}: run "npx iocpgen generate" with the iocpgen version that matches @iocpgen/runtime`)
    }
    this.codecs = protocol.codecs as Readonly<Record<string, Codec<unknown>>>
    this.maxFrame = protocol.settings.maxFrame
    this.initialState = definition.initialState
    for (const [name, codec] of Object.entries(this.codecs)) {
      const handler = (handlers as unknown as Record<string, AnyHandler | undefined>)[name]
      this.inbound[codec.id] = {name, decode: codec.decode, handler}
    }
  }

  /** What the native core is given: the spec's settings and message table, then the overrides. */
  nativeOptions(): NativeOptions {
    const spec = this.definition.protocol.settings
    const {addon: _, cluster: __, ...overrides} = {...optionsFromEnv(), ...this.options}
    // The JS thread drives its own I/O wherever the core can (not IOCP: see bridge.json).
    const native: NativeOptions = {jsThreadIo: process.platform !== 'win32', ...spec, ...overrides, messages: Object.values(this.codecs).map((c) => [c.id, c.minSize, c.maxSize] as const)}
    // More connections than the spec sized the I/O pool for: derive the pool again.
    if ((overrides.maxConnections ?? 0) > (spec.maxConnections ?? 0) && overrides.ioContexts === undefined) native.ioContexts = 0
    return native
  }

  /**
   * Starts listening. Resolves with the bound port and the backend in use. Options given
   * here win over ENV_OPTIONS from the environment, which win over the spec.
   */
  async start(): Promise<{port: number; backend: string}> {
    if (this.native) throw new Error('server already started')
    const addon: Addon = loadAddon(this.options.addon)
    this.closeReasons = addon.closeReasons
    const cluster = this.clusterSettings()
    if (cluster) {
      // On the bus before the first client: a client's first bind or broadcast needs it.
      const bus = new ClusterBus(cluster, this.clusterHost(), Number(process.env.IOCPGEN_SHARD_INDEX ?? 0))
      await bus.start()
      this.bus = bus
      this.unleased = addLeaseStore(bus)
    }
    const options = this.nativeOptions()
    this.native = new addon.NativeServer(options, (batch) => this.onEvents(batch))
    try {
      return this.native.start()
    } catch (error) {
      this.native = undefined
      this.unleased?.()
      await this.bus?.stop()
      throw listenError(error, options.port ?? 0, options.host ?? '0.0.0.0')
    }
  }

  /** The cluster this server joins, if any: a url from the options, IOCPGEN_NATS_URL or the spec. */
  clusterSettings(): (ClusterSettings & {url: string}) | undefined {
    const spec = this.definition.protocol.deployment?.cluster ?? CLUSTER_DEFAULTS
    const merged = {...spec, ...(process.env.IOCPGEN_NATS_URL ? {url: process.env.IOCPGEN_NATS_URL} : {}), ...this.options.cluster}
    return merged.url ? {...merged, url: merged.url} : undefined
  }

  /**
   * Graceful stop: new connections are refused and queued logins closed; handlers still
   * running finish; every client then gets what was sent to it before its connection ends.
   * Resolves when every client has closed its side (or was reset after drainTimeout) and
   * every native operation has completed. The JS thread waits in the core meanwhile.
   */
  async stop(): Promise<void> {
    if (!this.native) return
    this.flush()
    await Promise.allSettled(this.sessions.map((s) => s?.pending))
    this.flush()
    this.native.stop()
    // The close events of the shutdown arrive on the next turn.
    await new Promise((resolve) => setImmediate(resolve))
    // Then the names go back, and the other shards hear this one leave.
    this.unleased?.()
    await this.bus?.stop()
  }

  stats(): ServerStats {
    if (!this.native) throw new Error('server not started')
    const native = this.native.stats()
    const cluster = this.bus ? {cluster: this.bus.stats()} : {}
    return {...native, sessions: this.sessionCount, groups: this.groupMembers.size, ...this.counters, handlerErrorsByName: {...this.errorsByName}, names: this.names.size, ...cluster}
  }

  /** The live session with this id, or undefined if that client has left. */
  session(id: number): Session<T, S> | undefined {
    const index = id % 2 ** SLOT_BITS
    const gen = this.slots.gen(index)
    if (gen < 0 || sessionId(index, gen) !== id) return undefined
    const s = this.sessions[index] ?? this.materialize(index)
    return s && s.id === id ? s : undefined
  }

  /**
   * Sends to the session with this id (this shard's), or to the session bound to this name
   * (bind) on any shard of the cluster. By id: false when the client is gone or its queue
   * refused it. By name: resolves true once the shard holding the name has queued it,
   * false when nobody holds it (or that shard did not answer within 2 s).
   */
  sendTo<K extends T['outbound']>(id: number, type: K, message: MessageOf<T, K>): boolean
  sendTo<K extends T['outbound']>(name: string, type: K, message: MessageOf<T, K>): Promise<boolean>
  sendTo<K extends T['outbound']>(to: number | string, type: K, message: MessageOf<T, K>): boolean | Promise<boolean> {
    if (typeof to === 'number') return this.session(to)?.send(type, message) ?? false
    const local = this.names.get(to)
    if (local) return Promise.resolve(local.send(type, message))
    if (!this.bus) return Promise.resolve(false)
    return this.bus.sendToName(to, this.encodeAlone(type, message))
  }

  /**
   * Binds a name (e.g. `user:42`) to a session, cluster-wide: sendTo(name) then reaches it
   * on whatever shard it is, and whereIs(name) finds it. One session per name: of two binds
   * racing on any shards, exactly one resolves true; a name held by a live session is
   * refused (false), one held by a shard found dead is taken over. The name is released
   * when the session closes. `meta` travels with the name (a display name, say).
   */
  async bind(session: Session<T, S>, name: string, meta = ''): Promise<boolean> {
    if (!session.open || this.names.has(name)) return false
    // Held locally while the bus decides, so a second local bind is refused at once.
    this.names.set(name, session)
    let mine = this.namesOf.get(session)
    if (!mine) this.namesOf.set(session, (mine = new Map()))
    mine.set(name, meta)
    let won = true
    try {
      if (this.bus) won = await this.bus.bind(name, meta, [...session.groups])
    } catch (error) {
      won = false
      this.forgetName(session, name)
      throw error
    }
    if (!won) {
      this.forgetName(session, name)
      return false
    }
    if (!session.open) {
      // Closed while the bus was asked: give the name back.
      this.forgetName(session, name)
      await this.bus?.release(name)
      return false
    }
    return true
  }

  /** Releases a name the session holds. */
  async unbind(session: Session<T, S>, name: string): Promise<boolean> {
    if (this.names.get(name) !== session) return false
    this.forgetName(session, name)
    await this.bus?.release(name)
    return true
  }

  /** Where a name is bound: this shard or another, with its meta; undefined if nowhere alive. */
  async whereIs(name: string): Promise<Whereabouts | undefined> {
    const local = this.names.get(name)
    if (local) return {shard: this.bus?.shard ?? 'local', meta: this.namesOf.get(local)?.get(name) ?? '', local: true}
    return this.bus?.whereIs(name)
  }

  /** Names bound in the whole cluster: exact for this shard, as of each other shard's last heartbeat. */
  online(): number {
    return this.bus ? this.bus.online() : this.names.size
  }

  /**
   * Named members of a group on every shard: name and meta (bind). Other shards answer for
   * their own members within `waitMs`; this shard's are exact.
   */
  async namedMembers(group: string, waitMs?: number): Promise<{name: string; meta: string}[]> {
    const local = this.localNamedMembers(group)
    if (!this.bus) return local
    return [...local, ...(await this.bus.remoteMembers(group, waitMs))]
  }

  /**
   * Resolves once the cluster bus has seen every join, bind and broadcast made so far, so a
   * client told "joined" hears every later broadcast from any shard. Resolves at once
   * without a cluster.
   */
  async settle(): Promise<void> {
    await this.bus?.settle()
  }

  join(group: string, session: Session<T, S>): boolean {
    if (!session.open) return false
    let members = this.groupMembers.get(group)
    if (!members) {
      this.groupMembers.set(group, (members = new Set()))
      this.bus?.subscribeGroup(group)
    }
    if (members.has(session)) return false
    members.add(session)
    session.groupSet().add(group)
    this.ownerChanged(session)
    return true
  }

  leave(group: string, session: Session<T, S>): boolean {
    const members = this.groupMembers.get(group)
    if (!members?.delete(session)) return false
    session.groupSet().delete(group)
    if (members.size === 0) {
      this.groupMembers.delete(group)
      this.bus?.unsubscribeGroup(group)
    }
    this.ownerChanged(session)
    return true
  }

  private forgetName(session: Session<T, S>, name: string): void {
    if (this.names.get(name) === session) this.names.delete(name)
    this.namesOf.get(session)?.delete(name)
  }

  /** A named session joined or left a group: what a reaper would report is refreshed once per tick. */
  private ownerChanged(session: Session<T, S>): void {
    if (!this.bus || !this.namesOf.get(session)?.size) return
    if (this.ownersDirty.size === 0) {
      queueMicrotask(() => {
        for (const s of this.ownersDirty) {
          for (const [name, meta] of this.namesOf.get(s) ?? []) this.bus?.updateOwner(name, meta, [...s.groups])
        }
        this.ownersDirty.clear()
      })
    }
    this.ownersDirty.add(session)
  }

  private localNamedMembers(group: string): {name: string; meta: string}[] {
    const out: {name: string; meta: string}[] = []
    for (const s of this.groupMembers.get(group) ?? []) {
      if (!s.open) continue
      for (const [name, meta] of this.namesOf.get(s) ?? []) out.push({name, meta})
    }
    return out
  }

  /** What the cluster bus calls back. */
  private clusterHost(): ClusterHost {
    return {
      deliverToGroup: (group, frame) => this.fanOutRaw(group, frame),
      deliverToName: (name, frame) => {
        const s = this.names.get(name)
        if (!s?.open || !this.native || !validFrame(frame)) return false
        const w = this.out
        w.u32(s.index)
        w.u32(s.gen)
        w.u32(frame.length)
        w.raw(frame)
        this.flushSoon()
        return true
      },
      namedMembers: (group) => this.localNamedMembers(group),
      fenced: () => {
        // The others took this shard's names: its named sessions must not live on beside them.
        for (const s of new Set(this.names.values())) s.close()
        this.names.clear()
      },
      lost: (sessions) => {
        for (const listener of this.rawListeners('lost') as ((...a: unknown[]) => unknown)[]) {
          try {
            const r = listener.apply(this, [sessions])
            if (r instanceof Promise) r.catch((error: unknown) => this.userCodeFailed(error, 'on:lost', undefined))
          } catch (error) {
            this.userCodeFailed(error, 'on:lost', undefined)
          }
        }
      },
    }
  }

  /** A frame another shard broadcast to a group: fanned out natively to the members here. */
  private fanOutRaw(group: string, frame: Uint8Array): void {
    const members = this.groupMembers.get(group)
    if (!members || !this.native || !validFrame(frame)) return
    const w = this.out
    const start = w.length
    w.u32(BROADCAST_MARK)
    w.u32(0)
    w.u32(frame.length)
    let n = 0
    for (const s of members) {
      if (!s.open) continue
      w.u32(s.index)
      w.u32(s.gen)
      n++
    }
    if (n === 0) {
      w.rewind(start)
      return
    }
    w.patchU32(start + SEND_GEN, n)
    w.raw(frame)
    this.flushSoon()
  }

  /** A whole frame in a buffer of its own, for the bus. */
  private encodeAlone(type: string, message: unknown): Uint8Array {
    const w = this.scratch
    w.reset()
    const codec = this.codec(type)
    const f = w.beginFrame(codec.id)
    codec.encode(w, message)
    w.endFrame(f, this.maxFrame)
    return Uint8Array.prototype.slice.call(w.view())
  }

  members(group: string): ReadonlySet<Session<T, S>> {
    return this.groupMembers.get(group) ?? new Set()
  }

  /**
   * Sends one message to every member of a group: encoded once, fanned out natively with
   * this tick's other sends, so a burst of broadcasts costs each member one socket send.
   * Returns how many members it was addressed to; members the core then refuses (gone, or
   * a full queue) are counted in stats().sendsRefused.
   */
  broadcast<K extends T['outbound']>(group: string, type: K, message: MessageOf<T, K>, except?: Session<T, S>): number {
    const members = this.groupMembers.get(group)
    if (!this.native) return 0
    if (!members) {
      // No member here; maybe on other shards.
      this.bus?.publishToGroup(group, this.encodeAlone(type, message))
      return 0
    }
    const w = this.out
    const start = w.length
    // A broadcast record (bridge.json): the mark, the member count and the frame's length,
    // both patched below, then a handle per member, then the frame.
    w.u32(BROADCAST_MARK)
    w.u32(0)
    w.u32(0)
    let n = 0
    for (const s of members) {
      if (s === except || !s.open) continue
      w.u32(s.index)
      w.u32(s.gen)
      n++
    }
    if (n === 0) {
      w.rewind(start)
      this.bus?.publishToGroup(group, this.encodeAlone(type, message))
      return 0
    }
    w.patchU32(start + SEND_GEN, n)
    const frameStart = w.length
    const len = this.appendFrame(type, message, start)
    w.patchU32(start + SEND_LEN, len)
    // Encoded once: the other shards get a copy of the same bytes.
    if (this.bus) this.bus.publishToGroup(group, Uint8Array.prototype.slice.call(w.view(), frameStart, frameStart + len))
    this.flushSoon()
    return n
  }

  /**
   * Encodes a whole frame at the end of this tick's send batch and returns its length. On
   * failure (unknown type, bad message, frame too large) the batch is cut back to `record`,
   * the start of the record the frame belongs to, and the error rethrown.
   */
  private appendFrame(type: string, message: unknown, record: number): number {
    const w = this.out
    const frameStart = w.length
    try {
      const codec = this.codec(type)
      const f = w.beginFrame(codec.id)
      codec.encode(w, message)
      w.endFrame(f, this.maxFrame)
    } catch (error) {
      w.rewind(record)
      throw error
    }
    return w.length - frameStart
  }

  // SessionHost: called by Session.send.
  sendFrame(session: Connection, type: string, message: unknown): boolean {
    const w = this.out
    const start = w.length
    // A send record (bridge.json): index, gen, then the frame's length, patched below.
    w.u32(session.index)
    w.u32(session.gen)
    w.u32(0)
    w.patchU32(start + SEND_LEN, this.appendFrame(type, message, start))
    this.flushSoon()
    return true
  }

  /** Every send of this tick leaves in one native call, at the end of the tick. */
  private flushSoon(): void {
    if (!this.flushQueued) {
      this.flushQueued = true
      queueMicrotask(() => this.flush())
    }
  }

  closeSession(session: Connection, reason?: RuntimeClose): boolean {
    this.flush()
    return this.closeNative(session.index, session.gen, reason)
  }

  private closeNative(index: number, gen: number, reason?: RuntimeClose): boolean {
    if (!this.native) return false
    return reason ? this.native.close(index, gen, this.closeReasons.indexOf(reason)) : this.native.close(index, gen)
  }

  private codec(type: string): Codec<unknown> {
    const codec = this.codecs[type]
    if (!codec) throw new TypeError(`unknown message type "${type}"`)
    return codec
  }

  /** Hands every send queued since the last flush to the core in one call. */
  flush(): void {
    this.flushQueued = false
    if (this.out.length === 0 || !this.native) return
    this.counters.sendsRefused += this.native.send(this.out.view())
    this.out.reset()
  }

  private onEvents(batch: Buffer): void {
    try {
      this.dispatch(batch)
    } catch (error) {
      // User code cannot get here, so this is a bug in the runtime and its tables may be
      // wrong. N-API would only print a warning (DEP0168): crash as any uncaught error does.
      process.nextTick(() => {
        throw error
      })
    } finally {
      this.flush()
    }
  }

  private dispatch(batch: Buffer): void {
    let off = 0
    const b = batch
    while (off + EVENT_SIZE <= b.length) {
      const kind = b[off + EVENT_KIND]!
      const reason = b[off + EVENT_REASON]!
      const type = b[off + EVENT_TYPE]! | (b[off + EVENT_TYPE + 1]! << 8)
      const index = u32(b, off + EVENT_INDEX)
      const gen = u32(b, off + EVENT_GEN)
      const len = u32(b, off + EVENT_LEN)
      const body = off + EVENT_SIZE
      off = body + len
      if (kind === FRAME) this.onFrame(index, gen, type, batch, body, off)
      else if (kind === OPEN) this.onOpen(index, gen, batch, body, off, type)
      else if (kind === CLOSE) this.onClose(index, gen, this.closeReasons[reason] ?? `reason_${reason}`)
    }
  }

  /**
   * A client connected (its address is the text batch[start, end)). Its Session is made now
   * only if someone listens to 'open'; otherwise on first use, so an idle client costs no
   * JS object.
   */
  private onOpen(index: number, gen: number, batch: Buffer, start: number, end: number, port: number): void {
    this.slots.open(index, gen, port, batch, start, end)
    if (this.sessions.length < this.slots.capacity) this.growSessions()
    this.sessions[index] = undefined
    this.sessionCount++
    if (this.listenerCount('open') === 0) return
    const s = this.materialize(index)
    if (s) this.notify('open', 'on:open', s, [s])
  }

  /** Keeps `sessions` as long as the slot table, packed, so lookups stay fast. */
  private growSessions(): void {
    const grown = new Array<Session<T, S> | undefined>(this.slots.capacity).fill(undefined)
    for (let i = 0; i < this.sessions.length; i++) grown[i] = this.sessions[i]
    this.sessions = grown
  }

  /**
   * Makes the Session of the client connected in this slot, running initialState(). If that
   * throws, the client is closed as if it had never been seen and undefined is returned.
   */
  private materialize(index: number): Session<T, S> | undefined {
    const gen = this.slots.gen(index)
    if (gen < 0) return undefined
    let state: S
    try {
      state = this.initialState()
    } catch (error) {
      // No session without its state: the client is closed before anyone sees it.
      this.slots.close(index)
      this.sessionCount--
      this.userCodeFailed(error, 'initialState()', undefined)
      this.closeNative(index, gen, 'handler_error')
      return undefined
    }
    const s = new Session<T, S>(this, index, gen, this.slots.address(index), this.slots.port(index), state)
    this.sessions[index] = s
    return s
  }

  private onClose(index: number, gen: number, nativeReason: string): void {
    if (!this.slots.has(index, gen)) return
    let s = this.sessions[index]
    if (!s) {
      // A client that never got a Session gets one for 'close' only if someone listens.
      if (this.listenerCount('close') > 0) s = this.materialize(index)
      if (!s) {
        if (this.slots.has(index, gen)) {
          this.slots.close(index)
          this.sessionCount--
        }
        return
      }
    }
    s.open = false
    this.sessions[index] = undefined
    this.slots.close(index)
    this.sessionCount--
    const reason = this.closedFor.get(s) ?? nativeReason
    // Listeners still see the session's groups and names (to tell others it left); broadcasts skip it.
    this.notify('close', 'on:close', s, [s, reason])
    for (const g of [...s.groups]) this.leave(g, s)
    this.releaseNames(s)
  }

  private releaseNames(s: Session<T, S>): void {
    const mine = this.namesOf.get(s)
    if (!mine?.size) return
    for (const name of [...mine.keys()]) {
      this.forgetName(s, name)
      this.bus?.release(name).catch(() => undefined)
    }
  }

  /** Calls each listener of an event on its own: one that throws or rejects stops no other. */
  private notify<K extends 'open' | 'close'>(event: K, source: string, s: Session<T, S>, args: ServerEvents<T, S>[K]): void {
    if (this.listenerCount(event) === 0) return
    for (const listener of this.rawListeners(event) as ((...a: unknown[]) => unknown)[]) {
      try {
        const r = listener.apply(this, args)
        if (r instanceof Promise) r.catch((error: unknown) => this.userCodeFailed(error, source, s))
      } catch (error) {
        this.userCodeFailed(error, source, s)
      }
    }
  }

  private onFrame(index: number, gen: number, type: number, batch: Buffer, start: number, end: number): void {
    let s = this.sessions[index]
    if (!s) {
      if (!this.slots.has(index, gen) || !(s = this.materialize(index))) return
    }
    if (s.gen !== gen || !s.open) return
    const inbound = this.inbound[type]
    let message: unknown
    // In development bytes are decoded into memory of their own, expired after the handler.
    const views: Uint8Array[] | undefined = this.dev ? [] : undefined
    try {
      if (!inbound) throw new DecodeError(`unknown type id ${type}`)
      const r = this.reader
      r.reset(batch, start, end, views)
      message = inbound.decode(r)
      r.done()
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error
      this.counters.badPayloads++
      this.closeFor(s, 'bad_payload')
      return
    }
    if (!inbound.handler) {
      // A server-to-client message sent by a client.
      this.counters.badPayloads++
      this.closeFor(s, 'bad_payload')
      return
    }
    // Frames of one session are handled in order: while an async handler runs, later
    // frames of that session wait for it. Synchronous handlers never allocate a promise.
    const owned = views && views.length > 0 ? views : undefined
    if (s.pending) {
      // Once the runtime has closed the session, frames still waiting are dropped.
      const session = s
      this.track(s, s.pending.then(() => (this.closedFor.has(session) ? owned && expire(message, owned, inbound.name) : this.handle(inbound, session, message, owned))))
    } else {
      const p = this.handle(inbound, s, message, owned)
      if (p) this.track(s, p)
    }
  }

  /** Runs a handler; in development, ends its message's lifetime when the handler returns or first awaits. */
  private handle(inbound: Inbound, s: Session<T, S>, message: unknown, views: Uint8Array[] | undefined): Promise<void> | undefined {
    if (!views) return this.call(inbound, s, message)
    try {
      return this.call(inbound, s, message)
    } finally {
      expire(message, views, inbound.name)
    }
  }

  private track(s: Session<T, S>, p: Promise<unknown>): void {
    const done: Promise<void> = p.then(() => {
      if (s.pending === done) s.pending = undefined
    })
    s.pending = done
  }

  /** Runs a handler; returns a promise only when the handler is async. */
  private call(inbound: Inbound, s: Session<T, S>, message: unknown): Promise<void> | undefined {
    try {
      const r = inbound.handler!(s as never, message, this as never)
      if (r instanceof Promise) return r.then(() => undefined, (error: unknown) => this.userCodeFailed(error, inbound.name, s))
    } catch (error) {
      this.userCodeFailed(error, inbound.name, s)
    }
    return undefined
  }

  /** Closes a session for a reason of the runtime's, once; the native core drains it first. */
  private closeFor(s: Session<T, S>, reason: RuntimeClose): void {
    if (!s.open) return
    this.closedFor.set(s, reason)
    s.open = false  // from now on sends are refused and later frames are not handled
    if (!this.closeSession(s, reason)) this.closedFor.delete(s)
  }

  /**
   * User code threw or rejected. Count it; let 'error' listeners see it (they may still send
   * the client a last message); close the session; log the first error of each source only,
   * so a handler failing on every frame cannot flood the log.
   */
  private userCodeFailed(error: unknown, source: string, s: Session<T, S> | undefined): void {
    this.counters.handlerErrors++
    this.errorsByName[source] = (this.errorsByName[source] ?? 0) + 1
    const e = error instanceof Error ? error : new Error(describe(error))
    // A failing 'error' listener is only logged: reporting it to itself could loop forever.
    const listened = source !== 'on:error' && this.listenerCount('error') > 0
    if (listened) {
      for (const listener of this.rawListeners('error') as ((...a: unknown[]) => unknown)[]) {
        try {
          const r = listener.apply(this, [e, s, source])
          if (r instanceof Promise) r.catch((err: unknown) => this.userCodeFailed(err, 'on:error', s))
        } catch (err) {
          this.userCodeFailed(err, 'on:error', s)
        }
      }
    }
    if (s) this.closeFor(s, 'handler_error')
    if (!listened && !this.logged.has(source)) {
      this.logged.add(source)
      console.error(`${source} failed${s ? ` (session ${s.id})` : ''}; the connection is closed. Later failures of ${source} are counted in stats().handlerErrorsByName, not logged.`, e)
    }
  }
}

/** A frame from the bus: its length header matches its size (other shards run this code; still checked). */
const validFrame = (f: Uint8Array): boolean => f.length >= 6 && (f[0]! | (f[1]! << 8) | (f[2]! << 16)) + f[3]! * 0x1000000 === f.length - 4

/** The little-endian u32 at off (a number, exact: no sign bit). */
const u32 = (b: Buffer, off: number): number => (b[off]! | (b[off + 1]! << 8) | (b[off + 2]! << 16)) + b[off + 3]! * 0x1000000

/** A failure to listen, as an operator can act on it: which port, and why. */
export class ListenError extends Error {
  override name = 'ListenError'
  constructor(
    message: string,
    readonly code: 'EADDRINUSE' | 'EACCES' | 'EADDRNOTAVAIL' | 'EOTHER',
  ) {
    super(message)
  }
}

// The core says why in the OS's words: strerror on POSIX, WSA error numbers on Windows.
const LISTEN_CAUSES: [RegExp, ListenError['code'], (at: string) => string][] = [
  [/Address already in use|\b10048\b/, 'EADDRINUSE', (at) => `${at} is in use (EADDRINUSE): stop what holds it, or set PORT (or server.port in the spec)`],
  [/Permission denied|\b10013\b/, 'EACCES', (at) => `${at} needs privileges this process lacks (EACCES): use a port above 1023, or set PORT`],
  [/Cannot assign requested address|\b10049\b/, 'EADDRNOTAVAIL', (at) => `${at}: no such address on this machine (EADDRNOTAVAIL): set server.host in the spec`],
]

function listenError(error: unknown, port: number, host: string): Error {
  const why = (error instanceof Error ? error.message : String(error)).replace(/^cannot start: /, '')
  const at = `port ${port} on ${host}`
  for (const [re, code, say] of LISTEN_CAUSES) if (re.test(why)) return new ListenError(say(at), code)
  return new ListenError(`${at}: ${why}`, 'EOTHER')
}
