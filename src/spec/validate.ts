// The whole check of one spec file: read, parse, schema, build, meaning.
import {resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

import {type Diagnostic, diagnostic, hasErrors, sortDiagnostics} from '../diagnostics/diagnostic.js'
import {checkLockGraph} from '../locks/check.js'
import {buildLockGraph, type LockGraph} from '../locks/graph.js'
import {buildSpec} from './build.js'
import {checkSpec} from './check.js'
import type {Spec} from './model.js'
import {checkSchema} from './schema-check.js'
import {quickParse} from './quick-parse.js'
import {loadSource, PlainSource, readSpecText, type SourceView, type SpecSource, toData} from './source.js'

export interface SpecResult {
  file: string
  /** Present when the file parsed; complete and safe to generate from only when `ok`. */
  spec?: Spec
  source?: SpecSource
  diagnostics: Diagnostic[]
  ok: boolean
}

export const CORE_LOCKS = fileURLToPath(new URL('../../native-template/locks.yaml', import.meta.url))
const core: {quick?: SpecResult; positioned?: SpecResult} = {}

/**
 * The core's own locks and operations (native-template/locks.yaml), checked once. With
 * positions when diagnostics may cite the core's steps (the full pass), which costs a parse.
 */
export function coreLockModel(positions = false): SpecResult {
  if (positions) return (core.positioned ??= validateSpecFile(CORE_LOCKS, false, false))
  return (core.quick ??= validateSpecFile(CORE_LOCKS, false))
}

/**
 * Checks one spec file. Its lock model is checked together with the core's, so that a user
 * operation calling into the core (or holding a lock across it) is part of the proof.
 * Never throws: a failure of the checker itself becomes an E999 for this file alone.
 */
export function validateSpecFile(file: string, withCore = true, fast = true): SpecResult {
  try {
    const read = readSpecText(file)
    if (read.diagnostic) return {file, diagnostics: [read.diagnostic], ok: false}
    return (fast ? quickPass(file, read.text, withCore) : undefined) ?? fullPass(file, read.text, withCore)
  } catch (error) {
    const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
    const d = diagnostic('E999', file, {line: 1, col: 1}, `iocpgen failed while checking this file (${firstLine(what)})`, 'this is a bug in iocpgen, not necessarily in the spec; please report it with the spec attached')
    return {file, diagnostics: [d], ok: false}
  }
}

const firstLine = (s: string) => s.split('\n')[0]!.slice(0, 200)

/** The quick pass alone: its result when it vouches for the file, else undefined (for tests). */
export function quickCheck(file: string, withCore = true): SpecResult | undefined {
  const read = readSpecText(file)
  return read.text === undefined ? undefined : quickPass(file, read.text, withCore)
}

/**
 * Parses with a fast parser and runs every check without positions. Returns a result only
 * when nothing at all is reported; anything else (a problem, a parse error, an odd file)
 * goes to the full pass, whose output is then the answer.
 */
function quickPass(file: string, text: string, withCore: boolean): SpecResult | undefined {
  const data = quickParse(text)
  if (!data) return undefined
  const checked = runChecks(new PlainSource(file, data), data, file, withCore, false)
  return checked.diagnostics.length === 0 ? {file, spec: checked.spec, diagnostics: [], ok: true} : undefined
}

function fullPass(file: string, text: string, withCore: boolean): SpecResult {
  const loaded = loadSource(file, text)
  if (!loaded.source) return {file, diagnostics: loaded.diagnostics, ok: false}
  const {source} = loaded
  const data = toData(source.doc.contents) as Record<string, unknown>
  const checked = runChecks(source, data, file, withCore, true)
  const sorted = sortDiagnostics([...loaded.diagnostics, ...checked.diagnostics])
  return {file, spec: checked.spec, source, diagnostics: sorted, ok: !hasErrors(sorted)}
}

function runChecks(source: SourceView, data: Record<string, unknown>, file: string, withCore: boolean, positions: boolean): {spec: Spec; diagnostics: Diagnostic[]} {
  const diagnostics = checkSchema(source, data)
  const built = buildSpec(source, data)
  const isCore = resolve(file) === CORE_LOCKS
  const coreSpec = withCore && !isCore ? coreLockModel(positions).spec : undefined
  const clashes = coreSpec ? coreNameClashes(built.spec, coreSpec) : []
  diagnostics.push(...built.diagnostics, ...checkSpec(built.spec, source, coreSpec), ...clashes)
  // With a name clash the two graphs cannot be merged; the clash is the report.
  diagnostics.push(...checkLockGraph(lockGraphOf(built.spec, clashes.length ? undefined : coreSpec)).diagnostics)
  return {spec: built.spec, diagnostics}
}

/**
 * The lock graph of a spec, with the core's when given. The core never takes a user lock
 * (it releases its own before calling into JavaScript), so every user lock comes before
 * every core lock.
 */
export function lockGraphOf(spec: Spec, coreSpec?: Spec): LockGraph {
  const graph = buildLockGraph(coreSpec ? [coreSpec, spec] : [spec])
  for (const u of spec.locks) {
    for (const c of coreSpec?.locks ?? []) {
      // Not a statement of either file: say it is the rule, and cite the spec's lock.
      const rule = `${u.name} is a lock of the spec and ${c.name} one of the core, which never takes a spec lock, so ${u.name} comes first`
      graph.declared.push({from: u.name, to: c.name, at: {file: spec.file, ...u.at}, rule})
    }
  }
  return graph
}

function coreNameClashes(spec: Spec, coreSpec: Spec): Diagnostic[] {
  const taken = new Set([...coreSpec.locks.map((l) => l.name), ...coreSpec.operations.map((o) => o.name)])
  return [...spec.locks, ...spec.operations]
    .filter((x) => taken.has(x.name))
    .map((x) => diagnostic('E420', spec.file, x.at, `"${x.name}" is a lock or operation of the native core`, `rename it; the core's locks and operations (${[...taken].join(', ')}) are part of every spec's lock model`))
}
