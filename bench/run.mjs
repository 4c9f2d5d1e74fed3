// The benchmark: generated iocpgen servers side by side with Node `net` servers (one echoing
// frames undecoded, one decoding them as a typed server must), a framed C epoll server and a C
// byte echo that is the floor, in the same run on the same machine. Every figure is a median
// of several rounds, reported with its ratio to each peer and its share of the floor.
// Workloads: echo (64 B and 1 KiB, 50 and 500 conns, 8 in flight), request/response (1 in
// flight), latency at a fixed rate (half of Node's request/response maximum), group fan-out, accept churn
// and idle connections. `npm run bench` (full) or `--smoke` (CI: checks the harness works,
// asserts no speed).
import {execFileSync, spawn} from 'node:child_process'
import {cpSync, existsSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {cpus} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {FLOOR, PEERS, writeReport} from './report.mjs'

const here = fileURLToPath(new URL('.', import.meta.url))
const root = join(here, '..')
const build = join(here, 'build')
const smoke = process.argv.includes('--smoke')
const RUNS = smoke ? 1 : Number(process.env.RUNS ?? 5)
const SECONDS = smoke ? 1 : Number(process.env.SECONDS ?? 3)
// Idle connections per server: the container's hard NOFILE limit (20,000) caps each side.
const IDLE_CONNS = smoke ? 200 : Number(process.env.IDLE_CONNS ?? 19000)
const FANOUT_MEMBERS = smoke ? 50 : Number(process.env.FANOUT_MEMBERS ?? 1000)

const log = (...a) => console.error('bench:', ...a)
const sh = (cmd, args, cwd = root) => execFileSync(cmd, args, {cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8'})

/**
 * Generates a server project from a bench spec, afresh. It lives under bench/build, inside the
 * repository, so '@iocpgen/runtime' resolves through the root's node_modules to runtime/ as
 * built by "npm run build && npm run build:native": nothing is installed per project.
 */
function generated(dir, spec) {
  rmSync(dir, {recursive: true, force: true})
  log(`generating ${dir} from ${spec}`)
  sh(process.execPath, [join(root, 'bin', 'run.js'), 'new', dir, '--spec', spec, '--no-install'])
}

/** Compiles a project with the root's TypeScript (what its "build" script does). */
function buildServer(dir) {
  sh(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], dir)
}

/** Fails early, and says why, when the runtime or its Linux addon is not built. */
function requireRuntime() {
  const need = [join(root, 'runtime', 'dist', 'index.js'), join(root, 'runtime', 'prebuilds', 'linux-x64', 'node.napi.glibc.node')]
  const missing = need.filter((f) => !existsSync(f))
  if (missing.length) throw new Error(`not built: ${missing.join(', ')}; run "npm run build && npm run build:native" first`)
}

/** The generated echo server; its handler echoes, with WORK_US µs of busy work per message. */
function prepareEcho() {
  const server = join(build, 'echo-server')
  generated(server, join(here, 'specs', 'echo.yaml'))
  writeFileSync(join(server, 'src', 'handlers', 'echo.ts'), `import type {Handler} from '../generated/handlers.js'
const work = BigInt(Number(process.env.WORK_US ?? 0) * 1000)
export const onEcho: Handler<'Echo'> = (session, message) => {
  if (work > 0n) {
    const until = process.hrtime.bigint() + work
    while (process.hrtime.bigint() < until);
  }
  session.send('Echo', message)
}
`)
  buildServer(server)
  return server
}

/** The chat example's handlers on the bench chat spec (no per-IP limits, no idle timeout). */
function prepareChat() {
  const server = join(build, 'chat-server')
  generated(server, join(here, 'specs', 'chat.yaml'))
  const example = join(root, 'examples', 'chat', 'src')
  for (const f of ['handlers', 'directory.ts', 'session-state.ts', 'main.ts']) cpSync(join(example, f), join(server, 'src', f), {recursive: true})
  buildServer(server)
  return server
}

/** Starts a server; resolves with its pid and port once it prints "listening on port N". */
function start(spec) {
  return new Promise((resolve, reject) => {
    const child = spawn(spec.cmd, spec.args, {env: {...process.env, ...spec.env}, stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    const onData = (d) => {
      out += d.toString()
      const m = /listening on port (\d+)/.exec(out)
      if (m) resolve({name: spec.name, child, pid: child.pid, port: Number(m[1])})
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('exit', (code) => reject(new Error(`${spec.name} exited (${code}): ${out}`)))
  })
}

const stop = (s) => new Promise((r) => (s.child.exitCode !== null ? r() : (s.child.once('exit', r), s.child.kill('SIGTERM'))))
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

const rssBytes = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024

/** Runs a load tool (bench/build/loadgen or fanout); resolves with its JSON result line. */
function load(tool, args, onLine) {
  return new Promise((resolve, reject) => {
    const child = spawn(join(build, tool), args, {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    // A stuck run must not hang the harness.
    const timer = setTimeout(() => child.kill('SIGKILL'), 180_000)
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => {
      err += d
      for (const line of d.toString().split('\n')) if (line.trim()) onLine?.(line.trim())
    })
    child.on('exit', (code) => {
      clearTimeout(timer)
      const line = out.trim().split('\n').at(-1)
      try {
        const r = JSON.parse(line)
        if (code !== 0 || r.errors > 0) return reject(new Error(`${tool} ${args.join(' ')} failed (${code}): ${line}\n${err}`))
        resolve(r)
      } catch {
        reject(new Error(`${tool} ${args.join(' ')}: no result (${code})\n${out}\n${err}`))
      }
    })
  })
}

// The load tool and its arguments (all but --port) for each kind of workload; the report
// prints them so every table says exactly what ran.
const warmup = smoke ? '0' : '1'
const loadArgs = {
  closed: (w) => ['--mode', w.mode, '--conns', String(w.conns), '--size', String(w.size), '--depth', String(w.depth), '--duration', String(SECONDS), '--warmup', warmup],
  open: (w) => ['--mode', 'open', '--rate', String(w.rate), '--conns', String(w.conns), '--size', String(w.size), '--duration', String(SECONDS), '--warmup', warmup],
  fanout: (w) => ['--members', String(w.conns), '--size', String(w.size), '--depth', String(w.depth), '--duration', String(SECONDS), '--warmup', warmup],
  idle: (w) => ['--mode', 'idle', '--conns', String(w.conns), '--size', String(w.size), '--hold', '2', '--one-each', '--hold2', '1'],
}
const loadTool = (w) => (w.kind === 'fanout' ? 'fanout' : 'loadgen')

// Each workload measures one started server and returns one sample. RSS per connection is
// the growth over the server's RSS before the load, divided by the connections.
const measure = {
  async closed(s, w) {
    const rss0 = rssBytes(s.pid)
    const cpu0 = cpuSeconds(s.pid)
    const r = await load('loadgen', ['--port', String(s.port), ...loadArgs.closed(w)])
    const cpu = cpuSeconds(s.pid) - cpu0
    return {...r, cpuPerMsgUs: (cpu / Math.max(1, r.frames)) * 1e6, rssPerConn: Math.max(0, rssBytes(s.pid) - rss0) / w.conns}
  },
  // Open loop: a fixed schedule of sends; loadgen times each reply from its intended send
  // time, so a server that falls behind is charged for the whole queue it built.
  async open(s, w) {
    const rss0 = rssBytes(s.pid)
    const cpu0 = cpuSeconds(s.pid)
    const r = await load('loadgen', ['--port', String(s.port), ...loadArgs.open(w)])
    const cpu = cpuSeconds(s.pid) - cpu0
    return {...r, cpuPerMsgUs: (cpu / Math.max(1, r.frames)) * 1e6, rssPerConn: Math.max(0, rssBytes(s.pid) - rss0) / w.conns}
  },
  async fanout(s, w) {
    const rss0 = rssBytes(s.pid)
    let cpu0 = 0
    let rssJoined = 0
    const r = await load('fanout', ['--port', String(s.port), ...loadArgs.fanout(w)], (line) => {
      if (line.startsWith('ready')) {
        cpu0 = cpuSeconds(s.pid)
        rssJoined = rssBytes(s.pid)
      }
    })
    const cpu = cpuSeconds(s.pid) - cpu0
    return {...r, cpuPerMsgUs: (cpu / Math.max(1, r.frames)) * 1e6, rssPerConn: Math.max(0, rssJoined - rss0) / (w.conns + 1)}
  },
  // Idle: N connections held (RSS measured while they sit), then each sends one message
  // and gets its echo (RSS measured again). Msgs/s and CPU are of that one-message round.
  async idle(s, w) {
    const rss0 = rssBytes(s.pid)
    let rssIdle = 0
    let rssOne = 0
    let cpu0 = 0
    const r = await load('loadgen', ['--port', String(s.port), ...loadArgs.idle(w)], (line) => {
      if (line.startsWith('ready')) {
        void sleep(1000).then(() => {
          rssIdle = rssBytes(s.pid)
          cpu0 = cpuSeconds(s.pid)
        })
      }
      if (line.startsWith('sent-one')) rssOne = rssBytes(s.pid)
    })
    const cpu = cpuSeconds(s.pid) - cpu0
    return {
      ...r,
      cpuPerMsgUs: (cpu / Math.max(1, r.frames)) * 1e6,
      rssPerConn: Math.max(0, rssIdle - rss0) / w.conns,
      rssPerConnAfterOne: Math.max(0, rssOne - rss0) / w.conns,
    }
  },
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** The server rows of a workload, each started anew in every round. */
function echoServers(echoServer) {
  const main = join(echoServer, 'dist', 'src', 'main.js')
  return {
    iocpgen: {cmd: process.execPath, args: [main], env: {PORT: '0', NODE_ENV: 'production'}},
    // Same server, I/O driven by the core's worker threads instead of the JS thread's ring.
    'iocpgen (I/O threads)': {cmd: process.execPath, args: [main], env: {PORT: '0', IOCPGEN_JS_THREAD_IO: '0', NODE_ENV: 'production'}},
    'iocpgen +10us': {cmd: process.execPath, args: [main], env: {PORT: '0', WORK_US: '10', NODE_ENV: 'production'}},
    'node net': {cmd: process.execPath, args: [join(here, 'peers', 'node-echo.mjs'), '--port', '0']},
    'node net (decoding)': {cmd: process.execPath, args: [join(here, 'peers', 'node-echo-decoding.mjs'), '--port', '0']},
    'C epoll': {cmd: join(build, 'epoll-echo'), args: ['--port', '0', '--threads', '2']},
    [FLOOR]: {cmd: join(build, 'raw-echo'), args: ['--port', '0', '--threads', '2']},
  }
}

const pick = (servers, names) => Object.fromEntries(names.map((n) => [n, servers[n]]))

function workloadList(echo, chat) {
  const plain = ['iocpgen', 'node net', 'node net (decoding)', 'C epoll', FLOOR]
  const both = ['iocpgen', 'iocpgen (I/O threads)', ...plain.slice(1)]
  const closed = (size, conns, depth, names) => {
    const what = `${size === 1024 ? '1 KiB' : `${size} B`}, ${conns} conns, ${depth} in flight`
    return {name: depth === 1 ? `request/response ${what}` : `echo ${what}`, kind: 'closed', mode: 'closed', size, conns, depth, servers: pick(echo, names)}
  }
  const idle = {name: `idle, ${IDLE_CONNS.toLocaleString('en-US')} conns`, kind: 'idle', size: 64, conns: IDLE_CONNS, servers: pick(echo, plain)}
  const churn = {name: 'accept churn, 50 slots', kind: 'closed', mode: 'churn', size: 64, conns: 50, depth: 1, servers: pick(echo, plain)}
  // The test suite pins the smoke run to these three workloads and six servers.
  if (smoke) return [closed(64, 50, 8, ['iocpgen', 'iocpgen +10us', ...plain.slice(1)]), churn, idle]
  // +10us only here: it shows what handler work costs, once is enough.
  // "Node's max" for the fixed-rate workload is Node's request/response rate: the open loop
  // writes one message per write as that workload does (a pipelined rate is out of reach
  // of a one-write-per-message load generator sharing these two cores), so it runs after it.
  const nodeMax = closed(64, 50, 1, both)
  return [
    closed(64, 50, 8, ['iocpgen', 'iocpgen (I/O threads)', 'iocpgen +10us', ...plain.slice(1)]),
    closed(64, 500, 8, both),
    closed(1024, 50, 8, both),
    closed(1024, 500, 8, both),
    nodeMax,
    {name: 'latency at half of Node\'s max rate, 64 B, 50 conns', kind: 'open', size: 64, conns: 50, rateFrom: nodeMax.name, servers: pick(echo, plain)},
    {name: `group fan-out, 1 sender to ${FANOUT_MEMBERS.toLocaleString('en-US')} members, 64 B text`, kind: 'fanout', size: 64, conns: FANOUT_MEMBERS, depth: 4, servers: chat},
    churn,
    idle,
  ]
}

/** Minutes the rounds take: ~2 s per server start (start, warm-up, stop) on top of the measured seconds. */
function estimateMinutes(workloads) {
  const perRun = (w) => (w.kind === 'idle' ? 3 : SECONDS) + 2 // idle holds its connections 2 s, then 1 s
  return workloads.reduce((t, w) => t + Object.keys(w.servers).length * RUNS * perRun(w), 0) / 60
}

async function main() {
  requireRuntime()
  sh('make', ['-s', '-C', here])
  const echo = echoServers(prepareEcho())
  let chat
  if (!smoke) {
    const chatServer = prepareChat()
    chat = {
      iocpgen: {cmd: process.execPath, args: [join(chatServer, 'dist', 'src', 'main.js')], env: {PORT: '0', NODE_ENV: 'production'}},
      'node net': {cmd: process.execPath, args: [join(here, 'peers', 'node-chat.mjs'), '--port', '0']},
    }
  }
  const workloads = workloadList(echo, chat)
  log(`${workloads.length} workloads, ${RUNS} round(s) of ${SECONDS} s: about ${Math.max(1, Math.round(estimateMinutes(workloads)))} min`)

  const results = []
  for (const w of workloads) {
    if (w.rateFrom) {
      const node = results.find((r) => r.workload === w.rateFrom)?.servers['node net']
      if (!node) throw new Error(`${w.name}: "${w.rateFrom}" must run first, with node net`)
      w.rate = Math.round(node.rate / 2)
      log(`${w.name}: ${w.rate} msg/s (half of node net's median ${Math.round(node.rate)} msg/s)`)
    }
    const names = Object.keys(w.servers)
    const samples = new Map(names.map((n) => [n, []]))
    // Interleave the servers in every round so drift on a shared machine hits all alike.
    for (let run = 0; run < RUNS; run++) {
      for (const name of names) {
        const s = await start({name, ...w.servers[name]})
        try {
          await sleep(200) // let the server settle before its baseline RSS
          const r = await measure[w.kind](s, w)
          samples.get(name).push(r)
          log(`${w.name} | ${name} | ${Math.round(r.rate)} msg/s p50 ${r.p50_us} us p99 ${r.p99_us} us p99.9 ${r.p999_us} us | ${r.cpuPerMsgUs.toFixed(2)} us CPU/msg | ${Math.round(r.rssPerConn)} B/conn`)
        } finally {
          await stop(s)
        }
      }
    }
    const params = {size: w.size, conns: w.conns, ...(w.depth ? {depth: w.depth} : {}), ...(w.mode ? {mode: w.mode} : {})}
    // An open loop's rates all match the schedule: a share of the floor's would say nothing.
    const shares = samples.has(FLOOR) && w.kind !== 'open'
    const row = {workload: w.name, kind: w.kind, ...params, load: `bench/build/${loadTool(w)} --port P ${loadArgs[w.kind](w).join(' ')}`, ...(w.rateFrom ? {offeredRate: w.rate, rateFrom: w.rateFrom} : {}), servers: {}, ratios: {}, ...(shares ? {toFloor: {}} : {})}
    const keys = ['rate', 'p50_us', 'p99_us', 'p999_us', 'cpuPerMsgUs', 'rssPerConn', 'rssPerConnAfterOne']
    for (const [name, xs] of samples) {
      const m = {runs: xs.length}
      for (const k of keys) if (xs[0][k] !== undefined) m[k] = median(xs.map((x) => x[k]))
      row.servers[name] = m
    }
    // Ratios to each peer: the median of the per-round ratios, since a round's servers run
    // minutes apart at most while the machine's load drifts over the whole run.
    for (const name of names.filter((n) => !PEERS.includes(n))) {
      row.ratios[name] = {}
      for (const peer of PEERS.filter((p) => samples.has(p))) {
        const mine = samples.get(name)
        const theirs = samples.get(peer)
        const per = (k) => median(mine.map((x, i) => x[k] / theirs[i][k]))
        row.ratios[name][peer] = Object.fromEntries(keys.filter((k) => k !== 'rssPerConnAfterOne' && mine[0][k] !== undefined).map((k) => [k, per(k)]))
      }
    }
    // Every server's rate as a share of the floor's, per round like the ratios.
    if (row.toFloor) {
      const floor = samples.get(FLOOR)
      for (const [name, xs] of samples) row.toFloor[name] = median(xs.map((x, i) => x.rate / floor[i].rate))
    }
    results.push(row)
  }
  const meta = {date: new Date().toISOString().slice(0, 10), node: process.version, cores: cpus().length, runs: RUNS, seconds: SECONDS, smoke, idleConns: IDLE_CONNS, fanoutMembers: FANOUT_MEMBERS}
  writeFileSync(join(here, smoke ? 'build/results-smoke.json' : 'results.json'), JSON.stringify({meta, results}, null, 2) + '\n')
  if (!smoke) writeReport(here, meta, results)
  const most = Math.max(...results.map((r) => Object.keys(r.servers).length))
  console.log(smoke ? `bench smoke: ${results.length} workload(s) ran against ${most} servers` : 'bench: wrote bench/results.md and bench/results.svg')
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
