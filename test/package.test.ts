// The packages as a user gets them: both are packed from a copy of the checkout, then installed
// from the tarballs on a PATH without a C++ compiler, make or Python. `iocpgen new` makes the
// echo project, `npm start` serves it (the prebuilt addon, nothing compiled), and the same
// install runs under Wine with node.exe, where node-gyp-build must pick the win32 prebuild.
// Last, a source build (`--build-from-source`) on the normal PATH builds runtime/native.
import {type ChildProcess, spawn} from 'node:child_process'
import {cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {connect, type Socket} from 'node:net'
import {tmpdir} from 'node:os'
import {dirname, join} from 'node:path'
import {pathToFileURL} from 'node:url'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {run, runOrThrow} from './support/run.js'
import {readIfExists, startUnderWine} from './support/windows.js'

const root = join(import.meta.dirname, '..')
const work = mkdtempSync(join(tmpdir(), 'iocpgen-pack-'))
const packs = join(work, 'packs')
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version as string
const cliTgz = join(packs, `iocpgen-${version}.tgz`)
const runtimeTgz = join(packs, `iocpgen-runtime-${version}.tgz`)
const children: ChildProcess[] = []

/** The environment without npm's per-run variables (set when the suite runs under `npm test`). */
function cleanEnv(path: string): NodeJS.ProcessEnv {
  const keep = new Set(['npm_config_cache', 'npm_config_registry', 'npm_config_userconfig'])
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) || keep.has(k)) env[k] = v
  for (const k of ['IOCPGEN_ADDON', 'PYTHON', 'INIT_CWD']) delete env[k]
  env.PATH = path
  return env
}

/** A bin directory with node, npm, npx and a few shell tools: no compiler, make or Python. */
async function bareBin(): Promise<string> {
  const bin = join(work, 'bin')
  mkdirSync(bin)
  symlinkSync(process.execPath, join(bin, 'node'))
  const tools = ['npm', 'npx', 'sh', 'env', 'cat', 'ls', 'mkdir', 'rm', 'cp', 'mv', 'chmod', 'ln', 'uname', 'sed', 'grep', 'tr', 'dirname', 'basename', 'readlink', 'realpath', 'tar', 'gzip']
  for (const t of tools) {
    const r = await run('sh', ['-c', `command -v ${t}`])
    if (r.status === 0) symlinkSync(r.stdout.trim(), join(bin, t))
    else if (t === 'npm' || t === 'npx' || t === 'sh') throw new Error(`${t} is not on PATH`)
  }
  return bin
}

/** Packs both packages from a copy of the checkout (tracked and new files, the prebuilds),
 *  so that their prepack builds do not rewrite dist/ under the other test files. */
async function packBoth(): Promise<void> {
  const src = join(work, 'checkout')
  const listed = await runOrThrow('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {cwd: root})
  for (const f of listed.split('\0').filter(Boolean)) {
    if (!existsSync(join(root, f))) continue
    mkdirSync(dirname(join(src, f)), {recursive: true})
    cpSync(join(root, f), join(src, f))
  }
  cpSync(join(root, 'runtime', 'prebuilds'), join(src, 'runtime', 'prebuilds'), {recursive: true})
  symlinkSync(join(root, 'node_modules'), join(src, 'node_modules'))
  const env = cleanEnv(process.env.PATH!)
  await runOrThrow('npm', ['pack', '--pack-destination', packs], {cwd: src, env})
  await runOrThrow('npm', ['pack', '--workspace', 'runtime', '--pack-destination', packs], {cwd: src, env})
}

const listTgz = async (tgz: string) => (await runOrThrow('tar', ['-tzf', tgz])).split('\n').filter(Boolean).map((p) => p.replace(/^package\//, ''))
const readTgz = async (tgz: string, file: string) => runOrThrow('tar', ['-xzOf', tgz, `package/${file}`])

/** Every file an "exports" map points at. */
function exportTargets(exports: unknown): string[] {
  if (typeof exports === 'string') return [exports]
  if (exports && typeof exports === 'object') return Object.values(exports).flatMap(exportTargets)
  return []
}

beforeAll(async () => {
  mkdirSync(packs)
  await packBoth()
}, 300_000)

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) killGroup(c, 'SIGKILL')
  rmSync(work, {recursive: true, force: true})
  // Two installs' node_modules: on a busy machine deleting them outlasts the default 10 s.
}, 120_000)

