// The benchmark: generated iocpgen servers side by side with a Node `net` server and a plain
// C epoll server, in the same run on the same machine. Every figure is a median of several
// runs, reported with its ratio to each peer. `npm run bench` (full) or `--smoke` (CI: checks
// the harness works, asserts no speed).
import {execFileSync, spawn} from 'node:child_process'
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'
import {fileURLToPath} from 'node:url'

import {writeReport} from './report.mjs'

const here = fileURLToPath(new URL('.', import.meta.url))
const root = join(here, '..')
const build = join(here, 'build')
const smoke = process.argv.includes('--smoke')
const RUNS = smoke ? 1 : Number(process.env.RUNS ?? 3)
const SECONDS = smoke ? 1 : Number(process.env.SECONDS ?? 4)

const log = (...a) => console.error('bench:', ...a)
const sh = (cmd, args, cwd = root) => execFileSync(cmd, args, {cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8'})

/** Builds the load generator, the C peer, and the generated echo server (with a work knob). */
function prepare() {
  sh('make', ['-s', '-C', here])
  const server = join(build, 'echo-server')
  if (!existsSync(join(server, 'package.json'))) {
    log('generating the echo server from bench/specs/echo.yaml')
    sh(process.execPath, [join(root, 'bin', 'run.js'), 'new', server, '--spec', join(here, 'specs', 'echo.yaml'), '--no-install'])
  } else {
    sh(process.execPath, [join(root, 'bin', 'run.js'), 'generate', '--dir', server])
  }
  // The handler echoes; WORK_US adds that much busy work per message, to see a real handler.
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
  if (!existsSync(join(server, 'build', 'Release', 'iocpgen.node'))) sh('npm', ['install', '--no-audit', '--no-fund'], server)
  sh('npm', ['run', '-s', 'build:ts'], server)
  return server
}

/** Starts a server; resolves with its pid and port once it prints "listening on port N". */
function start(name, cmd, args, env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, {env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    const onData = (d) => {
      out += d.toString()
      const m = /listening on port (\d+)/.exec(out)
      if (m) resolve({name, child, pid: child.pid, port: Number(m[1])})
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.on('exit', (code) => reject(new Error(`${name} exited (${code}): ${out}`)))
  })
}

const stop = (s) => new Promise((r) => (s.child.exitCode !== null ? r() : (s.child.once('exit', r), s.child.kill('SIGTERM'))))

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = f.slice(f.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

const rssBytes = (pid) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024

function loadgen(args, onLine) {
  return new Promise((resolve, reject) => {
    const child = spawn(join(build, 'loadgen'), args, {stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => {
      err += d
      for (const line of d.toString().split('\n')) if (line.trim()) onLine?.(line.trim())
    })
    child.on('exit', (code) => {
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

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

async function main() {
  const echoServer = prepare()
  const servers = [
    {name: 'iocpgen', cmd: process.execPath, args: [join(echoServer, 'dist', 'src', 'main.js')], env: {PORT: '0'}},
    {name: 'iocpgen +10us', cmd: process.execPath, args: [join(echoServer, 'dist', 'src', 'main.js')], env: {PORT: '0', WORK_US: '10'}},
    {name: 'node net', cmd: process.execPath, args: [join(here, 'peers', 'node-echo.mjs'), '--port', '0']},
    {name: 'C epoll', cmd: join(build, 'epoll-echo'), args: ['--port', '0', '--threads', '2']},
  ]
  const workloads = smoke
    ? [{name: 'echo 64 B, 50 conns', mode: 'closed', size: 64, conns: 50, depth: 8}]
    : [
        {name: 'echo 64 B, 50 conns', mode: 'closed', size: 64, conns: 50, depth: 8},
        {name: 'echo 64 B, 500 conns', mode: 'closed', size: 64, conns: 500, depth: 4},
        {name: 'echo 1 KiB, 50 conns', mode: 'closed', size: 1024, conns: 50, depth: 8},
        {name: 'echo 1 KiB, 500 conns', mode: 'closed', size: 1024, conns: 500, depth: 4},
        {name: 'accept churn, 50 slots', mode: 'churn', size: 64, conns: 50, depth: 1},
      ]

  const results = []
  for (const w of workloads) {
    const samples = new Map(servers.map((s) => [s.name, []]))
    // Interleave the servers in every round so drift on a shared machine hits all alike.
    for (let run = 0; run < RUNS; run++) {
      for (const spec of servers) {
        if (w.mode === 'churn' && spec.name.includes('+10us')) continue
        const s = await start(spec.name, spec.cmd, spec.args, spec.env)
        try {
          const cpu0 = cpuSeconds(s.pid)
          const r = await loadgen(['--mode', w.mode, '--port', String(s.port), '--conns', String(w.conns), '--size', String(w.size), '--depth', String(w.depth), '--duration', String(SECONDS), '--warmup', smoke ? '0' : '1'])
          const cpu = cpuSeconds(s.pid) - cpu0
          samples.get(spec.name).push({...r, cpuPerMsgUs: (cpu / Math.max(1, r.frames)) * 1e6, rssPerConn: rssBytes(s.pid) / w.conns})
          log(`${w.name} | ${spec.name} | ${Math.round(r.rate)} msg/s p50 ${r.p50_us} us p99 ${r.p99_us} us`)
        } finally {
          await stop(s)
        }
      }
    }
    const row = {workload: w.name, servers: {}}
    for (const [name, xs] of samples) {
      if (!xs.length) continue
      row.servers[name] = {
        rate: median(xs.map((x) => x.rate)),
        p50_us: median(xs.map((x) => x.p50_us)),
        p99_us: median(xs.map((x) => x.p99_us)),
        cpuPerMsgUs: median(xs.map((x) => x.cpuPerMsgUs)),
        rssPerConn: median(xs.map((x) => x.rssPerConn)),
        runs: xs.length,
      }
    }
    results.push(row)
  }
  const meta = {date: new Date().toISOString().slice(0, 10), node: process.version, cores: (await import('node:os')).cpus().length, runs: RUNS, seconds: SECONDS, smoke}
  writeFileSync(join(here, smoke ? 'build/results-smoke.json' : 'results.json'), JSON.stringify({meta, results}, null, 2) + '\n')
  if (!smoke) writeReport(here, meta, results)
  console.log(smoke ? `bench smoke: ${results.length} workload(s) ran against ${servers.length} servers` : 'bench: wrote bench/results.md and bench/results.svg')
}

main().catch((e) => {
  console.error(e)
  process.exit(1)
})
