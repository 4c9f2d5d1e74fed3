// The deadlock check: walk problems, cycles with a lockdep-style witness, forbidden and
// undeclared orderings. Problems are placed in the spec being checked: one that happens
// inside the native core is placed at the spec's call into the core, which is named in detail.
import {relative, sep} from 'node:path'
import {fileURLToPath} from 'node:url'

import {type Code} from '../diagnostics/codes.js'
import {type Diagnostic, diagnostic} from '../diagnostics/diagnostic.js'
import {closure, components, shortestCycle} from './dag.js'
import {type DeclaredEdge, edgeKey, type LockGraph, type Loc, type Path, type UsedEdge, type WalkProblem} from './graph.js'

// Files of this package (the core's locks.yaml) are shown relative to it, as in the repository.
const PACKAGE = fileURLToPath(new URL('../../', import.meta.url))
const shown = (file: string) => (file.startsWith(PACKAGE) ? relative(PACKAGE, file).split(sep).join('/') : file)
const where = (l: Loc) => `${shown(l.file)}:${l.line}:${l.col}`
const via = (chain: string[]) => (chain.length > 1 ? ` (via ${chain.join(' -> ')})` : '')

/** Orders locations with the home spec's first, then by file and position. */
const byPlace = (home: string) => (a: Loc, b: Loc) =>
  Number(a.file !== home) - Number(b.file !== home) || a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col

/**
 * Where to report something that happens at `at` on `path`: there when it is in the home
 * spec, else at the home spec's last call on the way, with the rest of the chain outside.
 */
function place(home: string, at: Loc, path: Path): {at: Loc; outside?: string[]} {
  if (at.file === home) return {at}
  for (let i = path.calls.length - 1; i >= 0; i--) {
    if (path.calls[i]!.file === home) return {at: path.calls[i]!, outside: path.chain.slice(i + 1)}
  }
  return {at}
}

export interface LockCheck {
  diagnostics: Diagnostic[]
  /** Edges (edgeKey) on a reported cycle or breaking a forbidden order. */
  problemEdges: Set<string>
  /** Pairs (edgeKey) the declared order puts in this order, directly or transitively. */
  ordered: Set<string>
}

export function checkLockGraph(g: LockGraph): LockCheck {
  const problemEdges = new Set<string>()
  const cycles = cycleDiagnostics(g, problemEdges)
  const ordering = orderingDiagnostics(g, cycles.cyclic, problemEdges)
  return {diagnostics: [...walkDiagnostics(g), ...cycles.diagnostics, ...ordering.diagnostics], problemEdges, ordered: ordering.ordered}
}

/** What a step outside the home spec does, for the detail line naming it. */
const deed = (p: WalkProblem) => (p.kind === 'js' ? 'calls into JavaScript' : p.kind === 'wait' ? 'blocks on a completion' : `takes ${p.lock}`)

function walkDiagnostics(g: LockGraph): Diagnostic[] {
  // One report per step: the walk gives each step's best witness, home spec first.
  const out = new Map<string, Diagnostic>()
  for (const p of g.problems) {
    const key = `${p.kind}|${where(p.at)}`
    if (out.has(key)) continue
    const held = p.held.at(-1)!
    const heldText = p.held.map((h) => `${h.lock} (taken at ${where(h.at)})`).join(', ')
    const placed = place(g.home, p.at, p)
    const detail = placed.outside ? [`in the native core: ${placed.outside.join(' -> ')} ${deed(p)}  [${where(p.at)}]`] : undefined
    const d = (code: Code, message: string, hint: string) => out.set(key, diagnostic(code, placed.at.file, placed.at, message, hint, detail))
    switch (p.kind) {
      case 'self':
        d('E412', `${p.chain[0]} takes ${p.lock} while already holding it${via(p.chain)}: it waits for itself forever`, `locks are not recursive; do not take ${p.lock} again inside the section it guards (held since ${where(held.at)})`)
        break
      case 'upgrade':
        d('E413', `${p.chain[0]} takes ${p.lock} for writing while holding it for reading${via(p.chain)}`, `a read lock cannot be upgraded: two readers upgrading wait for each other; take ${p.lock} for writing from the start (${where(held.at)})`)
        break
      case 'nest':
        d('E414', `${p.chain[0]} takes a second ${p.lock} while holding one${via(p.chain)}, and ${p.lock} has no by-id order`, `set nestById: true on ${p.lock} and always take two instances in ascending id order, or take only one at a time`)
        break
      case 'js':
        d('E415', `${p.chain[0]} calls into JavaScript while holding ${heldText}${via(p.chain)}`, 'JavaScript may run for long and may re-enter the core; release every lock before the call')
        break
      case 'wait':
        d('E416', `${p.chain[0]} blocks on a completion while holding ${heldText}${via(p.chain)}`, 'the completion may need the same lock to finish; release every lock before waiting')
        break
      case 'leaf':
        d('E417', `${p.chain[0]} takes ${p.lock} while holding ${held.lock}, a leaf lock${via(p.chain)}`, `nothing may be taken under a leaf lock; release ${held.lock} first, or remove leaf from it`)
        break
      case 'recursion':
        d('E419', `operation ${p.chain[0]} calls itself: ${p.chain.join(' -> ')}`, 'the lock check follows calls; break the cycle of calls')
        break
    }
  }
  return [...out.values()]
}

