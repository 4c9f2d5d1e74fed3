// The shard workloads alone: `node bench/shards.mjs [--smoke]` is `node bench/run.mjs --only shards [--smoke]`
// (100,000 idle connections across 7 shards; 64 B echo on 1 shard against 2). They live in
// run.mjs, are part of `npm run bench`, and write their rows into bench/results.json.
import {spawnSync} from 'node:child_process'
import {fileURLToPath} from 'node:url'

const run = fileURLToPath(new URL('run.mjs', import.meta.url))
const r = spawnSync(process.execPath, [run, '--only', 'shards', ...process.argv.slice(2)], {stdio: 'inherit'})
process.exit(r.status ?? 1)
