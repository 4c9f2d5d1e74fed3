// Graphs of named nodes for the lock analysis: the declared order as edges, what each node
// reaches, a stable topological order, strongly connected components and shortest cycles.
// The graph walk, the checks and lock_ranks.h all read the order through here, so they agree.
import type {Spec} from '../spec/model.js'
import type {DeclaredEdge} from './graph.js'

export type {DeclaredEdge} from './graph.js'

/**
 * The declared order of specs: each chain statement puts every lock of a group before every
 * lock of the next one, and each `!<` statement forbids a pair. Edges are placed at their
 * second lock, in statement order.
 */
export function declaredOrder(specs: readonly Pick<Spec, 'file' | 'order'>[]): {edges: DeclaredEdge[]; never: DeclaredEdge[]} {
  const edges: DeclaredEdge[] = []
  const never: DeclaredEdge[] = []
  for (const s of specs) {
    for (const st of s.order) {
      if (st.kind === 'chain') {
        for (let i = 0; i + 1 < st.groups.length; i++) {
          for (const a of st.groups[i]!) for (const b of st.groups[i + 1]!) edges.push({from: a.name, to: b.name, at: {file: s.file, ...b.at}})
        }
      } else {
        never.push({from: st.before.name, to: st.after.name, at: {file: s.file, ...st.after.at}})
      }
    }
  }
  return {edges, never}
}

/** Successor lists in edge order; a node without edges out has none. */
function successors(edges: readonly {from: string; to: string}[]): Map<string, string[]> {
  const next = new Map<string, string[]>()
  for (const e of edges) next.get(e.from)?.push(e.to) ?? next.set(e.from, [e.to])
  return next
}

/**
 * For each of `nodes`, every node reachable from it over `edges`, found breadth first (so in
 * order of distance). A node reaches itself only through a cycle.
 */
export function closure(nodes: readonly string[], edges: readonly {from: string; to: string}[]): Map<string, Set<string>> {
  const next = successors(edges)
  const reach = (from: string) => {
    const seen = new Set<string>()
    const queue = [from]
    for (let i = 0; i < queue.length; i++) {
      for (const n of next.get(queue[i]!) ?? []) if (!seen.has(n)) (seen.add(n), queue.push(n))
    }
    return seen
  }
  return new Map(nodes.map((n) => [n, reach(n)]))
}

/** The edges among some nodes do not allow an order: `cycle` is one cycle, first node not repeated. */
export class DagCycleError extends Error {
  constructor(readonly cycle: string[]) {
    super(`the order has a cycle: ${[...cycle, cycle[0]].join(' < ')}`)
    this.name = 'DagCycleError'
  }
}

/**
 * Kahn's topological order of `nodes`; of the nodes ready at each step the earliest in `nodes`
 * comes first, so ties keep their input order and generated output stays put. Edges touching
 * a node not in `nodes` are ignored.
 */
export function topologicalOrder(nodes: readonly string[], edges: readonly {from: string; to: string}[]): string[] {
  const position = new Map(nodes.map((n, i) => [n, i]))
  const inside = edges.filter((e) => position.has(e.from) && position.has(e.to))
  const next = successors(inside)
  const waiting = new Map(nodes.map((n) => [n, 0]))
  for (const e of inside) waiting.set(e.to, waiting.get(e.to)! + 1)
  const out: string[] = []
  const placed = new Set<string>()
  while (out.length < nodes.length) {
    // Lock orders are short: scanning for the earliest ready node keeps the tie rule obvious.
    const ready = nodes.find((n) => !placed.has(n) && waiting.get(n) === 0)
    if (ready === undefined) throw new DagCycleError(cycleAmong(nodes.filter((n) => !placed.has(n)), inside))
    out.push(ready)
    placed.add(ready)
    for (const n of next.get(ready) ?? []) waiting.set(n, waiting.get(n)! - 1)
  }
  return out
}

/** A cycle among nodes each of which has a predecessor among them: walk back until one repeats. */
function cycleAmong(left: readonly string[], edges: readonly {from: string; to: string}[]): string[] {
  const rest = new Set(left)
  const prev = new Map<string, string>()
  for (const e of edges) if (rest.has(e.from) && rest.has(e.to) && !prev.has(e.to)) prev.set(e.to, e.from)
  const walk: string[] = []
  const seen = new Map<string, number>()
  for (let n = left[0]!; !seen.has(n); n = prev.get(n)!) (seen.set(n, walk.length), walk.push(n))
  const cycle = walk.slice(seen.get(prev.get(walk.at(-1)!)!)!).reverse()
  // Start at the node listed first, so the message does not depend on where the walk began.
  const first = cycle.reduce((a, b) => (left.indexOf(b) < left.indexOf(a) ? b : a))
  const at = cycle.indexOf(first)
  return [...cycle.slice(at), ...cycle.slice(0, at)]
}

/**
 * Strongly connected components (Tarjan), each finished component before the ones that reach
 * it. Nodes are visited in the order given and successors in the order `next` yields them, so
 * callers that want a stable answer pass both sorted; members are listed as the stack unwinds.
 * Iterative, so long chains of calls do not overflow the stack.
 */
export function components<N>(nodes: readonly N[], next: (n: N) => Iterable<N>): N[][] {
  let counter = 0
  const index = new Map<N, number>()
  const low = new Map<N, number>()
  const stack: N[] = []
  const onStack = new Set<N>()
  const out: N[][] = []
  const enter = (v: N) => {
    index.set(v, counter)
    low.set(v, counter++)
    stack.push(v)
    onStack.add(v)
    return {v, rest: next(v)[Symbol.iterator]()}
  }
  for (const root of nodes) {
    if (index.has(root)) continue
    const frames = [enter(root)]
    while (frames.length > 0) {
      const top = frames.at(-1)!
      const step = top.rest.next()
      if (!step.done) {
        const w = step.value
        if (!index.has(w)) frames.push(enter(w))
        else if (onStack.has(w)) low.set(top.v, Math.min(low.get(top.v)!, index.get(w)!))
        continue
      }
      frames.pop()
      const v = top.v
      const parent = frames.at(-1)
      if (parent) low.set(parent.v, Math.min(low.get(parent.v)!, low.get(v)!))
      if (low.get(v) !== index.get(v)) continue
      const comp: N[] = []
      let w: N
      do {
        w = stack.pop()!
        onStack.delete(w)
        comp.push(w)
      } while (w !== v)
      out.push(comp)
    }
  }
  return out
}

/**
 * The shortest cycle through `start` that stays among `within` (breadth first, successors in
 * the order `next` yields them): its nodes from `start`, which is not repeated at the end.
 */
export function cycleThrough<N>(start: N, next: (n: N) => Iterable<N>, within: ReadonlySet<N>): N[] | undefined {
  const prev = new Map<N, N>()
  const queue = [start]
  for (let i = 0; i < queue.length; i++) {
    const v = queue[i]!
    for (const w of next(v)) {
      if (!within.has(w)) continue
      if (w === start) {
        const path = [v]
        while (path[0] !== start) path.unshift(prev.get(path[0]!)!)
        return path
      }
      if (!prev.has(w)) (prev.set(w, v), queue.push(w))
    }
  }
  return undefined
}

/** The shortest cycle in a component, trying starts in the order given (the first shortest wins). */
export function shortestCycle<N>(comp: readonly N[], next: (n: N) => Iterable<N>): N[] | undefined {
  const within = new Set(comp)
  let best: N[] | undefined
  for (const start of comp) {
    const cycle = cycleThrough(start, next, within)
    if (cycle && (!best || cycle.length < best.length)) best = cycle
  }
  return best
}
