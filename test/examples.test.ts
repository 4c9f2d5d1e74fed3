// The example projects are checked in with their generated files; they must be exactly what
// the current spec and generator produce, and build and pass their own tests on the
// repository's @iocpgen/runtime.
import {spawnSync} from 'node:child_process'
import {cpSync, existsSync, readdirSync, rmSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {compileProject, projectDir, requireRuntimeBuilt, root} from './support/project.js'
import {run} from './support/run.js'

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

  // A copy, so the example's own directory gets no dist/.
  it.each(examples)('examples/%s compiles and passes its generated tests (its npm test, with the root tsc)', async (name) => {
    requireRuntimeBuilt('linux')
    const dir = projectDir(name)
    try {
      cpSync(join(root, 'examples', name), dir, {recursive: true, filter: (src) => !/node_modules|[/\\](build|dist)$/.test(src)})
      await compileProject(dir)
      const r = await run(process.execPath, ['--test', 'dist/test/'], {cwd: dir})
      expect(r.status, r.stdout + r.stderr).toBe(0)
      expect(r.stdout).toMatch(/^# fail 0$/m)
      expect(r.stdout).not.toMatch(/^# pass 0$/m)
    } finally {
      rmSync(dirname(dir), {recursive: true, force: true})
    }
  }, 180_000)
})
