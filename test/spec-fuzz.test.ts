// Mutated specs, from a fixed seed: whatever the text, validate must not throw, must place
// every diagnostic inside the file, and must reach the same verdict by either pass.
import {mkdtempSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {quickCheck, validateSpecFile} from '../src/spec/validate.js'
import {prng, type Rng} from './support/prng.js'

const root = join(import.meta.dirname, '..')
const fixtures = join(import.meta.dirname, 'fixtures')
const good = [
  join(fixtures, 'good', 'all-types.yaml'),
  join(fixtures, 'specs', 'roundtrip.yaml'),
  join(root, 'examples', 'chat', 'chat.yaml'),
  join(root, 'examples', 'echo', 'echo.yaml'),
].map((file) => readFileSync(file, 'utf8'))
const bad = readdirSync(join(fixtures, 'bad'))
  .filter((f) => f.endsWith('.yaml') && !f.startsWith('deep-'))
  .map((f) => readFileSync(join(fixtures, 'bad', f), 'utf8'))

const SEED = Number(process.env.FUZZ_SEED ?? 0x10c9)
const CASES = Number(process.env.FUZZ_CASES ?? 400)

const NUMBERS = ['1e400', '-1e400', '.inf', '-.inf', '.nan', '.NaN', '18446744073709551616', '-0', '0x1F', '0o17', '0b101', '1_000', '-.5', '1.', '+1', '1e3', '~', 'NULL', 'True']
const UNICODE = ['é', '名前', '😀', '\u200b', '\u0085', '\u2028', '\ufeff', 'ǅ']

// Each takes the lines (without line ends) and changes them in place.
const mutations: [string, (lines: string[], r: Rng) => void][] = [
  ['delete a line', (l, r) => void l.splice(r.int(l.length), 1)],
  ['duplicate a line', (l, r) => {
    const i = r.int(l.length)
    l.splice(i, 0, l[i]!)
  }],
  ['swap two lines', (l, r) => {
    const i = r.int(l.length)
    const j = r.int(l.length)
    ;[l[i], l[j]] = [l[j]!, l[i]!]
  }],
  ['a value becomes a number', (l, r) => {
    const i = r.int(l.length)
    l[i] = l[i]!.replace(/: .*$/, `: ${r.pick(NUMBERS)}`)
  }],
  ['a text value becomes a number', (l, r) => {
    const texts = l.flatMap((line, i) => (/^\s*(description|host): /.test(line) ? [i] : []))
    if (texts.length > 0) {
      const i = r.pick(texts)
      l[i] = l[i]!.replace(/: .*$/, `: ${r.pick(NUMBERS)}`)
    }
  }],
  ['a key becomes a number or null', (l, r) => {
    const i = r.int(l.length)
    l[i] = l[i]!.replace(/^(\s*(?:- )?)[\w-]+:/, `$1${r.pick(NUMBERS)}:`)
  }],
  ['an alias', (l, r) => {
    const i = r.int(l.length)
    l[i] = l[i]!.replace(/: .*$/, r.pick([': *nope', ': &x 1', ': [&a x, *a, *a]']))
  }],
  ['a tab', (l, r) => {
    const i = r.int(l.length)
    l[i] = r.next() < 0.5 ? l[i]!.replace(/^ +/, '\t') : l[i]!.replace(/: /, ':\t')
  }],
  ['an unclosed quote or bracket', (l, r) => {
    const i = r.int(l.length)
    l[i] = l[i]!.replace(/: /, `: ${r.pick(['"', "'", '[', '{'])}`)
  }],
  ['indentation one off', (l, r) => {
    const i = r.int(l.length)
    l[i] = r.next() < 0.5 ? ` ${l[i]}` : l[i]!.replace(/^ /, '')
  }],
  ['deep nesting', (l, r) => {
    const n = r.pick([10, 63, 64, 65, 200, 2000])
    if (r.next() < 0.5) l.push(`description: ${'['.repeat(n)}${']'.repeat(n)}`)
    else l.push('description:', ...Array.from({length: Math.min(n, 300)}, (_, k) => `${' '.repeat(k + 1)}k:`))
  }],
  ['unicode', (l, r) => {
    const i = r.int(l.length)
    const at = r.int(l[i]!.length + 1)
    l[i] = l[i]!.slice(0, at) + r.pick(UNICODE) + l[i]!.slice(at)
  }],
  ['unicode in a comment', (l, r) => {
    l.splice(r.int(l.length), 0, `# ${r.pick(UNICODE)} ${r.pick(NUMBERS)}`)
  }],
  ['a duplicate key', (l, r) => {
    const i = r.int(l.length)
    if (/^\s*[\w]+:/.test(l[i]!)) l.splice(i + 1, 0, l[i]!.replace(/:.*/, ': 1').replace(/^(\s*)- /, '$1  '))
  }],
]

/** A mutated spec, and how it was made (shown when an assertion fails). */
function mutant(r: Rng): {text: string; how: string[]} {
  // Mostly valid specs, so that the quick pass often vouches and the comparison bites.
  const lines = r.pick(r.next() < 0.6 ? good : bad).split('\n')
  const how: string[] = []
  for (let n = r.int(3); n > 0; n--) {
    const [name, apply] = r.pick(mutations)
    if (lines.length === 0) break
    apply(lines, r)
    how.push(name)
  }
  const eol = r.pick(['\n', '\n', '\r\n', '\r'])
  if (eol !== '\n') how.push(JSON.stringify(eol))
  let text = lines.join(eol)
  if (r.next() < 0.1) {
    text = `\ufeff${text}`
    how.push('BOM')
  }
  return {text, how}
}

describe('validate on mutated specs', () => {
  it(`${CASES} mutants from seed ${SEED}: no throw, positions inside the file, one verdict`, () => {
    const dir = mkdtempSync(join(tmpdir(), 'iocpgen-fuzz-'))
    const r = prng(SEED)
    let vouched = 0
    for (let i = 0; i < CASES; i++) {
      const {text, how} = mutant(r)
      const file = join(dir, `m${i}.yaml`)
      writeFileSync(file, text)
      const label = `mutant ${i} (${how.join(', ')})`
      const full = validateSpecFile(file, true, false)
      const quick = quickCheck(file)
      const lines = text.replace(/^\ufeff/, '').split(/\r\n|\r|\n/)
      for (const d of full.diagnostics) {
        expect(d.code, `${label}: ${d.message}`).not.toBe('E999')
        expect(d.hint, `${label}: ${d.code} has a hint`).toBeTruthy()
        expect(d.line, `${label}: ${d.code} line`).toBeGreaterThanOrEqual(1)
        expect(d.line, `${label}: ${d.code} line`).toBeLessThanOrEqual(lines.length)
        expect(d.col, `${label}: ${d.code} col`).toBeGreaterThanOrEqual(1)
        // Lock problems may be placed in the core's own locks.yaml; positions are checked per file.
        if (d.file === file) expect(d.col, `${label}: ${d.code} col`).toBeLessThanOrEqual(lines[d.line - 1]!.length + 1)
      }
      // The quick pass vouches only for a file the full pass finds nothing in.
      if (quick) {
        vouched++
        expect(full.diagnostics, `${label}: quick pass said ok`).toEqual([])
      }
      expect(validateSpecFile(file).ok, `${label}: verdict of the default path`).toBe(full.ok)
    }
    // Both paths must have been taken often enough for the comparison to mean something.
    expect(vouched).toBeGreaterThan(CASES / 20)
    expect(vouched).toBeLessThan(CASES)
  }, 60_000)
})
