// The cluster bus: shards of one server, on one machine or many, joined through NATS.
// Groups are subjects a shard subscribes to while it has a local member; names live in a
// NATS KV bucket, bound with an atomic create; shards announce themselves with heartbeats,
// and one survivor reaps a silent shard's names. Core NATS is at-most-once: what can be
// lost, and when, is in docs/architecture.md ("Cluster").
import type {NatsConnection, Subscription} from '@nats-io/transport-node'
import type {KV} from '@nats-io/kv'

import type {ClusterSettings} from './protocol.js'

/** A session of a shard that died, as the surviving shard that reaped it reports it. */
export interface LostSession {
  name: string
  /** What the session bound with its name (bind's `meta`). */
  meta: string
  /** The groups it was in. */
  groups: string[]
  /** The shard it was on. */
  shard: string
}

/** Where a bound name is. */
export interface Whereabouts {
  shard: string
  meta: string
  /** On this shard. */
  local: boolean
}

/** What the bus needs of the server it serves. */
export interface ClusterHost {
  /** A frame published to a group by another shard: fan it out to the local members. */
  deliverToGroup(group: string, frame: Uint8Array): void
  /** A frame sent to a name bound here; false if it is no longer bound here. */
  deliverToName(name: string, frame: Uint8Array): boolean
  /** This shard's members of a group that have a name: name and meta. */
  namedMembers(group: string): {name: string; meta: string}[]
  /** Another shard declared this one dead and took its names: close every bound session. */
  fenced(): void
  /** Sessions of a dead shard, reaped by this shard (each dead shard is reaped by one). */
  lost(sessions: LostSession[]): void
}

export interface ClusterStats {
  /** This shard's id on the bus. */
  shard: string
  /** 1 while connected to NATS. */
  connected: number
  /** Other shards heard from within the lease. */
  peers: number
  published: number
  received: number
  /** Messages published while the bus was down: at risk (core NATS is at-most-once). */
  publishedWhileDown: number
  /** Messages not published because maxPending bytes were already waiting for the bus. */
  dropped: number
  disconnects: number
  reconnects: number
  /** Binds refused because the name was held by a live shard. */
  bindsRefused: number
  /** Binds refused because NATS or its KV could not be reached (an outage). */
  bindErrors: number
  /** Binds that took a name over from a shard found dead. */
  takeovers: number
  /** Shards this shard found dead and reaped, and the sessions they held. */
  shardsReaped: number
  sessionsReaped: number
  /** Times this shard was found dead by the others (cut off past the lease) and closed its named sessions. */
  fenced: number
  /** Cluster-scope lock acquisitions that found the lease held and waited (counted per retry). */
  leaseWaits: number
  /** Cluster-scope leases taken over from a shard found dead. */
  leaseTakeovers: number
}

/** Subject tokens and KV keys of arbitrary names: base64url, with a prefix so none is empty. */
export const token = (name: string): string => `_${Buffer.from(name, 'utf8').toString('base64url')}`

interface NameEntry {
  shard: string
  meta: string
}
interface OwnerEntry {
  name: string
  meta: string
  groups: string[]
}
interface Beat {
  shard: string
  names: number
}
/** One shard's answer to a roster request: its named members of the group. */
interface Roster {
  shard: string
  members: {name: string; meta: string}[]
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v))
const parse = <T>(b: Uint8Array): T => JSON.parse(Buffer.from(b).toString('utf8')) as T

/** A shard's connection to the cluster. */
export class ClusterBus {
  /** This shard's id on the bus: a new one per process, and after being fenced. */
  shard: string
  private nc!: NatsConnection
  private kv!: KV
  private readonly prefix: string
  private readonly groupSubs = new Map<string, Subscription[]>()
  private readonly nameSubs = new Map<string, Subscription>()
  /** KV revisions of the names this shard holds, for compare-and-delete. */
  private readonly held = new Map<string, number>()
  private readonly releasing = new Set<Promise<unknown>>()
  /** Other shards: when each was last heard from, and how many names it reported. */
  private readonly peers = new Map<string, {seen: number; names: number}>()
  /** Shards seen leaving or found dead: ignored from then on (a restart is a new shard id). */
  private readonly gone = new Set<string>()
  private connected = false
  /** Since when the bus is up: no peer is judged dead on silence older than this. */
  private upSince = Date.now()
  private pendingWhileDown = 0
  private timer: NodeJS.Timeout | undefined
  private fenceSub: Subscription | undefined
  private stopped = false
  /** Roster requests made: each gets its own reply subject. */
  private asked = 0
  private readonly counters = {published: 0, received: 0, publishedWhileDown: 0, dropped: 0, disconnects: 0, reconnects: 0, bindsRefused: 0, bindErrors: 0, takeovers: 0, shardsReaped: 0, sessionsReaped: 0, fenced: 0, leaseWaits: 0, leaseTakeovers: 0}

