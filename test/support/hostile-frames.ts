// Hostile frames made from a spec's model: a walker that encodes sample messages while
// noting where each bool, enum, length prefix and string sits, mutations of those sites,
// and an oracle that says what a correct server does with any byte stream.
import type {Field, Spec, TypeRef} from '../../src/spec/model.js'
import {prng, type Rng} from './prng.js'

export {prng}

/** Close reasons the suite expects. Names the core does not have yet are our proposal. */
export const REASON = {
  tooShort: 'bad_frame_too_short',
  tooLarge: 'bad_frame_too_large',
  unknownType: 'bad_frame_unknown_type',
  badLength: 'bad_frame_length',
  /** A payload the runtime cannot decode (or a server-to-client type): counted in badPayloads too. */
  badPayload: 'bad_payload',
  /** A started frame not completed within server.frameTimeout. */
  frameTimeout: 'frame_timeout',
} as const


const SIZE: Record<string, number> = {u8: 1, i8: 1, bool: 1, u16: 2, i16: 2, u32: 4, i32: 4, f32: 4, u64: 8, i64: 8, f64: 8}
const prefixOf = (max: number) => (max <= 0xffff ? 2 : 4)

/** Where a mutable thing sits in an encoded payload. */
export type Site =
  | {kind: 'bool'; path: string; at: number}
  | {kind: 'enum'; path: string; at: number; base: string; enumName: string; values: number[]}
  | {kind: 'prefix'; path: string; at: number; size: number; max: number; count: number; of: 'string' | 'bytes' | 'array'}
  | {kind: 'string'; path: string; at: number; length: number}
  | {kind: 'field'; path: string; at: number}

export class Model {
  constructor(readonly spec: Spec) {}

  message(name: string) {
    const m = this.spec.messages.find((x) => x.name === name)
    if (!m) throw new Error(`no message ${name}`)
    return m
  }

  get inbound() {
    return this.spec.messages.filter((m) => m.direction !== 'server-to-client')
  }

  get outbound() {
    return this.spec.messages.filter((m) => m.direction === 'server-to-client')
  }

  /** A valid value of a type, shaped as the generated codec takes it. */
  sample(t: TypeRef, r: Rng): unknown {
    switch (t.kind) {
      case 'primitive':
        switch (t.name) {
          case 'bool': return r.int(2) === 1
          case 'f32': return [0, 1.5, -2.25, 1e10][r.int(4)]
          case 'f64': return r.next() * 1e6 - 5e5
          case 'u64': return BigInt(r.int(2 ** 31)) * 3n
          case 'i64': return -BigInt(r.int(2 ** 31)) * 5n
          default: {
            const bits = SIZE[t.name]! * 8
            const v = r.int(Math.min(2 ** bits, 2 ** 31))
            return t.name.startsWith('i') ? v - Math.min(2 ** (bits - 1), 2 ** 30) : v
          }
        }
      case 'string': {
        // At least 3 bytes (a two-byte character fits), so string sites have room to mutate.
        const n = Math.min(t.max, 3 + r.int(8))
        const ascii = (k: number) => Array.from({length: k}, () => String.fromCharCode(97 + r.int(26))).join('')
        return n >= 3 ? `${ascii(n - 2)}é` : ascii(n)
      }
      case 'bytes': return new Uint8Array(r.bytes(Math.min(t.max, 1 + r.int(6))))
      case 'array': return Array.from({length: Math.min(t.max, 2)}, () => this.sample(t.of, r))
      case 'named': {
        const e = this.spec.enums.find((x) => x.name === t.name)
        if (e) return e.values[r.int(e.values.length)]!.value
        const s = this.spec.structs.find((x) => x.name === t.name)!
        return this.sampleFields(s.fields, r)
      }
    }
  }

  sampleFields(fields: Field[], r: Rng): Record<string, unknown> {
    return Object.fromEntries(fields.map((f) => [f.name, this.sample(f.type, r)]))
  }

