// Quoted globs: validate expands a pattern the shell left alone, as a shell would.
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import {expandGlob} from '../src/util/glob.js'

const root = join(import.meta.dirname, '..')
let dir = ''
const files = ['a.yaml', 'b.yml', 'c.json', 'notes.txt', '.hidden.yaml', 'specs/chat.yaml', 'specs/echo.yaml', 'specs/deep/game.yaml', 'specs/deep/x.txt', 'specs/.git/config.yaml', 'other/a1.yaml', 'other/a2.yaml', 'other/b1.yaml', 'dir.yaml/inside.yaml']

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'glob-'))
  for (const f of files) {
    mkdirSync(join(dir, f, '..'), {recursive: true})
    writeFileSync(join(dir, f), 'x')
  }
})

/** expandGlob run from inside the tree, as the CLI is. */
function expand(pattern: string): string[] {
  const cwd = process.cwd()
  process.chdir(dir)
  try {
    return expandGlob(pattern)
  } finally {
    process.chdir(cwd)
  }
}

describe('expandGlob', () => {
  it.each<[string, string[]]>([
    ['*.yaml', ['a.yaml']],  // no dot file, and a directory named *.yaml is not a file
    ['*.y?ml', ['a.yaml']],
    ['*.{yaml,yml,json}', ['a.yaml', 'b.yml', 'c.json']],
    ['specs/*.yaml', ['specs/chat.yaml', 'specs/echo.yaml']],
    ['specs/**/*.yaml', ['specs/chat.yaml', 'specs/deep/game.yaml', 'specs/echo.yaml']],
    ['**/*.yaml', ['a.yaml', 'dir.yaml/inside.yaml', 'other/a1.yaml', 'other/a2.yaml', 'other/b1.yaml', 'specs/chat.yaml', 'specs/deep/game.yaml', 'specs/echo.yaml']],
    ['other/[ab]1.yaml', ['other/a1.yaml', 'other/b1.yaml']],
    ['other/[!a]*.yaml', ['other/b1.yaml']],
    ['other/a[1-2].yaml', ['other/a1.yaml', 'other/a2.yaml']],
    ['{specs/deep,other}/{game,b1}.yaml', ['other/b1.yaml', 'specs/deep/game.yaml']],
    ['.hidden.*', ['.hidden.yaml']],
    ['specs/.git/*.yaml', ['specs/.git/config.yaml']],
    ['nothing/*.yaml', []],
    ['*.toml', []],
  ])('%s', (pattern, want) => {
    expect(expand(pattern)).toEqual(want)
  })

  it('takes an absolute pattern, and gives absolute paths', () => {
    expect(expandGlob(join(dir, 'specs', '*.yaml'))).toEqual([join(dir, 'specs/chat.yaml'), join(dir, 'specs/echo.yaml')])
  })
})

describe('iocpgen validate with a quoted glob', () => {
  const iocpgen = (cwd: string, ...args: string[]) => spawnSync(process.execPath, [join(root, 'bin', 'run.js'), ...args], {cwd, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})

  it('checks every file the pattern matches', () => {
    const r = iocpgen(root, 'validate', 'examples/*/*.yaml', '{test/fixtures/good,examples/echo}/*.yaml')
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout.match(/^ok {4}\S+/gm)).toEqual(['ok    examples/chat/chat.yaml', 'ok    examples/echo/echo.yaml', 'ok    examples/echo/echo.yaml', 'ok    test/fixtures/good/all-types.yaml'])
  })

  it('a pattern that matches nothing is a usage error naming it', () => {
    const r = iocpgen(dir, 'validate', 'specs/**/*.yml')
    expect(r.status).toBe(2)
    expect(r.stderr).toContain('no file matches specs/**/*.yml')
  })

  it('a file whose name looks like a pattern is read as it is', () => {
    writeFileSync(join(dir, '[x].yaml'), 'name: x\nversion: 1.0.0\nmessages: []\n')
    const r = iocpgen(dir, 'validate', '[x].yaml')
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout).toContain('ok    [x].yaml')
  })
})