  constructor(
    private readonly settings: ClusterSettings & {url: string},
    private readonly host: ClusterHost,
    shardIndex: number,
  ) {
    this.prefix = settings.subject
    this.shard = newShardId(shardIndex)
    this.index = shardIndex
  }

  private readonly index: number

  /** Connects, opens the KV bucket and starts the heartbeat; rejects with a clear message if NATS is unreachable. */
  async start(): Promise<void> {
    const [{connect}, {Kvm}] = await Promise.all([import('@nats-io/transport-node'), import('@nats-io/kv')])
    try {
      this.nc = await connect({
        servers: this.settings.url,
        name: `${this.prefix}/${this.shard}`,
        noEcho: true,  // a shard fans its own broadcasts out itself
        maxReconnectAttempts: -1,
        reconnectTimeWait: 250,
        pingInterval: Math.max(1000, this.settings.heartbeatMs),
        timeout: 5000,
      })
    } catch (error) {
      throw new Error(`cannot reach NATS at ${this.settings.url}: ${(error as Error).message}`)
    }
    this.connected = true
    try {
      this.kv = await new Kvm(this.nc).create(this.prefix, {history: 1})
    } catch (error) {
      await this.nc.close()
      throw new Error(`NATS at ${this.settings.url}: cannot open the KV bucket "${this.prefix}" (is JetStream on? nats-server -js): ${(error as Error).message}`)
    }
    void this.watchStatus()
    const p = this.prefix
    this.nc.subscribe(`${p}.hb`, {callback: (_e, m) => this.onBeat(parse<Beat>(m.data))})
    this.nc.subscribe(`${p}.bye`, {callback: (_e, m) => this.onGone(parse<Beat>(m.data).shard, false)})
    this.fenceSub = this.nc.subscribe(`${p}.fence.${this.shard}`, {callback: () => this.onFenced()})
    // Every shard answers every roster request, members or none, so the asker knows how many
    // answers to wait for. Subscribed before the first heartbeat: a shard others count as
    // alive is already answering.
    this.nc.subscribe(`${p}.gm`, {callback: (_e, m) => void m.respond(json({shard: this.shard, members: this.host.namedMembers(m.string())} satisfies Roster))})
    this.beat()
    this.timer = setInterval(() => this.tick(), this.settings.heartbeatMs)
    this.timer.unref()
    await this.nc.flush()
  }

  /** Leaves: names are released, the others hear the shard go, the connection drains. */
  async stop(): Promise<void> {
    if (this.stopped || !this.nc) return
    this.stopped = true
    clearInterval(this.timer)
    // Every name goes back before the connection closes, including releases already under way.
    await Promise.allSettled([...[...this.held.keys()].map((name) => this.release(name)), ...this.releasing])
    if (!this.nc.isClosed()) {
      this.nc.publish(`${this.prefix}.bye`, json({shard: this.shard, names: 0}))
      await this.nc.drain().catch(() => undefined)
    }
  }

  stats(): ClusterStats {
    return {shard: this.shard, connected: this.connected ? 1 : 0, peers: this.livePeerIds().length, ...this.counters}
  }

  /** Other shards heard from within the lease. */
  private livePeerIds(): string[] {
    const now = Date.now()
    return [...this.peers].filter(([, v]) => now - v.seen <= this.settings.leaseMs).map(([shard]) => shard)
  }

  /** Names bound on every live shard, as of their last heartbeats, plus this shard's now. */
  online(): number {
    const now = Date.now()
    let n = this.held.size
    for (const v of this.peers.values()) if (now - v.seen <= this.settings.leaseMs) n += v.names
    return n
  }

