// The benchmark harness works end to end: every server starts, the load generator verifies
// every echo (closed loop, accept churn, idle connections, sharded servers), and each produces
// a figure. It asserts no speed (speed lives in npm run bench).
import {spawn} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect, it} from 'vitest'

const root = join(import.meta.dirname, '..')

/** Runs a bench script; asynchronous, so the test worker stays responsive for a minute's run. */
function run(script: string, timeoutMs: number): Promise<{status: number | null; stdout: string; stderr: string}> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(root, 'bench', script), '--smoke'], {cwd: root, stdio: ['ignore', 'pipe', 'pipe']})
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
    child.on('exit', (status) => {
      clearTimeout(timer)
      resolve({status, stdout, stderr})
    })
  })
}

it('bench --smoke runs every server through each workload without errors, sharded servers included', async () => {
  const r = await run('run.mjs', 280_000)
  expect(r.status, r.stderr.slice(-3000)).toBe(0)
  expect(r.stdout).toContain('bench smoke: 5 workload(s) ran against 6 servers')
  const {results} = JSON.parse(readFileSync(join(root, 'bench', 'build', 'results-smoke.json'), 'utf8'))
  expect(results.map((w: {id: string}) => w.id)).toEqual(['echo-64-50', 'churn', 'idle', 'shards-echo', 'shards-idle'])
  const [echo, churn, idle, shardsEcho, shardsIdle] = results
  const peers = ['C epoll', 'C raw echo (floor)', 'iocpgen', 'node net', 'node net (decoding)']
  expect(Object.keys(echo.servers).sort()).toEqual([...peers, 'iocpgen +10us'].sort())
  for (const w of [churn, idle]) expect(Object.keys(w.servers).sort()).toEqual(peers)
  // Every server's share of the floor is there, and the floor's own is 1.
  for (const w of [echo, churn, idle]) {
    expect(Object.keys(w.toFloor).sort()).toEqual(Object.keys(w.servers).sort())
    expect(w.toFloor['C raw echo (floor)']).toBe(1)
    expect(Object.keys(w.ratios.iocpgen).sort()).toEqual(['C epoll', 'C raw echo (floor)', 'node net', 'node net (decoding)'])
  }
  for (const w of [echo, churn, idle, shardsEcho]) {
    for (const s of Object.values(w.servers) as {rate: number; p99_us: number; rssPerConn: number}[]) {
      expect(s.rate).toBeGreaterThan(0)
      expect(s.p99_us).toBeGreaterThan(0)
      expect(s.rssPerConn).toBeGreaterThanOrEqual(0)
    }
  }
  // 1 shard against 2, each started as npm start does: both echo, and their ratio is there.
  expect(Object.keys(shardsEcho.servers)).toEqual(['iocpgen, 1 shard', 'iocpgen, 2 shards'])
  expect(shardsEcho.twoOverOne.rate).toBeGreaterThan(0)
  for (const s of Object.values(shardsEcho.servers) as {serverCores: number; loadCores: number}[]) {
    expect(s.serverCores).toBeGreaterThan(0)
    expect(s.loadCores).toBeGreaterThan(0)
  }
  // Idle connections across shards: every one held by the server's own stats, on every shard.
  expect(shardsIdle.allHeld).toBe(true)
  expect(shardsIdle.held).toBe(shardsIdle.conns)
  expect(shardsIdle.perShard).toHaveLength(shardsIdle.shards)
  for (const p of shardsIdle.perShard) expect(p.connections).toBeGreaterThan(0)
  expect(shardsIdle.holding.shards).toHaveLength(shardsIdle.shards)
  expect(shardsIdle.holding.rss).toBeGreaterThan(0)
}, 300_000)

it('bench/cluster.mjs --smoke measures latency and fan-out across shards joined by NATS', async () => {
  const r = await run('cluster.mjs', 200_000)
  expect(r.status, r.stderr.slice(-3000)).toBe(0)
  const out = JSON.parse(r.stdout)
  for (const k of ['sameP50', 'crossP50', 'sameP99', 'crossP99']) expect(out.latency[k]).toBeGreaterThan(0)
  for (const k of ['1', '2', '4']) expect(out.fanout[k].deliveriesPerSec).toBeGreaterThan(0)
  expect(out.natsCpuShare).toBeGreaterThan(0)
}, 240_000)

it('bench/locks.mjs --smoke times lock acquisitions in production and development mode', async () => {
  const r = await run('locks.mjs', 60_000)
  expect(r.status, r.stderr.slice(-3000)).toBe(0)
  expect(r.stdout).toMatch(/^production: \d+ ns per acquisition .*\ndevelopment: \d+ ns per acquisition/m)
})
