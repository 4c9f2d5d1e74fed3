// iocpgen breaking: each kind of change, found where it is written and in its category; what
// does not break stays silent; --against reads git; every output format.
import {execFileSync, spawnSync} from 'node:child_process'
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

const root = join(import.meta.dirname, '..')
const iocpgen = (cwd: string, ...args: string[]) => {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'run.js'), ...args], {cwd, encoding: 'utf8', env: {...process.env, NO_COLOR: '1'}})
  return {code: r.status, stdout: r.stdout, stderr: r.stderr}
}

const BASE = `name: game
version: 1.0.0
framing:
  maxFrame: 16KiB
enums:
  Color:
    type: u8
    values: {red: 1, green: 2}
structs:
  Point: {x: i32, y: i32}
messages:
  - id: 1
    name: Move
    direction: client-to-server
    fields:
      to: Point
      speed: u16
      label: string<16>
      tags: "u8[4]"
  - id: 2
    name: Paint
    direction: both
    fields:
      color: Color
  - id: 3
    name: Chat
    direction: server-to-client
    fields:
      text: string<64>
`

/** "line:col" of `token` on the first line of `text` containing `line`. */
function pos(text: string, line: string, token: string): string {
  const lines = text.split('\n')
  const i = lines.findIndex((l) => l.includes(line))
  if (i < 0) throw new Error(`no line with ${line}`)
  return `${i + 1}:${lines[i]!.indexOf(token, lines[i]!.indexOf(line)) + 1}`
}

/** Writes old and new specs and runs breaking on them, as JSON. */
function compare(next: string, ...flags: string[]) {
  const dir = mkdtempSync(join(tmpdir(), 'breaking-'))
  writeFileSync(join(dir, 'old.yaml'), BASE)
  writeFileSync(join(dir, 'new.yaml'), next)
  const r = iocpgen(dir, 'breaking', 'old.yaml', 'new.yaml', '--error-format', 'json', ...flags)
  const report = JSON.parse(r.stdout) as {diagnostics: {file: string; line: number; col: number; code: string; message: string; hint?: string}[]; findings: {wire: number; source: number}}
  return {code: r.code, report, found: report.diagnostics.map((d) => `${d.code} ${d.file} ${d.line}:${d.col}`)}
}

type Case = [string, (t: string) => string, (next: string) => string[]]
const cases: Case[] = [
  ['a message removed', (t) => t.slice(0, t.indexOf('  - id: 3')), () => [`E501 old.yaml ${pos(BASE, 'name: Chat', 'Chat')}`]],
  ['a message id changed', (t) => t.replace('id: 1\n', 'id: 5\n'), (n) => [`E502 new.yaml ${pos(n, 'name: Move', 'Move')}`]],
  ['an id reused for another message', (t) => t.replace(/name: Chat[\s\S]*$/, 'name: Shout\n    direction: server-to-client\n    fields:\n      volume: u8\n'), (n) => [`E503 new.yaml ${pos(n, 'name: Shout', 'Shout')}`]],
  ['clients may no longer send a message', (t) => t.replace('direction: both', 'direction: server-to-client'), (n) => [`E504 new.yaml ${pos(n, 'name: Paint', 'Paint')}`]],
  ['a field removed', (t) => t.replace('      speed: u16\n', ''), () => [`E505 old.yaml ${pos(BASE, 'speed: u16', 'speed')}`]],
  ['a field added', (t) => t.replace('      tags: "u8[4]"\n', '      tags: "u8[4]"\n      extra: u8\n'), (n) => [`E506 new.yaml ${pos(n, 'extra: u8', 'extra')}`]],
  ['a field type changed', (t) => t.replace('speed: u16', 'speed: u32'), (n) => [`E507 new.yaml ${pos(n, 'speed: u32', 'speed')}`]],
  ['a bound narrowed', (t) => t.replace('string<16>', 'string<8>'), (n) => [`E508 new.yaml ${pos(n, 'label: string<8>', 'label')}`]],
  ['a bound widened past the u16 prefix', (t) => t.replace('"u8[4]"', '"u8[70000]"').replace('maxFrame: 16KiB', 'maxFrame: 256KiB'), (n) => [`E508 new.yaml ${pos(n, 'tags:', 'tags')}`]],
  ['fields reordered', (t) => t.replace('      speed: u16\n      label: string<16>\n', '      label: string<16>\n      speed: u16\n'), (n) => [`E509 new.yaml ${pos(n, 'label: string<16>', 'label')}`]],
  ['an enum value renumbered', (t) => t.replace('green: 2', 'green: 3'), (n) => [`E510 new.yaml ${pos(n, 'green: 3', 'green')}`]],
  ['an enum value removed', (t) => t.replace('{red: 1, green: 2}', '{red: 1}'), () => [`E511 old.yaml ${pos(BASE, 'green: 2', 'green')}`]],
  ['an enum value added', (t) => t.replace('green: 2}', 'green: 2, blue: 3}'), (n) => [`E512 new.yaml ${pos(n, 'blue: 3', 'blue')}`]],
  ["an enum's type changed", (t) => t.replace('type: u8', 'type: u16'), (n) => [`E513 new.yaml ${pos(n, 'Color:', 'Color')}`]],
  ['maxFrame shrank', (t) => t.replace('maxFrame: 16KiB', 'maxFrame: 8KiB'), (n) => [`E514 new.yaml ${pos(n, 'maxFrame: 8KiB', '8KiB')}`]],
  ["a struct's field added: once, at the struct, not at every use", (t) => t.replace('{x: i32, y: i32}', '{x: i32, y: i32, z: i32}'), (n) => [`E506 new.yaml ${pos(n, 'z: i32', 'z')}`]],
  ['a message renamed', (t) => t.replace('name: Chat', 'name: Say'), (n) => [`E521 new.yaml ${pos(n, 'name: Say', 'Say')}`]],
  ['a field renamed', (t) => t.replace('speed: u16', 'velocity: u16'), (n) => [`E522 new.yaml ${pos(n, 'velocity: u16', 'velocity')}`]],
  ['an enum renamed', (t) => t.replace('  Color:', '  Colour:').replace('color: Color', 'color: Colour'), (n) => [`E523 new.yaml ${pos(n, 'Colour:', 'Colour')}`]],
  ['an enum value renamed', (t) => t.replace('green: 2', 'lime: 2'), (n) => [`E524 new.yaml ${pos(n, 'lime: 2', 'lime')}`]],
  ['a struct renamed', (t) => t.replace('Point: {', 'Vec: {').replace('to: Point', 'to: Vec'), (n) => [`E525 new.yaml ${pos(n, 'Vec: {', 'Vec')}`]],
]

