// What the server keeps for a connected client that has no Session yet: its generation,
// port and address in typed arrays indexed by the native slot, so an idle client costs no
// JS object. IPv4 addresses are kept as a u32; only other addresses are kept as text.

const NOT_IPV4 = -1

/**
 * The dotted quad in b[start, end) as a u32, or -1 unless it is exactly what inet_ntop
 * writes (no leading zeros, each part at most 255), so formatting it back gives the same text.
 */
export function parseIPv4(b: Uint8Array, start: number, end: number): number {
  let value = 0
  let part = 0
  let digits = 0
  let dots = 0
  for (let i = start; i < end; i++) {
    const c = b[i]!
    if (c === 0x2e) {
      if (digits === 0 || ++dots > 3) return NOT_IPV4
      value = value * 256 + part
      part = 0
      digits = 0
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 && part === 0) return NOT_IPV4
      part = part * 10 + (c - 0x30)
      if (part > 255 || ++digits > 3) return NOT_IPV4
    } else {
      return NOT_IPV4
    }
  }
  if (dots !== 3 || digits === 0) return NOT_IPV4
  return value * 256 + part
}

export const formatIPv4 = (v: number): string => `${v >>> 24}.${(v >>> 16) & 0xff}.${(v >>> 8) & 0xff}.${v & 0xff}`

export class Slots {
  private live = new Uint8Array(0)
  private gens = new Uint32Array(0)
  private ports = new Uint16Array(0)
  private ipv4 = new Uint32Array(0)
  /** Addresses that are not IPv4, by slot. */
  private readonly other = new Map<number, string>()

  /** Slots below this exist in the arrays. */
  get capacity(): number {
    return this.live.length
  }

  /** Makes room for `index`; returns the new capacity. */
  grow(index: number): number {
    if (index < this.live.length) return this.live.length
    let n = Math.max(1024, this.live.length)
    while (n <= index) n *= 2
    const grown = <A extends Uint8Array | Uint16Array | Uint32Array>(a: A, make: (n: number) => A): A => {
      const b = make(n)
      b.set(a)
      return b
    }
    this.live = grown(this.live, (k) => new Uint8Array(k))
    this.gens = grown(this.gens, (k) => new Uint32Array(k))
    this.ports = grown(this.ports, (k) => new Uint16Array(k))
    this.ipv4 = grown(this.ipv4, (k) => new Uint32Array(k))
    return n
  }

  /** Records a client that connected; its address is the text b[start, end). */
  open(index: number, gen: number, port: number, b: Buffer, start: number, end: number): void {
    this.grow(index)
    this.live[index] = 1
    this.gens[index] = gen
    this.ports[index] = port
    const v4 = parseIPv4(b, start, end)
    if (v4 === NOT_IPV4) {
      this.ipv4[index] = 0
      this.other.set(index, b.toString('latin1', start, end))
    } else {
      this.ipv4[index] = v4
      this.other.delete(index)
    }
  }

  /** Whether the client with this generation is connected in this slot. */
  has(index: number, gen: number): boolean {
    return index < this.live.length && this.live[index] === 1 && this.gens[index] === gen
  }

  /** The generation of the client connected in this slot, or -1. */
  gen(index: number): number {
    return index < this.live.length && this.live[index] === 1 ? this.gens[index]! : -1
  }

  port(index: number): number {
    return this.ports[index]!
  }

  address(index: number): string {
    return this.other.get(index) ?? formatIPv4(this.ipv4[index]!)
  }

  close(index: number): void {
    this.live[index] = 0
    this.other.delete(index)
  }
}
