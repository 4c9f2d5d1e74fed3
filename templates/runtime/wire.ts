// Little-endian Reader and Writer for the wire format. Every read is bounds-checked: a
// malformed payload throws DecodeError, and the server closes that one connection.

export class DecodeError extends Error {
  override name = 'DecodeError'
}

export class Reader {
  private off: number
  constructor(
    private readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.off = start
  }

  get remaining(): number {
    return this.end - this.off
  }

  private take(n: number): number {
    const at = this.off
    if (at + n > this.end) throw new DecodeError(`payload ends ${at + n - this.end} bytes early`)
    this.off = at + n
    return at
  }

  u8(): number { return this.buf[this.take(1)]! }
  i8(): number { return this.buf.readInt8(this.take(1)) }
  u16(): number { return this.buf.readUInt16LE(this.take(2)) }
  i16(): number { return this.buf.readInt16LE(this.take(2)) }
  u32(): number { return this.buf.readUInt32LE(this.take(4)) }
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

  private length(max: number, prefix: number): number {
    const n = prefix === 2 ? this.u16() : this.u32()
    if (n > max) throw new DecodeError(`length ${n} is over the bound ${max}`)
    return n
  }

  string(max: number, prefix: number): string {
    const n = this.length(max, prefix)
    const at = this.take(n)
    return this.buf.toString('utf8', at, at + n)
  }

  /** A copy, so the payload may outlive the batch buffer it came in. */
  bytes(max: number, prefix: number): Uint8Array {
    const n = this.length(max, prefix)
    const at = this.take(n)
    return new Uint8Array(this.buf.subarray(at, at + n))
  }

  array<T>(max: number, prefix: number, item: () => T): T[] {
    const n = this.length(max, prefix)
    const out = new Array<T>(n)
    for (let i = 0; i < n; i++) out[i] = item()
    return out
  }

  oneOf(v: number, allowed: ReadonlySet<number>, what: string): number {
    if (!allowed.has(v)) throw new DecodeError(`${v} is not a ${what}`)
    return v
  }

  /** A frame's payload must be consumed exactly. */
  done(): void {
    if (this.off !== this.end) throw new DecodeError(`${this.end - this.off} bytes left over after the payload`)
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
    const at = this.room(1)
    this.buf.writeUInt8(v, at)
  }
  i8(v: number): void {
    const at = this.room(1)
    this.buf.writeInt8(v, at)
  }
  u16(v: number): void {
    const at = this.room(2)
    this.buf.writeUInt16LE(v, at)
  }
  i16(v: number): void {
    const at = this.room(2)
    this.buf.writeInt16LE(v, at)
  }
  u32(v: number): void {
    const at = this.room(4)
    this.buf.writeUInt32LE(v, at)
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

  count(n: number, max: number, prefix: number): void {
    if (n > max) throw new EncodeError(`${n} items is over the bound ${max}`)
    if (prefix === 2) this.u16(n)
    else this.u32(n)
  }

  string(s: string, max: number, prefix: number): void {
    const n = Buffer.byteLength(s, 'utf8')
    this.count(n, max, prefix)
    const at = this.room(n)
    this.buf.write(s, at, n, 'utf8')
  }

  bytes(b: Uint8Array, max: number, prefix: number): void {
    this.count(b.length, max, prefix)
    const at = this.room(b.length)
    this.buf.set(b, at)
  }

  /** Starts a frame: reserves the u32 length, writes the u16 type id. Returns its start. */
  beginFrame(type: number): number {
    const at = this.room(6)
    this.buf.writeUInt16LE(type, at + 4)
    return at
  }

  /** Ends the frame begun at `start`, filling in its length. */
  endFrame(start: number, maxFrame: number): void {
    const size = this.off - start
    if (size > maxFrame) {
      this.off = start
      throw new EncodeError(`frame of ${size} bytes is over maxFrame ${maxFrame}`)
    }
    this.buf.writeUInt32LE(size - 4, start)
  }

  /** The bytes written so far (a view: copy it if the writer is reused). */
  view(): Buffer {
    return this.buf.subarray(0, this.off)
  }
}
