#!/usr/bin/env node
// Copies the native core's sources into runtime/native/ for `npm pack` (the runtime's
// binding.gyp builds from there) and the repository's LICENSE into runtime/, and checks that
// both prebuilds are there to ship. `--remove` (postpack) takes the copies away again.
import {cpSync, existsSync, mkdirSync, readdirSync, rmSync} from 'node:fs'
import {join} from 'node:path'

const root = join(import.meta.dirname, '..')
const from = join(root, 'native-template')
const to = join(root, 'runtime', 'native')
const license = join(root, 'runtime', 'LICENSE')
rmSync(to, {recursive: true, force: true})
rmSync(license, {force: true})
if (process.argv.includes('--remove')) process.exit(0)

for (const dir of ['src', 'addon']) {
  mkdirSync(join(to, dir), {recursive: true})
  for (const f of readdirSync(join(from, dir))) if (/\.(h|cpp)$/.test(f)) cpSync(join(from, dir, f), join(to, dir, f))
}
cpSync(join(root, 'LICENSE'), license)
const prebuilds = ['linux-x64/node.napi.glibc.node', 'win32-x64/node.napi.node'].map((p) => join(root, 'runtime', 'prebuilds', p))
const missing = prebuilds.filter((p) => !existsSync(p))
if (missing.length) {
  console.error(`missing prebuilds (run "npm run build:native" at the repository root):\n  ${missing.join('\n  ')}`)
  process.exit(1)
}
