// The field type grammar:  type := base ('[' N ']')* ;  base := primitive | string<N> | bytes<N> | Name
import {PRIMITIVES, type Primitive, type TypeRef} from './model.js'

export interface TypeError {
  /** E206 for syntax, E209 for a bound out of range. */
  code: 'E206' | 'E209'
  /** Index into the type text where the problem starts, and its length. */
  index: number
  length: number
  message: string
  hint: string
}

export const MAX_BOUND = 0xffff_ffff

const isPrimitive = (s: string): s is Primitive => (PRIMITIVES as readonly string[]).includes(s)

export function parseFieldType(text: string): TypeRef | TypeError {
  const base = /^\s*([A-Za-z_][A-Za-z0-9_]*)/.exec(text)
  if (!base) {
    return {code: 'E206', index: 0, length: text.length, message: `"${text}" is not a type`, hint: 'write a type such as u32, string<64>, bytes<1024>, MyStruct or u8[16]'}
  }
  const name = base[1]!
  let pos = base[0].length
  let type: TypeRef
  if (name === 'string' || name === 'bytes') {
    const bound = /^<\s*(\d+)\s*>/.exec(text.slice(pos))
    if (!bound) {
      return {code: 'E206', index: pos, length: Math.max(1, text.length - pos), message: `${name} needs a maximum length, as ${name}<N>`, hint: `e.g. ${name}<${name === 'string' ? 64 : 1024}>; N is the most ${name === 'string' ? 'UTF-8 bytes' : 'bytes'} it may hold`}
    }
    const max = boundValue(bound[1]!)
    if (typeof max !== 'number') return {...max, index: pos + bound[0].indexOf(bound[1]!), length: bound[1]!.length}
    type = {kind: name, max}
    pos += bound[0].length
  } else if (isPrimitive(name)) {
    type = {kind: 'primitive', name}
  } else {
    type = {kind: 'named', name}
  }
  while (pos < text.length) {
    const rest = text.slice(pos)
    if (/^\s+$/.test(rest)) break
    const dim = /^\s*\[\s*(\d*)\s*\]/.exec(rest)
    if (!dim) {
      const lead = rest.length - rest.trimStart().length
      return {code: 'E206', index: pos + lead, length: rest.trim().length, message: `unexpected "${rest.trim()}" after the type`, hint: 'an array is written T[N] with N its most elements, e.g. u32[16]'}
    }
    if (dim[1] === '') {
      return {code: 'E206', index: pos, length: dim[0].length, message: 'an array needs a maximum element count', hint: 'write T[N], e.g. u32[16]; arrays are bounded so every frame has a known maximum size'}
    }
    const max = boundValue(dim[1]!)
    if (typeof max !== 'number') return {...max, index: pos + dim[0].indexOf(dim[1]!), length: dim[1]!.length}
    type = {kind: 'array', of: type, max}
    pos += dim[0].length
  }
  return type
}

function boundValue(digits: string): number | Omit<TypeError, 'index' | 'length'> {
  const n = Number(digits)
  if (n < 1) return {code: 'E209', message: 'a bound of 0 allows nothing', hint: 'use a bound of at least 1'}
  if (n > MAX_BOUND) return {code: 'E209', message: `bound ${digits} is larger than ${MAX_BOUND}`, hint: 'bounds must fit the u32 length prefix'}
  return n
}

export const isTypeError = (t: TypeRef | TypeError): t is TypeError => 'message' in t

/** Renders a type back to the grammar, for messages. */
export function typeText(t: TypeRef): string {
  switch (t.kind) {
    case 'primitive':
      return t.name
    case 'string':
    case 'bytes':
      return `${t.kind}<${t.max}>`
    case 'named':
      return t.name
    case 'array':
      return `${typeText(t.of)}[${t.max}]`
  }
}
