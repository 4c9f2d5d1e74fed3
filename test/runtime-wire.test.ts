// @iocpgen/runtime's Reader and Writer (what generated codecs use), tested directly: growth past the initial
// buffer, every bound, and refusal of malformed input.
import {describe, expect, it} from 'vitest'

import {DecodeError, EncodeError, Reader, Writer} from '../runtime/src/wire.js'

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

  it('returns bytes as a plain Uint8Array view of the payload, not a copy', () => {
    const w = new Writer()
    w.bytes(new Uint8Array([1, 2, 3]), 8, 2)
    const buf = Buffer.from(w.view())
    const b = new Reader(buf).bytes(8, 2)
    expect(Object.getPrototypeOf(b)).toBe(Uint8Array.prototype)
    expect([...b]).toEqual([1, 2, 3])
    buf[2] = 99
    expect(b.buffer).toBe(buf.buffer)
    expect([...b]).toEqual([99, 2, 3])
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

  it('refuses strings, bytes and arrays over their bound, counting in the right unit', () => {
    const w = new Writer()
    expect(() => w.string('ééé', 5, 2)).toThrow(EncodeError)
    expect(() => w.string('ééé', 5, 2)).toThrow('6 bytes of UTF-8 is over the bound 5')
    expect(() => w.bytes(new Uint8Array(9), 8, 2)).toThrow(EncodeError)
    expect(() => w.bytes(new Uint8Array(9), 8, 2)).toThrow('9 bytes is over the bound 8')
    expect(() => w.count(3, 2, 2)).toThrow(EncodeError)
    expect(() => w.count(3, 2, 2)).toThrow('3 items is over the bound 2')
    expect(w.length).toBe(0)
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
    expect(() => new Reader(Buffer.from([9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9])).string(8, 2)).toThrow('9 bytes is over the bound 8')
    expect(() => new Reader(Buffer.from([9, 0])).bytes(8, 2)).toThrow('9 bytes is over the bound 8')
    expect(() => new Reader(Buffer.from([3, 0])).array(2, 2, () => 0)).toThrow('3 items is over the bound 2')
    expect(() => new Reader(Buffer.from([1, 0])).string(8, 2)).toThrow('payload ends 1 byte early')
    expect(() => new Reader(Buffer.from([2])).bool()).toThrow(DecodeError)
    expect(() => new Reader(Buffer.from([5, 0, 0, 0, 1, 2])).bytes(10, 4)).toThrow(/ends 3 bytes early/)
    const r = new Reader(Buffer.from([1, 2]))
    r.u8()
    expect(() => r.done()).toThrow('1 byte left over')
  })

  it('reads only its window of a larger buffer', () => {
    const buf = Buffer.from([0xff, 1, 0, 0xff])
    const r = new Reader(buf, 1, 3)
    expect(r.u16()).toBe(1)
    expect(() => r.u8()).toThrow(DecodeError)
  })

  it('checks enum values', () => {
    const r = new Reader(Buffer.from([3]))
    expect(() => r.oneOf(r.u8(), new Set([0, 1]), 'AckStatus')).toThrow('3 is not a value of AckStatus')
  })
})

