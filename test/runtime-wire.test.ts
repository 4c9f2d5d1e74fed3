// The generated projects' Reader and Writer, tested directly: growth past the initial
// buffer, every bound, and refusal of malformed input.
import {describe, expect, it} from 'vitest'

import {DecodeError, EncodeError, Reader, Writer} from '../templates/runtime/wire.js'

describe('Writer', () => {
  it('keeps everything written while its buffer grows many times', () => {
    const w = new Writer(8)
    const expected: number[] = []
    for (let i = 0; i < 5000; i++) {
      w.u8(i & 0xff)
      w.u32(i)
      w.string('é' + String(i), 64, 2)
      expected.push(i)
    }
    w.bytes(new Uint8Array(100_000).fill(7), 100_000, 4)
    const r = new Reader(Buffer.from(w.view()))
    for (const i of expected) {
      expect(r.u8()).toBe(i & 0xff)
      expect(r.u32()).toBe(i)
      expect(r.string(64, 2)).toBe('é' + String(i))
    }
    const tail = r.bytes(100_000, 4)
    expect(tail.length).toBe(100_000)
    expect(tail.every((b) => b === 7)).toBe(true)
    r.done()
  })

  it('returns bytes as a plain Uint8Array copy', () => {
    const w = new Writer()
    w.bytes(new Uint8Array([1, 2, 3]), 8, 2)
    const buf = Buffer.from(w.view())
    const b = new Reader(buf).bytes(8, 2)
    expect(Object.getPrototypeOf(b)).toBe(Uint8Array.prototype)
    buf[2] = 99
    expect([...b]).toEqual([1, 2, 3])
  })

  it('frames: length covers the type id and payload; over maxFrame is refused and rewound', () => {
    const w = new Writer(4)
    const f = w.beginFrame(0x0102)
    w.u32(0xdeadbeef)
    w.endFrame(f, 100)
    expect([...w.view()]).toEqual([6, 0, 0, 0, 2, 1, 0xef, 0xbe, 0xad, 0xde])
    const g = w.beginFrame(1)
    w.bytes(new Uint8Array(200), 1000, 2)
    expect(() => w.endFrame(g, 100)).toThrow(EncodeError)
    expect(w.length).toBe(10)
  })

  it('refuses strings, bytes and arrays over their bound', () => {
    const w = new Writer()
    expect(() => w.string('ééé', 5, 2)).toThrow(EncodeError) // 6 bytes of UTF-8
    expect(() => w.bytes(new Uint8Array(9), 8, 2)).toThrow(EncodeError)
    expect(() => w.count(3, 2, 2)).toThrow(EncodeError)
  })

  it('writes every integer type little-endian at its limits', () => {
    const w = new Writer(1)
    w.u16(0xfffe)
    w.i16(-2)
    w.i32(-5)
    w.u64(2n ** 64n - 2n)
    w.i64(-(2n ** 63n))
    w.f32(0.5)
    w.f64(-0)
    w.bool(true)
    const r = new Reader(Buffer.from(w.view()))
    expect([r.u16(), r.i16(), r.i32(), r.u64(), r.i64(), r.f32(), Object.is(r.f64(), -0), r.bool()]).toEqual([0xfffe, -2, -5, 2n ** 64n - 2n, -(2n ** 63n), 0.5, true, true])
    r.done()
  })
})

describe('Reader', () => {
  it('refuses a payload that ends early, a length over the bound, a bad bool, leftovers', () => {
    expect(() => new Reader(Buffer.from([1, 2, 3])).u32()).toThrow(DecodeError)
    expect(() => new Reader(Buffer.from([9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])).string(8, 2)).toThrow(/over the bound 8/)
    expect(() => new Reader(Buffer.from([2])).bool()).toThrow(DecodeError)
    expect(() => new Reader(Buffer.from([5, 0, 0, 0, 1, 2])).bytes(10, 4)).toThrow(/ends 3 bytes early/)
    const r = new Reader(Buffer.from([1, 2]))
    r.u8()
    expect(() => r.done()).toThrow(/1 bytes left over/)
  })

  it('reads only its window of a larger buffer', () => {
    const buf = Buffer.from([0xff, 1, 0, 0xff])
    const r = new Reader(buf, 1, 3)
    expect(r.u16()).toBe(1)
    expect(() => r.u8()).toThrow(DecodeError)
  })

  it('checks enum values', () => {
    const r = new Reader(Buffer.from([3]))
    expect(() => r.oneOf(r.u8(), new Set([0, 1]), 'Color')).toThrow('3 is not a Color')
  })
})
