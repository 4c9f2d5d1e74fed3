// One bad file must not cost the others their check: each file of a run is reported,
// hostile YAML included, and no stack trace reaches the user.
import {spawnSync} from 'node:child_process'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

const root = join(import.meta.dirname, '..')
const bad = 'test/fixtures/bad'

describe('iocpgen validate on hostile specs', () => {
  it('reports every file of the run, each with its own diagnostics', () => {
    const files = [`${bad}/aliases.yaml`, `${bad}/deep-flow.yaml`, `${bad}/deep-map.yaml`, `${bad}/unclosed-quote.yaml`, 'examples/echo/echo.yaml']
    const r = spawnSync(process.execPath, [join(root, 'bin', 'run.js'), 'validate', '--json', ...files], {cwd: root, encoding: 'utf8'})
    expect(r.status).toBe(1)
    expect(r.stderr).not.toMatch(/Error:|    at /)
    const report = JSON.parse(r.stdout)
    expect(report.files.map((f: {file: string; ok: boolean}) => [f.file, f.ok])).toEqual(files.map((f) => [f, f.startsWith('examples')]))
    const first = (file: string) => report.diagnostics.find((d: {file: string}) => d.file === file)
    expect(first(`${bad}/aliases.yaml`)).toMatchObject({code: 'E009', line: 5, col: 11})
    expect(first(`${bad}/deep-flow.yaml`)).toMatchObject({code: 'E010', line: 5, col: 77})
    expect(first(`${bad}/deep-map.yaml`)).toMatchObject({code: 'E010', line: 69, col: 65})
    expect(first(`${bad}/unclosed-quote.yaml`)).toMatchObject({code: 'E006', line: 2, col: 10})
  })
})
