// The corpus: each bad spec under test/fixtures/bad yields exactly the diagnostics its
// .expect file lists (code and line:col), and each good spec yields none.
import {mkdtempSync, readdirSync, readFileSync, writeFileSync, mkdirSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {CATEGORY} from '../src/breaking/compare.js'
import {CODES} from '../src/diagnostics/codes.js'
import {quickParse} from '../src/spec/quick-parse.js'
import {loadSource, readSpecText, toData} from '../src/spec/source.js'
import {quickCheck, validateSpecFile} from '../src/spec/validate.js'

const fixtures = join(import.meta.dirname, 'fixtures')
const bad = readdirSync(join(fixtures, 'bad')).filter((f) => /\.(ya?ml|json)$/.test(f))

// An .expect line is "CODE line:col", optionally followed by "~ text" that the message
// must contain.
const found = (file: string) => validateSpecFile(file).diagnostics

const expected = (specFile: string) =>
  readFileSync(specFile.replace(/\.(ya?ml|json)$/, '.expect'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => {
      const [where, text] = l.split(/\s+~\s+/, 2)
      return {where: where!.trim(), text}
    })

describe('bad specs', () => {
  it.each(bad)('%s yields exactly its expected diagnostics', (name) => {
    const file = join(fixtures, 'bad', name)
    const want = expected(file)
    expect(want.length).toBeGreaterThan(0)
    const got = found(file)
    expect(got.map((d) => `${d.code} ${d.line}:${d.col}`).sort()).toEqual(want.map((w) => w.where).sort())
    for (const w of want.filter((x) => x.text)) {
      const messages = got.filter((d) => `${d.code} ${d.line}:${d.col}` === w.where).map((d) => d.message)
      expect(messages.some((m) => m.includes(w.text!)), `${w.where}: ${messages.join(' | ')}`).toBe(true)
    }
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

// Files that are not specs at all, made on demand in a temporary directory.
const notSpecs = (() => {
  let dir: string | undefined
  const tmp = () => (dir ??= mkdtempSync(join(tmpdir(), 'iocpgen-files-')))
  const write = (name: string, content: string | Buffer) => {
    writeFileSync(join(tmp(), name), content)
    return join(tmp(), name)
  }
  const cases: [string, () => string, string][] = [
    ['missing file', () => join(tmp(), 'nope.yaml'), 'E001'],
    ['directory', () => tmp(), 'E002'],
    ['path through a file (ENOTDIR)', () => join(write('plain.yaml', 'a: 1\n'), 'x.yaml'), 'E003'],
    ['binary file', () => write('bin.yaml', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 0xff])), 'E004'],
    ['invalid UTF-8', () => write('latin1.yaml', Buffer.from('name: caf\xe9\n', 'latin1')), 'E004'],
    ['empty file', () => write('empty.yaml', ''), 'E005'],
    ['only comments', () => write('comments.yaml', '# nothing here\n\n'), 'E005'],
    ['only comments, CR line ends', () => write('comments-cr.yaml', '# nothing here\r# nor here\r'), 'E005'],
  ]
  return cases
})()

describe('files that are not specs', () => {
  it.each(notSpecs)('%s gets one clear diagnostic', (_, make, code) => {
    const r = validateSpecFile(make())
    expect(r.diagnostics.map((d) => `${d.code} ${d.line}:${d.col}`)).toEqual([`${code} 1:1`])
    expect(r.diagnostics[0]!.hint).toBeTruthy()
  })
})

describe('the corpus', () => {
  // Codes proved elsewhere, by a test that needs more than a spec file.
  const elsewhere: Record<string, string> = {E999: 'test/internal-error.test.ts', E421: 'test/locks-code.test.ts', E422: 'test/locks-code.test.ts', E423: 'test/locks-code.test.ts'}
  // The findings of iocpgen breaking compare two specs: test/breaking.test.ts has a pair for each.
  for (const code of [...CATEGORY.wire, ...CATEGORY.source]) elsewhere[code] = 'test/breaking.test.ts'
  it('exercises every diagnostic code', () => {
    // Runs the corpus itself, so that it holds when run alone (vitest -t).
    const seen = new Set<string>(Object.keys(elsewhere))
    // ...and that test names the code.
    for (const [code, file] of Object.entries(elsewhere)) expect(readFileSync(join(fixtures, '..', '..', file), 'utf8'), `${code} in ${file}`).toContain(code)
    for (const name of bad) for (const d of validateSpecFile(join(fixtures, 'bad', name)).diagnostics) seen.add(d.code)
    for (const [, make] of notSpecs) for (const d of validateSpecFile(make()).diagnostics) seen.add(d.code)
    const missing = Object.keys(CODES).filter((c) => !seen.has(c))
    expect(missing).toEqual([])
  })
  it('gives every diagnostic a hint', () => {
    let count = 0
    for (const name of bad) {
      for (const d of validateSpecFile(join(fixtures, 'bad', name)).diagnostics) {
        expect(d.hint?.trim(), `${name} ${d.code} ${d.line}:${d.col}`).toBeTruthy()
        count++
      }
    }
    expect(count).toBeGreaterThan(bad.length)
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
    const {text} = readSpecText(file)
    const fast = quickParse(text!)
    const full = loadSource(file, text)
    // Both accept it or both refuse it; when both accept, the data is the same.
    expect(fast !== undefined, 'quick parser accepts it').toBe(full.source !== undefined)
    if (fast && full.source) expect(toData(full.source.doc.contents)).toEqual(fast)
  })
  it.each(all)('%s gets the same result from both passes', (file) => {
    // The quick pass vouches for a file only when the full pass finds nothing in it.
    const quick = quickCheck(file)
    const full = validateSpecFile(file, true, false)
    expect(quick !== undefined, 'quick pass vouches for it').toBe(full.diagnostics.length === 0)
    if (!quick) return
    expect(full.ok).toBe(true)
    expect(JSON.stringify(quick.spec?.server)).toBe(JSON.stringify(full.spec?.server))
    expect(quick.spec?.messages.map((m) => [m.id, m.name, m.fields.map((f) => f.typeText)])).toEqual(full.spec?.messages.map((m) => [m.id, m.name, m.fields.map((f) => f.typeText)]))
  })
})
