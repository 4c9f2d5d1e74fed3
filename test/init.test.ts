// iocpgen init: a starter spec that a user who installed from the registry can validate and
// turn into a project straight away.
import {spawnSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {compileProject, projectDir} from './support/project.js'

const root = join(import.meta.dirname, '..')
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {version: string}).version

function iocpgen(cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'run.js'), ...args], {cwd, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

const schemaLine = (file: string) => /^# yaml-language-server: \$schema=(\S+)$/m.exec(readFileSync(file, 'utf8'))?.[1]

describe('iocpgen init', () => {
  it('writes a spec that validates with no warning, named after its file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'init-'))
    const r = iocpgen(dir, 'init', 'Game Lobby.yml')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('npx iocpgen new game-lobby --spec Game Lobby.yml')
    const v = iocpgen(dir, 'validate', 'Game Lobby.yml', '--json')
    expect(v.code).toBe(0)
    const report = JSON.parse(v.stdout)
    expect(report.diagnostics).toEqual([])
    expect(readFileSync(join(dir, 'Game Lobby.yml'), 'utf8')).toMatch(/^name: game-lobby$/m)
  })

  it('with no iocpgen installed nearby, points editors at the schema of this version on the CDN', () => {
    const dir = mkdtempSync(join(tmpdir(), 'init-'))
    expect(iocpgen(dir, 'init').code).toBe(0)
    expect(schemaLine(join(dir, 'spec.yaml'))).toBe(`https://unpkg.com/iocpgen@${version}/schema/iocpgen.schema.json`)
    expect(readFileSync(join(dir, 'spec.yaml'), 'utf8')).toMatch(/^name: my-server$/m)
  })

  it('with iocpgen installed above the spec, names that schema by a relative path that resolves', () => {
    const dir = mkdtempSync(join(tmpdir(), 'init-'))
    mkdirSync(join(dir, 'node_modules/iocpgen/schema'), {recursive: true})
    writeFileSync(join(dir, 'node_modules/iocpgen/schema/iocpgen.schema.json'), '{}')
    mkdirSync(join(dir, 'specs/game'), {recursive: true})
    expect(iocpgen(join(dir, 'specs/game'), 'init', 'lobby.yaml').code).toBe(0)
    expect(schemaLine(join(dir, 'specs/game/lobby.yaml'))).toBe('../../node_modules/iocpgen/schema/iocpgen.schema.json')
  })

  it('refuses to overwrite a file without --force, and leaves it as it was', () => {
    const dir = mkdtempSync(join(tmpdir(), 'init-'))
    writeFileSync(join(dir, 'spec.yaml'), 'mine\n')
    const r = iocpgen(dir, 'init')
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('spec.yaml exists; pass --force to overwrite it')
    expect(r.stderr).not.toMatch(/\n\s+at /)
    expect(readFileSync(join(dir, 'spec.yaml'), 'utf8')).toBe('mine\n')
    expect(iocpgen(dir, 'init', '--force').code).toBe(0)
    expect(readFileSync(join(dir, 'spec.yaml'), 'utf8')).toContain('name: my-server')
  })

  it.each([
    [['init', 'x.yaml', '--name', 'Bad_Name'], '"Bad_Name" is not a project name'],
    [['init', 'x.json'], 'name it .yaml or .yml'],
    [['init', 'missing/x.yaml'], 'no such directory: missing'],
  ])('%j is a usage error with one line saying why', (args, says) => {
    const dir = mkdtempSync(join(tmpdir(), 'init-'))
    const r = iocpgen(dir, ...args)
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(says)
    expect(r.stderr).not.toMatch(/\n\s+at /)
  })

  it('new makes a project of the starter spec that compiles, its spec naming the schema the project installs', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'init-'))
    expect(iocpgen(dir, 'init', 'lobby.yaml').code).toBe(0)
    const project = projectDir('lobby')
    const r = iocpgen(dir, 'new', project, '--spec', 'lobby.yaml', '--no-install')
    expect(r.code, r.stderr).toBe(0)
    expect(schemaLine(join(project, 'lobby.yaml'))).toBe('node_modules/iocpgen/schema/iocpgen.schema.json')
    // The copy differs from the original only in that line.
    const lines = (f: string) => readFileSync(f, 'utf8').split('\n').slice(1)
    expect(lines(join(project, 'lobby.yaml'))).toEqual(lines(join(dir, 'lobby.yaml')))
    await compileProject(project)
  }, 120_000)
})
