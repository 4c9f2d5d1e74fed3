// Emits lock_ranks.h: the declared locks of a spec as C++ ranks in topological order, and
// for each lock the set of locks that may already be held when it is taken (the transitive
// declared order). Debug builds of the core check every acquisition against this table.
import type {Spec} from '../spec/model.js'
import {closure, DagCycleError, declaredOrder, topologicalOrder} from './dag.js'

export function emitLockRanks(spec: Spec, header: string): string {
  const names = spec.locks.map((l) => l.name)
  const known = new Set(names)
  // A lock the spec does not declare is an error validation reports; it has no rank.
  const edges = declaredOrder([spec]).edges.filter((e) => known.has(e.from) && known.has(e.to))
  // Everything that may be held when a lock is taken: what reaches it in the declared order.
  const before = closure(names, edges.map((e) => ({from: e.to, to: e.from})))
  let ranked: string[]
  try {
    // Ties broken by declaration order so the output is stable.
    ranked = topologicalOrder(names, edges)
  } catch (e) {
    if (e instanceof DagCycleError) throw new Error('lock order has a cycle; validate the spec first')
    throw e
  }
  if (ranked.length > 32) throw new Error('at most 32 core locks fit the may-hold masks')
  const index = new Map(ranked.map((n, i) => [n, i]))
  const mask = (n: string) => [...before.get(n)!].reduce((m, p) => m | (1 << index.get(p)!), 0) >>> 0
  const width = Math.max(...ranked.map((n) => n.length))
  return `${header}
#pragma once
#include <cstdint>

namespace iocpgen {

// Core locks, lowest rank first (a topological order of the declared order).
enum class LockRank : uint8_t {
${ranked.map((n, i) => `  ${n} = ${i},`).join('\n')}
};
constexpr int kLockRankCount = ${ranked.length};

constexpr const char* kLockRankNames[kLockRankCount] = {${ranked.map((n) => `"${n}"`).join(', ')}};

// kMayHold[r] has bit h set when lock h may be held while lock r is taken.
constexpr uint32_t kMayHold[kLockRankCount] = {
${ranked.map((n) => `  0x${mask(n).toString(16).padStart(8, '0')}u,  // ${n.padEnd(width)} after: ${[...before.get(n)!].sort((a, b) => index.get(a)! - index.get(b)!).join(', ') || '(nothing)'}`).join('\n')}
};

}  // namespace iocpgen
`
}
