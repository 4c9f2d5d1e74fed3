// Generated projects under test live inside the repository (.cache/projects, gitignored), so
// '@iocpgen/runtime' resolves through the root's node_modules to runtime/ as it is built
// here: @iocpgen/runtime is not on the registry, and nothing is installed per project.
import {existsSync, mkdirSync, mkdtempSync} from 'node:fs'
import {join} from 'node:path'

import {runOrThrow} from './run.js'

export const root = join(import.meta.dirname, '..', '..')
export const projects = join(root, '.cache', 'projects')

/** What a project needs of the root's build; each must exist before any project runs. */
export const runtimeBuild = {
  js: join(root, 'runtime', 'dist', 'index.js'),
  linux: join(root, 'runtime', 'prebuilds', 'linux-x64', 'node.napi.glibc.node'),
  windows: join(root, 'runtime', 'prebuilds', 'win32-x64', 'node.napi.node'),
}

/** Throws unless the runtime's JavaScript (and the addon for `platform`, if given) is built at the root. */
export function requireRuntimeBuilt(platform?: 'linux' | 'windows'): void {
  const missing = [runtimeBuild.js, ...(platform ? [runtimeBuild[platform]] : [])].filter((f) => !existsSync(f))
  if (missing.length) throw new Error(`not built: ${missing.join(', ')}; run "npm run build && npm run build:native" at the repository root first`)
}

/** A fresh directory for a project called `name`, under .cache/projects. */
export function projectDir(name: string): string {
  mkdirSync(projects, {recursive: true})
  return join(mkdtempSync(join(projects, `${name}-`)), name)
}

/** Compiles a project with the root's TypeScript (what its "build" script does). */
export async function compileProject(dir: string): Promise<void> {
  requireRuntimeBuilt()
  await runOrThrow(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {cwd: dir})
}
