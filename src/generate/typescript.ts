// Emits src/generated/protocol.ts: the message types, enums, ids and a codec per type.
// The codec writes the wire format of docs/spec.md through the runtime's Reader/Writer.
import type {Field, Spec, TypeRef} from '../spec/model.js'
import {FRAME_HEADER} from '../spec/model.js'
import {prefixSize, sizeOf, type TypeTable} from '../spec/wire.js'
import {inbound, outbound} from './names.js'

const INT_TS: Record<string, string> = {u8: 'number', u16: 'number', u32: 'number', i8: 'number', i16: 'number', i32: 'number', f32: 'number', f64: 'number', u64: 'bigint', i64: 'bigint', bool: 'boolean'}

export function tableOf(spec: Spec): TypeTable {
  return {structs: new Map(spec.structs.map((s) => [s.name, s])), enums: new Map(spec.enums.map((e) => [e.name, e]))}
}

function tsType(t: TypeRef): string {
  switch (t.kind) {
    case 'primitive':
      return INT_TS[t.name]!
    case 'string':
      return 'string'
    case 'bytes':
      return 'Uint8Array'
    case 'named':
      return t.name
    case 'array':
      return `${tsType(t.of).includes(' ') ? `(${tsType(t.of)})` : tsType(t.of)}[]`
  }
}

/** An expression writing `value` of type t to the Writer `w`. */
function writeExpr(t: TypeRef, value: string, table: TypeTable, depth = 0): string {
  switch (t.kind) {
    case 'primitive':
      return `w.${t.name}(${value})`
    case 'string':
      return `w.string(${value}, ${t.max}, ${prefixSize(t.max)})`
    case 'bytes':
      return `w.bytes(${value}, ${t.max}, ${prefixSize(t.max)})`
    case 'named': {
      const e = table.enums.get(t.name)
      return e ? `w.${e.base}(${value})` : `encode${t.name}(w, ${value})`
    }
    case 'array': {
      const item = `v${depth}`
      return `w.count(${value}.length, ${t.max}, ${prefixSize(t.max)}); for (const ${item} of ${value}) { ${writeExpr(t.of, item, table, depth + 1)} }`
    }
  }
}

/** An expression reading a value of type t from the Reader `r`. */
function readExpr(t: TypeRef, table: TypeTable): string {
  switch (t.kind) {
    case 'primitive':
      return `r.${t.name}()`
    case 'string':
      return `r.string(${t.max}, ${prefixSize(t.max)})`
    case 'bytes':
      return `r.bytes(${t.max}, ${prefixSize(t.max)})`
    case 'named': {
      const e = table.enums.get(t.name)
      return e ? `r.oneOf(r.${e.base}(), ${t.name}Values, '${t.name}') as ${t.name}` : `decode${t.name}(r)`
    }
    case 'array':
      return `r.array(${t.max}, ${prefixSize(t.max)}, () => ${readExpr(t.of, table)})`
  }
}

/** Whether a value of type t holds bytes directly (in a struct, its own fields say so). */
const holdsBytes = (t: TypeRef): boolean => t.kind === 'bytes' || (t.kind === 'array' && holdsBytes(t.of))

// Said where the field is typed, so an editor shows the lifetime rule on hover.
const BYTES_NOTE = '  /** In a handler, a view of the received frame: valid until the handler returns or first awaits. Keep a copy (.slice()). */'

const interfaceOf = (name: string, fields: readonly Field[]) =>
  fields.length === 0 ? `export type ${name} = Record<string, never>` : [`export interface ${name} {`, ...fields.flatMap((f) => [...(holdsBytes(f.type) ? [BYTES_NOTE] : []), `  ${f.name}: ${tsType(f.type)}`]), '}'].join('\n')

function codecOf(name: string, fields: readonly Field[], table: TypeTable): string {
  const value = fields.length ? 'm' : '_m'
  return [
    `export function encode${name}(w: Writer, ${value}: ${name}): void {`,
    ...fields.map((f) => `  ${writeExpr(f.type, `m.${f.name}`, table)}`),
    '}',
    '',
    `export function decode${name}(r: Reader): ${name} {`,
    fields.length ? `  return {${fields.map((f) => `${f.name}: ${readExpr(f.type, table)}`).join(', ')}}` : '  return {}',
    '}',
  ].join('\n')
}

export function emitProtocol(spec: Spec, header: string): string {
  const table = tableOf(spec)
  const out: string[] = [header, "import type {Codec, Reader, Writer} from '@iocpgen/runtime'", '']
  for (const e of spec.enums) {
    out.push(
      `export const ${e.name} = {${e.values.map((v) => `${v.name}: ${v.value}`).join(', ')}} as const`,
      `export type ${e.name} = (typeof ${e.name})[keyof typeof ${e.name}]`,
      `const ${e.name}Values: ReadonlySet<number> = new Set(Object.values(${e.name}))`,
      '',
    )
  }
  for (const s of spec.structs) out.push(interfaceOf(s.name, s.fields), '', codecOf(s.name, s.fields, table), '')
  for (const m of spec.messages) out.push(interfaceOf(m.name, m.fields), '', codecOf(m.name, m.fields, table), '')

  const ids = spec.messages.map((m) => `  ${m.name}: ${m.id},`)
  out.push(
    '/** The u16 type id of each message on the wire. */',
    'export const MessageId = {',
    ...ids,
    '} as const',
    'export type MessageName = keyof typeof MessageId',
    '',
    '/** Every message by name. */',
    'export interface Messages {',
    ...spec.messages.map((m) => `  ${m.name}: ${m.name}`),
    '}',
    '',
    `/** Messages clients send; each has a handler. */`,
    `export type InboundName = ${union(inbound(spec.messages).map((m) => m.name))}`,
    `/** Messages the server sends. */`,
    `export type OutboundName = ${union(outbound(spec.messages).map((m) => m.name))}`,
    '',
    '/** The protocol\'s types, as the runtime takes them. */',
    'export interface Types {',
    '  messages: Messages',
    '  inbound: InboundName',
    '  outbound: OutboundName',
    '}',
    '',
    'export const codecs: {[K in MessageName]: Codec<Messages[K]>} = {',
    ...spec.messages.map((m) => {
      const size = sizeOf({kind: 'named', name: m.name}, {...table, structs: new Map([...table.structs, [m.name, {name: m.name, fields: m.fields, at: m.at}]])})
      return `  ${m.name}: {id: ${m.id}, encode: encode${m.name}, decode: decode${m.name}, minSize: ${size.min}, maxSize: ${size.max}},`
    }),
    '}',
    '',
    '/** Codecs by type id, for decoding incoming frames. */',
    'export const codecById: ReadonlyMap<number, {name: MessageName} & Codec<unknown>> = new Map(',
    '  (Object.keys(codecs) as MessageName[]).map((name) => [codecs[name].id, {name, ...(codecs[name] as Codec<unknown>)}]),',
    ')',
    '',
    `export const MAX_FRAME = ${spec.maxFrame}`,
    `export const FRAME_HEADER = ${FRAME_HEADER}`,
    '/** How often clients should send something (the spec\'s heartbeat; 0: not set). The server closes clients silent for idleTimeout. */',
    `export const HEARTBEAT_MS = ${spec.server.heartbeatMs}`,
    '',
  )
  return out.join('\n')
}

const union = (names: string[]) => (names.length ? names.map((n) => `'${n}'`).join(' | ') : 'never')
