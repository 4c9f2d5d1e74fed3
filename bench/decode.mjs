// Decode speed of string-heavy payloads through the runtime's Reader, as generated codecs
// call it. Run: node bench/decode.mjs
// To compare with another version of the Reader, in the same process, rounds interleaved:
//   git show <commit>:runtime/src/wire.ts > /tmp/wire-base.ts  (templates/runtime/wire.ts in older commits)
//   BASE=/tmp/wire-base.ts node bench/decode.mjs
// The chat example's GroupSay shape (a u32, a string<32>, a string<1024>), a member list of
// many short strings, and one long string; ASCII and non-ASCII text.
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {pathToFileURL} from 'node:url'

import ts from 'typescript'

const ROUNDS = Number(process.env.ROUNDS ?? 15)
const FRAMES = Number(process.env.FRAMES ?? 100_000)
const tmp = mkdtempSync(join(tmpdir(), 'iocpgen-decode-'))

async function load(path, tag) {
  const js = ts.transpileModule(readFileSync(path, 'utf8'), {compilerOptions: {module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022}}).outputText
  const file = join(tmp, `wire-${tag}.mjs`)
  writeFileSync(file, js)
  return import(pathToFileURL(file).href)
}

const versions = {current: await load(new URL('../runtime/src/wire.ts', import.meta.url).pathname, 'current')}
if (process.env.BASE) versions.base = await load(process.env.BASE, 'base')

const shapes = {
  'say, ASCII (u32, string<32>, 120 B string<1024>)': {
    write: (w) => { w.u32(7); w.string('general', 32, 2); w.string('the quick brown fox jumps over the lazy dog, '.repeat(3).slice(0, 120), 1024, 2) },
    read: (r) => ({seq: r.u32(), group: r.string(32, 2), text: r.string(1024, 2)}),
  },
  'say, non-ASCII (u32, string<32>, 60 chars string<1024>)': {
    write: (w) => { w.u32(7); w.string('général', 32, 2); w.string('ça va? 你好, 世界 🙂 '.repeat(6).slice(0, 60), 1024, 2) },
    read: (r) => ({seq: r.u32(), group: r.string(32, 2), text: r.string(1024, 2)}),
  },
  'member list (64 × {u32, string<32>})': {
    write: (w) => { w.count(64, 64, 2); for (let i = 0; i < 64; i++) { w.u32(i); w.string(`user-${i}-nick`, 32, 2) } },
    read: (r) => r.array(64, 2, () => ({id: r.u32(), nick: r.string(32, 2)})),
  },
  'long (60 KB ASCII string<70000>)': {
    write: (w) => w.string('x'.repeat(60_000), 70_000, 4),
    read: (r) => r.string(70_000, 4),
    frames: FRAMES / 50,
  },
}

for (const [name, shape] of Object.entries(shapes)) {
  const count = shape.frames ?? FRAMES
  const runs = Object.entries(versions).map(([tag, {Reader, Writer}]) => {
    const w = new Writer()
    shape.write(w)
    const payload = Buffer.from(w.view())
    // Many payloads in one batch buffer, as the server receives them.
    const batch = Buffer.concat(Array.from({length: 64}, () => payload))
    const r = new Reader(batch)
    return {tag, size: payload.length, times: [], once() {
      const t0 = process.hrtime.bigint()
      for (let i = 0; i < count; i++) {
        const at = (i & 63) * payload.length
        r.reset(batch, at, at + payload.length)
        if (shape.read(r) === undefined) throw new Error('no value')
        r.done()
      }
      this.times.push(Number(process.hrtime.bigint() - t0) / count)
    }}
  })
  for (let round = 0; round < ROUNDS; round++) for (const run of runs) run.once()
  console.log(`${name}, ${runs[0].size} B payload, ns per frame:`)
  for (const {tag, times} of runs) {
    times.sort((a, b) => a - b)
    console.log(`  ${tag.padEnd(8)} min ${times[0].toFixed(0).padStart(6)}  median ${times[Math.floor(times.length / 2)].toFixed(0).padStart(6)}`)
  }
}
