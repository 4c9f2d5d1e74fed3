#!/usr/bin/env node
// Writes oclif.manifest.json for `npm pack` (what `oclif manifest` does, without the `oclif`
// package and its dependencies): the CLI then lists and parses commands without importing
// every command module. `--remove` deletes it again (postpack): in a checkout a stale
// manifest would hide changes to the commands.
import {rmSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {Plugin} from '@oclif/core'

const root = join(import.meta.dirname, '..')
const file = join(root, 'oclif.manifest.json')
if (process.argv.includes('--remove')) {
  rmSync(file, {force: true})
} else {
  const plugin = new Plugin({root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true, respectNoCacheDefault: true})
  await plugin.load()
  const ids = Object.keys(plugin.manifest.commands)
  if (ids.length === 0) throw new Error('no commands found; run "npm run build" first')
  writeFileSync(file, JSON.stringify(plugin.manifest, null, 2) + '\n')
  console.error(`oclif.manifest.json: ${ids.length} commands (${ids.join(', ')})`)
}
