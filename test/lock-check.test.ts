// Lock-order verdicts with their witnesses: the cycle, the edges behind it with their spec
// positions, and the lockdep-style interleaving.
import {spawnSync} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {edgeKey} from '../src/locks/graph.js'
import {coreLockModel, lockGraphOf, validateSpecFile} from '../src/spec/validate.js'

const bad = (name: string) => join('test', 'fixtures', 'bad', name)
const only = (file: string, code: string) => validateSpecFile(file).diagnostics.filter((d) => d.code === code)

describe('deadlock witnesses', () => {
  it('a two-lock cycle names both operations, the chain and the interleaving', () => {
    const [d, ...rest] = only(bad('lock-two-cycle.yaml'), 'E411')
    expect(rest).toEqual([])
    expect(d!.message).toBe('possible deadlock: users -> groups -> users')
    expect(d!.detail).toEqual([
      `join takes groups while holding users  [${bad('lock-two-cycle.yaml')}:12:17]`,
      `leave takes users while holding groups  [${bad('lock-two-cycle.yaml')}:16:17]`,
      '',
      'Chain exists of:',
      '  groups --> users',
      '',
      'Possible unsafe locking scenario:',
      '',
      '      thread A                thread B',
      '      --------                --------',
      '  lock(users);',
      '                              lock(groups);',
      '                              lock(users);',
      '  lock(groups);',
      '',
      ' *** DEADLOCK ***',
    ])
  })

  it('a three-lock cycle through calls shows each call chain', () => {
    const [d] = only(bad('lock-three-cycle.yaml'), 'E411')
    const f = bad('lock-three-cycle.yaml')
    expect(d!.message).toBe('possible deadlock: c -> a -> b -> c')
    expect(d!.detail!.slice(0, 5)).toEqual([
      `third takes a while holding c (via third -> takeA)  [${f}:20:13]`,
      `first takes b while holding a (via first -> takeB)  [${f}:22:13]`,
      `second takes c while holding b (via second -> takeC)  [${f}:24:13]`,
      '',
      'Chain exists of:',
    ])
    expect(d!.detail![5]).toBe('  a --> b --> c')
  })

  it('a cycle against the declared order says which statement it breaks', () => {
    const [d] = only(bad('lock-misuse.yaml'), 'E411')
    expect(d!.message).toBe('possible deadlock: stats -> cell -> stats')
    expect(d!.detail![1]).toBe(`the order declares cell < stats  [${bad('lock-misuse.yaml')}:10:29]`)
    expect(d!.hint).toBe('the declared order says cell < stats; change the operation to take cell first, or release stats before taking cell')
  })

  it('names what is held across a call into JavaScript, and where it was taken', () => {
    const [d] = only(bad('lock-misuse.yaml'), 'E415')
    expect(d!.message).toBe(`callsJs calls into JavaScript while holding row (taken at ${bad('lock-misuse.yaml')}:29:13)`)
  })

  it('allows nesting two instances of a lock with nestById', () => {
    const all = validateSpecFile(bad('lock-misuse.yaml')).diagnostics
    expect(all.filter((d) => d.line === 24)).toEqual([])
  })

  it('the chat example is free of lock problems', () => {
    expect(validateSpecFile(join('examples', 'chat', 'chat.yaml')).diagnostics).toEqual([])
  })
})

describe('the core lock model', () => {
  it('native-template/src/lock_ranks.h is what locks.yaml generates', () => {
    const root = join(import.meta.dirname, '..')
    const r = spawnSync(process.execPath, [join(root, 'bin', 'run.js'), 'locks', 'locks.yaml', '--format', 'cpp'], {cwd: join(root, 'native-template'), encoding: 'utf8'})
    expect(r.status).toBe(0)
    expect(readFileSync(join(root, 'native-template', 'src', 'lock_ranks.h'), 'utf8')).toBe(r.stdout)
  })

  it('lets nothing be held when the bridge lock is taken, as sinks run with no core lock', () => {
    const header = readFileSync(join(import.meta.dirname, '..', 'native-template', 'src', 'lock_ranks.h'), 'utf8')
    expect(header).toMatch(/0x00000000u, {2}\/\/ bridge +after: \(nothing\)/)
  })
})

// Specs written on the fly, in a temporary directory.
const scratch = mkdtempSync(join(tmpdir(), 'iocpgen-locks-'))
const specAt = (name: string, body: string) => {
  const file = join(scratch, name)
  writeFileSync(file, `name: t\nversion: 1.0.0\nmessages: []\n${body}`)
  return file
}

/** 200 locks in one order; 500 operations in layers, each calling every operation of the next. */
function diamonds(): string {
  const locks = 200
  const ops = 500
  const layer = (i: number) => Math.floor((i * locks) / ops)
  const out = ['locks:', ...Array.from({length: locks}, (_, k) => `  l${k}: {kind: mutex}`)]
  out.push(`order: ${Array.from({length: locks}, (_, k) => `l${k}`).join(' < ')}`, 'operations:')
  for (let i = 0; i < ops; i++) {
    const next = Array.from({length: ops}, (_, j) => j).filter((j) => layer(j) === layer(i) + 1)
    out.push(`  op${i}:`, `    - lock: l${layer(i)}`)
    if (next.length) out.push('      then:', ...next.map((j) => `        - call: op${j}`))
  }
  return `${out.join('\n')}\n`
}

