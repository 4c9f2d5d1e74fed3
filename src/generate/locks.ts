// Emits src/generated/locks.ts: the spec's locks as typed tokens. The body of an acquisition
// receives a token whose type offers only the locks the declared order places after the
// one taken, so taking locks against the order is a compile error. The run-time side
// (mutexes, per-key instances, leases, the development checks) is @iocpgen/runtime's.
import {closure, declaredOrder} from '../locks/dag.js'
import type {LockDef, Spec} from '../spec/model.js'
import {pascal} from './names.js'

const holding = (l: LockDef) => `Holding${pascal(l.name)}`

function member(l: LockDef): string {
  const handle = `${l.kind === 'rwlock' ? 'RwLockHandle' : 'MutexHandle'}<'${l.name}', ${holding(l)}>`
  const what = [l.kind === 'rwlock' ? 'reader-writer lock' : 'mutex', l.perInstance && 'one per key', l.scope === 'cluster' && 'one holder in the cluster'].filter(Boolean).join(', ')
  const doc = `  /** ${l.name}: ${what}. */`
  return `${doc}\n  readonly ${l.name}: ${l.perInstance ? `(key: LockKey) => ${handle}` : handle}`
}

export function emitLocks(spec: Spec, header: string): string {
  const names = spec.locks.map((l) => l.name)
  const after = closure(names, declaredOrder([spec]).edges)
  const byName = new Map(spec.locks.map((l) => [l.name, l]))
  // A token offers the locks after the held one, in declaration order; a nestById lock also
  // offers its own instances (keys ascending, checked at run time).
  const offered = (l: LockDef) => spec.locks.filter((m) => after.get(l.name)!.has(m.name) || (m === l && l.nestById))
  const body = (members: LockDef[]) => (members.length ? `{\n${members.map(member).join('\n')}\n}` : '{}')
  const tokens = spec.locks.map((l) => {
    const doc = offered(l).length ? `What may be taken while holding ${l.name}.` : `Holding ${l.name}: the order places nothing after it.`
    return `/** ${doc} */\nexport interface ${holding(l)} ${body(offered(l))}`
  })
  const table = spec.locks.map((l) => {
    const kind = l.kind === 'rwlock' ? 'rwlock' : 'mutex'
    const flags = [l.perInstance && 'perInstance: true', l.nestById && 'nestById: true', l.scope === 'cluster' && "scope: 'cluster'"].filter(Boolean)
    const later = names.filter((n) => after.get(l.name)!.has(n) && byName.has(n))
    return `  {name: '${l.name}', kind: '${kind}', ${flags.map((f) => `${f}, `).join('')}after: [${later.map((n) => `'${n}'`).join(', ')}]},`
  })
  return `${header}
//
// The spec's locks. Take one with lock() (mutex) or read()/write() (rwlock); its body gets a
// token offering only the locks the spec's order places after it, so a wrong order does not
// compile:
//
//   await locks.${names[0]}${byName.get(names[0]!)!.perInstance ? '(key)' : ''}.${byName.get(names[0]!)!.kind === 'rwlock' ? 'write' : 'lock'}(async (held) => { /* held offers the later locks */ })
//
// In development (not NODE_ENV=production) each acquisition is also checked against what its
// async context holds, which catches locks reached without a token, and locks held or waited
// on longer than IOCPGEN_LOCK_WARN_MS (1000 ms) are reported with where they were taken.
import {createLocks} from '@iocpgen/runtime'

export type LockKey = string | number

export interface MutexHandle<N extends string, After> {
  readonly lockName: N
  lock<R>(body: (held: After) => R | Promise<R>): Promise<R>
}

export interface RwLockHandle<N extends string, After> {
  readonly lockName: N
  read<R>(body: (held: After) => R | Promise<R>): Promise<R>
  write<R>(body: (held: After) => R | Promise<R>): Promise<R>
}

/** Nothing held: every lock may be taken. */
export interface Unlocked ${body(spec.locks)}

${tokens.join('\n\n')}

export const locks = createLocks([
${table.join('\n')}
]) as Unlocked
`
}
