// Compares two versions of a spec, as buf breaking does for protobuf: what a peer built from
// the old spec can no longer exchange with one built from the new (wire), and what code
// written against the old generated types no longer compiles against (source).
// Fields are positional on the wire, with no tags: adding, removing or moving a field changes
// every payload after it, so each of those is a wire break.
import {type Code, CODES} from '../diagnostics/codes.js'
import {diagnostic, type Diagnostic, type Position} from '../diagnostics/diagnostic.js'
import type {EnumDef, Field, Message, Spec, StructDef, TypeRef} from '../spec/model.js'

export type Category = 'wire' | 'source'

/** The codes of each category; every finding's code is in exactly one. */
export const CATEGORY: Record<Category, readonly Code[]> = {
  wire: ['E501', 'E502', 'E503', 'E504', 'E505', 'E506', 'E507', 'E508', 'E509', 'E510', 'E511', 'E512', 'E513', 'E514'],
  source: ['E521', 'E522', 'E523', 'E524', 'E525'],
}
export const categoryOf = (code: string): Category | undefined => (CATEGORY.wire.includes(code as Code) ? 'wire' : CATEGORY.source.includes(code as Code) ? 'source' : undefined)

/** One side of the comparison: its spec, and where a finding on the spec as a whole goes. */
export interface Side {
  spec: Spec
  /** The file as it should be named in findings (e.g. HEAD:specs/chat.yaml). */
  file: string
  /** framing.maxFrame's position, when written. */
  maxFrameAt?: Position
}

const TOP: Position = {line: 1, col: 1}

