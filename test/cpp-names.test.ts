// Spec names the preprocessor would rewrite: the reserved list must cover every macro in scope
// of the generated C++, validate must refuse them in every class, and a project using every
// class of name must compile for Windows (mingw-w64) and Linux. Without mingw these fail.
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

// A plain script, shared with the command that rewrites the list.
import {addonFlags, committed, macroNames, WIN_CXX, writeProject} from '../scripts/cpp-macros.mjs'
import {renderProject} from '../src/generate/project.js'
import {identifierProblem} from '../src/spec/identifiers.js'
import {validateSpecFile} from '../src/spec/validate.js'
import {run} from './support/run.js'

const root = join(import.meta.dirname, '..')

function project(specFile: string): string {
  const result = validateSpecFile(specFile)
  expect(result.diagnostics.filter((d) => d.severity === 'error')).toEqual([])
  return writeProject(renderProject({spec: result.spec!, specText: readFileSync(specFile, 'utf8'), specFile: 'spec.yaml'})) as string
}

// The classes of names validate checks, and whether each also becomes a type.
const CLASSES: [string, boolean][] = [['message', true], ['struct', true], ['enum', true], ['Kind value', false], ['Point field', false], ['lock', false], ['operation', false]]

describe('the reserved macro list', () => {
  it('covers every macro in scope of the generated C++, for every class of name', {timeout: 120_000}, async () => {
    const fresh = macroNames(project(join(root, 'examples', 'chat', 'chat.yaml'))) as Set<string>
    // The ones that broke a build, so an empty result cannot pass.
    for (const m of ['IGNORE', 'INFINITE', 'OPAQUE', 'SendMessage', 'errno', 'EAGAIN']) expect(fresh).toContain(m)
    const list = committed() as Set<string>
    // validate binary-searches the list, so it must stay in code-unit order.
    expect([...list].sort()).toEqual([...list])
    expect([...fresh].filter((m) => !list.has(m)), 'missing from native-template/macros.txt: run node scripts/cpp-macros.mjs').toEqual([])
    for (const [what, asType] of CLASSES) {
      expect([...fresh].filter((m) => identifierProblem(m, what, asType) === undefined), what).toEqual([])
    }
  })
})

describe('validate refuses a macro name in every class', () => {
  const file = join(root, 'test', 'fixtures', 'cpp', 'macro-names.yaml')
  const found = validateSpecFile(file).diagnostics

  it.each([
    ['enum', 'OPAQUE', 6, 3],
    ['enum value', 'CALLBACK', 9, 14],
    ['struct', 'INFINITE', 11, 3],
    ['struct field', 'NEAR', 12, 5],
    ['message', 'IGNORE', 16, 11],
    ['message field', 'EAGAIN', 19, 7],
    ['lock', 'VOID', 21, 3],
    ['operation', 'WINAPI', 24, 3],
  ])('%s %s at %i:%i, with a hint', (_, name, line, col) => {
    const d = found.find((x) => x.code === 'E205' && x.message.includes(`"${name}"`))
    expect(d).toMatchObject({code: 'E205', severity: 'error', line, col, hint: `rename it, e.g. "${name}Value"`})
    expect(d!.message).toContain('is a macro in the headers the generated C++ includes')
  })
})

describe('a project using every class of name compiles', () => {
  const spec = join(root, 'test', 'fixtures', 'cpp', 'every-name.yaml')
  const windows = ['winsock2.h', 'ws2tcpip.h', 'windows.h', 'mswsock.h'].map((h) => `#include <${h}>\n`).join('')
  const compile = async (cxx: string, flags: string[], source: string, cwd: string) => {
    const r = await run(cxx, [...flags, '-fsyntax-only', '-x', 'c++', '-'], {input: source, cwd})
    expect(r.error, `${cxx} is needed (Debian: g++-mingw-w64-x86-64-posix)`).toBeUndefined()
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
  }

  it('with mingw-w64, as binding.gyp builds it and after all of <windows.h>', {timeout: 180_000}, async () => {
    const dir = project(spec)
    const header = readFileSync(join(dir, 'native', 'generated', 'protocol.h'), 'utf8')
    expect(header).toContain('  Ignore = 1,')
    expect(header).toContain('  _lowercase = 10,')
    const addon = join(dir, 'native', 'generated', 'addon.cpp')
    await compile(WIN_CXX, [...addonFlags(dir, true), '-DWIN32_LEAN_AND_MEAN', '-DNOMINMAX'], `#include "${addon}"\n`, dir)
    await compile(WIN_CXX, addonFlags(dir, true), `${windows}#include "${addon}"\n`, dir)
  })

  it('with g++ on Linux', {timeout: 120_000}, async () => {
    const dir = project(spec)
    await compile('g++', addonFlags(dir, false), `#include "${join(dir, 'native', 'generated', 'addon.cpp')}"\n`, dir)
  })
})