  /**
   * Encodes a message's fields as the wire format says, noting every site. `raw` replaces
   * the bytes of the strings at the given paths (for invalid UTF-8).
   */
  encode(fields: Field[], value: Record<string, unknown>, raw: Map<string, Buffer> = new Map()): {payload: Buffer; sites: Site[]} {
    const out: number[] = []
    const sites: Site[] = []
    const put = (n: number, bytes: number) => {
      for (let i = 0; i < bytes; i++) out.push(Number((BigInt.asUintN(64, BigInt(n)) >> BigInt(8 * i)) & 0xffn))
    }
    const one = (t: TypeRef, v: unknown, path: string) => {
      switch (t.kind) {
        case 'primitive': {
          if (t.name === 'bool') sites.push({kind: 'bool', path, at: out.length})
          const b = Buffer.alloc(8)
          if (t.name === 'f32') b.writeFloatLE(v as number)
          else if (t.name === 'f64') b.writeDoubleLE(v as number)
          else if (t.name === 'bool') b[0] = v ? 1 : 0
          else b.writeBigUInt64LE(BigInt.asUintN(64, BigInt(v as number | bigint)))
          out.push(...b.subarray(0, SIZE[t.name]!))
          return
        }
        case 'string':
        case 'bytes':
        case 'array': {
          const content = t.kind === 'string' ? raw.get(path) ?? Buffer.from(v as string, 'utf8') : t.kind === 'bytes' ? Buffer.from(v as Uint8Array) : undefined
          const count = content ? content.length : (v as unknown[]).length
          sites.push({kind: 'prefix', path, at: out.length, size: prefixOf(t.max), max: t.max, count, of: t.kind})
          put(count, prefixOf(t.max))
          if (t.kind === 'string') sites.push({kind: 'string', path, at: out.length, length: count})
          if (content) out.push(...content)
          else if (t.kind === 'array') (v as unknown[]).forEach((item, i) => one(t.of, item, `${path}[${i}]`))
          return
        }
        case 'named': {
          const e = this.spec.enums.find((x) => x.name === t.name)
          if (e) {
            sites.push({kind: 'enum', path, at: out.length, base: e.base, enumName: e.name, values: e.values.map((x) => x.value)})
            put(v as number, SIZE[e.base]!)
            return
          }
          const s = this.spec.structs.find((x) => x.name === t.name)!
          for (const f of s.fields) fieldAt(f, (v as Record<string, unknown>)[f.name], `${path}.${f.name}`)
        }
      }
    }
    const fieldAt = (f: Field, v: unknown, path: string) => {
      sites.push({kind: 'field', path, at: out.length})
      one(f.type, v, path)
    }
    for (const f of fields) fieldAt(f, value[f.name], f.name)
    return {payload: Buffer.from(out), sites}
  }

  /** The byte size bounds of a type, as the core checks payloads. */
  bounds(t: TypeRef): [number, number] {
    switch (t.kind) {
      case 'primitive': return [SIZE[t.name]!, SIZE[t.name]!]
      case 'string':
      case 'bytes': return [prefixOf(t.max), prefixOf(t.max) + t.max]
      case 'array': return [prefixOf(t.max), prefixOf(t.max) + t.max * this.bounds(t.of)[1]]
      case 'named': {
        const e = this.spec.enums.find((x) => x.name === t.name)
        if (e) return [SIZE[e.base]!, SIZE[e.base]!]
        return this.fieldBounds(this.spec.structs.find((x) => x.name === t.name)!.fields)
      }
    }
  }

  fieldBounds(fields: Field[]): [number, number] {
    return fields.reduce<[number, number]>(([lo, hi], f) => {
      const [a, b] = this.bounds(f.type)
      return [lo + a, hi + b]
    }, [0, 0])
  }

  /** Decodes strictly as a correct runtime must: throws on anything it must refuse. */
  check(fields: Field[], payload: Buffer): void {
    let off = 0
    const take = (n: number) => {
      if (off + n > payload.length) throw new Error('payload ends early')
      off += n
      return off - n
    }
    const uint = (n: number) => Number(payload.readUIntLE(take(n), n))
    const utf8 = new TextDecoder('utf-8', {fatal: true})
    const one = (t: TypeRef): void => {
      switch (t.kind) {
        case 'primitive':
          if (t.name === 'bool' && uint(1) > 1) throw new Error('bool not 0 or 1')
          else if (t.name !== 'bool') take(SIZE[t.name]!)
          return
        case 'string':
        case 'bytes':
        case 'array': {
          const n = uint(prefixOf(t.max))
          if (n > t.max) throw new Error('count over the bound')
          if (t.kind === 'array') for (let i = 0; i < n; i++) one(t.of)
          else {
            const at = take(n)
            if (t.kind === 'string') utf8.decode(payload.subarray(at, at + n))
          }
          return
        }
        case 'named': {
          const e = this.spec.enums.find((x) => x.name === t.name)
          if (e) {
            const size = SIZE[e.base]!
            const at = take(size)
            const v = e.base.startsWith('i') ? payload.readIntLE(at, size) : payload.readUIntLE(at, size)
            if (!e.values.some((x) => x.value === v)) throw new Error('not an enum value')
            return
          }
          for (const f of this.spec.structs.find((x) => x.name === t.name)!.fields) one(f.type)
        }
      }
    }
    for (const f of fields) one(f.type)
    if (off !== payload.length) throw new Error('trailing bytes')
  }

