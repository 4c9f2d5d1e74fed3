// Shards on one machine, measured as a user runs them (`npm start` with IOCPGEN_SHARDS: a
// supervisor forking shard processes that share the port):
// - 100,000 idle connections held across 7 shards, from 6 load-generator processes (each
//   process may hold at most 20,000 files here), with the RSS of the supervisor and every
//   shard before and while holding;
// - 64 B echo (50 connections, 8 in flight) on 1 shard against 2 shards, interleaved per round.
// `node bench/shards.mjs` (after `npm run build && npm run build:native`), or `--smoke`.
// Writes bench/results-shards.json; bench/report.mjs puts it into bench/results.md.
import {execFileSync, spawn} from 'node:child_process'
import {existsSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {cpus} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const root = join(here, '..')
const build = join(here, 'build')
const smoke = process.argv.includes('--smoke')
const RUNS = smoke ? 1 : Number(process.env.RUNS ?? 5)
const SECONDS = smoke ? 1 : Number(process.env.SECONDS ?? 3)
const IDLE_TOTAL = smoke ? 600 : Number(process.env.IDLE_TOTAL ?? 100_000)
const IDLE_SHARDS = smoke ? 2 : Number(process.env.IDLE_SHARDS ?? 7)
const IDLE_LOADERS = smoke ? 2 : Number(process.env.IDLE_LOADERS ?? 6)

const log = (...a) => console.error('bench shards:', ...a)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const rssBytes = (pid) => {
  try {
    return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024
  } catch {
    return 0 // gone
  }
}

/** The bench's echo server, generated from bench/specs/echo.yaml with the example's handler. */
function prepareEcho() {
  const dir = join(build, 'shards-echo')
  rmSync(dir, {recursive: true, force: true})
  execFileSync(process.execPath, [join(root, 'bin', 'run.js'), 'new', dir, '--spec', join(here, 'specs', 'echo.yaml'), '--no-install'], {stdio: 'ignore'})
  execFileSync('cp', [join(root, 'examples', 'echo', 'src', 'handlers', 'echo.ts'), join(dir, 'src', 'handlers', 'echo.ts')])
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {cwd: dir, stdio: 'inherit'})
  return dir
}

