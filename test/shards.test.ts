// Shards on one machine: a generated echo project started as a user starts it (node
// dist/src/main.js), with IOCPGEN_SHARDS=2 on port 0. On Linux both shards share the port;
// the supervisor restarts a shard killed mid-traffic, adds the shards' stats up, and stops
// them all gracefully on SIGTERM. On Windows (IOCP, under Wine) each shard has its own port.
import {type ChildProcess, spawn} from 'node:child_process'
import {rmSync} from 'node:fs'
import {availableParallelism} from 'node:os'
import {dirname, join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {addUp, shardCount} from '../runtime/src/shards.js'
import {running, type Running, sleep, type Stats, waitFor} from './support/chat.js'
import {EchoClient, echoProject} from './support/echo.js'
import {requireRuntimeBuilt} from './support/project.js'
import {readIfExists, requireWindowsAddon, startUnderWine, windowsToolsMissing} from './support/windows.js'

interface PerShard {
  index: number
  pid: number
  port: number
  restarts: number
  connections: number
}
type ShardStats = Stats & {shards: number; shardsReporting: number; shardRestarts: number; perShard: PerShard[]}

let dir: string
beforeAll(async () => {
  dir = await echoProject()
}, 300_000)
afterAll(() => {
  if (dir) rmSync(dirname(dir), {recursive: true, force: true})
})

let started = 0
const env = (extra: Record<string, string> = {}) => ({IOCPGEN_SHARDS: '2', PORT: '0', STATS_FILE: join(dir, `stats-${++started}.json`), STATS_EVERY_MS: '50', ...extra})

/** The project's server on this machine's Node, exactly as `npm start` runs it after compiling. */
function startLinux(extra: Record<string, string> = {}): Promise<Running> {
  requireRuntimeBuilt('linux')
  const e = env(extra)
  let out = ''
  const child = spawn(process.execPath, ['dist/src/main.js'], {cwd: dir, env: {...process.env, ...e}, stdio: ['ignore', 'pipe', 'pipe']})
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  return running(dir, child, () => out, e.STATS_FILE, 30_000)
}

const exitOf = (child: ChildProcess) => new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))))
const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Opens `n` clients and has each echo one frame. */
async function clients(port: number, n: number, tag: string): Promise<EchoClient[]> {
  const cs = Array.from({length: n}, (_, i) => new EchoClient(port, `${tag}${i}`))
  for (const c of cs) c.send()
  await Promise.all(cs.map((c) => c.echoed()))
  return cs
}

