// The locks a spec declares, for handlers: async mutexes and reader-writer locks, one per key
// for per-instance locks, and leases across the cluster for `scope: cluster`. Keeping to the
// declared order is the types' job: the generated module (src/generated/locks.ts) hands out
// tokens that offer only the locks placed after the ones held. Development mode checks the
// order again at run time, for locks reached without a token, and reports locks held or
// waited on for too long. Production mode does none of that: no stacks, no async context.
import {AsyncLocalStorage} from 'node:async_hooks'
import {relative} from 'node:path'
import {fileURLToPath} from 'node:url'

import {devMode} from './lifetime.js'

export type LockKey = string | number

/** One lock of the spec, as the generated module describes it. */
export interface LockTableEntry {
  name: string
  kind: 'mutex' | 'rwlock'
  perInstance?: boolean
  /** Two instances may nest, the inner one with the greater key. */
  nestById?: boolean
  /** `cluster`: also a lease in the cluster's KV, so one holder in the whole cluster. */
  scope?: 'local' | 'cluster'
  /** The locks the declared order places after this one (transitively): what a holder may take. */
  after: readonly string[]
}

export interface LockReport {
  kind: 'held-long' | 'waited-long'
  lock: string
  /** Where the lock was taken (held-long) or is being waited for (waited-long). */
  site: string
  /** For waited-long: where its holders took it. */
  holders?: string[]
  ms: number
  message: string
}

export interface LockOptions {
  /** Run-time order checks and reports; devMode() by default (off under NODE_ENV=production). */
  dev?: boolean
  /** Report a lock held, or waited on, longer than this; IOCPGEN_LOCK_WARN_MS, else 1000. */
  warnMs?: number
  /** Where reports go; process.emitWarning by default. */
  onReport?: (report: LockReport) => void
  /** Where cluster-scope locks are leased; by default the cluster bus of a started server. */
  leases?: LeaseStore
}

/** Taking a lock against the declared order (or a nestById lock out of key order). */
export class LockOrderError extends Error {
  override name = 'LockOrderError'
}

/** Where cluster-scope locks are leased: the cluster bus of a running server. */
export interface LeaseStore {
  /** Waits until the lease on `key` is this shard's; resolves to its fencing token (a revision). */
  lease(key: string): Promise<number>
  /** Gives the lease back, unless someone has taken it over since `fence`. */
  unlease(key: string, fence: number): Promise<void>
}

const stores: LeaseStore[] = []

/** Makes a started cluster bus the place cluster-scope locks are leased; returns its removal. */
export function addLeaseStore(store: LeaseStore): () => void {
  stores.push(store)
  return () => {
    const i = stores.indexOf(store)
    if (i >= 0) stores.splice(i, 1)
  }
}

// A reader-writer lock handing out turns in arrival order (a mutex only writes): a reader
// that arrives behind a waiting writer waits too, so writers are not starved.
class Gate {
  private readers = 0
  private writing = false
  private readonly queue: {write: boolean; grant: () => void}[] = []
  /** Holders and waiters: a per-instance gate with none is dropped. */
  users = 0
  /** Development only: where the current holders took it. */
  sites: string[] | undefined

  /** Takes a turn; undefined when granted at once, else a promise of the turn. */
  enter(write: boolean): Promise<void> | undefined {
    this.users++
    if (this.queue.length === 0 && !this.writing && (!write || this.readers === 0)) {
      if (write) this.writing = true
      else this.readers++
      return undefined
    }
    return new Promise((grant) => this.queue.push({write, grant}))
  }

  leave(write: boolean): void {
    this.users--
    if (write) this.writing = false
    else this.readers--
    while (this.queue.length > 0) {
      const next = this.queue[0]!
      if (next.write ? this.writing || this.readers > 0 : this.writing) return
      if (next.write) this.writing = true
      else this.readers++
      this.queue.shift()
      next.grant()
    }
  }
}