/** `npm start` of the project, as node runs it: a supervisor and `shards` shards. */
function startSharded(dir, shards, env = {}) {
  const statsFile = join(dir, `stats-${process.pid}-${shards}.json`)
  rmSync(statsFile, {force: true})
  const child = spawn(process.execPath, ['dist/src/main.js'], {cwd: dir, env: {...process.env, NODE_ENV: 'production', PORT: '0', HOST: '127.0.0.1', IOCPGEN_SHARDS: String(shards), STATS_FILE: statsFile, STATS_EVERY_MS: '200', ...env}, stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  const stats = async () => {
    const asked = Date.now()
    for (let i = 0; i < 100; i++) {
      try {
        const s = JSON.parse(readFileSync(statsFile, 'utf8'))
        if (s.at > asked) return s
      } catch {}
      await sleep(50)
    }
    throw new Error('no stats')
  }
  return new Promise((resolve, reject) => {
    const timer = setInterval(async () => {
      const m = /listening on port (\d+)/.exec(out)
      if (child.exitCode !== null) {
        clearInterval(timer)
        reject(new Error(`server exited: ${out}`))
      } else if (m) {
        clearInterval(timer)
        const s = await stats()
        const pids = [child.pid, ...(s.perShard ?? []).map((p) => p.pid)]
        resolve({port: Number(m[1]), pids, stats, rss: () => pids.reduce((a, p) => a + rssBytes(p), 0), stop: () => new Promise((r) => (child.once('exit', r), child.kill('SIGTERM')))})
      }
    }, 50)
  })
}

/** Runs loadgen; `onLine` sees its stderr lines; resolves with its JSON result. */
function loadgen(args, onLine) {
  return new Promise((resolve, reject) => {
    const child = spawn(join(build, 'loadgen'), args, {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000)
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => {
      err += d
      for (const line of d.toString().split('\n')) if (line.trim()) onLine?.(line.trim())
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      try {
        const r = JSON.parse(out.trim().split('\n').at(-1))
        if (code !== 0 || r.errors > 0 || r.connect_errors > 0) return reject(new Error(`loadgen ${args.join(' ')} failed (${code}): ${out}\n${err}`))
        resolve(r)
      } catch {
        reject(new Error(`loadgen ${args.join(' ')}: no result (${code})\n${out}\n${err}`))
      }
    })
  })
}

/**
 * IDLE_TOTAL connections from IDLE_LOADERS loadgen processes (each spreads its connections
 * over the source addresses 127.0.0.1-254) to IDLE_SHARDS shards, held while measured.
 */
async function idle(dir) {
  const server = await startSharded(dir, IDLE_SHARDS, {IOCPGEN_MAX_CONNECTIONS: '19000'})
  try {
    await sleep(1000)
    const rss0 = server.rss()
    const per = Math.ceil(IDLE_TOTAL / IDLE_LOADERS)
    const hold = smoke ? 4 : 25
    let ready = 0
    const loaders = Array.from({length: IDLE_LOADERS}, (_, i) => loadgen(['--port', String(server.port), '--mode', 'idle', '--conns', String(Math.min(per, IDLE_TOTAL - i * per)), '--size', '64', '--hold', String(hold), '--hold2', '0'], (line) => {
      if (line.startsWith('ready')) ready++
    }))
    const t0 = Date.now()
    while (ready < IDLE_LOADERS) {
      if (Date.now() - t0 > (hold - 3) * 1000) throw new Error(`only ${ready} of ${IDLE_LOADERS} load generators connected in time`)
      await sleep(100)
    }
    const connectSeconds = (Date.now() - t0) / 1000
    await sleep(1500)
    const s = await server.stats()
    const rss1 = server.rss()
    const held = {connections: s.connections, perShard: s.perShard.map((p) => p.connections), rssBefore: rss0, rssHolding: rss1, rssPerConn: (rss1 - rss0) / s.connections, connectSeconds}
    await Promise.all(loaders)
    log(`idle: ${s.connections} connections held on ${IDLE_SHARDS} shards (${held.perShard.join(', ')}); RSS ${(rss0 / 2 ** 20).toFixed(0)} → ${(rss1 / 2 ** 20).toFixed(0)} MiB, ${held.rssPerConn.toFixed(0)} B/conn`)
    return held
  } finally {
    await server.stop()
  }
}

/** 64 B echo, 50 connections, 8 in flight, on a server with `shards` shards. */
async function echo(dir, shards) {
  const server = await startSharded(dir, shards)
  try {
    const r = await loadgen(['--port', String(server.port), '--mode', 'closed', '--conns', '50', '--size', '64', '--depth', '8', '--duration', String(SECONDS), '--warmup', smoke ? '0' : '1'])
    return r.rate
  } finally {
    await server.stop()
  }
}

async function main() {
  execFileSync('make', ['-C', here, 'build/loadgen'], {stdio: 'ignore'})
  if (!existsSync(join(root, 'runtime', 'dist', 'index.js'))) throw new Error('run "npm run build && npm run build:native" first')
  const dir = prepareEcho()
  const held = await idle(dir)
  if (held.connections !== IDLE_TOTAL) throw new Error(`held ${held.connections} of ${IDLE_TOTAL} connections`)
  const rounds = []
  for (let r = 0; r < RUNS; r++) {
    // Interleaved: each round measures both, in alternating order.
    const order = r % 2 ? [2, 1] : [1, 2]
    const rate = {}
    for (const n of order) rate[n] = await echo(dir, n)
    rounds.push(rate)
    log(`echo round ${r + 1}/${RUNS}: 1 shard ${Math.round(rate[1])}/s, 2 shards ${Math.round(rate[2])}/s`)
  }
  const result = {
    date: new Date().toISOString().slice(0, 10),
    node: process.version,
    cores: cpus().length,
    runs: RUNS,
    seconds: SECONDS,
    smoke,
    idle: {total: IDLE_TOTAL, shards: IDLE_SHARDS, loaders: IDLE_LOADERS, ...held},
    echo: {oneShard: median(rounds.map((r) => r[1])), twoShards: median(rounds.map((r) => r[2])), twoOverOne: median(rounds.map((r) => r[2] / r[1]))},
  }
  if (!smoke) writeFileSync(join(here, 'results-shards.json'), `${JSON.stringify(result, null, 2)}\n`)
  console.log(JSON.stringify(result, null, 2))
}

await main()
