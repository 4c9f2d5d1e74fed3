// Sample values as TypeScript literals, for the generated round-trip tests. They reach each
// type's edges: the largest unsigned values, negative signed ones, multi-byte UTF-8.
import type {Field, TypeRef} from '../spec/model.js'
import type {TypeTable} from '../spec/wire.js'

const INT_SAMPLE: Record<string, string> = {
  u8: '255', u16: '65535', u32: '4294967295', u64: '18446744073709551615n',
  i8: '-128', i16: '-32768', i32: '-2147483648', i64: '-9223372036854775808n',
  f32: '1.5', f64: '-2.0000000000000004', bool: 'true',
}

function utf8Sample(maxBytes: number): string {
  // "héllo wörld " repeated, cut on a character boundary at most maxBytes long, at most 40.
  const unit = 'héllo wörld '
  let out = ''
  for (const ch of unit.repeat(4)) {
    if (Buffer.byteLength(out + ch) > Math.min(maxBytes, 40)) break
    out += ch
  }
  return out
}

export function sampleOf(t: TypeRef, table: TypeTable, depth = 0): string {
  switch (t.kind) {
    case 'primitive':
      return INT_SAMPLE[t.name]!
    case 'string':
      return JSON.stringify(utf8Sample(t.max))
    case 'bytes':
      return `new Uint8Array([${Array.from({length: Math.min(t.max, 4)}, (_, i) => (i * 85) & 0xff).join(', ')}])`
    case 'named': {
      const e = table.enums.get(t.name)
      if (e) return `${t.name}.${e.values.at(-1)!.name}`
      const s = table.structs.get(t.name)
      return s && depth < 8 ? sampleObject(s.fields, table, depth + 1) : '{}'
    }
    case 'array': {
      const n = Math.min(t.max, 2)
      return `[${Array.from({length: n}, () => sampleOf(t.of, table, depth + 1)).join(', ')}]`
    }
  }
}

export function sampleObject(fields: readonly Field[], table: TypeTable, depth = 0): string {
  return `{${fields.map((f) => `${f.name}: ${sampleOf(f.type, table, depth)}`).join(', ')}}`
}