  /**
   * What a correct server does with this byte stream from one client: the reason it closes
   * the connection, or 'open' (it waits for more), and how many frames it handles first.
   */
  oracle(stream: Buffer): {outcome: string; frames: number} {
    const maxFrame = this.spec.maxFrame
    let off = 0
    let frames = 0
    while (stream.length - off >= 4) {
      const l = stream.readUInt32LE(off)
      if (l < 2) return {outcome: REASON.tooShort, frames}
      if (l > maxFrame - 4) return {outcome: REASON.tooLarge, frames}
      if (stream.length - off < 6) break
      const m = this.spec.messages.find((x) => x.id === stream.readUInt16LE(off + 4))
      if (!m) return {outcome: REASON.unknownType, frames}
      const [lo, hi] = this.fieldBounds(m.fields)
      if (l - 2 < lo || l - 2 > hi) return {outcome: REASON.badLength, frames}
      if (stream.length - off < 4 + l) break
      if (m.direction === 'server-to-client') return {outcome: REASON.badPayload, frames}
      try {
        this.check(m.fields, stream.subarray(off + 6, off + 4 + l))
      } catch {
        return {outcome: REASON.badPayload, frames}
      }
      frames++
      off += 4 + l
    }
    return {outcome: 'open', frames}
  }
}

/** One frame: u32 length, u16 type id, payload. */
export function frame(type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(6)
  h.writeUInt32LE(payload.length + 2)
  h.writeUInt16LE(type, 4)
  return Buffer.concat([h, payload])
}

/** Byte sequences a strict UTF-8 decoder must refuse, by what is wrong with them. */
export const BAD_UTF8: Record<string, number[]> = {
  'byte 0xFF': [0xff],
  'byte 0xFE': [0xfe],
  'lone continuation byte': [0x80],
  'overlong "/" in two bytes': [0xc0, 0xaf],
  'overlong NUL in two bytes': [0xc0, 0x80],
  'overlong in three bytes': [0xe0, 0x80, 0xaf],
  'overlong in four bytes': [0xf0, 0x80, 0x80, 0xaf],
  'UTF-16 high surrogate': [0xed, 0xa0, 0x80],
  'UTF-16 low surrogate': [0xed, 0xbf, 0xbf],
  'above U+10FFFF': [0xf4, 0x90, 0x80, 0x80],
  'truncated three-byte sequence': [0xe2, 0x82],
  'truncated four-byte sequence': [0xf0, 0x9f, 0x98],
}

/** Values a field of this enum can hold on the wire that are not among its values. */
export function badEnumValues(base: string, values: number[]): number[] {
  const bits = SIZE[base]! * 8
  const [lo, hi] = base.startsWith('i') ? [-(2 ** (bits - 1)), 2 ** (bits - 1) - 1] : [0, 2 ** bits - 1]
  const set = new Set(values)
  const gap = Array.from({length: Math.max(...values) - Math.min(...values)}, (_, i) => Math.min(...values) + i).find((v) => !set.has(v))
  const want = [Math.max(...values) + 1, Math.min(...values) - 1, lo, hi, gap]
  return [...new Set(want)].filter((v): v is number => v !== undefined && v >= lo && v <= hi && !set.has(v))
}

/** Writes an enum value of `base` at `at`. */
export function writeInt(b: Buffer, at: number, base: string, v: number): void {
  const size = SIZE[base]!
  if (base.startsWith('i')) b.writeIntLE(v, at, size)
  else b.writeUIntLE(v, at, size)
}