interface Held {
  lock: string
  key: LockKey | undefined
  site: string
  /** Set on release: a timer or callback made inside the body keeps its context, not the lock. */
  released?: boolean
}

const ascending = (a: LockKey, b: LockKey): boolean =>
  typeof a === 'number' && typeof b === 'number' ? a < b : String(a) < String(b)
const shown = (lock: string, key: LockKey | undefined) => (key === undefined ? lock : `${lock}(${JSON.stringify(key)})`)

const HERE = fileURLToPath(import.meta.url)

/** The first frame of the caller's stack outside this module and the generated one. */
function callSite(): string {
  const limit = Error.stackTraceLimit
  Error.stackTraceLimit = 16
  const stack = new Error().stack ?? ''
  Error.stackTraceLimit = limit
  for (const line of stack.split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?[^()\s]+):(\d+):(\d+)\)?\s*$/.exec(line)
    if (!m) continue
    const file = m[1]!.startsWith('file://') ? fileURLToPath(m[1]!) : m[1]!
    if (file === HERE || /[\\/]generated[\\/]locks\.[cm]?[jt]s$/.test(file) || file.startsWith('node:')) continue
    const rel = relative(process.cwd(), file)
    return `${rel.startsWith('..') ? file : rel}:${m[2]}:${m[3]}`
  }
  return '(unknown site)'
}

/**
 * The locks of a table, as the generated module's `Unlocked` token: each lock is a property,
 * a handle with lock() (mutex) or read()/write() (rwlock), or for per-instance locks a
 * function of the key giving one. The body of an acquisition receives the token for what it
 * holds. The generated module gives all of this its types.
 */
