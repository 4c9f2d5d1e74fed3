// Checks a spec's shape against the JSON Schema that editors use too, and turns
// Ajv's errors into one positioned diagnostic per problem.
import {readFileSync} from 'node:fs'

import _Ajv, {type ErrorObject, type ValidateFunction} from 'ajv'

import {type Diagnostic, diagnostic} from '../diagnostics/diagnostic.js'
import {closest} from '../util/suggest.js'
import type {PathSegment, SourceView} from './source.js'

export const SCHEMA_URL = new URL('../../schema/iocpgen.schema.json', import.meta.url)

const Ajv = _Ajv as unknown as typeof _Ajv.default
let validator: ValidateFunction | undefined

function compiled(): ValidateFunction {
  if (!validator) {
    const schema = JSON.parse(readFileSync(SCHEMA_URL, 'utf8')) as object
    validator = new Ajv({allErrors: true, strict: false, verbose: true}).compile(schema)
  }
  return validator
}

/** Diagnostics for every place the data breaks the schema. */
export function checkSchema(source: SourceView, data: unknown): Diagnostic[] {
  const validate = compiled()
  if (validate(data)) return []
  return collapse(validate.errors ?? []).map((e) => toDiagnostic(source, e))
}

const WRONG_KIND = new Set(['type', 'const', 'enum', 'required', 'pattern'])

/**
 * Ajv reports every failed branch of an anyOf. Keep the errors of the one branch that
 * fits the value's kind (e.g. the {lock: …} form of a step), else the anyOf itself.
 */
function collapse(errors: ErrorObject[]): ErrorObject[] {
  const anyOfs = errors.filter((e) => e.keyword === 'anyOf')
  const drop = new Set<ErrorObject>()
  for (const a of anyOfs) {
    const prefix = a.schemaPath + '/'
    const branches = new Map<string, ErrorObject[]>()
    for (const e of errors) {
      if (e !== a && e.schemaPath.startsWith(prefix) && e.instancePath.startsWith(a.instancePath)) {
        const branch = e.schemaPath.slice(prefix.length).split('/')[0]!
        branches.set(branch, [...(branches.get(branch) ?? []), e])
        drop.add(e)
      }
    }
    const plausible = [...branches.values()].filter(
      (errs) => !errs.some((e) => e.instancePath === a.instancePath && WRONG_KIND.has(e.keyword)),
    )
    if (plausible.length === 1) {
      drop.add(a)
      for (const e of plausible[0]!) drop.delete(e)
    }
  }
  // Nested anyOfs may re-add errors already reported through their parent; dedupe.
  // NaN fails every bound as well as the type; the type error says it once.
  const nanTyped = new Set(errors.filter((e) => e.keyword === 'type' && Number.isNaN(e.data)).map((e) => e.instancePath))
  const seen = new Set<string>()
  return errors.filter((e) => {
    const key = `${e.instancePath}|${e.keyword}|${JSON.stringify(e.params)}`
    if (drop.has(e) || seen.has(key)) return false
    if ((e.keyword === 'minimum' || e.keyword === 'maximum') && nanTyped.has(e.instancePath)) return false
    seen.add(key)
    return true
  })
}

function pathOf(instancePath: string): PathSegment[] {
  if (!instancePath) return []
  return instancePath
    .slice(1)
    .split('/')
    .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s))
}

/** A readable name for a path: server.perIp.maxConnections, messages[3].id. */
export function describePath(path: readonly PathSegment[]): string {
  let out = ''
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg
  return out || 'the spec'
}

const show = (v: unknown): string => (typeof v === 'string' ? JSON.stringify(v) : String(JSON.stringify(v)))

