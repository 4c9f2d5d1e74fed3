// The example projects are checked in with their generated files; they must be exactly what
// the current spec and generator produce.
import {spawnSync} from 'node:child_process'
import {existsSync, readdirSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

const root = join(import.meta.dirname, '..')
const examples = readdirSync(join(root, 'examples')).filter((d) => existsSync(join(root, 'examples', d, 'package.json')))

describe('examples', () => {
  it('has the chat and echo projects', () => {
    expect(examples).toEqual(expect.arrayContaining(['chat', 'echo']))
  })

  it.each(examples)('examples/%s is up to date with its spec (iocpgen generate --check)', (name) => {
    const r = spawnSync(process.execPath, [join(root, 'bin', 'run.js'), 'generate', '--check', '--dir', join('examples', name)], {cwd: root, encoding: 'utf8'})
    expect(r.stdout + r.stderr).toContain('up to date')
    expect(r.status).toBe(0)
  })
})
