// The check of a project's code against its spec's locks: fixture projects of real TypeScript
// under test/fixtures/lock-code, checked directly and through the CLI.
import {spawnSync} from 'node:child_process'
import {join} from 'node:path'

import {beforeAll, describe, expect, it} from 'vitest'

import type {Diagnostic} from '../src/diagnostics/diagnostic.js'
import {checkCodeLocks, type CodeLockResult, projectOf} from '../src/locks/code.js'
import type {Step} from '../src/spec/model.js'
import {validateSpecFile} from '../src/spec/validate.js'

const root = join(import.meta.dirname, '..')
const fixtures = 'test/fixtures/lock-code'
const clean = `${fixtures}/clean`
const drift = `${fixtures}/drift`

const iocpgen = (...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'run.js'), ...args], {cwd: root, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

// As validate runs it: the spec with positions, the project found from it.
function check(dir: string): CodeLockResult {
  const spec = validateSpecFile(join(root, dir, 'spec.yaml'), true, false)
  expect(spec.ok, JSON.stringify(spec.diagnostics)).toBe(true)
  return checkCodeLocks(spec.spec!, projectOf(spec.file)!)
}

const at = (d: Diagnostic) => `${d.file.slice(d.file.indexOf(fixtures))}:${d.line}:${d.col} ${d.code}`
/** Lock steps as `lock:mode` chains, for comparing trees. */
const chains = (steps: Step[], prefix = ''): string[] =>
  steps.flatMap((s) => (s.kind === 'lock' ? [`${prefix}${s.lock}:${s.mode}`, ...chains(s.then, `${prefix}${s.lock}:${s.mode} > `)] : []))

describe('projectOf', () => {
  it('finds the directory holding tsconfig.json and src/generated/locks.ts', () => {
    expect(projectOf(`${clean}/spec.yaml`)).toBe(join(root, clean))
    expect(projectOf(join(root, clean, 'src', 'handlers', 'login.ts'))).toBe(join(root, clean))
  })

  it('finds none for a spec outside a project, or in one without locks', () => {
    expect(projectOf('examples/echo/echo.yaml')).toBeUndefined()
    expect(projectOf('test/fixtures/bad/pools.yaml')).toBeUndefined()
  })
})

describe('the chat example', () => {
  it('takes exactly the locks its spec declares: the check is silent', () => {
    const spec = validateSpecFile(join(root, 'examples/chat/chat.yaml'), true, false)
    const result = checkCodeLocks(spec.spec!, projectOf(spec.file)!)
    expect(result.diagnostics).toEqual([])
    // What the code does, operation by operation, is what the spec says.
    const code = new Map(result.operations.map((o) => [o.name, chains(o.steps)]))
    for (const o of spec.spec!.operations) expect(code.get(o.name) ?? [], o.name).toEqual(chains(o.steps))
    expect(code.get('Logout')).toEqual(['user:write', 'user:write > group:write'])
  })

  it('locks --from-code draws the graph the code has', () => {
    const r = iocpgen('locks', 'examples/chat/chat.yaml', '--from-code')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('user -> group  [declared, by Logout]')
  })
})

describe('checkCodeLocks on a clean project', () => {
  let result: CodeLockResult
  beforeAll(() => {
    result = check(clean)
  })

  it('reports nothing when the code takes exactly the declared locks', () => {
    expect(result.diagnostics).toEqual([])
  })

  it('gives the operations as the code performs them, helpers, callbacks and methods followed', () => {
    const ops = new Map(result.operations.map((o) => [o.name, o]))
    expect([...ops.keys()].sort()).toEqual(['addMember', 'groupJoin', 'login', 'sweep'])
    expect(chains(ops.get('login')!.steps)).toEqual(['users:write'])
    // Through addMember in another file.
    expect(chains(ops.get('groupJoin')!.steps)).toEqual(['users:read', 'users:read > group:write'])
    // A function passed by reference, a callback of map, a constructor and a recursive method.
    expect(chains(ops.get('sweep')!.steps)).toEqual(['users:read', 'users:read > group:write'])
    expect(ops.get('groupJoin')!.file).toBe(join(root, clean, 'src/handlers/group-join.ts'))
    expect(ops.get('groupJoin')!.at).toEqual({line: 5, col: 14})
    expect(ops.get('groupJoin')!.steps[0]!.at).toEqual({line: 6, col: 28})
  })
})

describe('checkCodeLocks on a project that drifted from its spec', () => {
  let result: CodeLockResult
  const find = (code: string, file: string) => result.diagnostics.filter((d) => d.code === code && d.file.endsWith(file))
  beforeAll(() => {
    result = check(drift)
  })

  it('reports each difference once, and nothing else', () => {
    expect(result.diagnostics.map(at)).toEqual([
      `${drift}/spec.yaml:33:3 E423`,
      `${drift}/src/fanout.ts:7:14 E421`,
      `${drift}/src/handlers/group-join.ts:5:14 E422`,
      `${drift}/src/handlers/group-join.ts:6:15 E421`,
      `${drift}/src/handlers/group-leave.ts:4:14 E422`,
      `${drift}/src/handlers/login.ts:11:11 E421`,
      `${drift}/src/maintenance.ts:5:15 E421`,
      `${drift}/src/startup.ts:4:28 E421`,
    ])
  })

  it('E421: an undeclared lock, at the variable it is taken through, with the locks held', () => {
    const [d] = find('E421', 'login.ts')
    expect(d).toMatchObject({line: 11, col: 11, endCol: 15, severity: 'error'})
    expect(d!.message).toBe(`login takes group (write) while holding users (write, taken at ${join(root, drift)}/src/handlers/login.ts:7:15), which the spec does not declare`)
    expect(d!.hint).toContain(`add {lock: group} under then: of the users (write) step of operations.login (${join(root, drift)}/spec.yaml:19:13)`)
  })

  it('E421 and E422: nesting the other way round than the spec', () => {
    const [taken] = find('E421', 'group-join.ts')
    expect(taken!.message).toBe('groupJoin takes group (write) with no lock held, which the spec does not declare')
    expect(taken!.hint).toContain('add - {lock: group} under operations.groupJoin')
    // The shortest chains only: not users under group, not group under users.
    const [missing] = find('E422', 'group-join.ts')
    expect(missing!.message).toBe('groupJoin no longer takes users (read) as the spec declares (code: onGroupJoin)')
    expect(result.diagnostics.filter((d) => d.file.endsWith('group-join.ts'))).toHaveLength(2)
  })

  it('E421 through a helper in another file names the chain of functions', () => {
    const [d] = find('E421', 'fanout.ts')
    expect(d).toMatchObject({line: 7, col: 14})
    expect(d!.message).toContain('groupSay takes group (write) while holding users (read, taken at')
    expect(d!.message).toContain('(via onGroupSay -> fanOut)')
  })

  it('E422: a declared step the handler no longer takes, at the handler, citing the spec step', () => {
    const [d] = find('E422', 'group-leave.ts')
    expect(d).toMatchObject({line: 4, col: 14, endCol: 26})
    expect(d!.message).toBe('groupLeave no longer takes group (write) while holding users (read) as the spec declares (code: onGroupLeave)')
    expect(d!.detail).toEqual([`declared at ${join(root, drift)}/spec.yaml:29:17: users (read) > group (write)`])
  })

  it('E423: an operation with locks and no code, at the operation in the spec', () => {
    const [d] = find('E423', 'spec.yaml')
    expect(d).toMatchObject({file: join(root, drift, 'spec.yaml'), line: 33, col: 3})
    expect(d!.message).toBe('operation kick takes locks, but no code for it was found')
    expect(d!.hint).toContain('a function named kick in src/')
  })

  it('E421: a lock no operation reaches, named after its function', () => {
    const [d] = find('E421', 'maintenance.ts')
    expect(d).toMatchObject({line: 5, col: 15})
    expect(d!.message).toBe('sweep takes users (write) with no lock held, but no operation of the spec reaches it')
    expect(d!.hint).toContain('add an operation named sweep')
    expect(result.operations.map((o) => o.name)).toContain('sweep')
  })

  it('E421: top-level code, once for the outermost lock it takes', () => {
    const found = find('E421', 'startup.ts')
    expect(found).toHaveLength(1)
    expect(found[0]!.message).toBe(`top-level code of ${join(root, drift)}/src/startup.ts takes users (read) with no lock held, but no operation of the spec reaches it`)
  })
})

describe('the fixtures are real TypeScript', () => {
  it.each([clean, drift])('%s compiles with tsc --noEmit', (dir) => {
    const r = spawnSync(join(root, 'node_modules', '.bin', 'tsc'), ['--noEmit', '-p', dir], {cwd: root, encoding: 'utf8'})
    expect(r.stdout + r.stderr).toBe('')
    expect(r.status).toBe(0)
  })
})

describe('the CLI', () => {
  it('validate fails a spec whose project drifted, showing the code lines', () => {
    const r = iocpgen('validate', `${drift}/spec.yaml`)
    expect(r.code).toBe(1)
    expect(r.stdout).toContain(`${drift}/src/handlers/login.ts:11:11: error E421: login takes group (write) while holding users (write, taken at ${drift}/src/handlers/login.ts:7:15)`)
    expect(r.stdout).toContain("   11 |     await home.lock(() => session.send('home'))\n      |           ^^^^\n")
    expect(r.stdout).toContain(`${drift}/spec.yaml:33:3: error E423: operation kick takes locks, but no code for it was found\n   33 |   kick:\n      |   ^^^^\n`)
    expect(r.stdout).toContain(`  declared at ${drift}/spec.yaml:29:17: users (read) > group (write)`)
    expect(r.stdout).toContain(`fail  ${drift}/spec.yaml: 8 errors`)
  })

  it('validate passes a clean project, and --no-code skips the code', () => {
    const ok = iocpgen('validate', `${clean}/spec.yaml`)
    expect(ok.stdout).toContain(`ok    ${clean}/spec.yaml (3 messages)`)
    expect(ok.code).toBe(0)
    const skipped = iocpgen('validate', '--no-code', `${drift}/spec.yaml`)
    expect(skipped.stdout).toContain(`ok    ${drift}/spec.yaml (5 messages)`)
    expect(skipped.code).toBe(0)
  })

  it('validate --json carries the code diagnostics with the spec', () => {
    const r = iocpgen('validate', '--json', `${drift}/spec.yaml`)
    expect(r.code).toBe(1)
    const report = JSON.parse(r.stdout)
    expect(report.files).toEqual([{file: `${drift}/spec.yaml`, ok: false, errors: 8, warnings: 0}])
    expect(report.diagnostics.map((d: Diagnostic) => d.code)).toEqual(['E423', 'E421', 'E422', 'E421', 'E422', 'E421', 'E421', 'E421'])
  })

  it('locks --from-code draws the edges the code takes and reports the differences on stderr', () => {
    const r = iocpgen('locks', `${drift}/spec.yaml`, '--from-code')
    expect(r.code).toBe(1)
    expect(r.stdout).toContain('  group -> users  [not declared, by groupJoin]  !! problem')
    expect(r.stdout).toContain('  users -> group  [declared, by groupSay, login]  !! problem')
    expect(r.stderr).toContain(`${drift}/src/maintenance.ts:5:15: error E421`)
    const json = iocpgen('locks', `${drift}/spec.yaml`, '--from-code', '--format', 'json')
    expect(JSON.parse(json.stdout).diagnostics.map((d: Diagnostic) => d.code)).toEqual(['E423', 'E421', 'E422', 'E421', 'E422', 'E421', 'E421', 'E421'])
    // The spec alone draws its own operations.
    const spec = iocpgen('locks', `${drift}/spec.yaml`)
    expect(spec.stdout).toContain('  users -> group  [declared, by groupJoin, groupLeave]')
    expect(spec.code).toBe(0)
  })

  it('locks --from-code --format json on a clean project: the code edges, no problems', () => {
    const r = iocpgen('locks', `${clean}/spec.yaml`, '--from-code', '--format', 'json')
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const g = JSON.parse(r.stdout)
    expect(g.edges).toEqual([{from: 'users', to: 'group', declared: true, operations: ['groupJoin', 'sweep'], problem: false}])
    expect(g.diagnostics).toEqual([])
  })

  it('locks --from-code refuses a spec outside a project', () => {
    const r = iocpgen('locks', 'test/fixtures/good/all-types.yaml', '--from-code')
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('is not in a generated project')
  })
})
