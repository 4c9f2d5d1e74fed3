// The corpus: each bad spec under test/fixtures/bad yields exactly the diagnostics its
// .expect file lists (code and line:col), and each good spec yields none.
import {mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {CORE_SCHEMA, load as loadYaml} from 'js-yaml'
import {describe, expect, it} from 'vitest'
import {parseDocument} from 'yaml'

import {CODES} from '../src/diagnostics/codes.js'
import {validateSpecFile} from '../src/spec/validate.js'

const fixtures = join(import.meta.dirname, 'fixtures')
const bad = readdirSync(join(fixtures, 'bad')).filter((f) => /\.(ya?ml|json)$/.test(f))
const seenCodes = new Set<string>()

const found = (file: string) =>
  validateSpecFile(file).diagnostics.map((d) => `${d.code} ${d.line}:${d.col}`).sort()

const expected = (specFile: string) =>
  readFileSync(specFile.replace(/\.(ya?ml|json)$/, '.expect'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .sort()

describe('bad specs', () => {
  it.each(bad)('%s yields exactly its expected diagnostics', (name) => {
    const file = join(fixtures, 'bad', name)
    const want = expected(file)
    expect(want.length).toBeGreaterThan(0)
    expect(found(file)).toEqual(want)
    for (const w of want) seenCodes.add(w.split(' ')[0]!)
  })
})

describe('good specs', () => {
  const good = [
    join(fixtures, 'good', 'all-types.yaml'),
    join(import.meta.dirname, '..', 'examples', 'chat', 'chat.yaml'),
    join(import.meta.dirname, '..', 'examples', 'echo', 'echo.yaml'),
    join(import.meta.dirname, '..', 'native-template', 'locks.yaml'),
  ]
  it.each(good)('%s has no diagnostics', (file) => {
    const r = validateSpecFile(file)
    expect(r.diagnostics).toEqual([])
    expect(r.ok).toBe(true)
  })
})

describe('files that are not specs', () => {
  const dir = mkdtempSync(join(tmpdir(), 'iocpgen-files-'))
  const cases: [string, () => string, string][] = [
    ['missing file', () => join(dir, 'nope.yaml'), 'E001'],
    ['directory', () => dir, 'E002'],
    ['path through a file (ENOTDIR)', () => {
      writeFileSync(join(dir, 'plain.yaml'), 'a: 1\n')
      return join(dir, 'plain.yaml', 'x.yaml')
    }, 'E003'],
    ['binary file', () => {
      writeFileSync(join(dir, 'bin.yaml'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 0xff]))
      return join(dir, 'bin.yaml')
    }, 'E004'],
    ['invalid UTF-8', () => {
      writeFileSync(join(dir, 'latin1.yaml'), Buffer.from('name: caf\xe9\n', 'latin1'))
      return join(dir, 'latin1.yaml')
    }, 'E004'],
    ['empty file', () => {
      writeFileSync(join(dir, 'empty.yaml'), '')
      return join(dir, 'empty.yaml')
    }, 'E005'],
    ['only comments', () => {
      writeFileSync(join(dir, 'comments.yaml'), '# nothing here\n\n')
      return join(dir, 'comments.yaml')
    }, 'E005'],
  ]
  it.each(cases)('%s gets one clear diagnostic', (_, make, code) => {
    const r = validateSpecFile(make())
    expect(r.diagnostics.map((d) => `${d.code} ${d.line}:${d.col}`)).toEqual([`${code} 1:1`])
    expect(r.diagnostics[0]!.hint).toBeTruthy()
    seenCodes.add(code)
  })
  mkdirSync(join(dir, 'sub'), {recursive: true})
})

describe('the corpus', () => {
  it('exercises every diagnostic code', () => {
    const missing = Object.keys(CODES).filter((c) => !seenCodes.has(c))
    expect(missing).toEqual([])
  })
  it('gives every diagnostic a hint', () => {
    for (const name of bad) {
      for (const d of validateSpecFile(join(fixtures, 'bad', name)).diagnostics) expect(d.hint, `${name} ${d.code}`).toBeTruthy()
    }
  })
})

describe('the quick pass', () => {
  // Valid specs are checked over a fast parser's data; anything reported is checked again
  // with positions. Both parsers must read every fixture to the same data, and both passes
  // must give the same answer.
  const all = [
    ...bad.map((f) => join(fixtures, 'bad', f)),
    join(fixtures, 'good', 'all-types.yaml'),
    join(fixtures, 'specs', 'roundtrip.yaml'),
    join(import.meta.dirname, '..', 'examples', 'chat', 'chat.yaml'),
    join(import.meta.dirname, '..', 'native-template', 'locks.yaml'),
  ]
  it.each(all)('%s reads the same with both parsers', (file) => {
    const text = readFileSync(file, 'utf8')
    let fast: unknown
    try {
      fast = loadYaml(text, {schema: CORE_SCHEMA})
    } catch {
      return // the quick pass gives up on it; the full pass alone answers
    }
    const doc = parseDocument(text, {uniqueKeys: true})
    if (doc.errors.length === 0) expect(fast).toEqual(doc.toJS())
  })
  it.each(all)('%s gets the same result from both passes', (file) => {
    const quick = validateSpecFile(file)
    const full = validateSpecFile(file, true, false)
    expect(quick.diagnostics).toEqual(full.diagnostics)
    expect(quick.ok).toBe(full.ok)
    expect(JSON.stringify(quick.spec?.server)).toBe(JSON.stringify(full.spec?.server))
    expect(quick.spec?.messages.map((m) => [m.id, m.name, m.fields.map((f) => f.typeText)])).toEqual(full.spec?.messages.map((m) => [m.id, m.name, m.fields.map((f) => f.typeText)]))
  })
})