type Edge = {kind: 'used'; witness: UsedEdge} | {kind: 'declared'; witness: DeclaredEdge}

function edgesOf(g: LockGraph): Map<string, Map<string, Edge>> {
  const adj = new Map<string, Map<string, Edge>>()
  const before = byPlace(g.home)
  // Prefer a used edge as witness (it is what can deadlock), then a statement over a rule,
  // then the earliest.
  const weight = (e: Edge) => (e.kind === 'used' ? 0 : e.witness.rule ? 2 : 1)
  const add = (from: string, to: string, e: Edge) => {
    const m = adj.get(from) ?? new Map<string, Edge>()
    const prev = m.get(to)
    if (!prev || weight(e) - weight(prev) < 0 || (weight(e) === weight(prev) && before(pos(g, e), pos(g, prev)) < 0)) m.set(to, e)
    adj.set(from, m)
  }
  for (const d of g.declared) add(d.from, d.to, {kind: 'declared', witness: d})
  for (const u of g.used.values()) add(u.from, u.to, {kind: 'used', witness: u})
  return adj
}

/** Where an edge is reported: a used edge in the home spec, at the call into the core if need be. */
const pos = (g: LockGraph, e: Edge): Loc => (e.kind === 'used' ? place(g.home, e.witness.takenAt, e.witness).at : e.witness.at)

/** One line of a cycle's witness. */
function line(g: LockGraph, e: Edge): string {
  if (e.kind === 'declared') return `${e.witness.rule ?? `the order declares ${e.witness.from} < ${e.witness.to}`}  [${where(e.witness.at)}]`
  const w = e.witness
  const placed = place(g.home, w.takenAt, w)
  const inside = placed.outside ? `; in the native core: ${placed.outside.join(' -> ')}, ${where(w.takenAt)}` : ''
  return `${w.chain[0]} takes ${w.to} while holding ${w.from}${via(w.chain)}  [${where(placed.at)}${inside}]`
}

/** Successors of a lock, sorted: which cycle and which witness are reported must not depend on spec order. */
const sortedNext = (adj: Map<string, Map<string, Edge>>) => (v: string) => [...(adj.get(v)?.keys() ?? [])].sort()

