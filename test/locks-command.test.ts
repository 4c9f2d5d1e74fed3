// iocpgen locks: the graph in each format, problems marked, and the README's copy up to date.
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {describe, expect, it} from 'vitest'

const root = join(import.meta.dirname, '..')
const iocpgen = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'run.js'), ...args], {cwd: root, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

describe('iocpgen locks', () => {
  it('--format json gives locks, edges with their operations, and no problems for chat', () => {
    const r = iocpgen('locks', 'examples/chat/chat.yaml', '--format', 'json')
    expect(r.code).toBe(0)
    const g = JSON.parse(r.stdout)
    expect(g.locks.map((l: {name: string}) => l.name)).toEqual(['user', 'group'])
    expect(g.edges).toContainEqual({from: 'user', to: 'group', declared: true, operations: ['Logout'], problem: false})
    expect(g.edges.filter((e: {problem: boolean}) => e.problem)).toEqual([])
    expect(g.diagnostics).toEqual([])
  })

  it.each([['examples/chat/chat.yaml'], ['test/fixtures/good/all-types.yaml'], ['test/fixtures/bad/lock-two-cycle.yaml']])(
    '--format json and --json give the line and column where each lock of %s, and of the core, is declared',
    (spec) => {
      for (const args of [['--format', 'json'], ['--json']]) {
        const g = JSON.parse(iocpgen('locks', spec, '--core', ...args).stdout) as {locks: {name: string; file: string; line: number; col: number}[]}
        expect(g.locks.length).toBeGreaterThan(9)
        for (const l of g.locks) {
          // Where the name is written as a key under locks:, found by reading the file.
          const lines = readFileSync(resolve(root, l.file), 'utf8').split('\n')
          const line = lines.findIndex((t, i) => i > lines.indexOf('locks:') && new RegExp(`^\\s+${l.name}:`).test(t)) + 1
          expect({lock: l.name, line: l.line, col: l.col}).toEqual({lock: l.name, line, col: lines[line - 1]!.indexOf(l.name) + 1})
        }
      }
    },
  )

  it('marks the edges of a cycle in red in DOT and exits 1', () => {
    const r = iocpgen('locks', 'test/fixtures/bad/lock-two-cycle.yaml', '--format', 'dot')
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('"users" -> "groups" [label="join", color=red, fontcolor=red, penwidth=2];')
    expect(r.stdout).toContain('"groups" -> "users" [label="leave", color=red, fontcolor=red, penwidth=2];')
    expect(r.stderr).toContain('error E411: possible deadlock: users -> groups -> users')
  })

  it('draws declared-only edges dashed in Mermaid and styles problem links', () => {
    const r = iocpgen('locks', 'test/fixtures/bad/lock-misuse.yaml', '--format', 'mermaid')
    expect(r.stdout).toContain('L_table -.-> L_row')
    expect(r.stdout).toContain('L_stats -->|underLeaf| L_cell')
    expect(r.stdout).toMatch(/linkStyle \d+,\d+ stroke:#d00/)
  })

  it('the README shows the chat example graph as the command prints it today', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8')
    const block = /```mermaid\n([\s\S]*?)```/.exec(readme)?.[1]
    expect(block).toBe(iocpgen('locks', 'examples/chat/chat.yaml', '--format', 'mermaid').stdout)
  })
})