describe('two shards on Linux', () => {
  let server: Running
  const stats = async () => (await server.stats()) as ShardStats
  /** Stats once `ready` holds of them (they are written every 50 ms). */
  const statsWhen = async (what: string, ready: (s: ShardStats) => boolean, ms = 15_000) => {
    let last: ShardStats
    const until = Date.now() + ms
    for (;;) {
      last = await stats()
      if (ready(last)) return last
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(last)}`)
    }
  }
  const all: EchoClient[] = []

  beforeAll(async () => {
    server = await startLinux()
  }, 60_000)
  afterAll(() => {
    for (const c of all) c.s.destroy()
    server?.child.kill('SIGKILL')
  })

  it('says once that both shards listen on one port, and warns that they share no clients', async () => {
    // Stats come only once both listen; the line is printed then.
    await stats()
    const out = server.output()
    expect(out.match(/listening on port \d+/g)).toHaveLength(1)
    expect(out).toMatch(new RegExp(`^echo listening on port ${server.port} \\((uring|epoll), 2 shards\\)$`, 'm'))
    const s = await stats()
    expect(out).toContain(`echo: shards 0 pid ${s.perShard[0]!.pid}, 1 pid ${s.perShard[1]!.pid}\n`)
    expect(out).toContain('each shard serves its own clients alone')
    expect(out).toContain('IOCPGEN_NATS_URL')
  })

  it('spreads 64 connections over both shards, and the stats are the shards\' added up', async () => {
    all.push(...(await clients(server.port, 64, 'a')))
    const s = await statsWhen('64 connections', (x) => x.connections === 64)
    expect(s).toMatchObject({shards: 2, shardsReporting: 2, shardRestarts: 0})
    expect(s.perShard.map((p) => p.index)).toEqual([0, 1])
    for (const p of s.perShard) {
      expect(p.connections, `shard ${p.index}`).toBeGreaterThan(0)
      expect(p.port).toBe(server.port)
      expect(alive(p.pid)).toBe(true)
    }
    expect(s.perShard[0]!.pid).not.toBe(s.perShard[1]!.pid)
    expect(s.perShard[0]!.connections + s.perShard[1]!.connections).toBe(64)
    // Nested counters are added too: the pools of both shards, and the frames of all 64.
    expect(s.socketPool.inUse).toBe(64)
    expect(s.socketPool.capacity).toBe(2 * 1000)
    expect(s.framesIn).toBe(64)
    expect(s.closes.peer_closed).toBe(0)
    expect(['uring', 'epoll']).toContain(s.backend)
  }, 30_000)

  it('a shard killed with SIGKILL mid-traffic: the other shard\'s clients keep working, new ones are served, and it is restarted', async () => {
    const before = await stats()
    // Shard 0: the one that bound port 0 first; its restart must take that same port again.
    const victim = before.perShard[0]!
    // Traffic on every connection while the shard dies.
    const traffic = setInterval(() => {
      for (const c of all) if (!c.s.destroyed) c.send()
    }, 5)
    try {
      await sleep(200)
      process.kill(victim.pid, 'SIGKILL')
      await sleep(500)
      const gone = all.filter((c) => c.s.destroyed)
      const stay = all.filter((c) => !c.s.destroyed)
      expect(gone.length).toBe(victim.connections)
      expect(stay.length).toBe(64 - victim.connections)
      const counts = stay.map((c) => c.got.length)
      await sleep(300)
      // Those of the surviving shard got every echo, byte for byte, and more kept coming.
      stay.forEach((c, i) => {
        expect(c.faithful, c.name).toBe(true)
        expect(c.got.length, c.name).toBeGreaterThan(counts[i]!)
        expect(c.reset, c.name).toBe(false)
      })
    } finally {
      clearInterval(traffic)
    }
    const stay = all.filter((c) => !c.s.destroyed)
    await Promise.all(stay.map((c) => c.echoed()))
    // New connections are served while (and after) the shard restarts.
    const fresh = await clients(server.port, 8, 'b')
    const s = await statsWhen('the shard restarted', (x) => x.shardRestarts === 1 && x.shardsReporting === 2)
    const again = s.perShard[0]!
    expect(again.index).toBe(0)
    expect(again.port).toBe(server.port)
    expect(again.pid).not.toBe(victim.pid)
    expect(again.restarts).toBe(1)
    expect(alive(again.pid)).toBe(true)
    expect(alive(victim.pid)).toBe(false)
    expect(s.perShard[1]!.pid).toBe(before.perShard[1]!.pid)
    expect(server.output()).toMatch(new RegExp(`shard 0 \\(pid ${victim.pid}\\) exited with signal SIGKILL; restarting it in 100 ms`))
    // The restarted shard listens: the kernel gives it some of 32 new connections.
    fresh.push(...(await clients(server.port, 32, 'c')))
    const after = await statsWhen('connections on the restarted shard', (x) => x.perShard[0]?.pid === again.pid && x.perShard[0].connections > 0)
    expect(after.connections).toBe(stay.length + fresh.length)
    all.splice(0, all.length, ...stay, ...fresh)
  }, 60_000)

  it('SIGTERM mid-traffic: every shard answers what it read and ends its clients gracefully; the supervisor exits 0 and no process is left', async () => {
    const s = await stats()
    const pids = s.perShard.map((p) => p.pid)
    expect(pids).toHaveLength(2)
    for (const c of all) c.send(100)
    const total = all.reduce((n, c) => n + c.frames, 0)
    // Every one of these frames has reached a shard: each must come back.
    await statsWhen('every frame read', (x) => x.framesIn >= total)
    const owed = all.map((c) => c.sent.length)
    // More keep coming while the shards stop: answered or not, none may cost its client a reset.
    const traffic = setInterval(() => {
      for (const c of all) if (!c.ended && !c.s.destroyed) c.send(5)
    }, 2)
    try {
      await sleep(100)
      server.child.kill('SIGTERM')
      expect(await exitOf(server.child)).toBe(0)
      await Promise.all(all.map((c) => c.closed))
    } finally {
      clearInterval(traffic)
    }
    all.forEach((c, i) => {
      expect(c.got.length, `${c.name}: ${c.got.length} of ${owed[i]} bytes owed`).toBeGreaterThanOrEqual(owed[i]!)
      expect(c.faithful, c.name).toBe(true)
      expect(c.reset, c.name).toBe(false)
      expect(c.ended, c.name).toBe(true)
    })
    // No restart on the way out: the one restart line is the SIGKILL's.
    expect(server.output().match(/exited with/g)).toHaveLength(1)
    for (const pid of [...pids, server.child.pid!]) expect(alive(pid), `pid ${pid}`).toBe(false)
  }, 60_000)
})

describe('two shards on Windows (IOCP, under Wine): one port per shard', () => {
  it('each shard listens on its own port and echoes; SIGINT stops them all', async () => {
    const missing = windowsToolsMissing()
    if (missing) throw new Error(`cannot run on Windows: ${missing}`)
    requireWindowsAddon()
    const e = env()
    const outFile = join(dir, `stdout-wine-${started}.txt`)
    const child = startUnderWine(dir, 'dist/src/main.js', e, outFile)
    try {
      const server = await running(dir, child, () => readIfExists(outFile), e.STATS_FILE, 240_000)
      const line = /^echo listening on port (\d+) \(iocp, 2 shards, one port per shard behind a balancer: (\d+), (\d+)\)/m.exec(server.output())
      expect(line, server.output()).not.toBeNull()
      const ports = [Number(line![2]), Number(line![3])]
      expect(ports[0]).toBe(server.port)
      expect(ports[1]).not.toBe(ports[0])
      const s = (await server.stats()) as ShardStats
      expect(s).toMatchObject({backend: 'iocp', shards: 2, shardsReporting: 2})
      expect(s.perShard.map((p) => p.port)).toEqual(ports)
      // Each port is a shard of its own: its clients are counted there.
      const byPort = await Promise.all(ports.map((port, i) => clients(port, 3, `w${i}-`)))
      const t = await waitFor('both shards to count their clients', () => {
        const x = JSON.parse(readIfExists(e.STATS_FILE) || 'null') as ShardStats | null
        return x && x.perShard?.every((p) => p.connections === 3) ? x : undefined
      }, 20_000)
      expect(t.connections).toBe(6)
      // Windows has no SIGTERM; Wine turns SIGINT into the Ctrl+C that Node reports as SIGINT.
      for (const c of byPort.flat()) c.send(20)
      await Promise.all(byPort.flat().map((c) => c.echoed()))
      child.kill('SIGINT')
      expect(await exitOf(child)).toBe(0)
      await Promise.all(byPort.flat().map((c) => c.closed))
      for (const c of byPort.flat()) expect(c.reset, c.name).toBe(false)
      // No shard is left listening.
      for (const port of ports) {
        const probe = new EchoClient(port, 'probe')
        await expect(probe.connected).rejects.toThrow(/ECONNREFUSED/)
      }
    } finally {
      child.kill('SIGKILL')
    }
  }, 300_000)
})

describe('a server that cannot start says why in one line', () => {
  const run = (extra: Record<string, string>) =>
    new Promise<{code: number | null; out: string}>((resolve) => {
      let out = ''
      const child = spawn(process.execPath, ['dist/src/main.js'], {cwd: dir, env: {...process.env, PORT: '0', ...extra}, stdio: ['ignore', 'pipe', 'pipe']})
      child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
      child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
      child.on('exit', (code) => resolve({code, out}))
    })

  it.each([
    ['a bad IOCPGEN_SHARDS', {IOCPGEN_SHARDS: 'two'}, /^echo: cannot start: IOCPGEN_SHARDS=two: expected/],
    ['NATS unreachable', {IOCPGEN_NATS_URL: 'nats://127.0.0.1:1'}, /^echo: cannot start: cannot reach NATS at nats:\/\/127\.0\.0\.1:1/],
  ])('%s: exit code 1, one line, no stack trace', async (_what, extra, line) => {
    const {code, out} = await run(extra)
    expect(code).toBe(1)
    expect(out.trim()).toMatch(line)
    expect(out.trim().split('\n')).toHaveLength(1)
  }, 30_000)
})

describe('the shard count and the stats sum', () => {
  it('IOCPGEN_SHARDS overrides the spec; auto and 0 are one per core; anything else is refused', () => {
    const spec = {shards: 3, cluster: {subject: 'x', heartbeatMs: 1000, leaseMs: 5000, maxPendingBytes: 1024}}
    expect(shardCount(spec, {})).toBe(3)
    expect(shardCount(undefined, {})).toBe(1)
    expect(shardCount(spec, {IOCPGEN_SHARDS: '2'})).toBe(2)
    expect(shardCount(spec, {IOCPGEN_SHARDS: 'auto'})).toBe(availableParallelism())
    expect(shardCount({...spec, shards: 0}, {})).toBe(availableParallelism())
    for (const bad of ['0', '-1', '1.5', 'many']) expect(() => shardCount(spec, {IOCPGEN_SHARDS: bad}), bad).toThrow(`IOCPGEN_SHARDS=${bad}: expected a whole number from 1, or auto`)
  })

  it('adds numbers at every depth and keeps the first text', () => {
    expect(addUp({backend: 'uring', n: 1, pool: {inUse: 2, by: {a: 1}}, only: 5}, {backend: 'epoll', n: 2, pool: {inUse: 3, by: {a: 1, b: 4}}})).toEqual({backend: 'uring', n: 3, pool: {inUse: 5, by: {a: 2, b: 4}}, only: 5})
  })
})
