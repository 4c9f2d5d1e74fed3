// The generated lock module (src/generated/locks.ts) makes the declared order a type: a body
// holding a lock gets a token offering only the locks after it, so taking them the other way
// round does not compile. Checked with the chat example (user < group) and tsc itself.
import {cpSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {emitLocks} from '../src/generate/locks.js'
import {validateSpecFile} from '../src/spec/validate.js'
import {projectDir, requireRuntimeBuilt, root} from './support/project.js'
import {run} from './support/run.js'

const tsc = (dir: string) => run(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json', '--noEmit'], {cwd: dir})

describe('typed lock tokens', () => {
  it('taking group and then user (against user < group) is a compile error at that line; the declared order compiles', async () => {
    requireRuntimeBuilt()
    const dir = projectDir('typed-locks')
    try {
      cpSync(join(root, 'examples', 'chat'), dir, {recursive: true, filter: (src) => !/node_modules|[/\\](build|dist)$/.test(src)})
      const lines = [
        "import {locks} from './generated/locks.js'",
        '',
        'export async function declared(): Promise<void> {',
        "  await locks.user(1).lock((held) => held.group('lobby').lock(() => undefined))",
        '}',
        '',
        'export async function reversed(): Promise<void> {',
        "  await locks.group('lobby').lock((held) => held.user(1).lock(() => undefined))",
        '}',
        '',
      ]
      writeFileSync(join(dir, 'src', 'orders.ts'), lines.join('\n'))
      const r = await tsc(dir)
      expect(r.status).not.toBe(0)
      const errors = r.stdout.split('\n').filter((l) => /error TS\d+/.test(l))
      const col = lines[7]!.indexOf('held.user') + 'held.'.length + 1
      expect(errors).toEqual([`src/orders.ts(8,${col}): error TS2339: Property 'user' does not exist on type 'HoldingGroup'.`])
    } finally {
      rmSync(dirname(dir), {recursive: true, force: true})
    }
  }, 120_000)

  it('tokens follow the transitive order: rwlocks have read and write, nestById locks offer themselves', () => {
    const spec = validateSpecFile(join(root, 'test', 'fixtures', 'good', 'all-types.yaml')).spec!
    const out = emitLocks(spec, '// header')
    // table < row < counter: holding table offers row and counter (transitively), row offers counter.
    expect(out).toContain("export interface Unlocked {\n  /** table: reader-writer lock. */\n  readonly table: RwLockHandle<'table', HoldingTable>")
    expect(out).toMatch(/export interface HoldingTable \{\n[^}]*readonly row: \(key: LockKey\) => MutexHandle<'row', HoldingRow>\n[^}]*readonly counter: MutexHandle<'counter', HoldingCounter>\n\}/)
    expect(out).toMatch(/export interface HoldingRow \{\n[^}]*readonly counter: MutexHandle<'counter', HoldingCounter>\n\}/)
    expect(out).toContain('export interface HoldingCounter {}')
    expect(out).toContain("{name: 'table', kind: 'rwlock', after: ['row', 'counter']},")
    // With nestById, holding a row offers rows too (a greater key, checked at run time).
    const nesting = emitLocks({...spec, locks: spec.locks.map((l) => (l.name === 'row' ? {...l, nestById: true} : l))}, '// header')
    expect(nesting).toMatch(/export interface HoldingRow \{\n[^}]*readonly row: \(key: LockKey\) => MutexHandle<'row', HoldingRow>\n[^}]*readonly counter:/)
    expect(nesting).toContain("{name: 'row', kind: 'mutex', perInstance: true, nestById: true, after: ['counter']},")
  })
})
