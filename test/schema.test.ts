// The JSON Schema is what editors complete from: every property says its default (when the
// tool has one) and gives examples, each valid, and the defaults are the ones the tool uses.
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import _Ajv from 'ajv'
import {describe, expect, it} from 'vitest'

import {validateSpecFile} from '../src/spec/validate.js'
import schema from '../schema/iocpgen.schema.json' with {type: 'json'}

const Ajv = _Ajv as unknown as typeof _Ajv.default
type Node = {properties?: Record<string, Node>; anyOf?: Node[]; default?: unknown; examples?: unknown[]; $ref?: string}

/** Every property schema, by a dotted path: the top level's, and each definition's, nested. */
function properties(): [string, Node][] {
  const out: [string, Node][] = []
  const walk = (prefix: string, node: Node) => {
    for (const [k, v] of Object.entries(node.properties ?? {})) {
      out.push([`${prefix}${k}`, v])
      walk(`${prefix}${k}.`, v)
    }
    for (const [i, branch] of (node.anyOf ?? []).entries()) walk(`${prefix}[${i}].`, branch)
  }
  walk('', schema as Node)
  for (const [name, def] of Object.entries(schema.definitions)) walk(`#${name}.`, def as Node)
  return out
}

// Properties with no default: required ones, free text, names, and what is off when absent.
const NO_DEFAULT = [
  '$schema', 'name', 'version', 'description', 'messages',
  '#server.queueNotice', '#cluster.subject', '#cluster.url', '#enum.values',
  '#message.id', '#message.name', '#message.direction', '#message.description',
  '#lock.kind', '#lock.description', '#step.[1].lock', '#step.[2].call',
]

describe('the JSON Schema', () => {
  const ajv = new Ajv({strict: false})
  const check = (node: Node, value: unknown) => ajv.compile({...node, definitions: schema.definitions})(value)

  it('gives valid examples for every property', () => {
    const all = properties()
    expect(all.length).toBeGreaterThan(50)
    for (const [path, node] of all) {
      expect(node.examples?.length ?? 0, `${path} has no examples`).toBeGreaterThan(0)
      for (const e of node.examples!) expect(check(node, e), `${path} example ${JSON.stringify(e)}`).toBe(true)
    }
  })

  it('gives a valid default for every property the tool defaults, and none for the others', () => {
    for (const [path, node] of properties()) {
      if (NO_DEFAULT.includes(path)) expect(node.default, `${path} has no default in the tool`).toBeUndefined()
      else {
        expect(node.default, `${path} has no default`).not.toBeUndefined()
        expect(check(node, node.default), `${path} default ${JSON.stringify(node.default)}`).toBe(true)
      }
    }
  })

  it("its defaults are the tool's: writing them all out builds the same model as leaving them out", () => {
    const defaults = (def: keyof typeof schema.definitions) =>
      Object.fromEntries(Object.entries((schema.definitions[def] as Node).properties!).flatMap(([k, v]) => (v.default === undefined ? [] : [[k, v.default]])))
    const perIp = Object.fromEntries(Object.entries(schema.definitions.server.properties.perIp.properties).map(([k, v]) => [k, (v as Node).default]))
    const server = {...defaults('server'), perIp}
    const lock = defaults('lock')
    const dir = mkdtempSync(join(tmpdir(), 'schema-defaults-'))
    const spec = (extra: object) => {
      const file = join(dir, `${Object.keys(extra).length}.json`)
      writeFileSync(file, JSON.stringify({name: 'd', version: '1.0.0', messages: [], locks: {a: {kind: 'mutex', ...('server' in extra ? lock : {})}}, operations: {op: [{lock: 'a'}]}, ...extra}))
      const r = validateSpecFile(file)
      expect(r.diagnostics.map((d) => `${d.code} ${d.message}`)).toEqual([])
      // Positions differ between the two files; the values are the point.
      return JSON.parse(JSON.stringify(r.spec, (k, v) => (k === 'at' || k.endsWith('At') ? undefined : v)))
    }
    const plain = spec({})
    const explicit = spec({server, cluster: defaults('cluster'), framing: defaults('framing')})
    for (const part of ['server', 'cluster', 'maxFrame', 'locks']) expect(explicit[part], part).toEqual(plain[part])
  })

  it('offers the primitive field types as values to complete', () => {
    const field = schema.definitions.fieldType as Node & {anyOf: {enum?: string[]}[]}
    expect(field.anyOf[0]!.enum).toEqual(['u8', 'u16', 'u32', 'u64', 'i8', 'i16', 'i32', 'i64', 'f32', 'f64', 'bool'])
  })
})
