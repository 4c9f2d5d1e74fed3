// Lock-order verdicts with their witnesses: the cycle, the edges behind it with their spec
// positions, and the lockdep-style interleaving.
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {validateSpecFile} from '../src/spec/validate.js'

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
