// server.frameTimeout: from the spec, through the model, into the core's generated config.
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {emitProtocolHeader} from '../src/generate/native.js'
import {validateSpecFile} from '../src/spec/validate.js'

const dir = mkdtempSync(join(tmpdir(), 'iocpgen-frame-timeout-'))
let n = 0

// The value sits on line 5, after "  frameTimeout: " (column 17).
function check(value: string | undefined) {
  const file = join(dir, `spec-${n++}.yaml`)
  const server = value === undefined ? '  port: 7000' : `  frameTimeout: ${value}`
  writeFileSync(file, `name: ft\nversion: "1.0.0"\nmessages: []\nserver:\n${server}\n`)
  const r = validateSpecFile(file, false)
  return {r, found: r.diagnostics.map((d) => `${d.code} ${d.line}:${d.col}`)}
}

describe('server.frameTimeout', () => {
  it('defaults to 10s and reaches the generated engine config', () => {
    const {r, found} = check(undefined)
    expect(found).toEqual([])
    expect(r.spec!.server.frameTimeoutMs).toBe(10_000)
    expect(emitProtocolHeader(r.spec!, '// test')).toContain('c.frame_timeout_ms = 10000;')
  })

  it.each([
    ['250ms', 250],
    ['2s', 2000],
    ['5m', 300_000],
    ['1000h', 3_600_000_000],
    ['0s', 0],
  ])('accepts %s as %d ms', (value, ms) => {
    const {r, found} = check(value)
    expect(found).toEqual([])
    expect(r.spec!.server.frameTimeoutMs).toBe(ms)
    expect(emitProtocolHeader(r.spec!, '// test')).toContain(`c.frame_timeout_ms = ${ms};`)
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
