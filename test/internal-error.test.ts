// A bug in the checker must cost one file its check, never the run: the file gets an E999
// with a hint, the others are checked as usual, and nothing is thrown.
import {join} from 'node:path'

import {describe, expect, it, vi} from 'vitest'

vi.mock('../src/spec/schema-check.js', async (original) => {
  const real = await original<typeof import('../src/spec/schema-check.js')>()
  return {
    ...real,
    checkSchema: (...args: Parameters<typeof real.checkSchema>) => {
      if (args[0].file.endsWith('echo.yaml')) throw new TypeError('planted bug')
      return real.checkSchema(...args)
    },
  }
})

const {validateSpecFile} = await import('../src/spec/validate.js')

describe('an internal error', () => {
  it('becomes an E999 for that file alone', () => {
    const root = join(import.meta.dirname, '..')
    const [broken, fine] = ['examples/echo/echo.yaml', 'examples/chat/chat.yaml'].map((f) => validateSpecFile(join(root, f)))
    expect(broken!.ok).toBe(false)
    expect(broken!.diagnostics.map((d) => [d.code, d.line, d.col])).toEqual([['E999', 1, 1]])
    expect(broken!.diagnostics[0]!.message).toContain('TypeError: planted bug')
    expect(broken!.diagnostics[0]!.hint).toMatch(/report/)
    expect(fine!.ok).toBe(true)
  })
})