describe('iocpgen breaking', () => {
  it.each(cases)('%s', (_, edit, want) => {
    const next = edit(BASE)
    const r = compare(next)
    expect(r.found).toEqual(want(next))
    expect(r.code).toBe(1)
    for (const d of r.report.diagnostics) expect(d.hint, d.code).toBeTruthy()
  })

  it.each<[string, (t: string) => string]>([
    ['the same spec', (t) => t],
    ['a new message with a new id', (t) => `${t}  - id: 4\n    name: Wave\n    direction: both\n`],
    ['a new struct and enum, unused', (t) => t.replace('structs:\n', 'structs:\n  Size: {w: u16}\n').replace('enums:\n', 'enums:\n  Mood: {values: {calm: 0}}\n')],
    ['clients allowed to send a message they could not', (t) => t.replace('direction: server-to-client', 'direction: both')],
    ['comments, order of messages and whitespace', (t) => `# a comment\n${t.replace(/  - id: 2[\s\S]*?(?=  - id: 3)/, '')}  - id: 2\n    name: Paint\n    direction: both\n    fields:\n      color:   Color\n`],
  ])('%s: nothing breaks, exit 0', (_, edit) => {
    const r = compare(edit(BASE))
    expect(r.found).toEqual([])
    expect(r.code).toBe(0)
  })

  it('a bound crossing 65535 says the prefix changes size', () => {
    const r = compare(BASE.replace('"u8[4]"', '"u8[70000]"').replace('maxFrame: 16KiB', 'maxFrame: 256KiB'))
    expect(r.report.diagnostics[0]!.hint).toContain('the length prefix changes size')
  })

  it('--category picks what fails the check: a rename is source only', () => {
    const next = BASE.replace('name: Chat', 'name: Say')
    expect(compare(next, '--category', 'wire')).toMatchObject({code: 0, found: []})
    expect(compare(next, '--category', 'source')).toMatchObject({code: 1, report: {findings: {wire: 0, source: 1}}})
    const both = compare(next.replace('speed: u16', 'speed: u32'))
    expect(both.report.findings).toEqual({wire: 1, source: 1})
  })

  it('text output shows each finding at its line, and a summary', () => {
    const dir = mkdtempSync(join(tmpdir(), 'breaking-'))
    writeFileSync(join(dir, 'old.yaml'), BASE)
    writeFileSync(join(dir, 'new.yaml'), BASE.replace('speed: u16', 'speed: u32'))
    const r = iocpgen(dir, 'breaking', 'old.yaml', 'new.yaml')
    expect(r.code).toBe(1)
    expect(r.stdout).toContain(`new.yaml:${pos(BASE, 'speed: u16', 'speed')}: error E507: message Move: field speed changed its type from u16 to u32`)
    expect(r.stdout).toContain('   17 |       speed: u32')
    expect(r.stdout).toContain('fail  old.yaml -> new.yaml: 1 wire-incompatible, 0 source-incompatible')
  })

  it('--error-format sarif is SARIF 2.1.0 with a rule for each code used', () => {
    const dir = mkdtempSync(join(tmpdir(), 'breaking-'))
    writeFileSync(join(dir, 'old.yaml'), BASE)
    writeFileSync(join(dir, 'new.yaml'), BASE.replace('speed: u16', 'speed: u32').replace('name: Chat', 'name: Say'))
    const r = iocpgen(dir, 'breaking', 'old.yaml', 'new.yaml', '--error-format', 'sarif')
    expect(r.code).toBe(1)
    const sarif = JSON.parse(r.stdout)
    expect(sarif.version).toBe('2.1.0')
    const run = sarif.runs[0]
    expect(run.tool.driver.name).toBe('iocpgen')
    expect(run.tool.driver.rules.map((x: {id: string}) => x.id)).toEqual(['E507', 'E521'])
    for (const res of run.results) {
      expect(run.tool.driver.rules[res.ruleIndex].id).toBe(res.ruleId)
      expect(res.level).toBe('error')
      expect(res.locations[0].physicalLocation.artifactLocation.uri).toBe('new.yaml')
      expect(res.locations[0].physicalLocation.region.startLine).toBeGreaterThan(0)
      expect(res.message.text).toContain('hint: ')
    }
  })

  it('an invalid spec is reported as validate reports it, and nothing is compared', () => {
    const dir = mkdtempSync(join(tmpdir(), 'breaking-'))
    writeFileSync(join(dir, 'old.yaml'), BASE)
    writeFileSync(join(dir, 'new.yaml'), BASE.replace('id: 2', 'id: 1'))
    const r = iocpgen(dir, 'breaking', 'old.yaml', 'new.yaml')
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('error E201')
    expect(r.stderr.replace(/\s*›\s*/g, ' ')).toContain('new.yaml has errors; nothing was compared')
  })

  it.each<[string[], string]>([
    [['breaking', 'old.yaml'], 'give the old and the new spec, or one spec and --against'],
    [['breaking', 'old.yaml', 'new.yaml', '--against', 'HEAD'], 'give either two specs, or one spec and --against'],
    [['breaking', 'old.yaml', '--against', 'HEAD'], 'is not in a git repository'],
  ])('%j is a usage error', (args, says) => {
    const dir = mkdtempSync(join(tmpdir(), 'breaking-'))
    writeFileSync(join(dir, 'old.yaml'), BASE)
    const r = iocpgen(dir, ...args)
    expect(r.code).toBe(2)
    expect(r.stderr.replace(/\s*›\s*/g, ' ')).toContain(says)
  })
})