/** n operations, each holding its lock while calling the next one twice. */
function doubleCalls(n: number): string {
  const out = ['locks:', ...Array.from({length: n}, (_, k) => `  l${k}: {kind: mutex}`), `order: ${Array.from({length: n}, (_, k) => `l${k}`).join(' < ')}`, 'operations:']
  for (let i = 0; i < n; i++) {
    out.push(`  op${i}:`, `    - lock: l${i}`)
    if (i + 1 < n) out.push('      then:', `        - call: op${i + 1}`, `        - call: op${i + 1}`)
  }
  return `${out.join('\n')}\n`
}

describe('the lock walk stays polynomial when operations share callees', () => {
  // Each case: the spec, and a bound on walk work that is polynomial in its steps. The old
  // walk followed every path: 2^24 paths for the chain, and more for the diamonds.
  it.each([
    ['diamonds', diamonds(), 500],
    ['double-call chain of 24', doubleCalls(24), 24],
  ])('%s: checked in well under a second', (name, text, ops) => {
    const file = specAt(`${name.replace(/\W+/g, '-')}.yaml`, text)
    const started = performance.now()
    const result = validateSpecFile(file)
    const took = performance.now() - started
    expect(result.diagnostics).toEqual([])
    // Work is counted, which is deterministic: at most two visits per step plus one per pair.
    const graph = lockGraphOf(result.spec!, coreLockModel().spec)
    const steps = (text.match(/- (lock|call):/g) ?? []).length + 60
    expect(graph.visits).toBeLessThanOrEqual(2 * steps + steps * steps)
    expect(graph.visits).toBeGreaterThan(ops)
    expect(took).toBeLessThan(2000)
  })

  it('keeps the shortest witness and every operation that takes an edge', () => {
    const graph = lockGraphOf(validateSpecFile(specAt('chain8.yaml', doubleCalls(8)), true, false).spec!)
    const e = graph.used.get(edgeKey('l2', 'l7'))!
    expect(e.chain).toEqual(['op2', 'op3', 'op4', 'op5', 'op6', 'op7'])
    expect(e.calls.map((c) => c.line)).toEqual([28, 33, 38, 43, 48])
    expect([e.heldAt.line, e.takenAt.line]).toEqual([26, 51])
    expect(e.operations).toEqual(['op0', 'op1', 'op2'])
  })
})

describe('problems that go through the core are placed in the spec', () => {
  const spec = specAt(
    'through-core.yaml',
    `locks:
  mine: {kind: mutex}
operations:
  send:
    - lock: mine
      then:
        - call: postOnSocket
  back:
    - lock: socket
      then:
        - lock: mine
  drain:
    - lock: mine
      then:
        - call: jsDrain
`,
  )

  it('a cycle through a core operation is reported at the call, naming the core chain', () => {
    const [d, ...rest] = only(spec, 'E411')
    expect(rest).toEqual([])
    expect([d!.file, d!.line, d!.col]).toEqual([spec, 10, 17])
    expect(d!.detail![0]).toBe(`send takes socket while holding mine (via send -> postOnSocket)  [${spec}:10:17; in the native core: postOnSocket, native-template/locks.yaml:32:13]`)
    expect(d!.detail![1]).toBe(`back takes mine while holding socket  [${spec}:14:17]`)
  })

  it('JavaScript under a lock inside the core is reported at the call into it', () => {
    const [d] = only(spec, 'E415')
    expect([d!.file, d!.line, d!.col]).toEqual([spec, 18, 17])
    expect(d!.detail).toEqual(['in the native core: jsDrain calls into JavaScript  [native-template/locks.yaml:86:7]'])
  })

  it('no diagnostic of a spec points into the core', () => {
    expect(validateSpecFile(spec).diagnostics.filter((d) => d.file !== spec)).toEqual([])
  })

  it('a forbidden nesting with a core lock is reported at the call, and is no contradiction of the rule', () => {
    const file = specAt('forbid-core.yaml', 'locks:\n  mine: {kind: mutex}\norder:\n  - mine !< socket\noperations:\n  send:\n    - lock: mine\n      then:\n        - call: postOnSocket\n')
    const [d, ...rest] = validateSpecFile(file).diagnostics
    expect(rest).toEqual([])
    expect([d!.code, d!.file, d!.line, d!.col]).toEqual(['E418', file, 12, 17])
    expect(d!.detail).toEqual(['in the native core: postOnSocket takes socket  [native-template/locks.yaml:32:13]'])
  })

  it('ordering a core lock first cites the statement and the rule, not a statement nobody wrote', () => {
    const file = specAt('core-first.yaml', 'locks:\n  mine: {kind: mutex}\norder:\n  - socket < mine\noperations:\n  hold:\n    - lock: mine\n')
    const [d, ...rest] = validateSpecFile(file).diagnostics
    expect(rest).toEqual([])
    expect([d!.code, d!.file, d!.line, d!.col]).toEqual(['E410', file, 7, 14])
    expect(d!.detail).toEqual([
      `the order declares socket < mine  [${file}:7:14]`,
      `mine is a lock of the spec and socket one of the core, which never takes a spec lock, so mine comes first  [${file}:5:3]`,
    ])
    expect(d!.detail!.join('\n')).not.toContain('declares mine < socket')
  })
})
