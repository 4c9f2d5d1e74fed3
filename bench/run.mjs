// The benchmark: generated iocpgen servers side by side with Node `net` servers (one echoing
// frames undecoded, one decoding them as a typed server must), a framed C epoll server and a C
// byte echo that is the floor, in the same run on the same machine. Every figure is a median
// of several rounds, reported with its ratio to each peer and its share of the floor.
// Workloads: echo (64 B and 1 KiB, 50 and 500 conns, 8 in flight), request/response (1 in
// flight), latency at a fixed rate (half of Node's request/response maximum), group fan-out, accept churn
// and idle connections; then shards (the generated server started as `npm start` does, with
// IOCPGEN_SHARDS: a supervisor and its shard processes sharing the port): 100,000 idle
// connections across 7 shards, and 64 B echo on 1 shard against 2. `npm run bench` (full),
// `--only ID[,ID]` (a workload's id, or a prefix of ids: `--only shards`; the rows it writes
// replace theirs in bench/results.json, the others stay) or `--smoke` (CI: checks the harness
// works at small counts, sharded path included, asserts no speed).
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
// --only ID[,ID] or --only=ID[,ID]: a token selects the workload with that id and those whose id starts with "token-".
const onlyArg = process.argv.find((a, i) => a.startsWith('--only=') || process.argv[i - 1] === '--only')
const only = onlyArg === undefined ? undefined : onlyArg.replace(/^--only=/, '').split(',').filter(Boolean)
if (process.argv.includes('--only') && !only?.length) throw new Error('--only needs a workload id, e.g. --only shards')
const RUNS = smoke ? 1 : Number(process.env.RUNS ?? 5)
const SECONDS = smoke ? 1 : Number(process.env.SECONDS ?? 3)
// Idle connections per server: the container's hard NOFILE limit (20,000) caps each side.
const IDLE_CONNS = smoke ? 200 : Number(process.env.IDLE_CONNS ?? 19000)
const FANOUT_MEMBERS = smoke ? 50 : Number(process.env.FANOUT_MEMBERS ?? 1000)
// Idle connections across shards: each shard and each load generator is one process, under
// the 20,000 open files each may hold (7 shards: ~14,300 each; 6 load generators: 16,667 each).
const SHARDS_IDLE = smoke ? 600 : Number(process.env.SHARDS_IDLE ?? 100_000)
const SHARDS_IDLE_SHARDS = smoke ? 2 : Number(process.env.SHARDS_IDLE_SHARDS ?? 7)
const SHARDS_IDLE_LOADERS = smoke ? 2 : Number(process.env.SHARDS_IDLE_LOADERS ?? 6)

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

/**
 * Starts a server; resolves with its pid and port once it prints "listening on port N". A
 * sharded one (a supervisor) prints its shards' pids first ("shards 0 pid P, 1 pid Q"): pids
 * is every process of the server, the supervisor first.
 */