function killGroup(c: ChildProcess, signal: NodeJS.Signals) {
  try {
    process.kill(-c.pid!, signal)
  } catch {}
}

const groupAlive = (pid: number) => {
  try {
    process.kill(-pid, 0)
    return true
  } catch {
    return false
  }
}

async function waitFor<T>(what: string, check: () => T | undefined, ms: number): Promise<T> {
  const until = Date.now() + ms
  for (;;) {
    const v = check()
    if (v !== undefined) return v
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** The echo app's listening line in what `read` returns so far: port and backend. */
async function listening(what: string, child: ChildProcess, read: () => string, ms: number): Promise<{port: number; backend: string}> {
  const m = await waitFor(what, () => {
    if (child.exitCode !== null) throw new Error(`${what}: the server exited ${child.exitCode}:\n${read()}`)
    return /echo listening on port (\d+) \((\w+)\)/.exec(read()) ?? undefined
  }, ms)
  return {port: Number(m[1]), backend: m[2]!}
}

/** Spawns a server with its output collected, tracked so afterAll stops it. */
function spawnServer(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): {child: ChildProcess; output: () => string} {
  const child = spawn(cmd, args, {cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe']})
  children.push(child)
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  return {child, output: () => out}
}

describe('the packed tarballs', () => {
  it('ship no V8 logs, and none is committed', async () => {
    const logs = (f: string) => /(^|\/)isolate-.*\.log$/.test(f)
    expect((await runOrThrow('git', ['ls-files'], {cwd: root})).split('\n').filter(logs)).toEqual([])
    for (const tgz of [cliTgz, runtimeTgz]) expect((await listTgz(tgz)).filter((f) => logs(f) || f.endsWith('.log'))).toEqual([])
  })

  it('the runtime holds dist, both prebuilds, the native sources and the LICENSE, and no test or fuzz sources', async () => {
    const files = await listTgz(runtimeTgz)
    for (const f of ['LICENSE', 'package.json', 'install.cjs', 'binding.gyp', 'dist/index.js', 'dist/index.d.ts', 'prebuilds/linux-x64/node.napi.glibc.node', 'prebuilds/win32-x64/node.napi.node', 'native/addon/addon.cpp', 'native/addon/bridge.h', 'native/src/engine.cpp', 'native/src/backend_iocp.cpp', 'native/src/backend_uring.cpp']) {
      expect(files, f).toContain(f)
    }
    expect(files.filter((f) => /(^|\/)(test|fuzz|build)\/|core_test|lock_order_test|frame_fuzz|tsan\.supp|\.ts$/.test(f) && !f.endsWith('.d.ts'))).toEqual([])
    expect(await readTgz(runtimeTgz, 'LICENSE')).toBe(readFileSync(join(root, 'LICENSE'), 'utf8'))
    const pkg = JSON.parse(await readTgz(runtimeTgz, 'package.json'))
    for (const t of exportTargets(pkg.exports)) expect(files, `export ${t}`).toContain(t.replace(/^\.\//, ''))
    // The addon's loader, and the official NATS client for the cluster (loaded only when one is configured).
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['@nats-io/kv', '@nats-io/transport-node', 'node-addon-api', 'node-gyp-build'])
  })

  it('the CLI holds its oclif manifest listing the commands, the LICENSE, and no native sources but locks.yaml', async () => {
    const files = await listTgz(cliTgz)
    for (const f of ['LICENSE', 'README.md', 'oclif.manifest.json', 'bin/run.js', 'dist/commands/new.js', 'schema/iocpgen.schema.json', 'native-template/locks.yaml', 'templates/project/package.json.hbs', 'templates/init/spec.yaml.hbs']) {
      expect(files, f).toContain(f)
    }
    expect(files.filter((f) => f.startsWith('native-template/') && f !== 'native-template/locks.yaml')).toEqual([])
    expect(files.filter((f) => /^(src|runtime|test|examples|native|prebuilds)\//.test(f))).toEqual([])
    const manifest = JSON.parse(await readTgz(cliTgz, 'oclif.manifest.json'))
    expect(Object.keys(manifest.commands).sort()).toEqual(['breaking', 'completion', 'generate', 'init', 'locks', 'new', 'validate', 'version'])
    expect(manifest.version).toBe(version)
    const pkg = JSON.parse(await readTgz(cliTgz, 'package.json'))
    for (const t of exportTargets(pkg.exports)) expect(files, `export ${t}`).toContain(t.replace(/^\.\//, ''))
    // postpack took the manifest away again: in a checkout it would hide command changes.
    expect(existsSync(join(root, 'oclif.manifest.json'))).toBe(false)
  })
})

type Codecs = Record<string, {id: number; encode(w: unknown, m: unknown): void; decode(r: unknown): {data: Uint8Array}}>
type WireModule = {
  Writer: new () => {beginFrame(t: number): number; endFrame(s: number, max: number): void; view(): Buffer}
  Reader: new (b: Buffer, s?: number, e?: number) => {done(): void}
}

/** Echo round trips with the app's generated codec, checked against frames built by hand from
 *  docs/spec.md: u32 LE length of what follows, u16 LE type id, then `data` as u16 LE length + bytes. */
async function echoRoundTrips(app: string, port: number): Promise<void> {
  const {codecs} = (await import(pathToFileURL(join(app, 'dist/src/generated/protocol.js')).href)) as {codecs: Codecs}
  const {Writer, Reader} = (await import(pathToFileURL(join(app, 'node_modules/@iocpgen/runtime/dist/wire.js')).href)) as WireModule
  const encode = (data: Uint8Array) => {
    const w = new Writer()
    const start = w.beginFrame(codecs.Echo!.id)
    codecs.Echo!.encode(w, {data})
    w.endFrame(start, 65536)
    return Buffer.from(w.view())
  }
  const byHand = (data: Uint8Array) => {
    const f = Buffer.alloc(8 + data.length)
    f.writeUInt32LE(2 + 2 + data.length, 0)
    f.writeUInt16LE(1, 4)
    f.writeUInt16LE(data.length, 6)
    f.set(data, 8)
    return f
  }
  const s: Socket = await new Promise((resolve, reject) => {
    const c = connect(port, '127.0.0.1', () => resolve(c))
    c.once('error', reject)
  })
  let buf = Buffer.alloc(0)
  const frames: Buffer[] = []
  s.on('data', (d) => {
    buf = Buffer.concat([buf, d])
    while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) {
      const n = 4 + buf.readUInt32LE(0)
      frames.push(buf.subarray(0, n))
      buf = buf.subarray(n)
    }
  })
  try {
    const payloads = [new Uint8Array(0), Buffer.from('hello'), Uint8Array.from({length: 4096}, (_, i) => (i * 7) & 0xff)]
    for (let i = 0; i < 100; i++) payloads.push(Buffer.from(`frame ${i}`))
    const sent = payloads.map((p) => {
      const f = encode(p)
      expect(f.equals(byHand(p))).toBe(true)
      return f
    })
    // One at a time, then the rest coalesced into one write.
    for (const f of sent.slice(0, 3)) {
      const want = frames.length + 1
      s.write(f)
      await waitFor('an echo', () => (frames.length >= want ? true : undefined), 10_000)
    }
    s.write(Buffer.concat(sent.slice(3)))
    await waitFor('every echo', () => (frames.length >= sent.length ? true : undefined), 20_000)
    expect(frames.length).toBe(sent.length)
    for (let i = 0; i < sent.length; i++) {
      expect(frames[i]!.equals(sent[i]!), `frame ${i}`).toBe(true)
      const r = new Reader(frames[i]!, 6)
      expect(Buffer.from(codecs.Echo!.decode(r).data).equals(Buffer.from(payloads[i]!))).toBe(true)
      r.done()
    }
  } finally {
    s.destroy()
  }
}

const ECHO_HANDLER = `import type {Handler} from '../generated/handlers.js'

export const onEcho: Handler<'Echo'> = (session, message) => {
  session.send('Echo', message)
}
`

describe('installed from the tarballs on a machine without a compiler', () => {
  let env: NodeJS.ProcessEnv
  let app = ''

  beforeAll(async () => {
    env = cleanEnv(await bareBin())
    const user = join(work, 'user')
    mkdirSync(user)
    writeFileSync(join(user, 'package.json'), '{"private": true}\n')
    await runOrThrow('npm', ['install', '--no-audit', '--no-fund', cliTgz, runtimeTgz], {cwd: user, env})
    cpSync(join(root, 'examples/echo/echo.yaml'), join(user, 'echo.yaml'))
    // The app's own install takes the two packages from the tarballs (neither is on the registry).
    await runOrThrow('npx', ['iocpgen', 'new', 'app', '--spec', 'echo.yaml', '--no-install'], {cwd: user, env})
    app = join(user, 'app')
    await runOrThrow('npm', ['install', '--no-save', '--no-audit', '--no-fund', cliTgz, runtimeTgz], {cwd: app, env})
    writeFileSync(join(app, 'src/handlers/echo.ts'), ECHO_HANDLER)
    await runOrThrow('npm', ['run', 'build'], {cwd: app, env})
  }, 300_000)

  it('init and new name a JSON Schema that is installed where the spec is', async () => {
    const user = join(work, 'user')
    await runOrThrow('npx', ['iocpgen', 'init', 'lobby.yaml'], {cwd: user, env})
    await runOrThrow('npx', ['iocpgen', 'validate', 'lobby.yaml'], {cwd: user, env})
    for (const spec of [join(user, 'lobby.yaml'), join(app, 'echo.yaml')]) {
      const schema = /^# yaml-language-server: \$schema=(\S+)$/m.exec(readFileSync(spec, 'utf8'))?.[1]
      expect(schema, spec).toBe('node_modules/iocpgen/schema/iocpgen.schema.json')
      expect(JSON.parse(readFileSync(join(dirname(spec), schema!), 'utf8')).title).toBe('iocpgen protocol spec')
    }
  })

  it('has no C++ compiler, make or Python on its PATH', async () => {
    for (const c of ['g++', 'gcc', 'cc', 'c++', 'clang++', 'make', 'python3', 'python']) {
      expect((await run('sh', ['-c', `command -v ${c}`], {env})).status, c).not.toBe(0)
    }
  })

  it('depends on exactly this version of both packages, and compiled nothing', async () => {
    const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'))
    expect(pkg.dependencies['@iocpgen/runtime']).toBe(version)
    expect(pkg.devDependencies.iocpgen).toBe(version)
    const runtime = join(app, 'node_modules/@iocpgen/runtime')
    expect(JSON.parse(readFileSync(join(runtime, 'package.json'), 'utf8')).version).toBe(version)
    expect(existsSync(join(runtime, 'build'))).toBe(false)
    expect(existsSync(join(runtime, 'prebuilds/linux-x64/node.napi.glibc.node'))).toBe(true)
  })

  it("the runtime's dependency tree holds none of the CLI's dependencies", async () => {
    const tree = JSON.parse(await runOrThrow('npm', ['ls', '--all', '--json'], {cwd: app, env}))
    type Node = {dependencies?: Record<string, Node>}
    const names = (n: Node): string[] => Object.entries(n.dependencies ?? {}).flatMap(([k, v]) => [k, ...names(v)])
    const under = names(tree.dependencies['@iocpgen/runtime'])
    // The addon's loader, and the official NATS client (with what it brings), nothing else.
    const direct = Object.keys(tree.dependencies['@iocpgen/runtime'].dependencies ?? {}).sort()
    expect(direct).toEqual(['@nats-io/kv', '@nats-io/transport-node', 'node-addon-api', 'node-gyp-build'])
    for (const cli of ['@oclif/core', 'ts-morph', 'handlebars', 'ajv']) expect(under).not.toContain(cli)
  })

  it('npm start serves echo on Linux, and stops on SIGTERM', async () => {
    const {child, output} = spawnServer('npm', ['start'], app, {...env, PORT: '0'})
    const at = await listening('npm start', child, output, 120_000)
    expect(['uring', 'epoll']).toContain(at.backend)
    await echoRoundTrips(app, at.port)
    // As Ctrl+C would: to the whole group, since npm's sh does not pass SIGTERM on to node.
    killGroup(child, 'SIGTERM')
    await waitFor('the server to exit', () => (groupAlive(child.pid!) ? undefined : true), 20_000)
  }, 180_000)

  it('the same install runs under Wine with node.exe, on the win32 prebuild', async () => {
    if ((await run('sh', ['-c', 'command -v wine'])).status !== 0) throw new Error('wine is not installed (Debian: wine64)')
    const outFile = join(work, 'wine-stdout.txt')
    // startUnderWine takes the suite's environment; IOCPGEN_ADDON must not steer the loader.
    delete process.env.IOCPGEN_ADDON
    const child = startUnderWine(app, 'dist/src/main.js', {PORT: '0'}, outFile)
    children.push(child)
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    const at = await listening('node.exe under Wine', child, () => readIfExists(outFile), 180_000)
    expect(at.backend).toBe('iocp')
    await echoRoundTrips(app, at.port)
    // Windows has no SIGTERM; Wine turns SIGINT into the Ctrl+C that Node reports as SIGINT.
    child.kill('SIGINT')
    expect(await exited).toBe(0)
  }, 300_000)
})

describe('installed with --build-from-source', () => {
  it('builds the addon from runtime/native with node-gyp, and a server runs on it', async () => {
    const dir = join(work, 'from-source')
    mkdirSync(dir)
    // npm 11 warns about a dependency's install script that allowScripts does not list, and its docs say it blocks it.
    writeFileSync(join(dir, 'package.json'), JSON.stringify({private: true, allowScripts: {'@iocpgen/runtime': true}}))
    const env = cleanEnv(process.env.PATH!)
    const started = Date.now()
    await runOrThrow('npm', ['install', '--no-audit', '--no-fund', '--foreground-scripts', '--build-from-source', runtimeTgz], {cwd: dir, env})
    const seconds = (Date.now() - started) / 1000
    console.log(`source build of @iocpgen/runtime: ${seconds.toFixed(1)} s`)
    const runtime = join(dir, 'node_modules/@iocpgen/runtime')
    const built = join(runtime, 'build/Release/iocpgen.node')
    expect(existsSync(built)).toBe(true)
    // node-gyp-build prefers the source build over the prebuild.
    const found = await runOrThrow(process.execPath, ['-e', `console.log(require('node-gyp-build').resolve(${JSON.stringify(runtime)}))`], {cwd: dir, env})
    expect(found.trim()).toBe(built)
    // The echo app installed above, run on that addon.
    const app = join(work, 'user/app')
    if (!existsSync(join(app, 'dist/src/main.js'))) throw new Error('the echo app was not built')
    const {child, output} = spawnServer(process.execPath, ['dist/src/main.js'], app, {...env, PORT: '0', IOCPGEN_ADDON: built})
    await echoRoundTrips(app, (await listening('the source-built addon', child, output, 60_000)).port)
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)))
    child.kill('SIGTERM')
    expect(await exited).toBe(0)
  }, 300_000)
})
