// Little-endian Reader and Writer for the wire format. Every read is bounds-checked: a
// malformed payload throws DecodeError, and the server closes that one connection.
import {isUtf8} from 'node:buffer'

/** "1 byte", "2 bytes": error messages name counts right. */
const counted = (n: number, unit: string): string => `${n} ${unit}${n === 1 ? '' : 's'}`

export class DecodeError extends Error {
  override name = 'DecodeError'
}

export class Reader {
  private buf: Buffer
  private off: number
  private end: number
  constructor(buf: Buffer, start = 0, end = buf.length) {
    this.buf = buf
    this.off = start
    this.end = end
  }

  /**
   * Views handed out are collected here, each a copy in memory of its own, instead of being
   * views of the payload: development mode expires them after the handler (lifetime.ts).
   */
  private copies: Uint8Array[] | undefined

  /** Points the reader at another payload: the server reuses one reader for every frame. */
  reset(buf: Buffer, start: number, end: number, copies?: Uint8Array[]): void {
    this.buf = buf
    this.off = start
    this.end = end
    this.copies = copies
  }

  get remaining(): number {
    return this.end - this.off
  }

  private take(n: number): number {
    const at = this.off
    if (at + n > this.end) throw new DecodeError(`payload ends ${counted(at + n - this.end, 'byte')} early`)
    this.off = at + n
    return at
  }

  u8(): number { return this.buf[this.take(1)]! }
  i8(): number { return this.buf.readInt8(this.take(1)) }
  u16(): number {
    const at = this.take(2)
    return this.buf[at]! | (this.buf[at + 1]! << 8)
  }
  i16(): number { return this.buf.readInt16LE(this.take(2)) }
  u32(): number {
    const at = this.take(4)
    const b = this.buf
    return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16)) + b[at + 3]! * 0x1000000
  }
  i32(): number { return this.buf.readInt32LE(this.take(4)) }
  u64(): bigint { return this.buf.readBigUInt64LE(this.take(8)) }
  i64(): bigint { return this.buf.readBigInt64LE(this.take(8)) }
  f32(): number { return this.buf.readFloatLE(this.take(4)) }
  f64(): number { return this.buf.readDoubleLE(this.take(8)) }
  bool(): boolean {
    const v = this.u8()
    if (v > 1) throw new DecodeError(`bool is ${v}, not 0 or 1`)
    return v === 1
  }

  private length(max: number, prefix: number, unit: string): number {
    const n = prefix === 2 ? this.u16() : this.u32()
    if (n > max) throw new DecodeError(`${counted(n, unit)} is over the bound ${max}`)
    return n
  }

  string(max: number, prefix: number): string {
    const n = this.length(max, prefix, 'byte')
    const at = this.take(n)
    const s = this.buf.toString('utf8', at, at + n)
    // The decoder turns each invalid sequence into U+FFFD, so a string without one was valid.
    // With one, only the strict check tells a sent U+FFFD from a replaced byte. Checking every
    // string strictly would double the cost of a short one; includes() on a string of
    // one-byte characters returns at once.
    if (s.includes('\uFFFD') && !isUtf8(this.buf.subarray(at, at + n))) throw new DecodeError(`string of ${counted(n, 'byte')} is not valid UTF-8`)
    return s
  }

  /**
   * A view of the payload, not a copy: valid until the handler returns or first awaits
   * (see "Message lifetime" in the README). Plain Uint8Array, as the types say.
   */
  bytes(max: number, prefix: number): Uint8Array {
    const n = this.length(max, prefix, 'byte')
    const at = this.take(n)
    const b = this.buf
    const view = new Uint8Array(b.buffer, b.byteOffset + at, n)
    if (!this.copies) return view
    const copy = new Uint8Array(n)
    copy.set(view)
    this.copies.push(copy)
    return copy
  }

  array<T>(max: number, prefix: number, item: () => T): T[] {
    const n = this.length(max, prefix, 'item')
    const out = new Array<T>(n)
    for (let i = 0; i < n; i++) out[i] = item()
    return out
  }

  oneOf(v: number, allowed: ReadonlySet<number>, what: string): number {
    if (!allowed.has(v)) throw new DecodeError(`${v} is not a value of ${what}`)
    return v
  }

  /** A frame's payload must be consumed exactly. */
  done(): void {
    if (this.off !== this.end) throw new DecodeError(`${counted(this.end - this.off, 'byte')} left over after the payload`)
  }
}

export class EncodeError extends Error {
  override name = 'EncodeError'
}

export class Writer {
  private buf: Buffer
  private off = 0