  /** Resolves once NATS has seen every subscription and publish made so far. */
  async settle(): Promise<void> {
    if (this.connected) await this.nc.flush()
  }

  // Groups: interest follows local membership.

  /** The first local member joined: receive the group's broadcasts from other shards. */
  subscribeGroup(group: string): void {
    if (this.groupSubs.has(group)) return
    const tok = token(group)
    const deliver = this.nc.subscribe(`${this.prefix}.g.${tok}`, {
      callback: (_e, m) => {
        this.counters.received++
        this.host.deliverToGroup(group, m.data)
      },
    })
    this.groupSubs.set(group, [deliver])
  }

  /** The last local member left. */
  unsubscribeGroup(group: string): void {
    for (const s of this.groupSubs.get(group) ?? []) s.unsubscribe()
    this.groupSubs.delete(group)
  }

  /** One encoded frame to the group's members on every other shard. */
  publishToGroup(group: string, frame: Uint8Array): void {
    this.publish(`${this.prefix}.g.${token(group)}`, frame)
  }

  /**
   * Named members of a group on other shards, each answering for its own. Done when every
   * shard alive at the asking has answered (a shard that died within its lease is waited
   * for until `waitMs`); a shard too new to be known may answer too, and is counted.
   */
  async remoteMembers(group: string, waitMs = 1000): Promise<{name: string; meta: string}[]> {
    const waiting = new Set(this.livePeerIds())
    if (!this.connected || waiting.size === 0) return []
    const out: {name: string; meta: string}[] = []
    const inbox = `${this.prefix}.r.${this.shard}.${++this.asked}`
    await new Promise<void>((done) => {
      const timer = setTimeout(finish, waitMs)
      const sub = this.nc.subscribe(inbox, {
        callback: (_e, m) => {
          const reply = parse<Roster>(m.data)
          out.push(...reply.members)
          waiting.delete(reply.shard)
          if (waiting.size === 0) finish()
        },
      })
      function finish() {
        clearTimeout(timer)
        sub.unsubscribe()
        done()
      }
      this.nc.publish(`${this.prefix}.gm`, group, {reply: inbox})
    })
    return out
  }

  // Names.

  /**
   * Binds a name to this shard: an atomic KV create, so of two shards racing for one name
   * exactly one wins. A name held by a shard found dead is taken over (compare-and-set on
   * the revision read). Returns false if a live shard holds it.
   */
  async bind(name: string, meta: string, groups: string[]): Promise<boolean> {
    try {
      return await this.tryBind(name, meta, groups)
    } catch {
      this.counters.bindErrors++  // the bus or its KV is unreachable: refused, and counted
      return false
    }
  }

  private async tryBind(name: string, meta: string, groups: string[]): Promise<boolean> {
    const key = `n.${token(name)}`
    const entry = json({shard: this.shard, meta} satisfies NameEntry)
    let revision: number | undefined
    // A takeover can race a reaper releasing the same name: then look again (bounded).
    for (let attempt = 0; attempt < 3 && revision === undefined; attempt++) {
      try {
        revision = await this.kv.create(key, entry)
        break
      } catch (error) {
        if (!nameTaken(error)) throw error
      }
      const current = await this.kv.get(key)
      if (current && current.operation === 'PUT') {
        const holder = parse<NameEntry>(current.value).shard
        if (holder === this.shard || this.alive(holder)) break
      }
      try {
        revision = current ? await this.kv.update(key, entry, current.revision) : undefined
        if (revision !== undefined) this.counters.takeovers++
      } catch (error) {
        if (!nameTaken(error)) throw error
      }
    }
    if (revision === undefined) {
      this.counters.bindsRefused++
      return false
    }
    this.held.set(name, revision)
    await this.kv.put(`o.${this.shard}.${token(name)}`, json({name, meta, groups} satisfies OwnerEntry))
    const sub = this.nc.subscribe(`${this.prefix}.n.${token(name)}`, {
      callback: (_e, m) => {
        this.counters.received++
        void m.respond(this.host.deliverToName(name, m.data) ? ONE : ZERO)
      },
    })
    this.nameSubs.set(name, sub)
    await this.nc.flush()
    return true
  }

