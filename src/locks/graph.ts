// The lock graph: which lock is taken while which is held, by which operation and step,
// plus the declared order. Built by walking every operation with a stack of held locks.
import type {Position} from '../diagnostics/diagnostic.js'
import type {LockDef, Operation, Spec, Step} from '../spec/model.js'
import {components, cycleThrough, declaredOrder} from './dag.js'

export interface Loc extends Position {
  file: string
  endCol?: number
}

/** Where a walk went: the operation it started from, each operation called, and the calls. */
export interface Path {
  /** The operation walked from, then each operation called on the way. */
  chain: string[]
  /** calls[i] is the call step in chain[i] that enters chain[i + 1]. */
  calls: Loc[]
}

/** One acquisition of `to` while `from` is held: the witness behind a used edge. */
export interface UsedEdge extends Path {
  from: string
  to: string
  fromMode: 'read' | 'write'
  toMode: 'read' | 'write'
  heldAt: Loc
  takenAt: Loc
  /** Every operation whose walk takes `to` while holding `from`, in spec order. */
  operations: string[]
}

export interface DeclaredEdge {
  from: string
  to: string
  at: Loc
  /** Set when the edge comes from a rule rather than an order statement: says which. */
  rule?: string
}

/** A problem found while walking, before the graph-wide checks. */
export interface WalkProblem extends Path {
  kind: 'self' | 'upgrade' | 'nest' | 'js' | 'wait' | 'leaf' | 'recursion'
  at: Loc
  /** The lock(s) held at the time, innermost last. */
  held: {lock: string; mode: 'read' | 'write'; at: Loc}[]
  lock?: string
}

export interface LockGraph {
  locks: Map<string, LockDef & {file: string}>
  /** One witness per (held, taken) pair, keyed by edgeKey. */
  used: Map<string, UsedEdge>
  declared: DeclaredEdge[]
  never: DeclaredEdge[]
  problems: WalkProblem[]
  /** The spec being checked; problems found elsewhere (the core) are placed back in it. */
  home: string
  /** Work done by the walk, for tests that guard against blow-ups: steps and pairs visited. */
  visits: number
}

export const edgeKey = (from: string, to: string) => `${from}\u0000${to}`

// Sets of step ids as bit arrays: reachability is a union over callees, done word by word.
type Bits = Uint32Array
const has = (b: Bits, i: number) => (b[i >>> 5]! & (1 << (i & 31))) !== 0
const set = (b: Bits, i: number) => void (b[i >>> 5]! |= 1 << (i & 31))
const or = (into: Bits, from: Bits) => {
  for (let w = 0; w < into.length; w++) into[w]! |= from[w]!
}
const each = (b: Bits, f: (i: number) => void) => {
  for (let w = 0; w < b.length; w++) {
    for (let word = b[w]!; word !== 0; word &= word - 1) f(w * 32 + (31 - Math.clz32(word & -word)))
  }
}

interface StepInfo {
  step: Step
  op: number
  at: Loc
  /** The body that lists this step: an operation's (its index) or a lock step's section (after those). */
  body: number
}

/**
 * Builds the graph of one or more specs (the user's and the core's). Later specs may call
 * operations of earlier ones; locks and operations share one namespace. `home` is the file
 * diagnostics belong to (the last spec's by default).
 *
 * Rather than walking every path (exponential when operations share callees), it computes
 * which steps each lock step's section can reach, once per step, and reads the edges and
 * misuse off those (held step, reached step) pairs; witnesses are shortest paths found after.
 */