export function compareSpecs(old: Side, next: Side): Diagnostic[] {
  const out: Diagnostic[] = []
  const at = (side: Side, code: Code, where: Position, message: string, hint: string) => out.push(diagnostic(code, side.file, where, message, hint))

  // Renamed structs and enums first: a field whose type was renamed has not changed on the wire.
  const structRenames = renamed(old.spec.structs, next.spec.structs, (a, b) => shapeOf(a.fields, old.spec, new Map()) === shapeOf(b.fields, next.spec, new Map()))
  const enumRenames = renamed(old.spec.enums, next.spec.enums, (a, b) => a.base === b.base && JSON.stringify(a.values.map((v) => [v.name, v.value])) === JSON.stringify(b.values.map((v) => [v.name, v.value])))
  const typeRenames = new Map([...structRenames, ...enumRenames].map(([a, b]) => [a.name, b.name]))
  for (const [a, b] of structRenames) at(next, 'E525', b.at, `struct ${a.name} was renamed ${b.name}`, `code using ${a.name} no longer compiles; the wire is unchanged`)
  for (const [a, b] of enumRenames) at(next, 'E523', b.at, `enum ${a.name} was renamed ${b.name}`, `code using ${a.name} no longer compiles; the wire is unchanged`)

  // Enums by name: base type and values.
  for (const a of old.spec.enums) {
    const b = next.spec.enums.find((e) => e.name === (typeRenames.get(a.name) ?? a.name))
    if (!b) continue  // gone: every field using it changed type, and is reported there
    if (a.base !== b.base) at(next, 'E513', b.at, `enum ${b.name} changed its type from ${a.base} to ${b.base}`, 'every field of this enum changes size on the wire; keep the old type, or add a new enum')
    compareEnumValues(a, b)
  }
  function compareEnumValues(a: EnumDef, b: EnumDef) {
    const renamedValues = new Set<string>()
    for (const v of a.values) {
      const now = b.values.find((x) => x.name === v.name)
      if (now && now.value !== v.value) at(next, 'E510', now.at, `${b.name}.${v.name} was ${v.value} and is now ${now.value}`, `old peers read ${now.value} as something else, or refuse it; keep ${v.value}`)
      if (now) continue
      const same = b.values.find((x) => x.value === v.value && !a.values.some((y) => y.name === x.name))
      if (same) {
        renamedValues.add(same.name)
        at(next, 'E524', same.at, `${a.name}.${v.name} was renamed ${same.name}`, `code using ${a.name}.${v.name} no longer compiles; the wire is unchanged`)
      } else at(old, 'E511', v.at, `${a.name}.${v.name} (${v.value}) was removed`, `old peers still send ${v.value}, and new decoders refuse it; keep the value, or reserve its name`)
    }
    for (const v of b.values) {
      if (a.values.some((x) => x.name === v.name) || renamedValues.has(v.name)) continue
      if (!a.values.some((x) => x.value === v.value)) at(next, 'E512', v.at, `${b.name}.${v.name} (${v.value}) was added`, 'old decoders refuse a value they do not know: send it only to peers that have the new spec')
    }
  }

  // Structs by name: their fields, as a message's.
  for (const a of old.spec.structs) {
    const b = next.spec.structs.find((s) => s.name === (typeRenames.get(a.name) ?? a.name))
    if (b) compareFields(`struct ${b.name}`, a.fields, b.fields)
  }

  // Messages: by name, then what is left by id.
  const paired = new Set<Message>()
  for (const a of old.spec.messages) {
    const b = next.spec.messages.find((m) => m.name === a.name)
    if (!b) continue
    paired.add(a).add(b)
    if (a.id !== b.id) at(next, 'E502', b.at, `message ${b.name} changed its id from ${a.id} to ${b.id}`, `old peers send and expect ${a.id}; keep it`)
    compareMessage(a, b)
  }
  for (const a of old.spec.messages) {
    if (paired.has(a)) continue
    const b = next.spec.messages.find((m) => m.id === a.id && !paired.has(m))
    if (b) {
      paired.add(a).add(b)
      if (shapeOf(a.fields, old.spec, typeRenames) === shapeOf(b.fields, next.spec, new Map())) {
        at(next, 'E521', b.at, `message ${a.name} (id ${a.id}) was renamed ${b.name}`, `code using ${a.name} no longer compiles; the wire is unchanged`)
        compareMessage(a, b, false)
      } else at(next, 'E503', b.at, `id ${a.id} was ${a.name} and is now ${b.name}, with other fields`, `old peers read ${b.name} as ${a.name}; give ${b.name} a new id, and reserve ${a.id}`)
      continue
    }
    at(old, 'E501', a.at, `message ${a.name} (id ${a.id}) was removed`, `old peers still send or expect it; to retire it, add ${a.id} and ${a.name} to reserved: so neither is reused`)
  }

  if (next.spec.maxFrame < old.spec.maxFrame) {
    at(next, 'E514', next.maxFrameAt ?? TOP, `maxFrame shrank from ${old.spec.maxFrame} to ${next.spec.maxFrame} bytes`, 'frames old peers may send are now closed as too large')
  }
  return out

  function compareMessage(a: Message, b: Message, fields = true) {
    const sends = (m: Message) => m.direction !== 'server-to-client'
    if (sends(a) && !sends(b)) at(next, 'E504', b.at, `message ${b.name} can no longer be sent by clients (was ${a.direction}, now ${b.direction})`, 'old clients that send it are now closed as sending a bad payload')
    if (fields) compareFields(`message ${b.name}`, a.fields, b.fields)
  }

  function compareFields(owner: string, a: readonly Field[], b: readonly Field[]) {
    const names = (fs: readonly Field[]) => new Set(fs.map((f) => f.name))
    const [oldNames, newNames] = [names(a), names(b)]
    const renamedTo = new Map<string, Field>()
    // A rename: same place, same wire type, the old name gone and the new one new.
    a.forEach((f, i) => {
      const g = b[i]
      if (g && !newNames.has(f.name) && !oldNames.has(g.name) && typeKey(f.type, old.spec, typeRenames) === typeKey(g.type, next.spec, new Map())) renamedTo.set(f.name, g)
    })
    for (const [from, g] of renamedTo) at(next, 'E522', g.at, `${owner}: field ${from} was renamed ${g.name}`, `code using .${from} no longer compiles; the wire is unchanged`)
    const renamedNew = new Set([...renamedTo.values()].map((g) => g.name))
    for (const f of a) {
      if (renamedTo.has(f.name)) continue
      const g = b.find((x) => x.name === f.name)
      if (!g) at(old, 'E505', f.at, `${owner}: field ${f.name} was removed`, 'fields are positional: old peers send and expect it; keep it (it may go unused)')
      else compareType(owner, f, g)
    }
    for (const g of b) {
      if (!oldNames.has(g.name) && !renamedNew.has(g.name)) at(next, 'E506', g.at, `${owner}: field ${g.name} was added`, 'fields are positional: old decoders refuse the longer payload; add a new message instead')
    }
    // Order among the fields both have.
    const common = (fs: readonly Field[], other: Set<string>) => fs.filter((f) => other.has(f.name)).map((f) => f.name)
    const [before, after] = [common(a, newNames), common(b, oldNames)]
    const moved = after.findIndex((n, i) => n !== before[i])
    if (moved >= 0) at(next, 'E509', b.find((f) => f.name === after[moved])!.at, `${owner}: fields were reordered (${before.join(', ')} -> ${after.join(', ')})`, 'fields are positional: put them back in their old order')
  }

  function compareType(owner: string, f: Field, g: Field) {
    if (typeKey(f.type, old.spec, typeRenames) === typeKey(g.type, next.spec, new Map())) return
    // The same type but for a bound: string<32> -> string<64>, u8[4] -> u8[8].
    const unbounded = (t: TypeRef, spec: Spec, renames: ReadonlyMap<string, string>): string =>
      t.kind === 'array' ? `${unbounded(t.of, spec, renames)}[]` : t.kind === 'string' || t.kind === 'bytes' ? t.kind : typeKey(t, spec, renames)
    if (unbounded(f.type, old.spec, typeRenames) === unbounded(g.type, next.spec, new Map())) {
      at(next, 'E508', g.at, `${owner}: field ${g.name} changed its bound from ${f.typeText} to ${g.typeText}`, boundHint(f.typeText, g.typeText))
    } else at(next, 'E507', g.at, `${owner}: field ${g.name} changed its type from ${f.typeText} to ${g.typeText}`, 'old peers encode and decode the old type; add a new field in a new message instead')
  }
}

