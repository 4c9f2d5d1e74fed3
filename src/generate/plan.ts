// Compares the files a spec renders to with what is on disk and in the manifest, and says
// what to create, update and delete; what was edited by hand is a conflict.
import {createHash} from 'node:crypto'
import {copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {dirname, join} from 'node:path'

import type {Spec} from '../spec/model.js'
import {updateHandlerTable} from './handlers-table.js'
import {handlerFile, inbound} from './names.js'
import type {ProjectFile} from './project.js'
import {specHash, TOOL_VERSION} from './project.js'

export const MANIFEST = '.iocpgen/manifest.json'
/** Where `generate --force` keeps what it overwrites of a hand edit, under the same path. */
export const BACKUP = '.iocpgen/backup'

// No tool version here: a tool upgrade that renders the same files changes nothing.
export interface Manifest {
  tool: string
  spec: string
  specSha256: string
  /** Every tool-owned file and the sha256 of what was written. */
  files: Record<string, string>
}

export type Action =
  | {kind: 'create'; path: string; content: string}
  | {kind: 'update'; path: string; content: string; before: string}
  | {kind: 'delete'; path: string; before: string}

export interface Conflict {
  path: string
  why: string
}

/** The project's pin of @iocpgen/runtime, when it is not this tool's version. */
export interface RuntimePin {
  from: string
  to: string
  /** package.json with the pin moved to `to`. */
  content: string
  before: string
}

export interface Plan {
  actions: Action[]
  /** Moving the runtime's pin is not a change of generated output: --check only warns. */
  pin?: RuntimePin
  conflicts: Conflict[]
  /** Handler files and table entries of messages the spec no longer has. */
  orphans: string[]
  addedHandlers: string[]
  manifest: Manifest
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex')

export function readManifest(dir: string): Manifest | undefined {
  const p = join(dir, MANIFEST)
  if (!existsSync(p)) return undefined
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as Manifest
  } catch {
    return undefined
  }
}

export function planProject(dir: string, files: readonly ProjectFile[], spec: Spec, specFile: string, specText: string): Plan {
  const old = readManifest(dir)
  const read = (p: string) => (existsSync(join(dir, p)) ? readFileSync(join(dir, p), 'utf8') : undefined)
  const actions: Action[] = []
  const conflicts: Conflict[] = []
  const manifest: Manifest = {tool: 'iocpgen', spec: specFile, specSha256: specHash(specText), files: {}}

  for (const f of files) {
    const disk = read(f.path)
    if (f.owner === 'user') {
      if (disk === undefined) actions.push({kind: 'create', path: f.path, content: f.content})
      continue
    }
    manifest.files[f.path] = sha(f.content)
    if (disk === undefined) actions.push({kind: 'create', path: f.path, content: f.content})
    else if (disk !== f.content) {
      const recorded = old?.files[f.path]
      if (recorded === undefined) conflicts.push({path: f.path, why: 'exists but was not written by iocpgen'})
      else if (sha(disk) !== recorded) conflicts.push({path: f.path, why: 'was edited by hand since it was generated'})
      actions.push({kind: 'update', path: f.path, content: f.content, before: disk})
    }
  }

  // Tool files the spec no longer produces.
  for (const [path, recorded] of Object.entries(old?.files ?? {})) {
    if (manifest.files[path] !== undefined) continue
    const disk = read(path)
    if (disk === undefined) continue
    if (sha(disk) !== recorded) conflicts.push({path, why: 'is no longer generated, and was edited by hand'})
    actions.push({kind: 'delete', path, before: disk})
  }

  // The handler table: the user's file, edited structurally.
  const clientMessages = inbound(spec.messages)
  let addedHandlers: string[] = []
  let orphans: string[] = []
  const tablePath = 'src/handlers/index.ts'
  const table = read(tablePath)
  if (table !== undefined) {
    const update = updateHandlerTable(table, clientMessages)
    addedHandlers = update.added
    orphans = update.orphaned.map((n) => `${tablePath}: entry "${n}"`)
    if (update.content !== table) actions.push({kind: 'update', path: tablePath, content: update.content, before: table})
  }
  const wanted = new Set(clientMessages.map((m) => handlerFile(m)))
  for (const path of handlerFilesOnDisk(dir)) if (!wanted.has(path)) orphans.push(path)

  if (JSON.stringify(old) !== JSON.stringify(manifest)) {
    const content = JSON.stringify(manifest, null, 2) + '\n'
    const before = read(MANIFEST)
    actions.push(before === undefined ? {kind: 'create', path: MANIFEST, content} : {kind: 'update', path: MANIFEST, content, before})
  }
  const pin = runtimePin(read('package.json'))
  return {actions: actions.sort((a, b) => a.path.localeCompare(b.path)), ...(pin ? {pin} : {}), conflicts, orphans: orphans.sort(), addedHandlers, manifest}
}

export const RUNTIME_PACKAGE = '@iocpgen/runtime'

/** The generated code needs the runtime of this tool's version: the pin, when it differs. */
function runtimePin(pkg: string | undefined): RuntimePin | undefined {
  if (pkg === undefined) return undefined
  let from: unknown
  try {
    from = (JSON.parse(pkg) as {dependencies?: Record<string, unknown>}).dependencies?.[RUNTIME_PACKAGE]
  } catch {
    return undefined
  }
  if (typeof from !== 'string' || from === TOOL_VERSION) return undefined
  // Only the version string changes: the user's formatting stays.
  const entry = new RegExp(`("${RUNTIME_PACKAGE.replace('/', '\\/')}"\\s*:\\s*)"[^"]*"`)
  return {from, to: TOOL_VERSION, before: pkg, content: pkg.replace(entry, `$1"${TOOL_VERSION}"`)}
}

function handlerFilesOnDisk(dir: string): string[] {
  const handlers = join(dir, 'src', 'handlers')
  if (!existsSync(handlers)) return []
  return readdirSync(handlers)
    .filter((f) => f.endsWith('.ts') && f !== 'index.ts')
    .sort()
    .map((f) => `src/handlers/${f}`)
}

/** Writes the plan; a conflicting file is first copied under BACKUP. Returns the backups made. */
export function applyPlan(dir: string, plan: Plan): string[] {
  const backups: string[] = []
  const conflicted = new Set(plan.conflicts.map((c) => c.path))
  if (plan.pin) writeFileSync(join(dir, 'package.json'), plan.pin.content)
  for (const a of plan.actions) {
    const p = join(dir, a.path)
    if (conflicted.has(a.path) && existsSync(p)) {
      const backup = `${BACKUP}/${a.path}`
      mkdirSync(dirname(join(dir, backup)), {recursive: true})
      copyFileSync(p, join(dir, backup))
      backups.push(backup)
    }
    if (a.kind === 'delete') {
      rmSync(p, {force: true})
      removeEmptyParents(dir, dirname(p))
    } else {
      mkdirSync(dirname(p), {recursive: true})
      writeFileSync(p, a.content)
    }
  }
  return backups
}

/** Removes `from` and its parents while they are empty, up to (not including) the project. */
function removeEmptyParents(project: string, from: string): void {
  for (let d = from; d.startsWith(project) && d.length > project.length; d = dirname(d)) {
    if (!existsSync(d) || readdirSync(d).length > 0) return
    rmSync(d, {recursive: true})
  }
}