  constructor(initial = 256) {
    this.buf = Buffer.allocUnsafe(initial)
  }

  get length(): number {
    return this.off
  }

  reset(): void {
    this.off = 0
  }

  /** Drops everything written after `length` (e.g. a frame that failed to encode). */
  rewind(length: number): void {
    this.off = Math.min(this.off, length)
  }

  /** Reserves n bytes and returns their offset. May replace this.buf: read it after calling. */
  private room(n: number): number {
    const at = this.off
    if (at + n > this.buf.length) {
      const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, at + n))
      this.buf.copy(next, 0, 0, at)
      this.buf = next
    }
    this.off = at + n
    return at
  }

  u8(v: number): void {
    if (v > 0xff || v < 0) throw new RangeError(`${v} is out of range for u8`)
    const at = this.room(1)
    this.buf[at] = v
  }
  i8(v: number): void {
    const at = this.room(1)
    this.buf.writeInt8(v, at)
  }
  u16(v: number): void {
    if (v > 0xffff || v < 0) throw new RangeError(`${v} is out of range for u16`)
    const at = this.room(2)
    const b = this.buf
    b[at] = v
    b[at + 1] = v >>> 8
  }
  i16(v: number): void {
    const at = this.room(2)
    this.buf.writeInt16LE(v, at)
  }
  u32(v: number): void {
    if (v > 0xffffffff || v < 0) throw new RangeError(`${v} is out of range for u32`)
    const at = this.room(4)
    const b = this.buf
    b[at] = v
    b[at + 1] = v >>> 8
    b[at + 2] = v >>> 16
    b[at + 3] = v >>> 24
  }
  i32(v: number): void {
    const at = this.room(4)
    this.buf.writeInt32LE(v, at)
  }
  u64(v: bigint): void {
    const at = this.room(8)
    this.buf.writeBigUInt64LE(v, at)
  }
  i64(v: bigint): void {
    const at = this.room(8)
    this.buf.writeBigInt64LE(v, at)
  }
  f32(v: number): void {
    const at = this.room(4)
    this.buf.writeFloatLE(v, at)
  }
  f64(v: number): void {
    const at = this.room(8)
    this.buf.writeDoubleLE(v, at)
  }
  bool(v: boolean): void { this.u8(v ? 1 : 0) }

  /** An array's count prefix. */
  count(n: number, max: number, prefix: number): void {
    this.prefix(n, max, prefix, 'item')
  }

  private prefix(n: number, max: number, prefix: number, unit: string, of = ''): void {
    if (n > max) throw new EncodeError(`${counted(n, unit)}${of} is over the bound ${max}`)
    if (prefix === 2) this.u16(n)
    else this.u32(n)
  }

  string(s: string, max: number, prefix: number): void {
    const n = Buffer.byteLength(s, 'utf8')
    this.prefix(n, max, prefix, 'byte', ' of UTF-8')
    const at = this.room(n)
    this.buf.write(s, at, n, 'utf8')
  }

  bytes(b: Uint8Array, max: number, prefix: number): void {
    const n = b.length
    this.prefix(n, max, prefix, 'byte')
    const at = this.room(n)
    const buf = this.buf
    if (n <= 64) for (let i = 0; i < n; i++) buf[at + i] = b[i]!
    else buf.set(b, at)
  }

  /** Appends bytes as they are (a frame encoded elsewhere, say). */
  raw(b: Uint8Array): void {
    const at = this.room(b.length)
    this.buf.set(b, at)
  }

  /** Starts a frame: reserves the u32 length, writes the u16 type id. Returns its start. */
  beginFrame(type: number): number {
    const at = this.room(6)
    this.buf[at + 4] = type
    this.buf[at + 5] = type >>> 8
    return at
  }

  /** Overwrites a u32 written earlier at `at` (e.g. a length known only afterwards). */
  patchU32(at: number, v: number): void {
    const b = this.buf
    b[at] = v
    b[at + 1] = v >>> 8
    b[at + 2] = v >>> 16
    b[at + 3] = v >>> 24
  }

  /** Ends the frame begun at `start`, filling in its length. */
  endFrame(start: number, maxFrame: number): void {
    const size = this.off - start
    if (size > maxFrame) {
      this.off = start
      throw new EncodeError(`frame of ${counted(size, 'byte')} is over maxFrame ${maxFrame}`)
    }
    this.patchU32(start, size - 4)
  }

  /** The bytes written so far (a view: copy it if the writer is reused). */
  view(): Buffer {
    return this.buf.subarray(0, this.off)
  }
}
