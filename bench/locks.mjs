// The cost of taking the spec's locks (runtime/src/locks.ts), uncontended: a user lock and a
// group lock nested inside it, per key, in production mode and in development mode (which
// captures a stack per acquisition and tracks the async context). Run after `npm run build`:
//   node bench/locks.mjs
import {createLocks} from '../runtime/dist/index.js'

const table = [
  {name: 'user', kind: 'mutex', perInstance: true, after: ['group']},
  {name: 'group', kind: 'mutex', perInstance: true, after: []},
]
const N = process.argv.includes('--smoke') ? 2000 : Number(process.env.N ?? 200_000)
const rounds = {production: [], development: []}
for (let r = 0; r < 3; r++) {
  for (const dev of [false, true]) {
    const locks = createLocks(table, {dev})
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < N; i++) await locks.user(i & 1023).lock((held) => held.group(i & 7).lock(() => i))
    rounds[dev ? 'development' : 'production'].push(Number(process.hrtime.bigint() - t0) / N / 2)
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
for (const [mode, xs] of Object.entries(rounds)) console.log(`${mode}: ${median(xs).toFixed(0)} ns per acquisition (median of 3 rounds of ${N} nested pairs)`)