function toDiagnostic(source: SourceView, e: ErrorObject): Diagnostic {
  const path = pathOf(e.instancePath)
  // Numbers as written: 1e400 is Infinity, which JSON prints as null; 2^64 would be rounded.
  const value = (v: unknown = e.data): string => (typeof v === 'number' ? (source.written(source.at(path)) ?? String(v)) : show(v))
  const where = describePath(path)
  const desc = (e.parentSchema as {description?: string} | undefined)?.description
  const file = source.file
  switch (e.keyword) {
    case 'additionalProperties': {
      const extra = String(e.params.additionalProperty)
      const known = Object.keys((e.parentSchema as {properties?: object}).properties ?? {}).filter((k) => k !== '$schema')
      const guess = closest(extra, known)
      const hint = guess ? `did you mean "${guess}"?` : known.length > 0 ? `known properties here: ${known.join(', ')}` : 'remove it; nothing may be added here'
      const at = source.at([...path, extra], 'key')
      return diagnostic('E101', file, at, `unknown property "${writtenKey(source, at, extra)}" in ${where}`, hint)
    }
    case 'required': {
      const missing = String(e.params.missingProperty)
      const child = (e.parentSchema as {properties?: Record<string, {description?: string}>}).properties?.[missing]
      return diagnostic('E102', file, source.at(path, 'key'), `${where} is missing "${missing}"`, child?.description ? `add "${missing}": ${child.description}` : `add "${missing}"`)
    }
    case 'type': {
      const want = [e.params.type].flat().join(' or ')
      const hint = want.includes('string') && typeof e.data === 'number' ? 'quote the value to make it a string' : (desc ?? `write ${article(want)} here`)
      return diagnostic('E103', file, source.at(path), `${where} must be ${article(want)}, not ${typeName(e.data, value)}`, hint)
    }
    case 'minimum':
    case 'maximum':
    case 'minLength':
    case 'minProperties': {
      const limit = Number(e.params.limit)
      const [rule, fix] =
        e.keyword === 'minimum' ? [`must be at least ${limit}`, `use a value of at least ${limit}`]
        : e.keyword === 'maximum' ? [`must be at most ${limit}`, `use a value of at most ${limit}`]
        : e.keyword === 'minLength' ? ['must not be empty', 'give it a value']
        : [`needs at least ${limit} ${limit === 1 ? 'entry' : 'entries'}`, `add at least ${limit} ${limit === 1 ? 'entry' : 'entries'}`]
      return diagnostic('E104', file, source.at(path), `${where} ${value()} is out of range: it ${rule}`, desc ?? fix)
    }
    case 'enum':
    case 'const': {
      const allowed = (e.keyword === 'enum' ? (e.params.allowedValues as unknown[]) : [e.params.allowedValue]).map(String)
      const guess = typeof e.data === 'string' ? closest(e.data, allowed) : undefined
      return diagnostic('E105', file, source.at(path), `${where} is ${value()}; expected one of: ${allowed.join(', ')}`, guess ? `did you mean "${guess}"?` : (desc ?? `use one of: ${allowed.join(', ')}`))
    }
    case 'pattern':
      return diagnostic('E106', file, source.at(path), `${where} ${value()} has the wrong format`, desc ?? 'see docs/spec.md for the accepted form')
    default: {
      // For an anyOf of constants and types (workers: auto | N), suggest the nearest constant.
      const consts = ((e.parentSchema as {anyOf?: {const?: unknown; enum?: unknown[]}[]}).anyOf ?? [])
        .flatMap((b) => (b.const !== undefined ? [b.const] : (b.enum ?? [])))
        .map(String)
      const guess = typeof e.data === 'string' ? closest(e.data, consts) : undefined
      return diagnostic('E107', file, source.at(path), `${where} ${value()} is not valid`, guess ? `did you mean "${guess}"? (${desc})` : (desc ?? e.message ?? 'see docs/spec.md for the accepted forms'))
    }
  }
}

const article = (t: string): string => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`)

function typeName(v: unknown, value: (v: unknown) => string): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'a list'
  if (typeof v === 'object') return 'a mapping'
  return `${typeof v} ${value(v)}`
}

/** A key as the spec writes it, when YAML read it as something else (NULL, ~, true, 1.0). */
export function writtenKey(source: SourceView, at: Parameters<SourceView['written']>[0], key: string): string {
  const w = source.written(at)
  return w !== undefined && !/^["']/.test(w) ? w : key
}