/** Cycle reports, and the set of locks on a cycle (their orderings are already reported). */
function cycleDiagnostics(g: LockGraph, problemEdges: Set<string>): {diagnostics: Diagnostic[]; cyclic: Map<string, number>} {
  const adj = edgesOf(g)
  const before = byPlace(g.home)
  const out: Diagnostic[] = []
  const cyclic = new Map<string, number>()
  const next = sortedNext(adj)
  for (const [n, comp] of components([...g.locks.keys()].sort(), next).entries()) {
    if (comp.length < 2) continue
    for (const l of comp) cyclic.set(l, n)
    let cycle = shortestCycle([...comp].sort(), next) ?? comp
    const edge = (i: number) => adj.get(cycle[i]!)!.get(cycle[(i + 1) % cycle.length]!)!
    // Start the report at the earliest used edge (else the earliest statement) in the spec:
    // that is where the user will look.
    const starts = cycle.map((_, i) => i).filter((i) => edge(i).kind === 'used' || !cycle.some((_, j) => edge(j).kind === 'used'))
    const statements = starts.filter((i) => !(edge(i).kind === 'declared' && (edge(i).witness as DeclaredEdge).rule))
    const start = (statements.length > 0 ? statements : starts).reduce((a, b) => (before(pos(g, edge(b)), pos(g, edge(a))) < 0 ? b : a))
    cycle = [...cycle.slice(start), ...cycle.slice(0, start)]
    const edges = cycle.map((_, i) => edge(i))
    const names = [...cycle, cycle[0]!]
    for (let i = 0; i < cycle.length; i++) problemEdges.add(edgeKey(names[i]!, names[i + 1]!))
    const lines = edges.map((e) => line(g, e))
    const a = cycle[0]!
    const b = cycle[1]!
    const detail = [
      ...lines,
      '',
      'Chain exists of:',
      `  ${names.slice(1).join(' --> ')}`,
      '',
      'Possible unsafe locking scenario:',
      '',
      '      thread A                thread B',
      '      --------                --------',
      `  lock(${a});`,
      `                              lock(${b});`,
      `                              lock(${a});`,
      `  lock(${b});`,
      '',
      ' *** DEADLOCK ***',
    ]
    const first = edges[0]!
    const at = pos(g, first)
    if (edges.every((e) => e.kind === 'declared')) {
      const rule = edges.some((e) => e.kind === 'declared' && e.witness.rule)
      const hint = rule ? "the core's locks come after every lock of the spec; remove the statement that puts a core lock first" : 'an order cannot put a lock before itself; remove one of these statements'
      out.push(diagnostic('E410', at.file, at, `the declared order is a cycle: ${names.join(' < ')}`, hint, lines))
      continue
    }
    const declared = edges.find((e) => e.kind === 'declared')
    const hint = declared
      ? `the declared order says ${declared.witness.from} < ${declared.witness.to}; change the operation to take ${declared.witness.from} first, or release ${first.witness.from} before taking ${first.witness.to}`
      : `choose one order for ${[...new Set(cycle)].join(', ')}, declare it under order:, and change the operations that take them the other way`
    out.push(diagnostic('E411', at.file, at, `possible deadlock: ${names.join(' -> ')}`, hint, detail))
  }
  return {diagnostics: out, cyclic}
}

function orderingDiagnostics(g: LockGraph, cyclic: ReadonlyMap<string, number>, problemEdges: Set<string>): {diagnostics: Diagnostic[]; ordered: Set<string>} {
  const out: Diagnostic[] = []
  // Reachability over the declared order only.
  const locks = [...g.locks.keys()]
  const reach = closure(locks, g.declared)
  // A spec may forbid nesting its lock with a core lock: that only strengthens the rule.
  const stated = g.declared.some((d) => d.rule) ? closure(locks, g.declared.filter((d) => !d.rule)) : reach
  const placed = (w: UsedEdge) => place(g.home, w.takenAt, w)
  const inCore = (w: UsedEdge) => {
    const p = placed(w)
    return p.outside ? [`in the native core: ${p.outside.join(' -> ')} takes ${w.to}  [${where(w.takenAt)}]`] : undefined
  }

  for (const n of g.never) {
    const used = g.used.get(edgeKey(n.from, n.to))
    if (used) {
      problemEdges.add(edgeKey(n.from, n.to))
      const w = used
      out.push(diagnostic('E418', placed(w).at.file, placed(w).at, `${w.chain[0]} takes ${n.to} while holding ${n.from}${via(w.chain)}, which the order forbids (${n.from} !< ${n.to})`, `release ${n.from} before taking ${n.to} (forbidden at ${where(n.at)})`, inCore(w)))
    }
    if (stated.get(n.from)?.has(n.to)) {
      out.push(diagnostic('E410', n.at.file, n.at, `the order both puts ${n.from} before ${n.to} and forbids it (${n.from} !< ${n.to})`, 'remove one of the two statements'))
    }
  }
  for (const w of g.used.values()) {
    const declared = reach.get(w.from)?.has(w.to)
    const reversed = reach.get(w.to)?.has(w.from) || g.used.has(edgeKey(w.to, w.from))
    const forbidden = g.never.some((n) => n.from === w.from && n.to === w.to)
    const inCycle = cyclic.has(w.from) && cyclic.get(w.from) === cyclic.get(w.to)
    if (!declared && !reversed && !forbidden && !inCycle) {
      out.push(diagnostic('W005', placed(w).at.file, placed(w).at, `${w.chain[0]} takes ${w.to} while holding ${w.from}${via(w.chain)}, an order the spec does not declare`, `add "${w.from} < ${w.to}" to order, so later changes are checked against it`, inCore(w)))
    }
  }
  const ordered = new Set([...reach].flatMap(([from, tos]) => [...tos].map((to) => edgeKey(from, to))))
  return {diagnostics: out, ordered}
}