export function buildLockGraph(specs: readonly Spec[], home = specs.at(-1)?.file ?? ''): LockGraph {
  const locks = new Map<string, LockDef & {file: string}>()
  const opsByName = new Map<string, Operation & {file: string}>()
  for (const s of specs) {
    for (const l of s.locks) locks.set(l.name, {...l, file: s.file})
    for (const o of s.operations) opsByName.set(o.name, {...o, file: s.file})
  }
  const {edges: declared, never} = declaredOrder(specs)
  const graph: LockGraph = {locks, used: new Map(), declared, never, problems: [], home, visits: 0}
  const loc = (file: string, p: Position & {endCol?: number}): Loc => ({file, ...p})

  // Number the steps. A lock step of an unknown lock (E402) is skipped with its section,
  // and a call of an unknown operation (E403) leads nowhere.
  const ops = [...opsByName.values()]
  const opIndex = new Map(ops.map((o, i) => [o.name, i]))
  const steps: StepInfo[] = []
  const bodySteps: number[][] = ops.map(() => [])
  const lockBody: number[] = []
  const number = (list: readonly Step[], op: number, body: number) => {
    for (const step of list) {
      if (step.kind === 'lock' && !locks.has(step.lock)) continue
      const id = steps.length
      steps.push({step, op, at: loc(ops[op]!.file, step.at), body})
      bodySteps[body]!.push(id)
      graph.visits++
      if (step.kind === 'lock') {
        lockBody[id] = bodySteps.length
        bodySteps.push([])
        number(step.then, op, lockBody[id]!)
      }
    }
  }
  ops.forEach((o, i) => number(o.steps, i, i))
  const callee = (id: number) => {
    const st = steps[id]!.step
    return st.kind === 'call' ? opIndex.get(st.operation) : undefined
  }
  const words = Math.max(1, Math.ceil(steps.length / 32))

  // Steps each operation can reach, callees first (Tarjan's order); an operation in a cycle of
  // calls reaches everything its cycle does.
  const calls = ops.map((_, i) => [...new Set(stepsUnder(i).map(callee).filter((c): c is number => c !== undefined))])
  function stepsUnder(body: number): number[] {
    return bodySteps[body]!.flatMap((id) => (lockBody[id] === undefined ? [id] : [id, ...stepsUnder(lockBody[id]!)]))
  }
  // Ascending members: a cycle of calls is reported from its first operation.
  const cycles = components(ops.map((_, i) => i), (o) => calls[o]!).map((comp) => comp.sort((a, b) => a - b))
  const reach: Bits[] = ops.map(() => new Uint32Array(words))
  for (const comp of cycles) {
    const bits = new Uint32Array(words)
    for (const o of comp) {
      for (const id of stepsUnder(o)) {
        set(bits, id)
        const c = callee(id)
        if (c !== undefined && !comp.includes(c)) or(bits, reach[c]!)
        graph.visits++
      }
    }
    for (const o of comp) reach[o] = bits
  }
  // What each lock step's section reaches: its nested steps and what their calls reach.
  const section = new Map<number, Bits>()
  const sectionOf = (id: number): Bits => {
    let bits = section.get(id)
    if (bits) return bits
    bits = new Uint32Array(words)
    for (const inner of bodySteps[lockBody[id]!]!) {
      set(bits, inner)
      if (lockBody[inner] !== undefined) or(bits, sectionOf(inner))
      const c = callee(inner)
      if (c !== undefined) or(bits, reach[c]!)
      graph.visits++
    }
    section.set(id, bits)
    return bits
  }

  // Shortest way from a lock step's section to the body holding a step: calls cost one,
  // entering a nested section nothing, so the call chain is as short as it can be.
  const routes = new Map<number, {prev: Int32Array; via: Int32Array}>()
  const route = (from: number, to: number): {path: Path; held: number[]} => {
    let r = routes.get(from)
    if (!r) {
      const n = bodySteps.length
      const dist = new Int32Array(n).fill(-1)
      r = {prev: new Int32Array(n).fill(-1), via: new Int32Array(n).fill(-1)}
      const start = lockBody[from]!
      dist[start] = 0
      const deque = [start]
      const done = new Uint8Array(n)
      while (deque.length > 0) {
        const b = deque.shift()!
        if (done[b]) continue
        done[b] = 1
        for (const id of bodySteps[b]!) {
          const c = callee(id)
          const next = lockBody[id] ?? c
          if (next === undefined) continue
          const d = dist[b]! + (c === undefined ? 0 : 1)
          if (dist[next] === -1 || d < dist[next]!) {
            dist[next] = d
            r.prev[next] = b
            r.via[next] = id
            if (c === undefined) deque.unshift(next)
            else deque.push(next)
          }
        }
      }
      routes.set(from, r)
    }
    const hops: number[] = []
    for (let b = to; b !== lockBody[from]; b = r.prev[b]!) hops.push(r.via[b]!)
    hops.reverse()
    const path: Path = {chain: [ops[steps[from]!.op]!.name], calls: []}
    const held = [from]
    for (const id of hops) {
      const c = callee(id)
      if (c === undefined) held.push(id)
      else (path.calls.push(steps[id]!.at), path.chain.push(ops[c]!.name))
    }
    return {path, held}
  }
  const heldOf = (ids: number[]) =>
    ids.map((id) => {
      const st = steps[id]!.step as Extract<Step, {kind: 'lock'}>
      return {lock: st.lock, mode: st.mode, at: steps[id]!.at}
    })

  // Walk order for choosing witnesses: steps of the home spec first, then spec order.
  const rank = (id: number) => (steps[id]!.at.file === home ? 0 : steps.length) + id
  // Order of steps by where they are, home spec first: the earliest taking is an edge's witness.
  const placeOrder = new Int32Array(steps.length)
  steps
    .map((_, id) => id)
    .sort((a, b) => {
      const x = steps[a]!.at
      const y = steps[b]!.at
      return Number(x.file !== home) - Number(y.file !== home) || x.file.localeCompare(y.file) || x.line - y.line || x.col - y.col || a - b
    })
    .forEach((id, i) => (placeOrder[id] = i))

  // Every (held lock step, step reached while it is held) pair.
  const lockNo = new Map([...locks.keys()].map((n, i) => [n, i]))
  const edges = new Map<number, {taken: number; holders: number[]; by: number[]}>()
  const misuse = new Map<string, {kind: WalkProblem['kind']; at: number; holders: number[]}>()
  const note = (kind: WalkProblem['kind'], at: number, holder: number) => {
    const key = `${kind}|${at}`
    const m = misuse.get(key) ?? {kind, at, holders: []}
    m.holders.push(holder)
    misuse.set(key, m)
  }
  steps.forEach((info, h) => {
    if (info.step.kind !== 'lock') return
    const held = info.step
    const def = locks.get(held.lock)!
    const row = lockNo.get(held.lock)! * lockNo.size
    each(sectionOf(h), (s) => {
      graph.visits++
      if (s === h) return // reached again only through a cycle of calls, reported as E419
      const st = steps[s]!.step
      if (st.kind === 'js' || st.kind === 'wait') note(st.kind, s, h)
      if (st.kind !== 'lock') return
      if (def.leaf) note('leaf', s, h)
      if (st.lock === held.lock) {
        const kind = def.perInstance ? (def.nestById ? undefined : 'nest') : held.mode === 'read' && st.mode === 'write' ? 'upgrade' : 'self'
        if (kind) note(kind, s, h)
        return
      }
      const key = row + lockNo.get(st.lock)!
      const e = edges.get(key)
      if (!e) edges.set(key, {taken: s, holders: [h], by: [h]})
      else {
        if (e.by.at(-1) !== h) e.by.push(h)
        if (placeOrder[s]! < placeOrder[e.taken]!) (e.taken = s), (e.holders = [h])
        else if (s === e.taken) e.holders.push(h)
      }
    })
  })

  // Operations whose walk reaches a lock step, for the graph's labels.
  const walkersOf = new Map<number, Bits>()
  const walkers = (h: number) => {
    let bits = walkersOf.get(h)
    if (!bits) {
      bits = new Uint32Array(Math.ceil(ops.length / 32))
      for (let i = 0; i < ops.length; i++) if (has(reach[i]!, h)) set(bits, i)
      walkersOf.set(h, bits)
    }
    return bits
  }
  for (const e of edges.values()) {
    const taken = steps[e.taken]!.step as Extract<Step, {kind: 'lock'}>
    const from = (steps[e.holders[0]!]!.step as Extract<Step, {kind: 'lock'}>).lock
    // Labels and paths are found only when asked for: most edges are never reported.
    let operations: string[] | undefined
    const takers = () => {
      const by = new Uint32Array(Math.ceil(ops.length / 32))
      for (const h of e.by) or(by, walkers(h))
      const names: string[] = []
      each(by, (i) => names.push(ops[i]!.name))
      return names
    }
    let best: {h: number; path: Path} | undefined
    const witness = () =>
      (best ??= e.holders
        .map((h) => ({h, path: route(h, steps[e.taken]!.body).path}))
        .reduce((a, b) => (b.path.chain.length < a.path.chain.length || (b.path.chain.length === a.path.chain.length && rank(b.h) < rank(a.h)) ? b : a)))
    const held = () => heldOf([witness().h])[0]!
    graph.used.set(edgeKey(from, taken.lock), {
      from, to: taken.lock, toMode: taken.mode, takenAt: steps[e.taken]!.at,
      get operations() {
        return (operations ??= takers())
      },
      get fromMode() {
        return held().mode
      },
      get heldAt() {
        return held().at
      },
      get chain() {
        return witness().path.chain
      },
      get calls() {
        return witness().path.calls
      },
    })
  }

  for (const m of misuse.values()) {
    const holder = m.holders.reduce((a, b) => (rank(b) < rank(a) ? b : a))
    const {path, held} = route(holder, steps[m.at]!.body)
    const st = steps[m.at]!.step
    graph.problems.push({
      kind: m.kind, at: steps[m.at]!.at, ...path,
      held: heldOf(m.kind === 'js' || m.kind === 'wait' ? held : [holder]),
      ...(st.kind === 'lock' ? {lock: st.lock} : {}),
    })
  }

  // A cycle of calls: reported once, from its first operation, at the call that closes it.
  for (const comp of cycles) {
    const start = comp[0]!
    if (comp.length === 1 && !calls[start]!.includes(start)) continue
    const chain = cycleThrough(start, (o) => calls[o]!, new Set(comp))!
    const last = chain.at(-1)!
    const callAt = (from: number, to: number) => steps[stepsUnder(from).find((id) => callee(id) === to)!]!.at
    chain.push(start)
    graph.problems.push({
      kind: 'recursion', at: callAt(last, start), held: [],
      chain: chain.map((o) => ops[o]!.name), calls: chain.slice(1).map((o, i) => callAt(chain[i]!, o)),
    })
  }
  graph.problems.sort((a, b) => Number(a.at.file !== home) - Number(b.at.file !== home) || a.at.line - b.at.line || a.at.col - b.at.col || a.kind.localeCompare(b.kind))
  return graph
}