  /** Keeps the record a reaper would read current: the groups of a named session. */
  updateOwner(name: string, meta: string, groups: string[]): void {
    if (!this.held.has(name) || !this.connected) return
    this.kv.put(`o.${this.shard}.${token(name)}`, json({name, meta, groups} satisfies OwnerEntry)).catch(() => undefined)
  }

  /** Releases a name this shard holds (only the revision it wrote: a takeover is left alone). */
  async release(name: string): Promise<void> {
    const revision = this.held.get(name)
    if (revision === undefined) return
    this.held.delete(name)
    this.nameSubs.get(name)?.unsubscribe()
    this.nameSubs.delete(name)
    const done = Promise.allSettled([this.kv.delete(`n.${token(name)}`, {previousSeq: revision}), this.kv.purge(`o.${this.shard}.${token(name)}`)])
    this.releasing.add(done)
    await done
    this.releasing.delete(done)
  }

  /**
   * A cluster-scope lock: the KV key `l.<key>` holds the shard that has it. Waits (polling,
   * 1 to 50 ms apart) while a live shard holds it, takes it over from a shard found dead, and
   * resolves to the revision written: the fencing token, so a stale holder's release cannot
   * touch a lease taken over since. Rejects while NATS is unreachable.
   */
  async lease(key: string): Promise<number> {
    const k = `l.${token(key)}`
    const entry = json({shard: this.shard})
    for (let delay = 1; ; delay = Math.min(delay * 2, 50)) {
      if (this.stopped) throw new Error(`cluster lock ${key}: the cluster bus has stopped`)
      try {
        return await this.kv.create(k, entry)
      } catch (error) {
        if (!nameTaken(error)) throw new Error(`cluster lock ${key}: NATS KV unreachable (${(error as Error).message})`)
      }
      const current = await this.kv.get(k)
      if (current?.operation === 'PUT') {
        const holder = parse<{shard: string}>(current.value).shard
        // Its holder is dead, or is this shard under an id it no longer answers to.
        if (!this.alive(holder) || holder === this.shard) {
          try {
            const revision = await this.kv.update(k, entry, current.revision)
            this.counters.leaseTakeovers++
            return revision
          } catch (error) {
            if (!nameTaken(error)) throw error
          }
          continue
        }
      } else continue  // released between the two reads: try again at once
      this.counters.leaseWaits++
      await new Promise((resolve) => setTimeout(resolve, delay))
    }
  }

  async unlease(key: string, fence: number): Promise<void> {
    await this.kv.delete(`l.${token(key)}`, {previousSeq: fence})
  }

  /** Sends a frame to a name bound on another shard; resolves true once that shard queued it. */
  async sendToName(name: string, frame: Uint8Array, timeoutMs = 2000): Promise<boolean> {
    if (!this.connected) return false
    try {
      this.counters.published++
      const reply = await this.nc.request(`${this.prefix}.n.${token(name)}`, frame, {timeout: timeoutMs})
      return reply.data[0] === 1
    } catch {
      return false  // nobody holds it (no responders), or no answer in time
    }
  }

  /** Where a name is bound, if anywhere alive. */
  async whereIs(name: string): Promise<Whereabouts | undefined> {
    if (this.held.has(name)) return undefined  // the server answers for its own names
    const e = await this.kv.get(`n.${token(name)}`).catch(() => null)
    if (!e || e.operation !== 'PUT') return undefined
    const {shard, meta} = parse<NameEntry>(e.value)
    return this.alive(shard) ? {shard, meta, local: false} : undefined
  }

  // Liveness.

  private alive(shard: string): boolean {
    if (shard === this.shard) return true
    if (this.gone.has(shard)) return false
    const peer = this.peers.get(shard)
    // A shard not heard from yet may have started within the lease: alive until proven silent.
    const seen = Math.max(peer?.seen ?? 0, this.upSince)
    return Date.now() - seen <= this.settings.leaseMs
  }

  private beat(): void {
    if (this.connected) this.nc.publish(`${this.prefix}.hb`, json({shard: this.shard, names: this.held.size} satisfies Beat))
  }

