// The lock graph as text, Graphviz DOT, Mermaid or JSON: for docs and pull requests.
import type {LockCheck} from './check.js'
import {edgeKey, type LockGraph} from './graph.js'

export type GraphFormat = 'text' | 'dot' | 'mermaid' | 'json'

export interface GraphEdge {
  from: string
  to: string
  /** The declared order puts `from` before `to`, directly or transitively. */
  declared: boolean
  /** Operations that take `to` while holding `from`. */
  operations: string[]
  /** On a reported cycle or forbidden: drawn in red. */
  problem: boolean
}

export interface GraphView {
  locks: {name: string; kind: string; leaf: boolean; perInstance: boolean; nestById: boolean; scope: string; file: string; line: number; col: number}[]
  edges: GraphEdge[]
}

export function viewOf(g: LockGraph, check: Pick<LockCheck, 'problemEdges' | 'ordered'>): GraphView {
  const edges = new Map<string, GraphEdge>()
  const edge = (from: string, to: string) => {
    const key = edgeKey(from, to)
    const e = edges.get(key) ?? {from, to, declared: check.ordered.has(key), operations: [], problem: check.problemEdges.has(key)}
    edges.set(key, e)
    return e
  }
  for (const d of g.declared) edge(d.from, d.to)
  for (const u of g.used.values()) edge(u.from, u.to).operations.push(...u.operations)
  const locks = [...g.locks.values()].map((l) => ({name: l.name, kind: l.kind, leaf: l.leaf, perInstance: l.perInstance, nestById: l.nestById, scope: l.scope, file: l.file, line: l.at.line, col: l.at.col}))
  const sorted = [...edges.values()].sort((a, b) => a.from.localeCompare(b.from) || a.to.localeCompare(b.to))
  for (const e of sorted) e.operations.sort()
  return {locks, edges: sorted}
}

const flags = (l: GraphView['locks'][number]) =>
  [l.kind, l.leaf && 'leaf', l.perInstance && 'per instance', l.nestById && 'nests by id'].filter(Boolean).join(', ')

export function renderGraph(v: GraphView, format: Exclude<GraphFormat, 'json'>): string {
  switch (format) {
    case 'text': {
      const out = ['locks:']
      for (const l of v.locks) out.push(`  ${l.name}  (${flags(l)})`)
      out.push('', 'taken while holding (held -> taken):')
      for (const e of v.edges) {
        const how = [e.declared ? 'declared' : 'not declared', e.operations.length ? `by ${e.operations.join(', ')}` : 'unused'].join(', ')
        out.push(`  ${e.from} -> ${e.to}  [${how}]${e.problem ? '  !! problem' : ''}`)
      }
      return out.join('\n')
    }
    case 'dot': {
      const out = ['digraph locks {', '  rankdir=LR;', '  node [shape=box, fontname="Helvetica"];', '  edge [fontname="Helvetica", fontsize=10];']
      for (const l of v.locks) out.push(`  "${l.name}" [label="${l.name}\\n${flags(l)}"${l.leaf ? ', style=rounded' : ''}];`)
      for (const e of v.edges) {
        const attrs = [`label="${e.operations.join(', ')}"`]
        if (!e.operations.length) attrs.push('style=dashed')
        if (e.problem) attrs.push('color=red', 'fontcolor=red', 'penwidth=2')
        out.push(`  "${e.from}" -> "${e.to}" [${attrs.join(', ')}];`)
      }
      out.push('}')
      return out.join('\n')
    }
    case 'mermaid': {
      const id = (n: string) => `L_${n.replace(/[^A-Za-z0-9_]/g, '_')}`
      const out = ['flowchart LR']
      for (const l of v.locks) out.push(`  ${id(l.name)}["${l.name}<br/><small>${flags(l)}</small>"]`)
      const red: number[] = []
      v.edges.forEach((e, i) => {
        const label = e.operations.length ? `|${e.operations.join(', ')}|` : ''
        out.push(`  ${id(e.from)} ${e.operations.length ? '-->' : '-.->'}${label} ${id(e.to)}`)
        if (e.problem) red.push(i)
      })
      if (red.length) out.push(`  linkStyle ${red.join(',')} stroke:#d00,stroke-width:2px`)
      return out.join('\n')
    }
  }
}
