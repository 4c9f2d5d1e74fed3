// The spec's locks at run time (runtime/src/locks.ts): mutual exclusion and fair turns,
// per-key instances, the development check that turns a would-be deadlock into an error
// naming both sites, reports of locks held or waited on too long, nestById key order, and
// cluster-scope leases between two shards' buses on a NATS server the test starts.
import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {ClusterBus, type ClusterHost} from '../runtime/src/cluster.js'
import {createLocks, type LockReport, type LockTableEntry} from '../runtime/src/locks.js'
import {type Nats, startNats} from './support/nats.js'

type Body<R = unknown> = (held: Token) => R | Promise<R>
interface Handle {
  lockName: string
  lock<R>(b: Body<R>): Promise<R>
  read<R>(b: Body<R>): Promise<R>
  write<R>(b: Body<R>): Promise<R>
}
type Token = Record<string, Handle & ((key: string | number) => Handle)>

// users < groups < group, as the chat example once had; group nests by id.
const table: LockTableEntry[] = [
  {name: 'users', kind: 'rwlock', after: ['groups', 'group']},
  {name: 'groups', kind: 'mutex', after: ['group']},
  {name: 'group', kind: 'mutex', perInstance: true, nestById: true, after: []},
]
const make = (options: Parameters<typeof createLocks>[1] = {}) => createLocks(table, {dev: false, ...options}) as Token
const tick = () => new Promise((resolve) => setTimeout(resolve, 2))