function start(spec) {
  return new Promise((resolve, reject) => {
    const child = spawn(spec.cmd, spec.args, {env: {...process.env, ...spec.env}, stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    const onData = (d) => {
      out += d.toString()
      const m = /listening on port (\d+)/.exec(out)
      if (m) {
        const shards = /: shards (.*)/.exec(out)
        const pids = [child.pid, ...(shards ? [...shards[1].matchAll(/pid (\d+)/g)].map((p) => Number(p[1])) : [])]
        resolve({name: spec.name, child, pid: child.pid, pids, port: Number(m[1])})
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('exit', (code) => reject(new Error(`${spec.name} exited (${code}): ${out}`)))
  })
}

const stop = (s) => new Promise((r) => (s.child.exitCode !== null || s.child.signalCode !== null ? r() : (s.child.once('exit', r), s.child.kill('SIGTERM'))))
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

/** The machine's busy CPU so far (all but idle and iowait), in seconds. */
function machineCpu() {
  const t = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const all = t.slice(0, 8).reduce((a, b) => a + b, 0)
  return {busy: (all - t[3] - t[4]) / 100}
}

const rssBytes = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024
// A server's figures are those of all its processes (a sharded server: supervisor and shards).
const serverCpu = (s) => s.pids.reduce((t, p) => t + cpuSeconds(p), 0)
const serverRss = (s) => s.pids.reduce((t, p) => t + rssBytes(p), 0)
/** Proportional set size: RSS with each page shared by k processes counted 1/k in each. */
const pssBytes = (pid) => Number(/^Pss:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))[1]) * 1024
/** The kernel's memory for TCP (socket buffers of every TCP socket on the machine, both ends of loopback). */
const kernelTcpBytes = () => Number(/^TCP:.* mem (\d+)/m.exec(readFileSync('/proc/net/sockstat', 'utf8'))[1]) * 4096

/** Runs a load tool (bench/build/loadgen or fanout); resolves with its JSON result line. */
function load(tool, args, onLine, {timeoutMs = 180_000, onChild} = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(join(build, tool), args, {stdio: ['ignore', 'pipe', 'pipe']})
    onChild?.(child)
    let out = ''
    let err = ''
    // A stuck run must not hang the harness.
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
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
    const rss0 = serverRss(s)
    const cpu0 = serverCpu(s)
    const t0 = process.hrtime.bigint()
    const m0 = machineCpu()
    const r = await load('loadgen', ['--port', String(s.port), ...loadArgs.closed(w)])
    const m1 = machineCpu()
    const wall = Number(process.hrtime.bigint() - t0) / 1e9
    const cpu = serverCpu(s) - cpu0
    const sample = {...r, cpuPerMsgUs: (cpu / Math.max(1, r.frames)) * 1e6, rssPerConn: Math.max(0, serverRss(s) - rss0) / w.conns}
    // Where the cores went over the load's life (connect and warm-up included): the server's
    // processes, the load generator, and everything else on this shared machine.
    if (w.cores) {
      const busy = (m1.busy - m0.busy) / wall
      Object.assign(sample, {serverCores: cpu / wall, loadCores: r.cpu_s / wall, otherCores: Math.max(0, busy - cpu / wall - r.cpu_s / wall)})
    }
    return sample
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
    // As `npm start` runs it with IOCPGEN_SHARDS: 1 is the server in the process itself, 2 a
    // supervisor forking two shards that share the port (SO_REUSEPORT).
    'iocpgen, 1 shard': {cmd: process.execPath, args: [main], env: {PORT: '0', NODE_ENV: 'production', IOCPGEN_SHARDS: '1'}},
    'iocpgen, 2 shards': {cmd: process.execPath, args: [main], env: {PORT: '0', NODE_ENV: 'production', IOCPGEN_SHARDS: '2'}},
  }
}

const pick = (servers, names) => Object.fromEntries(names.map((n) => [n, servers[n]]))

function workloadList(echo, chat) {
  const plain = ['iocpgen', 'node net', 'node net (decoding)', 'C epoll', FLOOR]
  const both = ['iocpgen', 'iocpgen (I/O threads)', ...plain.slice(1)]
  const closed = (size, conns, depth, names) => {
    const what = `${size === 1024 ? '1 KiB' : `${size} B`}, ${conns} conns, ${depth} in flight`
    const id = `${depth === 1 ? 'reqres' : 'echo'}-${size}-${conns}`
    return {id, name: depth === 1 ? `request/response ${what}` : `echo ${what}`, kind: 'closed', mode: 'closed', size, conns, depth, servers: pick(echo, names)}
  }
  const idle = {id: 'idle', name: `idle, ${IDLE_CONNS.toLocaleString('en-US')} conns`, kind: 'idle', size: 64, conns: IDLE_CONNS, servers: pick(echo, plain)}
  const churn = {id: 'churn', name: 'accept churn, 50 slots', kind: 'closed', mode: 'churn', size: 64, conns: 50, depth: 1, servers: pick(echo, plain)}
  // Shards: the same 64 B echo load as "echo 64 B, 50 conns, 8 in flight", on 1 shard and on
  // 2; the order alternates round by round. Then idle connections held across shards.
  const shardsEcho = {id: 'shards-echo', group: 'shards', name: 'shards: echo 64 B, 50 conns, 8 in flight, 1 shard against 2', kind: 'closed', mode: 'closed', size: 64, conns: 50, depth: 8, alternate: true, cores: true, servers: pick(echo, ['iocpgen, 1 shard', 'iocpgen, 2 shards'])}
  const shardsIdle = {id: 'shards-idle', group: 'shards', name: `shards: ${SHARDS_IDLE.toLocaleString('en-US')} idle connections on ${SHARDS_IDLE_SHARDS} shards`, kind: 'shards-idle', size: 64, conns: SHARDS_IDLE, shards: SHARDS_IDLE_SHARDS, loaders: SHARDS_IDLE_LOADERS, hold: smoke ? 5 : 25, servers: {}}
  // The test suite pins the smoke run to these five workloads and at most six servers.
  if (smoke) return [closed(64, 50, 8, ['iocpgen', 'iocpgen +10us', ...plain.slice(1)]), churn, idle, shardsEcho, shardsIdle]
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
    {id: 'latency', name: 'latency at half of Node\'s max rate, 64 B, 50 conns', kind: 'open', size: 64, conns: 50, rateFrom: nodeMax.name, servers: pick(echo, plain)},
    {id: 'fanout', name: `group fan-out, 1 sender to ${FANOUT_MEMBERS.toLocaleString('en-US')} members, 64 B text`, kind: 'fanout', size: 64, conns: FANOUT_MEMBERS, depth: 4, servers: chat},
    churn,
    idle,
    shardsEcho,
    shardsIdle,
  ]
}

