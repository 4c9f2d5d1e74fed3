// The whole check of one spec file: read, parse, schema, build, meaning.
import {type Diagnostic, hasErrors, sortDiagnostics} from '../diagnostics/diagnostic.js'
import {checkLockGraph} from '../locks/check.js'
import {buildLockGraph} from '../locks/graph.js'
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

export function validateSpecFile(file: string): SpecResult {
  const loaded = loadSource(file)
  if (!loaded.source) return {file, diagnostics: loaded.diagnostics, ok: false}
  const {source} = loaded
  const data = source.doc.toJS({maxAliasCount: 100}) as Record<string, unknown>
  const diagnostics = [...loaded.diagnostics, ...checkSchema(source, data)]
  const built = buildSpec(source, data)
  diagnostics.push(...built.diagnostics, ...checkSpec(built.spec, source), ...checkLockGraph(buildLockGraph([built.spec])).diagnostics)
  const sorted = sortDiagnostics(diagnostics)
  return {file, spec: built.spec, source, diagnostics: sorted, ok: !hasErrors(sorted)}
}