describe('locks at run time', () => {
  it('a mutex admits one body at a time, in arrival order', async () => {
    const locks = make()
    const order: string[] = []
    let inside = 0
    let most = 0
    await Promise.all(
      ['a', 'b', 'c', 'd'].map((name) =>
        locks.groups.lock(async () => {
          most = Math.max(most, ++inside)
          order.push(name)
          await tick()
          inside--
        }),
      ),
    )
    expect(most).toBe(1)
    expect(order).toEqual(['a', 'b', 'c', 'd'])
  })

  it('readers share an rwlock, a writer has it alone, and readers behind a waiting writer wait', async () => {
    const locks = make()
    const log: string[] = []
    const reader = (n: string) => locks.users.read(async () => (log.push(`${n}+`), await tick(), log.push(`${n}-`)))
    const writer = (n: string) => locks.users.write(async () => (log.push(`${n}+`), await tick(), log.push(`${n}-`)))
    await Promise.all([reader('r1'), reader('r2'), writer('w'), reader('r3')])
    // r1 and r2 overlap; w runs alone after both; r3 arrived after w and waits for it.
    expect(log.slice(0, 2).sort()).toEqual(['r1+', 'r2+'])
    expect(log.indexOf('w+')).toBeGreaterThan(Math.max(log.indexOf('r1-'), log.indexOf('r2-')))
    expect(log.indexOf('r3+')).toBeGreaterThan(log.indexOf('w-'))
  })

  it('per-instance locks: one lock per key, keys independent', async () => {
    const locks = make()
    let aInside = false
    let overlapped = false
    const a = locks.group('a').lock(async () => ((aInside = true), await tick(), await tick(), (aInside = false)))
    const b = locks.group('b').lock(() => (overlapped = aInside))
    const a2 = locks.group('a').lock(() => expect(aInside).toBe(false))
    await Promise.all([a, b, a2])
    expect(overlapped).toBe(true)
  })

  it('a body that throws releases its lock', async () => {
    const locks = make()
    await expect(locks.groups.lock(() => {
      throw new Error('boom')
    })).rejects.toThrow('boom')
    await expect(locks.groups.lock(() => 42)).resolves.toBe(42)
  })

  it('tokens offer the later locks, and nestById instances only with a greater key', async () => {
    const locks = make()
    await locks.users.write(async (held) => {
      expect(Object.keys(held).sort()).toEqual(['group', 'groups'])
      await held.groups.lock(async (inner) => {
        expect(Object.keys(inner)).toEqual(['group'])
        await inner.group(1).lock(async (g1) => {
          await g1.group(2).lock(() => undefined)
          expect(() => g1.group(0)).toThrow(/group\(0\) while holding group\(1\): instances of group nest only in ascending key order/)
        })
      })
    })
  })

  describe('development mode', () => {
    it('turns the interleaving that would deadlock into an error naming both sites', async () => {
      const locks = make({dev: true})
      const file = 'runtime-locks.test.ts'
      // A takes users then groups (the declared order); B takes groups then, reaching users
      // from module scope rather than through its token, users. Together: a deadlock.
      let aHolds!: () => void
      const aHasUsers = new Promise<void>((resolve) => (aHolds = resolve))
      const a = locks.users.write(async (held) => {
        aHolds()
        await tick()
        await held.groups.lock(() => 'a done')
      })
      let bError: unknown
      const b = locks.groups.lock(async () => { // B-TAKES-GROUPS
        await aHasUsers
        try {
          await locks.users.read(() => 'b done') // B-TAKES-USERS
        } catch (error) {
          bError = error
        }
      })
      await Promise.all([a, b])
      expect(bError).toBeInstanceOf(Error)
      const message = (bError as Error).message
      expect((bError as Error).name).toBe('LockOrderError')
      expect(message).toMatch(/^taking users at .* while holding groups, taken at .*: the spec's order does not place groups before users$/)
      // Both sites are this file, at the lines marked above.
      const source = (await import('node:fs')).readFileSync(new URL(import.meta.url), 'utf8').split('\n')
      const line = (mark: string) => source.findIndex((l) => l.includes(`// ${mark}`)) + 1
      expect(message).toContain(`${file}:${line('B-TAKES-USERS')}:`)
      expect(message).toContain(`${file}:${line('B-TAKES-GROUPS')}:`)
    })

    it('refuses taking a lock again in its own section, and two instances without nestById', async () => {
      const locks = createLocks([{name: 'room', kind: 'mutex', perInstance: true, after: []}, {name: 'table', kind: 'mutex', after: []}], {dev: true}) as Token
      await expect(locks.table.lock(() => locks.table.lock(() => 1))).rejects.toThrow(/table is not re-entrant/)
      await expect(locks.room(1).lock(() => locks.room(2).lock(() => 1))).rejects.toThrow(/room has no nestById/)
    })

    it('a callback scheduled inside a body does not inherit its lock once the body is over', async () => {
      const locks = make({dev: true})
      let later!: Promise<number>
      await locks.groups.lock(() => {
        // Runs after the body returned: in the body's async context, but groups is free again.
        later = new Promise((resolve) => setTimeout(resolve, 5)).then(() => locks.groups.lock(() => 2))
      })
      await expect(later).resolves.toBe(2)
    })

    it('reports a lock held, and a lock waited on, longer than the bound, with their sites', async () => {
      const reports: LockReport[] = []
      const locks = make({dev: true, warnMs: 30, onReport: (r) => reports.push(r)})
      const slow = locks.groups.lock(() => new Promise((resolve) => setTimeout(resolve, 80)))
      const waiter = locks.groups.lock(() => undefined)
      await Promise.all([slow, waiter])
      const held = reports.find((r) => r.kind === 'held-long')
      const waited = reports.find((r) => r.kind === 'waited-long')
      expect(held?.message).toMatch(/^groups taken at .*runtime-locks\.test\.ts:\d+:\d+ is still held after 30 ms$/)
      expect(waited?.message).toMatch(/^waiting over 30 ms for groups at .*runtime-locks\.test\.ts:\d+:\d+; held from .*runtime-locks\.test\.ts:\d+:\d+$/)
      expect(waited?.holders).toEqual([held?.site])
    })

    it('production mode checks nothing and reports nothing', async () => {
      const reports: LockReport[] = []
      const locks = make({dev: false, warnMs: 5, onReport: (r) => reports.push(r)})
      await locks.groups.lock(() => locks.users.read(() => new Promise((resolve) => setTimeout(resolve, 20))))
      expect(reports).toEqual([])
    })
  })
})

describe('cluster-scope locks', () => {
  let nats: Nats
  beforeAll(async () => {
    nats = await startNats()
  })
  afterAll(async () => {
    await nats?.stop()
  })

  const host: ClusterHost = {deliverToGroup: () => undefined, deliverToName: () => false, namedMembers: () => [], fenced: () => undefined, lost: () => undefined}
  const bus = async (index: number) => {
    const b = new ClusterBus({subject: 'lk', url: nats.url, maxPendingBytes: 1 << 20, heartbeatMs: 100, leaseMs: 500}, host, index)
    await b.start()
    return b
  }
  const clusterTable: LockTableEntry[] = [{name: 'user', kind: 'mutex', perInstance: true, scope: 'cluster', after: []}]

  it('one holder in the cluster: bodies on two shards never overlap', async () => {
    const [a, b] = [await bus(0), await bus(1)]
    try {
      const la = createLocks(clusterTable, {dev: false, leases: a}) as Token
      const lb = createLocks(clusterTable, {dev: false, leases: b}) as Token
      let inside = 0
      let most = 0
      const body = async () => {
        most = Math.max(most, ++inside)
        await tick()
        inside--
      }
      await Promise.all(Array.from({length: 10}, (_, i) => (i % 2 ? la : lb).user(7).lock(body)))
      expect(most).toBe(1)
      expect(b.stats().leaseWaits + a.stats().leaseWaits).toBeGreaterThan(0)
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })

  it('a lease held by a shard that died is taken over once the shard is found dead', async () => {
    const [a, b] = [await bus(0), await bus(1)]
    try {
      const la = createLocks(clusterTable, {dev: false, leases: a}) as Token
      const lb = createLocks(clusterTable, {dev: false, leases: b}) as Token
      let release!: () => void
      const held = new Promise<void>((resolve) => (release = resolve))
      let taken!: () => void
      const aHas = new Promise<void>((resolve) => (taken = resolve))
      void la.user('x').lock(() => (taken(), held))
      await aHas
      // Shard a goes silent without releasing (as a crash would); b waits out its lease.
      const started = Date.now()
      ;(a as unknown as {timer?: NodeJS.Timeout}).timer && clearInterval((a as unknown as {timer: NodeJS.Timeout}).timer)
      await lb.user('x').lock(() => undefined)
      const waited = Date.now() - started
      expect(b.stats().leaseTakeovers).toBe(1)
      expect(waited).toBeGreaterThanOrEqual(300)
      release()
    } finally {
      await Promise.all([a.stop(), b.stop()])
    }
  })
})