/** The workloads --only names: its id, or ids starting with "token-" (`--only shards`). */
function selected(workloads) {
  if (!only) return workloads
  const picked = workloads.filter((w) => only.some((t) => w.id === t || w.id.startsWith(`${t}-`)))
  if (!picked.length) throw new Error(`--only ${only.join(',')}: no such workload; ids: ${workloads.map((w) => w.id).join(', ')}`)
  return picked
}

/** Minutes the rounds take: ~2 s per server start (start, warm-up, stop) on top of the measured seconds. */
function estimateMinutes(workloads) {
  const perRun = (w) => (w.kind === 'idle' ? 3 : SECONDS) + 2 // idle holds its connections 2 s, then 1 s
  const once = (w) => (w.kind === 'shards-idle' ? w.hold + 20 : 0) // connect, hold, drain: once
  return workloads.reduce((t, w) => t + Object.keys(w.servers).length * RUNS * perRun(w) + once(w), 0) / 60
}

/** Every process's RSS and PSS (supervisor first), and their sums. */
function memoryOf(pids) {
  const each = pids.map((pid) => ({pid, rss: rssBytes(pid), pss: pssBytes(pid)}))
  return {rss: each.reduce((t, p) => t + p.rss, 0), pss: each.reduce((t, p) => t + p.pss, 0), supervisor: each[0], shards: each.slice(1)}
}

/**
 * Idle connections held across shards, as a user runs them: the bench echo server under
 * `npm start`'s supervisor with IOCPGEN_SHARDS and STATS_FILE, and w.loaders loadgen processes
 * (each spreads its connections over 127.0.0.1-254 as sources), each holding its share for
 * w.hold s once all of its own are up. The server's own stats say how many it holds, at the
 * start and near the end of the hold. Shortfalls are recorded, not thrown: the report says them.
 * Bounded: everything started here is killed after LIMIT_S s.
 */
