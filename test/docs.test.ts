// The docs are part of the interface: every diagnostic code and every spec key is documented.
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {CODES} from '../src/diagnostics/codes.js'

const root = join(import.meta.dirname, '..')
const read = (p: string) => readFileSync(join(root, p), 'utf8')

describe('docs', () => {
  it('docs/diagnostics.md lists every code with its title', () => {
    const doc = read('docs/diagnostics.md')
    for (const [code, info] of Object.entries(CODES)) expect(doc, code).toContain(`| ${code} | ${info.title} |`)
  })

  it('docs/spec.md documents every key of the schema', () => {
    const schema = JSON.parse(read('schema/iocpgen.schema.json'))
    const doc = read('docs/spec.md')
    const keys = (props: Record<string, unknown>, prefix = ''): string[] =>
      Object.keys(props).filter((k) => k !== '$schema').map((k) => prefix + k)
    const all = [
      ...keys(schema.properties),
      ...keys(schema.definitions.server.properties).filter((k) => k !== 'perIp'),
      ...keys(schema.definitions.server.properties.perIp.properties, 'perIp.'),
      ...keys(schema.definitions.framing.properties, 'framing.'),
      ...keys(schema.definitions.cluster.properties, 'cluster.'),
    ]
    for (const k of all) expect(doc, k).toContain(`\`${k}\``)
  })

  it('the README states the exit codes validate uses', () => {
    const readme = read('README.md')
    expect(readme).toMatch(/\| 0 \|[^\n]*valid/)
    expect(readme).toMatch(/\| 1 \|[^\n]*error/)
    expect(readme).toMatch(/\| 2 \|[^\n]*usage/)
  })
})
