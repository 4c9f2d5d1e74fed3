// The DAG module under the lock analysis: the order's edges, reachability, a stable
// topological order and strongly connected components, on small graphs written out here.
import {describe, expect, it} from 'vitest'

import {closure, components, DagCycleError, declaredOrder, topologicalOrder} from '../src/locks/dag.js'
import type {LockName, OrderStatement} from '../src/spec/model.js'

const name = (n: string, col: number): LockName => ({name: n, at: {line: 1, col}})
const edge = (from: string, to: string) => ({from, to})
const pairs = (edges: readonly {from: string; to: string}[]) => edges.map((e) => `${e.from}<${e.to}`)

describe('declaredOrder', () => {
  it('puts every lock of a group before every lock of the next group, placed at the later lock', () => {
    const order: OrderStatement[] = [
      {kind: 'chain', groups: [[name('a', 1)], [name('b', 5), name('c', 8)], [name('d', 12), name('e', 15)]], at: {line: 1, col: 1}},
      {kind: 'never', before: name('e', 1), after: name('a', 6), at: {line: 2, col: 1}},
    ]
    const {edges, never} = declaredOrder([{file: 's.yaml', order}])
    expect(pairs(edges)).toEqual(['a<b', 'a<c', 'b<d', 'b<e', 'c<d', 'c<e'])
    expect(edges[3]!.at).toEqual({file: 's.yaml', line: 1, col: 15})
    expect(never).toEqual([{from: 'e', to: 'a', at: {file: 's.yaml', line: 1, col: 6}}])
  })

  it('keeps the specs in order', () => {
    const chain = (a: string, b: string): OrderStatement => ({kind: 'chain', groups: [[name(a, 1)], [name(b, 5)]], at: {line: 1, col: 1}})
    const {edges} = declaredOrder([{file: 'user.yaml', order: [chain('x', 'y')]}, {file: 'core.yaml', order: [chain('p', 'q')]}])
    expect(edges.map((e) => `${e.at.file}:${e.from}<${e.to}`)).toEqual(['user.yaml:x<y', 'core.yaml:p<q'])
  })
})

describe('closure', () => {
  it('is transitive, and a node reaches itself only on a cycle', () => {
    const reach = closure(['a', 'b', 'c', 'd', 'x', 'y'], [edge('a', 'b'), edge('b', 'c'), edge('c', 'd'), edge('x', 'y'), edge('y', 'x')])
    expect([...reach.get('a')!]).toEqual(['b', 'c', 'd'])
    expect([...reach.get('c')!]).toEqual(['d'])
    expect([...reach.get('d')!]).toEqual([])
    expect([...reach.get('x')!].sort()).toEqual(['x', 'y'])
  })
})

describe('topologicalOrder', () => {
  it('breaks ties by the order of the nodes', () => {
    expect(topologicalOrder(['c', 'b', 'a'], [])).toEqual(['c', 'b', 'a'])
    // d waits for a, then is the earliest node ready, so it comes before c.
    expect(topologicalOrder(['d', 'b', 'a', 'c'], [edge('a', 'd')])).toEqual(['b', 'a', 'd', 'c'])
    expect(topologicalOrder(['a', 'b', 'c'], [edge('c', 'a')])).toEqual(['b', 'c', 'a'])
  })

  it('throws DagCycleError naming the cycle', () => {
    let error: unknown
    try {
      topologicalOrder(['z', 'a', 'b', 'c'], [edge('a', 'b'), edge('b', 'c'), edge('c', 'a')])
    } catch (e) {
      error = e
    }
    expect(error).toBeInstanceOf(DagCycleError)
    expect((error as DagCycleError).cycle).toEqual(['a', 'b', 'c'])
    expect((error as DagCycleError).message).toBe('the order has a cycle: a < b < c < a')
  })
})

describe('components', () => {
  it('finds a 3-cycle and leaves the other nodes alone, successors first', () => {
    const next: Record<string, string[]> = {a: ['b'], b: ['c'], c: ['a', 'd'], d: [], e: ['a']}
    const comps = components(['a', 'b', 'c', 'd', 'e'], (n) => next[n]!)
    expect(comps).toEqual([['d'], ['c', 'b', 'a'], ['e']])
  })

  it('works on numbers and follows long chains without recursion', () => {
    const n = 100_000
    const comps = components([...Array(n).keys()], (i) => (i + 1 < n ? [i + 1] : [0]))
    expect(comps).toHaveLength(1)
    expect(comps[0]).toHaveLength(n)
  })
})