function boundHint(from: string, to: string): string {
  const n = (s: string) => [...s.matchAll(/\d+/g)].map((m) => Number(m[0]))
  const [a, b] = [n(from), n(to)]
  const crosses = a.some((x, i) => (x <= 0xffff) !== ((b[i] ?? x) <= 0xffff))
  if (crosses) return 'the length prefix changes size (u16 up to 65535, u32 beyond): every old peer misreads it'
  return a.some((x, i) => (b[i] ?? x) < x) ? 'old peers may send more than the new bound; the new side refuses it' : 'new peers may send more than the old bound; old peers refuse it'
}

/** Pairs of a definition gone from `a` and one new in `b` with the same shape: a rename. */
function renamed<T extends StructDef | EnumDef>(a: readonly T[], b: readonly T[], same: (x: T, y: T) => boolean): [T, T][] {
  const out: [T, T][] = []
  for (const x of a) {
    if (b.some((y) => y.name === x.name)) continue
    const y = b.find((c) => !a.some((d) => d.name === c.name) && same(x, c) && !out.some(([, z]) => z === c))
    if (y) out.push([x, y])
  }
  return out
}

/**
 * A type as compared: enums by name and base, structs by name (their changes are reported at
 * the struct), or with `structural` by their fields, to recognise a renamed message or struct.
 * Names renamed count as the new ones.
 */
function typeKey(t: TypeRef, spec: Spec, renames: ReadonlyMap<string, string>, structural = false, seen: ReadonlySet<string> = new Set()): string {
  switch (t.kind) {
    case 'primitive':
      return t.name
    case 'string':
    case 'bytes':
      return `${t.kind}<${t.max}>`
    case 'array':
      return `${typeKey(t.of, spec, renames, structural, seen)}[${t.max}]`
    case 'named': {
      const e = spec.enums.find((x) => x.name === t.name)
      if (e) return structural ? e.base : `enum ${renames.get(e.name) ?? e.name}`
      const s = spec.structs.find((x) => x.name === t.name)
      if (!s || !structural || seen.has(s.name)) return `struct ${renames.get(t.name) ?? t.name}`
      return `{${shapeOf(s.fields, spec, renames, new Set([...seen, s.name]))}}`
    }
  }
}

/** Fields as the wire sees them: types only, structs expanded. */
function shapeOf(fields: readonly Field[], spec: Spec, renames: ReadonlyMap<string, string>, seen: ReadonlySet<string> = new Set()): string {
  return fields.map((f) => typeKey(f.type, spec, renames, true, seen)).join(',')
}

/** Every finding code and what it means, for help and docs. */
export const FINDINGS = Object.fromEntries([...CATEGORY.wire, ...CATEGORY.source].map((c) => [c, CODES[c].title]))
