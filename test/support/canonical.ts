// The canonical JSON of a decoded message, the same for every language's round-trip test:
// integers (enums too) as decimal strings, f32/f64 as the hex of their IEEE bits (8 or 16
// lowercase digits), bytes as lowercase hex, strings as themselves, arrays as arrays,
// structs and messages as objects with the spec's field names. Parsed lines are compared,
// so JSON escaping differences between languages do not matter.
// Standalone: the round-trip server's handlers import a copy of it.

export type TypeRef =
  | {kind: 'primitive'; name: string}
  | {kind: 'string'; max: number}
  | {kind: 'bytes'; max: number}
  | {kind: 'named'; name: string}
  | {kind: 'array'; of: TypeRef; max: number}

export interface TypeTable {
  messages: Record<string, [string, TypeRef][]>
  structs: Record<string, [string, TypeRef][]>
  enums: Record<string, string>
}

const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')

function floatBits(value: number, size: 4 | 8): string {
  const view = new DataView(new ArrayBuffer(size))
  if (size === 4) view.setFloat32(0, value)
  else view.setFloat64(0, value)
  return hex(new Uint8Array(view.buffer))
}

export function canonicalValue(table: TypeTable, type: TypeRef, value: unknown): unknown {
  switch (type.kind) {
    case 'primitive':
      if (type.name === 'bool') return value as boolean
      if (type.name === 'f32') return floatBits(value as number, 4)
      if (type.name === 'f64') return floatBits(value as number, 8)
      return String(value)
    case 'string':
      return value as string
    case 'bytes':
      return hex(value as Uint8Array)
    case 'array':
      return (value as unknown[]).map((v) => canonicalValue(table, type.of, v))
    case 'named':
      if (table.enums[type.name] !== undefined) return String(value)
      return canonicalFields(table, table.structs[type.name]!, value as Record<string, unknown>)
  }
}

function canonicalFields(table: TypeTable, fields: [string, TypeRef][], value: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(fields.map(([name, type]) => [name, canonicalValue(table, type, value[name])]))
}

/** One line of a round-trip log: `{"type": name, "message": {...}}`. */
export function canonicalMessage(table: TypeTable, type: string, message: unknown): {type: string; message: Record<string, unknown>} {
  return {type, message: canonicalFields(table, table.messages[type]!, message as Record<string, unknown>)}
}
