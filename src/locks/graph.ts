// The lock graph: which lock is taken while which is held, by which operation and step,
// plus the declared order. Built by walking every operation with a stack of held locks.
import type {Position} from '../diagnostics/diagnostic.js'
import type {LockDef, Operation, Spec, Step} from '../spec/model.js'

export interface Loc extends Position {
  file: string
  endCol?: number
}

/** One acquisition of `to` while `from` is held: the witness behind a used edge. */
export interface UsedEdge {
  from: string
  to: string
  fromMode: 'read' | 'write'
  toMode: 'read' | 'write'
  /** The operation walked from, then each operation called on the way. */
  chain: string[]
  heldAt: Loc
  takenAt: Loc
}

export interface DeclaredEdge {
  from: string
  to: string
  at: Loc
}

/** A problem found while walking, before the graph-wide checks. */
export interface WalkProblem {
  kind: 'self' | 'upgrade' | 'nest' | 'js' | 'wait' | 'leaf' | 'recursion'
  at: Loc
  chain: string[]
  /** The lock(s) held at the time, innermost last. */
  held: {lock: string; mode: 'read' | 'write'; at: Loc}[]
  lock?: string
}

export interface LockGraph {
  locks: Map<string, LockDef & {file: string}>
  used: Map<string, UsedEdge[]>
  declared: DeclaredEdge[]
  never: DeclaredEdge[]
  problems: WalkProblem[]
}

export const edgeKey = (from: string, to: string) => `${from}\u0000${to}`

interface Held {
  lock: string
  mode: 'read' | 'write'
  at: Loc
}

/**
 * Builds the graph of one or more specs (the user's and the core's). Later specs may call
 * operations of earlier ones; locks and operations share one namespace.
 */
export function buildLockGraph(specs: readonly Spec[]): LockGraph {
  const locks = new Map<string, LockDef & {file: string}>()
  const ops = new Map<string, Operation & {file: string}>()
  for (const s of specs) {
    for (const l of s.locks) locks.set(l.name, {...l, file: s.file})
    for (const o of s.operations) ops.set(o.name, {...o, file: s.file})
  }
  const graph: LockGraph = {locks, used: new Map(), declared: [], never: [], problems: []}
  const loc = (file: string, p: Position & {endCol?: number}): Loc => ({file, ...p})

  for (const s of specs) {
    for (const st of s.order) {
      if (st.kind === 'chain') {
        for (let i = 0; i + 1 < st.groups.length; i++) {
          for (const a of st.groups[i]!) for (const b of st.groups[i + 1]!) graph.declared.push({from: a.name, to: b.name, at: loc(s.file, b.at)})
        }
      } else {
        graph.never.push({from: st.before.name, to: st.after.name, at: loc(s.file, st.after.at)})
      }
    }
  }

  const problem = (p: WalkProblem) => graph.problems.push(p)
  const walk = (steps: readonly Step[], file: string, held: Held[], chain: string[]) => {
    for (const step of steps) {
      const at = loc(file, step.at)
      if (step.kind === 'lock') {
        const def = locks.get(step.lock)
        if (!def) continue // reported as E402
        const leaf = held.find((h) => locks.get(h.lock)?.leaf)
        if (leaf) problem({kind: 'leaf', at, chain, held: [leaf], lock: step.lock})
        for (const h of held) {
          if (h.lock === step.lock) {
            const kind = def.perInstance ? (def.nestById ? undefined : 'nest') : h.mode === 'read' && step.mode === 'write' ? 'upgrade' : 'self'
            if (kind) problem({kind, at, chain, held: [h], lock: step.lock})
            continue
          }
          const key = edgeKey(h.lock, step.lock)
          const list = graph.used.get(key) ?? []
          list.push({from: h.lock, to: step.lock, fromMode: h.mode, toMode: step.mode, chain, heldAt: h.at, takenAt: at})
          graph.used.set(key, list)
        }
        held.push({lock: step.lock, mode: step.mode, at})
        walk(step.then, file, held, chain)
        held.pop()
      } else if (step.kind === 'call') {
        const target = ops.get(step.operation)
        if (!target) continue // reported as E403
        if (chain.includes(target.name)) {
          problem({kind: 'recursion', at, chain: [...chain, target.name], held: [...held]})
          continue
        }
        walk(target.steps, target.file, held, [...chain, target.name])
      } else if (held.length > 0) {
        problem({kind: step.kind, at, chain, held: [...held]})
      }
    }
  }
  for (const o of ops.values()) walk(o.steps, o.file, [], [o.name])
  return graph
}
