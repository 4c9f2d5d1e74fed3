// The CLI as users and CI run it: exit codes, --json, --error-format github, help.
import {spawnSync} from 'node:child_process'
import {copyFileSync, existsSync, mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

const root = join(import.meta.dirname, '..')
const bad = 'test/fixtures/bad'

function iocpgen(...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'run.js'), ...args], {cwd: root, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

describe('iocpgen validate', () => {
  it('exits 0 for valid specs and says so', () => {
    const r = iocpgen('validate', 'examples/chat/chat.yaml', 'examples/echo/echo.yaml')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('ok    examples/chat/chat.yaml (15 messages)')
    expect(r.stdout).toContain('ok    examples/echo/echo.yaml (1 message)')
  })

  it('exits 1 and prints file:line:col, code, the source line and a hint', () => {
    const r = iocpgen('validate', `${bad}/pools.yaml`)
    expect(r.code).toBe(1)
    expect(r.stdout).toContain(`${bad}/pools.yaml:8:15: error E301: ioContexts is 100 but the core needs 110`)
    expect(r.stdout).toContain('    8 |   ioContexts: 100\n      |               ^^^\n')
    expect(r.stdout).toContain('hint: raise ioContexts to 110, or set it to "auto"')
    expect(r.stdout).toContain(`fail  ${bad}/pools.yaml: 5 errors`)
  })

  it('reports bad shards and cluster values at file:line:col, without a stack trace', () => {
    const r = iocpgen('validate', `${bad}/cluster.yaml`, `${bad}/cluster-lease.yaml`)
    expect(r.code).toBe(1)
    expect(r.stdout).toContain(`${bad}/cluster.yaml:4:11: error E104: server.shards 0 is out of range`)
    expect(r.stdout).toContain(`${bad}/cluster.yaml:7:8: error E106: cluster.url "http://127.0.0.1:4222" has the wrong format`)
    expect(r.stdout).toContain(`${bad}/cluster.yaml:8:10: error E307: cluster.lease (2000 ms) must be longer than two heartbeats`)
    expect(r.stdout).toContain(`${bad}/cluster-lease.yaml:4:11: error E107: server.shards 2.5 is not valid`)
    expect(r.stdout + r.stderr).not.toMatch(/Error:|    at /)
  })

  it('checks every file given and reports each one, failing if any fails', () => {
    const r = iocpgen('validate', 'examples/echo/echo.yaml', `${bad}/enums.yaml`, 'no-such.yaml')
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('ok    examples/echo/echo.yaml')
    expect(r.stdout).toContain(`fail  ${bad}/enums.yaml: 3 errors`)
    expect(r.stdout).toContain('no-such.yaml:1:1: error E001: no such file: no-such.yaml')
  })

  it('--quiet prints errors but not warnings', () => {
    const r = iocpgen('validate', '-q', `${bad}/warnings.yaml`)
    expect(r.code).toBe(0)
    expect(r.stdout).not.toContain('W00')
    const loud = iocpgen('validate', `${bad}/warnings.yaml`)
    expect(loud.code).toBe(0)
    expect(loud.stdout).toContain('warning W002')
    expect(loud.stdout).toContain('with 4 warnings')
  })

  for (const flag of [['--json'], ['--error-format', 'json']]) {
    it(`${flag.join(' ')} prints one JSON report with every diagnostic`, () => {
      const r = iocpgen('validate', ...flag, `${bad}/enums.yaml`, 'examples/echo/echo.yaml')
      expect(r.code).toBe(1)
      const report = JSON.parse(r.stdout)
      expect(report.ok).toBe(false)
      expect(report.summary).toEqual({files: 2, errors: 3, warnings: 0})
      expect(report.files).toEqual([
        {file: `${bad}/enums.yaml`, ok: false, errors: 3, warnings: 0},
        {file: 'examples/echo/echo.yaml', ok: true, errors: 0, warnings: 0, messages: 1},
      ])
      expect(report.diagnostics[0]).toEqual({
        file: `${bad}/enums.yaml`, line: 6, col: 20, endCol: 21, code: 'E211', severity: 'error',
        message: 'Small.b = 256 does not fit u8 (0 to 255)',
        hint: "change the value, or set the enum's type to a wider integer",
      })
    })
  }

  it('--json on a valid spec exits 0 with ok: true', () => {
    const r = iocpgen('validate', '--json', 'examples/chat/chat.yaml')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toMatchObject({ok: true, summary: {files: 1, errors: 0, warnings: 0}})
  })

  it('--error-format github prints workflow annotations with escaped properties', () => {
    const r = iocpgen('validate', '--error-format', 'github', `${bad}/pools.yaml`, `${bad}/warnings.yaml`)
    expect(r.code).toBe(1)
    const lines = r.stdout.trim().split('\n')
    expect(lines).toContain(
      `::error file=${bad}/pools.yaml,line=8,col=15,endColumn=18,title=E301 per-I/O context pool too small::` +
        'ioContexts is 100 but the core needs 110%3A 50 posted accepts + 20 clients x (2 receives + 1 send); 10 missing'.replace('%3A', ':') +
        '%0Ahint: raise ioContexts to 110, or set it to "auto"',
    )
    expect(lines.filter((l) => l.startsWith('::warning file='))).toHaveLength(4)
    expect(lines.at(-1)).toBe('2 spec(s): 5 error(s), 4 warning(s)')
  })

  it('escapes commas and colons inside annotation properties', () => {
    const r = iocpgen('validate', '--error-format', 'github', 'dir,with:odd/x.yaml')
    expect(r.stdout).toContain('::error file=dir%2Cwith%3Aodd/x.yaml,line=1,col=1,title=E001 spec file not found::')
  })
})

describe('usage errors exit 2', () => {
  it.each([
    [['validate'], 'Missing 1 required arg'],
    [['validate', '--error-format', 'xml', 'a.yaml'], 'Expected --error-format=xml to be one of'],
    [['validate', '--bogus', 'a.yaml'], 'unknown flag --bogus; "iocpgen validate --help" lists them'],
    // Suggestions work with no terminal attached (stdin, stdout and stderr are pipes here), and never prompt.
    [['valdate', 'a.yaml'], '"valdate" is not an iocpgen command. Did you mean "validate"? "iocpgen help" lists them.'],
    [['generat'], 'Did you mean "generate"?'],
    [['frobnicate'], '"frobnicate" is not an iocpgen command. "iocpgen help" lists them.'],
    [['validate', '--error-fromat', 'json', 'a.yaml'], 'unknown flag --error-fromat (did you mean --error-format?)'],
    [['new', 'x', '--spec', 'y.yaml', '--instal'], 'unknown flag --instal (did you mean --install?)'],
  ])('iocpgen %j', (args, text) => {
    const r = iocpgen(...args)
    expect(r.code).toBe(2)
    // oclif wraps long errors with " ›   " at each line start; the text is what matters.
    expect(r.stderr.replace(/\s*›\s*/g, ' ').replace(/\s+/g, ' ')).toContain(text)
    // A mistyped name gets one line, not the command's whole usage.
    if (/unknown flag|not an iocpgen command/.test(text)) expect(r.stderr).not.toContain('USAGE')
  })
})

describe('--json keeps the exit codes and says why in a few lines', () => {
  it.each([
    [['validate', '--json'], 'Missing 1 required arg'],
    [['validate', '--json', '--error-format', 'xml', 'a.yaml'], 'Expected --error-format=xml to be one of'],
    [['validate', '--json', '--bogus', 'a.yaml'], 'unknown flag --bogus'],
    [['locks', '--json'], 'Missing 1 required arg'],
    [['new', '--json'], 'Missing 1 required arg'],
    [['generate', '--json', '--dir', 'no-such-dir'], 'has no spec'],
  ])('iocpgen %j exits 2 with a short JSON error', (args, text) => {
    const r = iocpgen(...args)
    expect(r.code).toBe(2)
    expect(r.stdout.length).toBeLessThan(1000)
    const out = JSON.parse(r.stdout)
    expect(out).toEqual({ok: false, error: {message: expect.stringContaining(text), exit: 2}})
  })

  const enums = `${bad}/enums.yaml`
  it('new --json on a bad spec exits 1 with the diagnostics', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'iocpgen-cli-')), 'p')
    const r = iocpgen('new', dir, '--spec', enums, '--no-install', '--json')
    expect(r.code).toBe(1)
    const out = JSON.parse(r.stdout)
    expect(out.error).toEqual({message: `${enums} has errors; nothing was written`, exit: 1})
    expect(out.diagnostics.map((d: {code: string; line: number; col: number}) => `${d.code} ${d.line}:${d.col}`)).toEqual(['E211 6:20', 'E211 6:28', 'E212 8:20'])
  })

  it('generate --json on a bad spec exits 1 with the diagnostics', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iocpgen-cli-'))
    copyFileSync(join(root, enums), join(dir, 'spec.yaml'))
    writeFileSync(join(dir, 'package.json'), JSON.stringify({iocpgen: {spec: 'spec.yaml'}}))
    const r = iocpgen('generate', '--dir', dir, '--json')
    expect(r.code).toBe(1)
    const out = JSON.parse(r.stdout)
    expect(out.error).toEqual({message: 'spec.yaml has errors; nothing was written', exit: 1})
    expect(out.diagnostics).toHaveLength(3)
    expect(out.diagnostics[0]).toMatchObject({file: join(dir, 'spec.yaml'), line: 6, col: 20, code: 'E211'})
    expect(existsSync(join(dir, 'src'))).toBe(false)
  })
})

