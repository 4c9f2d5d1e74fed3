// PROVISIONAL: replaced by the dag branch.
import type {Spec} from '../spec/model.js'
import type {DeclaredEdge} from './graph.js'
export function declaredOrder(specs: readonly Spec[]): {edges: DeclaredEdge[]; never: DeclaredEdge[]} {
  const edges: DeclaredEdge[] = []
  const never: DeclaredEdge[] = []
  for (const s of specs) {
    for (const st of s.order) {
      if (st.kind === 'chain') {
        for (let i = 0; i + 1 < st.groups.length; i++) for (const a of st.groups[i]!) for (const b of st.groups[i + 1]!) edges.push({from: a.name, to: b.name, at: {file: s.file, ...b.at}})
      } else never.push({from: st.before.name, to: st.after.name, at: {file: s.file, ...st.after.at}})
    }
  }
  return {edges, never}
}
export function closure(nodes: readonly string[], edges: readonly {from: string; to: string}[]): Map<string, Set<string>> {
  const next = new Map<string, string[]>()
  for (const e of edges) next.get(e.from)?.push(e.to) ?? next.set(e.from, [e.to])
  return new Map(nodes.map((n) => {
    const seen = new Set<string>()
    const q = [n]
    while (q.length) for (const m of next.get(q.shift()!) ?? []) if (!seen.has(m)) (seen.add(m), q.push(m))
    return [n, seen]
  }))
}
