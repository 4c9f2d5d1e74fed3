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
import {loadSource, type SpecSource} from './source.js'

export interface SpecResult {
  file: string
  /** Present when the file parsed; complete and safe to generate from only when `ok`. */
  spec?: Spec
  source?: SpecSource
  diagnostics: Diagnostic[]
  ok: boolean
}

export const CORE_LOCKS = fileURLToPath(new URL('../../native-template/locks.yaml', import.meta.url))
let core: SpecResult | undefined

/** The core's own locks and operations (native-template/locks.yaml), checked once. */
export function coreLockModel(): SpecResult {
  core ??= validateSpecFile(CORE_LOCKS, false)
  return core
}

/**
 * Checks one spec file. Its lock model is checked together with the core's, so that a user
 * operation calling into the core (or holding a lock across it) is part of the proof.
 */
export function validateSpecFile(file: string, withCore = true): SpecResult {
  const loaded = loadSource(file)
  if (!loaded.source) return {file, diagnostics: loaded.diagnostics, ok: false}
  const {source} = loaded
  const data = source.doc.toJS({maxAliasCount: 100}) as Record<string, unknown>
  const diagnostics = [...loaded.diagnostics, ...checkSchema(source, data)]
  const built = buildSpec(source, data)
  const isCore = resolve(file) === CORE_LOCKS
  const coreSpec = withCore && !isCore ? coreLockModel().spec : undefined
  const clashes = coreSpec ? coreNameClashes(built.spec, coreSpec) : []
  diagnostics.push(...built.diagnostics, ...checkSpec(built.spec, source, coreSpec), ...clashes)
  // With a name clash the two graphs cannot be merged; the clash is the report.
  diagnostics.push(...checkLockGraph(lockGraphOf(built.spec, clashes.length ? undefined : coreSpec)).diagnostics)
  const sorted = sortDiagnostics(diagnostics)
  return {file, spec: built.spec, source, diagnostics: sorted, ok: !hasErrors(sorted)}
}

/**
 * The lock graph of a spec, with the core's when given. The core never takes a user lock
 * (it releases its own before calling into JavaScript), so every user lock comes before
 * every core lock.
 */
export function lockGraphOf(spec: Spec, coreSpec?: Spec): LockGraph {
  const graph = buildLockGraph(coreSpec ? [coreSpec, spec] : [spec])
  for (const u of spec.locks) {
    for (const c of coreSpec?.locks ?? []) graph.declared.push({from: u.name, to: c.name, at: {file: coreSpec!.file, ...c.at}})
  }
  return graph
}

function coreNameClashes(spec: Spec, coreSpec: Spec): Diagnostic[] {
  const taken = new Set([...coreSpec.locks.map((l) => l.name), ...coreSpec.operations.map((o) => o.name)])
  return [...spec.locks, ...spec.operations]
    .filter((x) => taken.has(x.name))
    .map((x) => diagnostic('E420', spec.file, x.at, `"${x.name}" is a lock or operation of the native core`, `rename it; the core's locks and operations (${[...taken].join(', ')}) are part of every spec's lock model`))
}