describe('help', () => {
  it('lists validate and autocomplete', () => {
    const r = iocpgen('--help')
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/validate\s+Check protocol specs/)
    expect(r.stdout).toContain('autocomplete')
  })
  it('documents the exit codes on validate --help', () => {
    const r = iocpgen('validate', '--help')
    expect(r.stdout.replace(/\s+/g, ' ')).toContain('Exit codes: 0 every spec is valid (warnings allowed), 1 a spec has errors, 2 usage error.')
  })
})

describe('small things users expect', () => {
  const withInput = (input: string, ...args: string[]) => {
    const r = spawnSync(process.execPath, [join(root, 'bin', 'run.js'), ...args], {cwd: root, encoding: 'utf8', input, env: {...process.env, NO_COLOR: '1'}})
    return {code: r.status, stdout: r.stdout, stderr: r.stderr}
  }

  it('-v, --version and version print the same version line', () => {
    const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version as string
    const lines = ['-v', '--version', 'version'].map((flag) => {
      const r = iocpgen(flag)
      expect(r.code, `${flag}: ${r.stderr}`).toBe(0)
      return r.stdout.trim()
    })
    expect(lines[0]).toMatch(new RegExp(`^iocpgen/${version.replace(/\./g, '\\.')} `))
    expect(new Set(lines).size).toBe(1)
  })

  it('validate - reads the spec from standard input, and places problems in "-"', () => {
    const good = withInput(readFileSync(join(root, 'examples/echo/echo.yaml'), 'utf8'), 'validate', '-')
    expect(good.code).toBe(0)
    expect(good.stdout).toContain('ok    - (1 message)')
    const broken = withInput('name: x\nversion: 1.0.0\nmessages: []\nframing: {maxFrame: 1}\n', 'validate', '-')
    expect(broken.code).toBe(1)
    expect(broken.stdout).toContain('-:4:21: error E304: framing.maxFrame is 1 bytes')
    expect(broken.stdout).toContain('    4 | framing: {maxFrame: 1}')
  })

  it('a new that fails on a bad spec leaves no directory behind', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'iocpgen-new-')), 'server')
    const r = iocpgen('new', dir, '--spec', `${bad}/pools.yaml`, '--no-install')
    expect(r.code).toBe(1)
    expect(existsSync(dir)).toBe(false)
  })
})