describe('iocpgen breaking --against', () => {
  const repo = () => {
    const dir = mkdtempSync(join(tmpdir(), 'breaking-git-'))
    const git = (...args: string[]) => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], {cwd: dir, encoding: 'utf8'})
    git('init', '-q')
    return {dir, git}
  }

  it('compares the working copy with the spec at a ref, naming the old side ref:path', () => {
    const {dir, git} = repo()
    execFileSync('mkdir', ['-p', join(dir, 'specs')])
    writeFileSync(join(dir, 'specs/game.yaml'), BASE)
    git('add', '.')
    git('commit', '-qm', 'one')
    writeFileSync(join(dir, 'specs/game.yaml'), BASE.slice(0, BASE.indexOf('  - id: 3')))
    const r = iocpgen(join(dir, 'specs'), 'breaking', 'game.yaml', '--against', 'HEAD', '--error-format', 'json')
    expect(r.code).toBe(1)
    expect(JSON.parse(r.stdout).diagnostics.map((d: {code: string; file: string; line: number}) => `${d.code} ${d.file} ${d.line}`)).toEqual([`E501 HEAD:specs/game.yaml ${pos(BASE, 'name: Chat', 'Chat').split(':')[0]}`])
    // Committed: nothing differs from HEAD, and HEAD~1 does not exist.
    git('commit', '-qam', 'two')
    expect(iocpgen(join(dir, 'specs'), 'breaking', 'game.yaml', '--against', 'HEAD').code).toBe(0)
    const bad = iocpgen(dir, 'breaking', 'specs/game.yaml', '--against', 'nope')
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('--against nope: no such commit, branch or tag')
  })

  it('a spec that did not exist at the ref is all new: exit 0', () => {
    const {dir, git} = repo()
    writeFileSync(join(dir, 'README'), 'x')
    git('add', '.')
    git('commit', '-qm', 'one')
    writeFileSync(join(dir, 'game.yaml'), BASE)
    const r = iocpgen(dir, 'breaking', 'game.yaml', '--against', 'HEAD')
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('game.yaml did not exist at HEAD: everything in it is new')
  })
})
