// server.frameTimeout: from the spec, through the model and the generated settings
// (src/generated/spec.ts), into the native core's config by way of the runtime.
import {mkdirSync, mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'

import ts from 'typescript'
import {describe, expect, it} from 'vitest'

import {loadAddon} from '../runtime/src/addon.js'
import {RUNTIME_API} from '../runtime/src/protocol.js'
import {Server} from '../runtime/src/server.js'
import {emitSettings} from '../src/generate/settings.js'
import {emitProtocol} from '../src/generate/typescript.js'
import type {Spec} from '../src/spec/model.js'
import {validateSpecFile} from '../src/spec/validate.js'

const dir = mkdtempSync(join(tmpdir(), 'iocpgen-frame-timeout-'))
writeFileSync(join(dir, 'package.json'), '{"type": "module"}')
let n = 0

/** The frame timeout the native core takes from the spec's generated settings, given them by the runtime. */
async function coreFrameTimeout(spec: Spec): Promise<number> {
  const out = join(dir, `generated-${n++}`)
  mkdirSync(out)
  for (const [name, text] of [['spec', emitSettings(spec, '// test')], ['protocol', emitProtocol(spec, '// test')]] as const) {
    writeFileSync(join(out, `${name}.js`), ts.transpileModule(text, {compilerOptions: {module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022}}).outputText)
  }
  const {settings} = await import(pathToFileURL(join(out, 'spec.js')).href)
  const server = new Server({protocol: {api: RUNTIME_API, codecs: {}, settings}, handlers: {}, initialState: () => ({})})
  const core = new (loadAddon().NativeServer)(server.nativeOptions(), () => {})
  try {
    return core.options().frameTimeoutMs
  } finally {
    core.stop()
  }
}

// The value sits on line 5, after "  frameTimeout: " (column 17).
function check(value: string | undefined) {
  const file = join(dir, `spec-${n++}.yaml`)
  const server = value === undefined ? '  port: 7000' : `  frameTimeout: ${value}`
  writeFileSync(file, `name: ft\nversion: "1.0.0"\nmessages: []\nserver:\n${server}\n`)
  const r = validateSpecFile(file, false)
  return {r, found: r.diagnostics.map((d) => `${d.code} ${d.line}:${d.col}`)}
}

describe('server.frameTimeout', () => {
  it('defaults to 10s and reaches the generated settings and the native core', async () => {
    const {r, found} = check(undefined)
    expect(found).toEqual([])
    expect(r.spec!.server.frameTimeoutMs).toBe(10_000)
    expect(emitSettings(r.spec!, '// test')).toContain('  frameTimeoutMs: 10000,\n')
    expect(await coreFrameTimeout(r.spec!)).toBe(10_000)
  })

  it.each([
    ['250ms', 250],
    ['2s', 2000],
    ['5m', 300_000],
    ['1000h', 3_600_000_000],
    ['0s', 0],
  ])('accepts %s as %d ms', async (value, ms) => {
    const {r, found} = check(value)
    expect(found).toEqual([])
    expect(r.spec!.server.frameTimeoutMs).toBe(ms)
    expect(emitSettings(r.spec!, '// test')).toContain(`  frameTimeoutMs: ${ms},\n`)
    expect(await coreFrameTimeout(r.spec!)).toBe(ms)
  })

  it.each([
    ['10 sec', 'E106'],
    ['10', 'E103'],
    ['-1s', 'E106'],
    ['true', 'E103'],
    ['"1.5s"', 'E106'],
  ])('rejects the malformed %s with a positioned %s', (value, code) => {
    const {r, found} = check(value)
    expect(found).toEqual([`${code} 5:17`])
    expect(r.ok).toBe(false)
  })

  it.each(['50ms', '99ms', '1001h'])('rejects %s as out of range (E306) at the value', (value) => {
    const {r, found} = check(value)
    expect(found).toEqual(['E306 5:17'])
    const d = r.diagnostics[0]!
    expect(d.message).toContain('frameTimeout')
    expect(d.hint).toBeTruthy()
  })
})