  private onBeat(b: Beat): void {
    if (b.shard === this.shard || this.gone.has(b.shard)) return
    this.peers.set(b.shard, {seen: Date.now(), names: b.names})
  }

  /** Every heartbeat: announce this shard, and reap those silent for longer than the lease. */
  private tick(): void {
    this.beat()
    if (!this.connected) return
    const now = Date.now()
    for (const [shard, v] of this.peers) {
      if (now - Math.max(v.seen, this.upSince) > this.settings.leaseMs) this.onGone(shard, true)
    }
  }

  /** A shard left (bye) or fell silent (dead): forget it; if dead, one survivor reaps it. */
  private onGone(shard: string, dead: boolean): void {
    if (shard === this.shard || this.gone.has(shard)) return
    this.gone.add(shard)
    this.peers.delete(shard)
    if (dead) void this.reap(shard).catch(() => undefined)
  }

  /**
   * Releases a dead shard's names and reports its sessions. The claim is a KV create, so
   * exactly one survivor reaps each dead shard. The dead shard, if it is only cut off, is
   * told to close its bound sessions (fencing) when it hears the bus again.
   */
  private async reap(shard: string): Promise<void> {
    try {
      await this.kv.create(`r.${shard}`, json({by: this.shard}))
    } catch {
      return  // another survivor reaps it
    }
    this.counters.shardsReaped++
    this.nc.publish(`${this.prefix}.fence.${shard}`, ZERO)
    const lost: LostSession[] = []
    const keys = await this.kv.keys(`o.${shard}.>`)
    for await (const key of keys) {
      const e = await this.kv.get(key)
      if (!e || e.operation !== 'PUT') continue
      const owner = parse<OwnerEntry>(e.value)
      const nameKey = `n.${key.slice(key.lastIndexOf('.') + 1)}`
      const held = await this.kv.get(nameKey)
      // Only where the dead shard still holds the name: one taken over stays with its new holder.
      if (held && held.operation === 'PUT' && parse<NameEntry>(held.value).shard === shard) {
        await this.kv.delete(nameKey, {previousSeq: held.revision}).catch(() => undefined)
      }
      await this.kv.purge(key).catch(() => undefined)
      lost.push({...owner, shard})
    }
    this.counters.sessionsReaped += lost.length
    if (lost.length) this.host.lost(lost)
  }

  /**
   * Another shard found this one dead and released its names. Its sessions may have logged
   * in elsewhere since: close the bound ones here, and go on as a new shard.
   */
  private onFenced(): void {
    const old = this.shard
    this.shard = newShardId(this.index)
    for (const sub of this.nameSubs.values()) sub.unsubscribe()
    this.nameSubs.clear()
    this.held.clear()
    this.fenceSub?.unsubscribe()
    this.fenceSub = this.nc.subscribe(`${this.prefix}.fence.${this.shard}`, {callback: () => this.onFenced()})
    this.counters.fenced++
    void this.kv.purge(`r.${old}`).catch(() => undefined)
    this.host.fenced()
  }

  private publish(subject: string, data: Uint8Array): void {
    if (!this.connected) {
      // nats.js keeps what is published while down and sends it on reconnect; bound it.
      if (this.pendingWhileDown + data.length > this.settings.maxPendingBytes) {
        this.counters.dropped++
        return
      }
      this.pendingWhileDown += data.length
      this.counters.publishedWhileDown++
    }
    this.counters.published++
    this.nc.publish(subject, data)
  }

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') {
        this.connected = false
        this.counters.disconnects++
      } else if (s.type === 'reconnect') {
        this.connected = true
        this.upSince = Date.now()
        this.pendingWhileDown = 0
        this.counters.reconnects++
        this.beat()
        // Declared dead while cut off? The fence message was lost with the outage; the claim was not.
        this.kv.get(`r.${this.shard}`).then((e) => e?.operation === 'PUT' && this.onFenced(), () => undefined)
      }
    }
  }
}

/** The KV create failed because the key exists (JetStream's "wrong last sequence", 10071). */
const nameTaken = (error: unknown): boolean => (error as {code?: unknown}).code === 10071

const newShardId = (index: number) => `s${index}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 8)}`
const ONE = new Uint8Array([1])
const ZERO = new Uint8Array([0])
