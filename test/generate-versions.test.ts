// What a spec edit or a tool upgrade rewrites in a project: only files whose content really
// changes. A project made by one version of the tool passes `generate --check` under the next
// patch release while the output is the same; only the runtime's pin moves, and --check warns.
import {spawnSync} from 'node:child_process'
import {cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

const root = join(import.meta.dirname, '..')
const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {version: string}).version

function cli(bin: string, cwd: string, ...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], {cwd, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}
const iocpgen = (cwd: string, ...args: string[]) => cli(join(root, 'bin', 'run.js'), cwd, ...args)

function project(): string {
  const dir = join(mkdtempSync(join(tmpdir(), 'iocpgen-versions-')), 'chat')
  const r = iocpgen(root, 'new', dir, '--spec', join(root, 'examples', 'chat', 'chat.yaml'), '--no-install')
  expect(r.code, r.stderr).toBe(0)
  return dir
}

/** The paths `generate` would write, from its --json plan. */
function changes(dir: string): string[] {
  const r = iocpgen(dir, 'generate', '--dry-run', '--json')
  expect(r.code, r.stderr).toBe(0)
  return (JSON.parse(r.stdout) as {changes: {path: string}[]}).changes.map((c) => c.path).sort()
}

function editSpec(dir: string, edit: (text: string) => string): void {
  const file = join(dir, 'chat.yaml')
  writeFileSync(file, edit(readFileSync(file, 'utf8')))
}

describe('what a change rewrites', () => {
  it('adding a client message touches only the files that list messages, and its new handler', () => {
    const dir = project()
    editSpec(dir, (t) => t.replace('messages:\n', 'messages:\n  - id: 200\n    name: Whisper\n    direction: client-to-server\n    fields:\n      text: string<64>\n'))
    expect(changes(dir)).toEqual([
      '.iocpgen/manifest.json',
      'clients/csharp/ChatClient.cs',
      'clients/python/chat_client.py',
      'src/generated/client.ts',
      'src/generated/protocol.ts',
      'src/handlers/index.ts',
      'src/handlers/whisper.ts',
      'test/generated/bench.ts',
      'test/generated/codec.test.ts',
      'test/generated/server.test.ts',
    ])
  })

  it('adding a server message leaves the handler table, its types and the server test alone', () => {
    const dir = project()
    editSpec(dir, (t) => t.replace('messages:\n', 'messages:\n  - id: 200\n    name: Bulletin\n    direction: server-to-client\n    fields:\n      text: string<64>\n'))
    expect(changes(dir)).toEqual(['.iocpgen/manifest.json', 'clients/csharp/ChatClient.cs', 'clients/python/chat_client.py', 'src/generated/client.ts', 'src/generated/protocol.ts', 'test/generated/bench.ts', 'test/generated/codec.test.ts'])
  })

  it('changing a server setting touches only the settings', () => {
    const dir = project()
    editSpec(dir, (t) => t.replace(/drainTimeout: [^\n]+/, 'drainTimeout: 7s'))
    expect(changes(dir)).toEqual(['.iocpgen/manifest.json', 'src/generated/spec.ts'])
  })

  it('no generated file names the tool version', () => {
    const dir = project()
    const manifest = JSON.parse(readFileSync(join(dir, '.iocpgen/manifest.json'), 'utf8')) as {files: Record<string, string>}
    for (const path of [...Object.keys(manifest.files), '.iocpgen/manifest.json']) expect(readFileSync(join(dir, path), 'utf8'), path).not.toContain(version)
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {dependencies: Record<string, string>; devDependencies: Record<string, string>}
    expect(pkg.dependencies['@iocpgen/runtime']).toBe(version)
    expect(pkg.devDependencies.iocpgen).toBe(version)
  })
})

describe('a patch release of the tool', () => {
  /** This CLI as version `next`: its own files, this repository's dependencies. */
  function cliAt(next: string): string {
    const copy = join(mkdtempSync(join(tmpdir(), 'iocpgen-next-')), 'iocpgen')
    mkdirSync(copy)
    for (const part of ['bin', 'dist', 'schema', 'templates']) cpSync(join(root, part), join(copy, part), {recursive: true})
    mkdirSync(join(copy, 'native-template'))
    cpSync(join(root, 'native-template', 'locks.yaml'), join(copy, 'native-template', 'locks.yaml'))
    symlinkSync(join(root, 'node_modules'), join(copy, 'node_modules'))
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {version: string}
    writeFileSync(join(copy, 'package.json'), JSON.stringify({...pkg, version: next}, null, 2))
    return join(copy, 'bin', 'run.js')
  }
  const [major, minor, patch] = version.split('.').map(Number) as [number, number, number]
  const next = `${major}.${minor}.${patch + 1}`

  it(`passes generate --check, and generate moves only the runtime pin (${version} -> ${next})`, () => {
    const dir = project()
    const bin = cliAt(next)
    const check = cli(bin, dir, 'generate', '--check')
    expect(check.code, check.stdout + check.stderr).toBe(0)
    expect(check.stdout).toContain('up to date')
    expect(check.stderr).toContain(`package.json pins @iocpgen/runtime ${version}; this generator is ${next}`)

    const before = readFileSync(join(dir, 'package.json'), 'utf8')
    const gen = cli(bin, dir, 'generate', '--json')
    expect(gen.code, gen.stderr).toBe(0)
    expect((JSON.parse(gen.stdout) as {changes: unknown[]}).changes).toEqual([])
    const after = readFileSync(join(dir, 'package.json'), 'utf8')
    expect(after).toBe(before.replace(`"@iocpgen/runtime": "${version}"`, `"@iocpgen/runtime": "${next}"`))
    expect(cli(bin, dir, 'generate', '--check').stderr).not.toContain('pins')
  })
})
