// How much CPU `validate` spends on a large spec. Run: npm run build && node bench/validate.mjs
// Generates a 500-message spec (each with nine fields, structs and enums), then reports the
// CPU time of the first (cold: includes compiling the schema) and the median of later runs.
import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {validateSpecFile} from '../dist/spec/validate.js'

const MESSAGES = Number(process.env.MESSAGES ?? 500)
const RUNS = Number(process.env.RUNS ?? 15)

const lines = ['name: big', 'version: 1.0.0', 'framing: {maxFrame: 1MiB}', 'enums:', '  Mood: {values: {calm: 0, busy: 1}}', 'structs:', '  Point: {x: f32, y: f32}', 'messages:']
for (let i = 0; i < MESSAGES; i++) {
  lines.push(
    `  - id: ${i + 1}`, `    name: Message${i}`, '    direction: both', '    fields:',
    '      seq: u32', '      from: u64', '      text: string<512>', '      blob: bytes<1024>', '      mood: Mood',
    '      at: Point', '      path: Point[16]', '      tags: string<16>[8]', '      ok: bool',
  )
}
const file = join(mkdtempSync(join(tmpdir(), 'iocpgen-bench-')), 'big.yaml')
writeFileSync(file, lines.join('\n') + '\n')

function cpuMs(fn) {
  const start = process.cpuUsage()
  fn()
  const used = process.cpuUsage(start)
  return (used.user + used.system) / 1000
}

let result
const cold = cpuMs(() => (result = validateSpecFile(file)))
if (!result.ok) throw new Error(`generated spec did not validate: ${JSON.stringify(result.diagnostics.slice(0, 3))}`)
const warm = Array.from({length: RUNS}, () => cpuMs(() => validateSpecFile(file))).sort((a, b) => a - b)
const median = warm[Math.floor(warm.length / 2)]
console.log(`validate: ${MESSAGES} messages, ${lines.length} lines`)
console.log(`  cold run (schema compile included): ${cold.toFixed(1)} ms CPU`)
console.log(`  warm median of ${RUNS}: ${median.toFixed(1)} ms CPU (min ${warm[0].toFixed(1)}, max ${warm.at(-1).toFixed(1)})`)
