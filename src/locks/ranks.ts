// Emits lock_ranks.h: the declared locks of a spec as C++ ranks in topological order, and
// for each lock the set of locks that may already be held when it is taken (the transitive
// declared order). Debug builds of the core check every acquisition against this table.
import type {Spec} from '../spec/model.js'

export function emitLockRanks(spec: Spec, header: string): string {
  const names = spec.locks.map((l) => l.name)
  const before = new Map(names.map((n) => [n, new Set<string>()]))
  for (const st of spec.order) {
    if (st.kind !== 'chain') continue
    for (let i = 0; i + 1 < st.groups.length; i++) {
      for (const a of st.groups[i]!) for (const b of st.groups[i + 1]!) before.get(b.name)?.add(a.name)
    }
  }
  // Transitive closure: everything before a predecessor is before us too.
  let changed = true
  while (changed) {
    changed = false
    for (const n of names) {
      const set = before.get(n)!
      for (const p of [...set]) for (const q of before.get(p) ?? []) if (!set.has(q)) (set.add(q), (changed = true))
    }
  }
  // Topological order (Kahn), ties broken by declaration order so output is stable.
  const ranked: string[] = []
  const left = new Set(names)
  while (left.size > 0) {
    const next = names.find((n) => left.has(n) && [...before.get(n)!].every((p) => !left.has(p)))
    if (!next) throw new Error('lock order has a cycle; validate the spec first')
    ranked.push(next)
    left.delete(next)
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