export function createLocks(table: readonly LockTableEntry[], options: LockOptions = {}): unknown {
  const dev = options.dev ?? devMode()
  const warnMs = options.warnMs ?? Number(process.env.IOCPGEN_LOCK_WARN_MS || 1000)
  const report = options.onReport ?? ((r: LockReport) => process.emitWarning(r.message, {type: 'LockWarning', code: r.kind}))
  const byName = new Map(table.map((e) => [e.name, {...e, after: new Set(e.after)}]))
  const held = dev ? new AsyncLocalStorage<readonly Held[]>() : undefined
  const single = new Map<string, Gate>()
  const instances = new Map<string, Map<string, Gate>>()

  const gateOf = (lock: string, key: LockKey | undefined): Gate => {
    if (key === undefined) {
      let g = single.get(lock)
      if (!g) single.set(lock, (g = new Gate()))
      return g
    }
    const map = instances.get(lock) ?? instances.set(lock, new Map()).get(lock)!
    let g = map.get(String(key))
    if (!g) map.set(String(key), (g = new Gate()))
    return g
  }
  const drop = (lock: string, key: LockKey | undefined, g: Gate) => {
    if (key !== undefined && g.users === 0) instances.get(lock)?.delete(String(key))
  }

  /** Development: refuses a lock the held ones may not be followed by, naming both sites. */
  const checkOrder = (lock: string, key: LockKey | undefined, site: string) => {
    const entry = byName.get(lock)!
    for (const h of held!.getStore() ?? []) {
      if (h.released) continue
      if (byName.get(h.lock)!.after.has(lock)) continue
      if (h.lock === lock && entry.nestById && key !== undefined && h.key !== undefined && ascending(h.key, key)) continue
      const why =
        h.lock === lock
          ? entry.nestById
            ? `instances of ${lock} nest only in ascending key order`
            : entry.perInstance
              ? `${lock} has no nestById: two instances may not be held at once`
              : `${lock} is not re-entrant: this waits for itself`
          : `the spec's order does not place ${h.lock} before ${lock}`
      throw new LockOrderError(`taking ${shown(lock, key)} at ${site} while holding ${shown(h.lock, h.key)}, taken at ${site === h.site ? 'the same site' : h.site}: ${why}`)
    }
  }

  const acquire = async <R>(lock: string, key: LockKey | undefined, write: boolean, body: (token: unknown) => R | Promise<R>, token: unknown): Promise<R> => {
    const entry = byName.get(lock)!
    const site = dev ? callSite() : ''
    if (dev) checkOrder(lock, key, site)
    const gate = gateOf(lock, key)
    const turn = gate.enter(write)
    if (turn) {
      if (dev) {
        const timer = setTimeout(() => {
          const holders = [...(gate.sites ?? [])]
          report({kind: 'waited-long', lock: shown(lock, key), site, holders, ms: warnMs, message: `waiting over ${warnMs} ms for ${shown(lock, key)} at ${site}; held from ${holders.join(', ') || 'elsewhere'}`})
        }, warnMs)
        timer.unref()
        await turn
        clearTimeout(timer)
      } else await turn
    }
    let fence: number | undefined
    const store = entry.scope === 'cluster' ? (options.leases ?? stores[0]) : undefined
    const leaseKey = store ? `${lock}/${key === undefined ? '' : String(key)}` : ''
    try {
      if (store) fence = await store.lease(leaseKey)
      if (!dev) return await body(token)
      const mine: Held = {lock, key, site}
      ;(gate.sites ??= []).push(site)
      const timer = setTimeout(() => report({kind: 'held-long', lock: shown(lock, key), site, ms: warnMs, message: `${shown(lock, key)} taken at ${site} is still held after ${warnMs} ms`}), warnMs)
      timer.unref()
      try {
        return await held!.run([...(held!.getStore() ?? []), mine], () => body(token))
      } finally {
        mine.released = true
        clearTimeout(timer)
        gate.sites.splice(gate.sites.indexOf(site), 1)
      }
    } finally {
      if (store && fence !== undefined) await store.unlease(leaseKey, fence).catch(() => undefined)
      gate.leave(write)
      drop(lock, key, gate)
    }
  }

  // The handle of a lock (of one instance, for per-instance locks). `token` is what its body gets.
  const handle = (lock: string, key: LockKey | undefined, token: () => unknown) => {
    const entry = byName.get(lock)!
    if (entry.kind === 'rwlock') {
      return {
        lockName: lock,
        read: <R>(body: (t: unknown) => R | Promise<R>) => acquire(lock, key, false, body, token()),
        write: <R>(body: (t: unknown) => R | Promise<R>) => acquire(lock, key, true, body, token()),
      }
    }
    return {lockName: lock, lock: <R>(body: (t: unknown) => R | Promise<R>) => acquire(lock, key, true, body, token())}
  }

  // Tokens. Holding a lock offers what its `after` lists; the token of a nestById lock also
  // offers its own instances with greater keys, so it is made per acquisition.
  const staticTokens = new Map<string, object>()
  const offer = (names: Iterable<string>, target: Record<string, unknown>) => {
    for (const name of names) {
      const e = byName.get(name)!
      target[name] = e.perInstance ? (key: LockKey) => handle(name, key, () => tokenAfter(name, key)) : handle(name, undefined, () => tokenAfter(name, undefined))
    }
    return Object.freeze(target)
  }
  function tokenAfter(lock: string, key: LockKey | undefined): object {
    const e = byName.get(lock)!
    if (!e.nestById || key === undefined) {
      let t = staticTokens.get(lock)
      if (!t) staticTokens.set(lock, (t = offer(e.after, {})))
      return t
    }
    const t: Record<string, unknown> = {}
    t[lock] = (inner: LockKey) => {
      if (!ascending(key, inner)) throw new LockOrderError(`taking ${shown(lock, inner)} while holding ${shown(lock, key)}: instances of ${lock} nest only in ascending key order`)
      return handle(lock, inner, () => tokenAfter(lock, inner))
    }
    return offer(e.after, t)
  }
  return offer(byName.keys(), {})
}