describe('Reader.string: UTF-8', () => {
  /** A string<max> field with a u16 prefix holding exactly these bytes. */
  const field = (bytes: number[]): Buffer => Buffer.from([bytes.length & 0xff, bytes.length >> 8, ...bytes])
  const read = (bytes: number[], max = 64): string => {
    const r = new Reader(field(bytes))
    const s = r.string(max, 2)
    r.done()
    return s
  }

  const invalid: Record<string, number[][]> = {
    'overlong 2-byte (C0, C1 leads)': [[0xc0, 0x80], [0xc0, 0xaf], [0xc1, 0xbf]],
    'overlong 3-byte': [[0xe0, 0x80, 0x80], [0xe0, 0x9f, 0xbf]],
    'overlong 4-byte': [[0xf0, 0x80, 0x80, 0x80], [0xf0, 0x8f, 0xbf, 0xbf]],
    'surrogates (ED A0..BF)': [[0xed, 0xa0, 0x80], [0xed, 0xaf, 0xbf], [0xed, 0xb0, 0x80], [0xed, 0xbf, 0xbf], [0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]],
    'above U+10FFFF': [[0xf4, 0x90, 0x80, 0x80], [0xf4, 0xbf, 0xbf, 0xbf]],
    'F5..FF leads': [[0xf5, 0x80, 0x80, 0x80], [0xf7, 0xbf, 0xbf, 0xbf], [0xf8, 0x88, 0x80, 0x80, 0x80], [0xfc, 0x84, 0x80, 0x80, 0x80, 0x80], [0xfe], [0xff], Array(32).fill(0xff)],
    'truncated': [[0xc3], [0xe2, 0x82], [0xe2], [0xf0, 0x9f, 0x98], [0xf0, 0x9f], [0xf0], [0xe2, 0x82, 0x41], [0xf0, 0x9f, 0x98, 0x41]],
    'stray continuation bytes': [[0x80], [0xbf], [0x41, 0x80], [0xc3, 0xa9, 0xa9], [0xe2, 0x82, 0xac, 0x80]],
  }
  for (const [kind, cases] of Object.entries(invalid)) {
    it(`refuses ${kind}, alone and between valid text`, () => {
      for (const bad of cases) {
        // U+FFFD next to the bad bytes: a valid replacement character must not hide them.
        for (const bytes of [bad, [0x61, ...bad, 0x62], [0xc3, 0xa9, ...bad, 0xe2, 0x82, 0xac], [0xef, 0xbf, 0xbd, ...bad]]) {
          expect(() => read(bytes), Buffer.from(bytes).toString('hex')).toThrow(DecodeError)
          expect(() => read(bytes), Buffer.from(bytes).toString('hex')).toThrow(/not valid UTF-8/)
        }
      }
    })
  }

  it('takes every boundary of valid UTF-8, U+FFFD and a BOM included, as sent', () => {
    const valid = ['', 'a', '\u0000', '\u007f', '\u0080', '\u07ff', '\u0800', '\ud7ff', '\ue000', '\ufeff', '\ufffd', '\uffff', '\u{10000}', '\u{10ffff}', 'a\ufffdb', 'é€😀\u{10ffff}']
    for (const s of valid) expect(read([...Buffer.from(s)]), JSON.stringify(s)).toBe(s)
  })

  it('takes 4-byte characters that fill the bound exactly, and refuses one byte more', () => {
    const two = '😀\u{10ffff}'
    expect(read([...Buffer.from(two)], 8)).toBe(two)
    expect(() => read([...Buffer.from(two + 'a')], 8)).toThrow(/over the bound 8/)
  })

  it('agrees with a strict decoder on random byte strings', () => {
    const strict = new TextDecoder('utf-8', {fatal: true, ignoreBOM: true})
    // Bytes from the places where UTF-8 goes wrong, so most strings hit an edge.
    const pool = [0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbd, 0xbf, 0xc0, 0xc1, 0xc2, 0xdf, 0xe0, 0xe1, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff]
    let seed = 12345
    const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 8
    let accepted = 0
    for (let i = 0; i < 20_000; i++) {
      const bytes = Array.from({length: 1 + (next() % 8)}, () => pool[next() % pool.length]!)
      let want: string | undefined
      try {
        want = strict.decode(new Uint8Array(bytes))
      } catch {
        want = undefined
      }
      let got: string | undefined
      try {
        got = read(bytes)
      } catch (error) {
        expect(error).toBeInstanceOf(DecodeError)
      }
      expect(got, Buffer.from(bytes).toString('hex')).toBe(want)
      if (want !== undefined) accepted++
    }
    // Both outcomes must be well represented for the comparison to mean anything.
    expect(accepted).toBeGreaterThan(1000)
    expect(accepted).toBeLessThan(19_000)
  })
})

describe('NaN payloads', () => {
  const f32 = (bits: number): number => {
    const b = Buffer.alloc(4)
    b.writeUInt32LE(bits)
    const w = new Writer()
    w.f32(new Reader(b).f32())
    return w.view().readUInt32LE(0)
  }
  const f64 = (bits: bigint): bigint => {
    const b = Buffer.alloc(8)
    b.writeBigUInt64LE(bits)
    const w = new Writer()
    w.f64(new Reader(b).f64())
    return w.view().readBigUInt64LE(0)
  }

  it('keep sign and payload of quiet NaNs; an f32 signalling NaN comes back quieted', () => {
    for (const bits of [0x7fc00000, 0x7fc00001, 0xffc12345, 0x7fffffff]) expect(f32(bits).toString(16)).toBe(bits.toString(16))
    // The quiet bit is set as the f32 widens to a JS number; the rest of the payload stays.
    expect(f32(0x7f800001).toString(16)).toBe('7fc00001')
    expect(f32(0xffa00000).toString(16)).toBe('ffe00000')
    for (const bits of [0x7ff8000000000000n, 0x7ff8000000000001n, 0xfff8deadbeef0001n]) expect(f64(bits).toString(16)).toBe(bits.toString(16))
  })
})
