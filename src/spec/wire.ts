// Wire sizes. Little-endian throughout. string<N> and bytes<N> carry a length prefix,
// arrays a count prefix: u16 when the bound is at most 65535, else u32.
import type {EnumDef, Primitive, StructDef, TypeRef} from './model.js'

const PRIMITIVE_SIZE: Record<Primitive, number> = {
  u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, u64: 8, i64: 8, f64: 8,
}

export const prefixSize = (bound: number): number => (bound <= 0xffff ? 2 : 4)

export interface TypeTable {
  structs: Map<string, StructDef>
  enums: Map<string, EnumDef>
}

export interface SizeRange {
  min: number
  max: number
}

/** Smallest and largest encoded size of a type; unknown names count as 0 (reported elsewhere). */
export function sizeOf(t: TypeRef, table: TypeTable, seen: ReadonlySet<string> = new Set()): SizeRange {
  switch (t.kind) {
    case 'primitive': {
      const n = PRIMITIVE_SIZE[t.name]
      return {min: n, max: n}
    }
    case 'string':
    case 'bytes':
      return {min: prefixSize(t.max), max: prefixSize(t.max) + t.max}
    case 'array': {
      const inner = sizeOf(t.of, table, seen)
      return {min: prefixSize(t.max), max: prefixSize(t.max) + t.max * inner.max}
    }
    case 'named': {
      const e = table.enums.get(t.name)
      if (e) return sizeOf({kind: 'primitive', name: e.base}, table, seen)
      const s = table.structs.get(t.name)
      if (!s || seen.has(s.name)) return {min: 0, max: 0}
      return fieldsSize(s.fields.map((f) => f.type), table, new Set([...seen, s.name]))
    }
  }
}

export function fieldsSize(types: readonly TypeRef[], table: TypeTable, seen: ReadonlySet<string> = new Set()): SizeRange {
  let min = 0
  let max = 0
  for (const t of types) {
    const s = sizeOf(t, table, seen)
    min += s.min
    max += s.max
  }
  return {min, max}
}