async function shardsIdle(echoServer, w) {
  const LIMIT_S = w.hold + 90
  const statsFile = join(build, `shards-idle-stats-${process.pid}.json`)
  rmSync(statsFile, {force: true})
  const env = {PORT: '0', NODE_ENV: 'production', IOCPGEN_SHARDS: String(w.shards), STATS_FILE: statsFile, STATS_EVERY_MS: '250'}
  const t0 = Date.now()
  const s = await start({name: `iocpgen, ${w.shards} shards`, cmd: process.execPath, args: [join(echoServer, 'dist', 'src', 'main.js')], env})
  const loaders = []
  const limit = setTimeout(() => {
    log(`${w.name}: over ${LIMIT_S} s, stopping it`)
    for (const c of loaders) c.kill('SIGKILL')
    s.child.kill('SIGKILL')
  }, LIMIT_S * 1000)
  /** The supervisor's next stats line, written after now. */
  const stats = async () => {
    const asked = Date.now()
    for (let i = 0; i < 200; i++) {
      try {
        const line = JSON.parse(readFileSync(statsFile, 'utf8'))
        if (line.at > asked) return line
      } catch {}
      await sleep(50)
    }
    throw new Error(`${w.name}: no stats in ${statsFile}`)
  }
  try {
    if (s.pids.length !== w.shards + 1) throw new Error(`${w.name}: expected ${w.shards} shard pids, got ${s.pids.length - 1}`)
    await sleep(1000) // settled
    const before = {...memoryOf(s.pids), kernelTcp: kernelTcpBytes(), connections: (await stats()).connections}
    const per = Math.ceil(w.conns / w.loaders)
    const args = (n) => ['--port', String(s.port), '--mode', 'idle', '--conns', String(n), '--size', String(w.size), '--hold', String(w.hold), '--hold2', '0']
    let ready = 0
    let up = 0
    let failed = 0
    const tc = Date.now()
    const runs = Array.from({length: w.loaders}, (_, i) => {
      const n = Math.min(per, w.conns - i * per)
      const onLine = (line) => {
        const m = /^(ready|connect-failed) (\d+)/.exec(line)
        if (m?.[1] === 'ready') (ready++, (up += Number(m[2])))
        if (m?.[1] === 'connect-failed') (ready++, (failed += Number(m[2])))
      }
      return load('loadgen', args(n), onLine, {timeoutMs: LIMIT_S * 1000, onChild: (c) => loaders.push(c)}).then(
        (r) => r,
        (e) => ({error: String(e.message).split('\n')[0]}),
      )
    })
    while (ready < w.loaders && Date.now() - tc < (w.hold - 2) * 1000) await sleep(50)
    const connectSeconds = (Date.now() - tc) / 1000
    await sleep(1500) // the server accepts what the load generators see connected
    const first = await stats()
    const holding = {...memoryOf(s.pids), kernelTcp: kernelTcpBytes()}
    // Again near the end of the hold: held, not only accepted.
    await sleep(Math.max(0, (w.hold - 4) * 1000 - (Date.now() - tc)))
    const last = await stats()
    const loadResults = await Promise.all(runs)
    const held = Math.min(first.connections, last.connections)
    const row = {
      workload: w.name,
      id: w.id,
      group: w.group,
      kind: w.kind,
      size: w.size,
      conns: w.conns,
      shards: w.shards,
      loaders: w.loaders,
      perLoader: per,
      hold: w.hold,
      sources: '127.0.0.1-254',
      load: `${w.loaders} × bench/build/loadgen --port P ${args(per).slice(2).join(' ')}`,
      server: `IOCPGEN_SHARDS=${w.shards} STATS_FILE=... node dist/src/main.js (npm start)`,
      loadgensConnected: up,
      connectFailures: failed,
      loadErrors: loadResults.filter((r) => r.error).map((r) => r.error),
      connectSeconds,
      held,
      allHeld: held === w.conns && up === w.conns,
      stats: {
        first: {connections: first.connections, sessions: first.sessions, shardsReporting: first.shardsReporting, shardRestarts: first.shardRestarts},
        last: {connections: last.connections, sessions: last.sessions, shardsReporting: last.shardsReporting, shardRestarts: last.shardRestarts},
      },
      perShard: last.perShard.map((p) => ({index: p.index, pid: p.pid, connections: p.connections, restarts: p.restarts})),
      before,
      holding,
      rssPerConn: (holding.rss - before.rss) / Math.max(1, held),
      pssPerConn: (holding.pss - before.pss) / Math.max(1, held),
      kernelTcpPerConn: (holding.kernelTcp - before.kernelTcp) / Math.max(1, held),
    }
    const mb = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`
    log(`${w.name}: ${held} held (${row.perShard.map((p) => p.connections).join(', ')}), load generators ${up} up, ${failed} failed, in ${connectSeconds.toFixed(1)} s; RSS ${mb(before.rss)} → ${mb(holding.rss)} (${Math.round(row.rssPerConn)} B/conn), PSS ${mb(before.pss)} → ${mb(holding.pss)}`)
    return row
  } finally {
    await stop(s)
    clearTimeout(limit)
    rmSync(statsFile, {force: true})
    log(`${w.name}: done in ${((Date.now() - t0) / 1000).toFixed(0)} s`)
  }
}

async function main() {
  requireRuntime()
  sh('make', ['-s', '-C', here])
  const echoServer = prepareEcho()
  const echo = echoServers(echoServer)
  const chat = {} // filled below when a selected workload needs the chat server
  const workloads = selected(workloadList(echo, chat))
  if (workloads.some((w) => w.servers === chat)) {
    const chatServer = prepareChat()
    Object.assign(chat, {
      iocpgen: {cmd: process.execPath, args: [join(chatServer, 'dist', 'src', 'main.js')], env: {PORT: '0', NODE_ENV: 'production'}},
      'node net': {cmd: process.execPath, args: [join(here, 'peers', 'node-chat.mjs'), '--port', '0']},
    })
  }
  log(`${workloads.length} workloads, ${RUNS} round(s) of ${SECONDS} s: about ${Math.max(1, Math.round(estimateMinutes(workloads)))} min`)
  // What bench/results.json holds: a partial run (--only) replaces its own rows and keeps the rest.
  const resultsFile = join(here, 'results.json')
  const prior = !smoke && existsSync(resultsFile) ? JSON.parse(readFileSync(resultsFile, 'utf8')) : undefined
  const meta = {date: new Date().toISOString().slice(0, 10), node: process.version, cores: cpus().length, runs: RUNS, seconds: SECONDS, smoke, idleConns: IDLE_CONNS, fanoutMembers: FANOUT_MEMBERS}
  // Each row says how it ran, and its command, since a merged file mixes runs.
  const ran = {date: meta.date, node: meta.node, cores: meta.cores, runs: RUNS, seconds: SECONDS}

  const results = []
  for (const w of workloads) {
    if (w.kind === 'shards-idle') {
      results.push({...(await shardsIdle(echoServer, w)), run: ran})
      continue
    }
    if (w.rateFrom) {
      const node = [...results, ...(prior?.results ?? [])].find((r) => r.workload === w.rateFrom)?.servers['node net']
      if (!node) throw new Error(`${w.name}: "${w.rateFrom}" must run first, with node net`)
      w.rate = Math.round(node.rate / 2)
      log(`${w.name}: ${w.rate} msg/s (half of node net's median ${Math.round(node.rate)} msg/s)`)
    }
    const names = Object.keys(w.servers)
    const samples = new Map(names.map((n) => [n, []]))
    // Interleave the servers in every round so drift on a shared machine hits all alike.
    for (let run = 0; run < RUNS; run++) {
      for (const name of w.alternate && run % 2 ? [...names].reverse() : names) {
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
    const row = {workload: w.name, id: w.id, ...(w.group ? {group: w.group} : {}), kind: w.kind, ...params, load: `bench/build/${loadTool(w)} --port P ${loadArgs[w.kind](w).join(' ')}`, ...(w.rateFrom ? {offeredRate: w.rate, rateFrom: w.rateFrom} : {}), servers: {}, ratios: {}, ...(shares ? {toFloor: {}} : {})}
    const keys = ['rate', 'p50_us', 'p99_us', 'p999_us', 'cpuPerMsgUs', 'rssPerConn', 'rssPerConnAfterOne', 'serverCores', 'loadCores', 'otherCores']
    const ratioKeys = keys.filter((k) => !['rssPerConnAfterOne', 'serverCores', 'loadCores', 'otherCores'].includes(k))
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
        row.ratios[name][peer] = Object.fromEntries(ratioKeys.filter((k) => mine[0][k] !== undefined).map((k) => [k, per(k)]))
      }
    }
    // Every server's rate as a share of the floor's, per round like the ratios.
    if (row.toFloor) {
      const floor = samples.get(FLOOR)
      for (const [name, xs] of samples) row.toFloor[name] = median(xs.map((x, i) => x.rate / floor[i].rate))
    }
    // 2 shards over 1: the median of the rounds' ratios, as for the peers.
    if (samples.has('iocpgen, 1 shard') && samples.has('iocpgen, 2 shards')) {
      const one = samples.get('iocpgen, 1 shard')
      const two = samples.get('iocpgen, 2 shards')
      row.twoOverOne = Object.fromEntries(['rate', 'p50_us', 'p99_us', 'cpuPerMsgUs'].map((k) => [k, median(two.map((x, i) => x[k] / one[i][k]))]))
      // Each round's figures too: on a shared machine the spread says how far to trust the medians.
      const brief = (x) => ({rate: x.rate, cpuPerMsgUs: x.cpuPerMsgUs, serverCores: x.serverCores, loadCores: x.loadCores, otherCores: x.otherCores})
      row.rounds = one.map((x, i) => ({oneShard: brief(x), twoShards: brief(two[i]), rateTwoOverOne: two[i].rate / x.rate}))
    }
    results.push({...row, run: ran})
  }
  let out = {meta, results}
  if (prior && only) {
    // Replace the rows this run wrote, keep the others, in the full run's order.
    const order = workloadList(echo, chat)
    const at = (r) => order.findIndex((w) => w.id === r.id || w.name === r.workload)
    const rank = (r) => (at(r) < 0 ? order.length : at(r))
    const mine = new Set(results.flatMap((r) => [r.id, r.workload]))
    const kept = prior.results.filter((r) => !mine.has(r.id) && !mine.has(r.workload))
    out = {meta: prior.meta, results: [...kept, ...results].sort((a, b) => rank(a) - rank(b))}
  }
  writeFileSync(smoke ? join(build, 'results-smoke.json') : resultsFile, JSON.stringify(out, null, 2) + '\n')
  if (!smoke) writeReport(here, out.meta, out.results)
  const most = Math.max(...results.map((r) => Object.keys(r.servers ?? {}).length))
  console.log(smoke ? `bench smoke: ${results.length} workload(s) ran against ${most} servers` : 'bench: wrote bench/results.md and bench/results.svg')
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
