// Sizes ("64KiB") and durations ("30s") as written in specs.
const SIZE_UNITS: Record<string, number> = {B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3}
const DURATION_UNITS: Record<string, number> = {ms: 1, s: 1000, m: 60_000, h: 3_600_000}

/** Bytes for an integer or a "<n><unit>" string; undefined when malformed (the schema reports it). */
export function parseSize(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isInteger(v)) return v
  const m = typeof v === 'string' ? /^(\d+)\s*(B|KiB|MiB|GiB)$/.exec(v) : null
  return m ? Number(m[1]) * SIZE_UNITS[m[2]!]! : undefined
}

export function parseDuration(v: unknown): number | undefined {
  const m = typeof v === 'string' ? /^(\d+)(ms|s|m|h)$/.exec(v) : null
  return m ? Number(m[1]) * DURATION_UNITS[m[2]!]! : undefined
}

export const formatBytes = (n: number): string => n.toLocaleString('en-US')
