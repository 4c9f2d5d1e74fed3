// The cluster benchmark: the chat example's handlers on the bench chat spec, as shard
// processes joined through a nats-server started here. Measures private-message latency
// between two shards against within one shard, group fan-out with the members on 1, 2 and 4
// shards against all on one, and the NATS server's share of the CPU. Every shard is its own
// process on its own port, so the harness decides who is on which shard.
// `node bench/cluster.mjs` (after `npm run build && npm run build:native`), or `--smoke`.
// Writes bench/results-cluster.json; bench/report.mjs puts it into bench/results.md.
import {execFileSync, spawn} from 'node:child_process'
import {cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {connect, createServer} from 'node:net'
import {cpus, tmpdir} from 'node:os'
import {join} from 'node:path'
import {fileURLToPath, pathToFileURL} from 'node:url'

const here = fileURLToPath(new URL('.', import.meta.url))
const root = join(here, '..')
const build = join(here, 'build')
const smoke = process.argv.includes('--smoke')
const RUNS = smoke ? 1 : Number(process.env.RUNS ?? 5)
const SECONDS = smoke ? 0.5 : Number(process.env.SECONDS ?? 3)
const PAIRS = smoke ? 4 : Number(process.env.PAIRS ?? 20)
const MEMBERS = smoke ? 40 : Number(process.env.FANOUT_MEMBERS ?? 1000)
const WINDOW = 8

const log = (...a) => console.error('bench cluster:', ...a)
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]
}

/** The bench chat server: generated from bench/specs/chat.yaml, with the example's handlers. */
function prepareChat() {
  const dir = join(build, 'cluster-chat')
  rmSync(dir, {recursive: true, force: true})
  execFileSync(process.execPath, [join(root, 'bin', 'run.js'), 'new', dir, '--spec', join(here, 'specs', 'chat.yaml'), '--no-install'], {stdio: 'ignore'})
  const example = join(root, 'examples', 'chat', 'src')
  for (const f of ['handlers', 'directory.ts', 'session-state.ts', 'main.ts']) cpSync(join(example, f), join(dir, 'src', f), {recursive: true})
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], {cwd: dir, stdio: 'inherit'})
  return dir
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const {port} = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** nats-server with JetStream on a free port, in a directory of its own. */
async function startNats() {
  const dir = mkdtempSync(join(tmpdir(), 'iocpgen-bench-nats-'))
  const port = await freePort()
  const child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir], {stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  child.stderr.on('data', (d) => (out += d))
  child.stdout.on('data', (d) => (out += d))
  for (let i = 0; i < 500 && !/Server is ready/.test(out); i++) {
    if (child.exitCode !== null) throw new Error(`nats-server: ${out}`)
    await sleep(20)
  }
  return {url: `nats://127.0.0.1:${port}`, pid: child.pid, stop: () => (child.kill('SIGKILL'), rmSync(dir, {recursive: true, force: true}))}
}

/** One shard: the chat server as one process on its own port, on the bus. */
async function startShard(dir, nats, index) {
  const child = spawn(process.execPath, ['dist/src/main.js'], {cwd: dir, env: {...process.env, NODE_ENV: 'production', PORT: '0', HOST: '127.0.0.1', IOCPGEN_NATS_URL: nats.url, IOCPGEN_SHARD_INDEX: String(index), IOCPGEN_SHARDS: '1'}, stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (out += d))
  for (let i = 0; i < 1500; i++) {
    const m = /listening on port (\d+)/.exec(out)
    if (m) return {port: Number(m[1]), pid: child.pid, stop: () => child.kill('SIGKILL')}
    if (child.exitCode !== null) break
    await sleep(20)
  }
  throw new Error(`shard ${index} did not start: ${out}`)
}

/** CPU time (ms) a process has used so far. */
function cpuMs(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100
}

let codec
/** A framed chat client: calls `on(type, message)` for each message. */
class Client {
  constructor(port, on) {
    this.s = connect({port, host: '127.0.0.1'})
    this.s.setNoDelay(true)
    this.buf = Buffer.alloc(0)
    this.on = on
    this.ready = new Promise((r, j) => (this.s.once('connect', r), this.s.once('error', j)))
    this.s.on('data', (d) => {
      this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d
      let off = 0
      while (this.buf.length - off >= 4 && this.buf.length - off >= 4 + this.buf.readUInt32LE(off)) {
        const len = this.buf.readUInt32LE(off)
        const type = codec.byId.get(this.buf.readUInt16LE(off + 4))
        this.on(type, codec.codecs[type].decode(new codec.Reader(this.buf, off + 6, off + 4 + len)))
        off += 4 + len
      }
      this.buf = this.buf.subarray(off)
    })
  }
  send(type, message) {
    const w = new codec.Writer()
    const f = w.beginFrame(codec.codecs[type].id)
    codec.codecs[type].encode(w, message)
    w.endFrame(f, 1 << 20)
    this.s.write(Buffer.from(w.view()))
  }
}

/** Connects, logs in as `userId` and resolves once acknowledged. */
async function user(port, userId, on = () => {}) {
  let acked
  const ok = new Promise((r) => (acked = r))
  const c = new Client(port, (type, m) => {
    if (type === 'Ack' && m.seq === 0) acked(m.status)
    else on(type, m)
  })
  await c.ready
  c.send('Login', {seq: 0, userId, nick: `u${userId}`})
  const status = await ok
  if (status !== 0) throw new Error(`login ${userId}: status ${status}`)
  return c
}

/** Private messages, one in flight per pair: send → delivered at the receiver, in µs. */
async function privateLatency(from, to, base) {
  const samples = []
  const pairs = []
  for (let i = 0; i < PAIRS; i++) {
    let arrived
    const rx = await user(to.port, base + 2 * i + 1, (type) => type === 'PrivateDeliver' && arrived?.())
    const tx = await user(from.port, base + 2 * i)
    pairs.push({tx, rx, to: base + 2 * i + 1, wait: () => new Promise((r) => (arrived = r))})
  }
  const until = Date.now() + SECONDS * 1000
  await Promise.all(pairs.map(async (p) => {
    let seq = 1
    while (Date.now() < until) {
      const got = p.wait()
      const t0 = process.hrtime.bigint()
      p.tx.send('PrivateSend', {seq: seq++, to: p.to, text: 'x'.repeat(32)})
      await got
      samples.push(Number(process.hrtime.bigint() - t0) / 1000)
    }
  }))
  for (const p of pairs) p.tx.s.destroy(), p.rx.s.destroy()
  return {p50: quantile(samples, 0.5), p99: quantile(samples, 0.99), n: samples.length}
}

/**
 * One sender on shard 0 says 64 B to a group of MEMBERS spread evenly over `over` shards,
 * WINDOW messages in flight (a message is done when it reached the last member to join on
 * every shard). Returns deliveries per second.
 */
async function fanout(shards, over, base, group) {
  const probes = new Map()
  const joined = new Map()
  const members = []
  // A member counts once its join is acknowledged: joins of one group hold its cluster lock,
  // so they are done one at a time, each after the member list came from every shard.
  const join = async (port, userId) => {
    const c = await user(port, userId, (type, m) => {
      if (type === 'GroupDeliver') probes.get(c)?.(m.seq)
      else if (type === 'Ack' && m.seq === 1) joined.get(c)?.()
    })
    const acked = new Promise((r) => joined.set(c, r))
    c.send('GroupJoin', {seq: 1, group})
    return {c, acked}
  }
  const joinStart = Date.now()
  const joins = []
  for (let i = 0; i < MEMBERS; i++) joins.push(await join(shards[i % over].port, base + i))
  await Promise.all(joins.map((j) => j.acked))
  const joinMs = Date.now() - joinStart
  members.push(...joins.map((j) => j.c))
  // The last member on each shard stands for that shard's delivery.
  const last = shards.slice(0, over).map((_, s) => members[MEMBERS - over + s])
  const me = await join(shards[0].port, base + MEMBERS)
  const sender = me.c
  await me.acked
  const pending = new Map()
  let done = 0
  for (const p of last) {
    probes.set(p, (seq) => {
      const left = pending.get(seq) - 1
      if (left > 0) return pending.set(seq, left)
      pending.delete(seq)
      done++
      pump()
    })
  }
  let seq = 0
  const until = Date.now() + SECONDS * 1000
  let finish
  const finished = new Promise((r) => (finish = r))
  const pump = () => {
    while (pending.size < WINDOW && Date.now() < until) {
      pending.set(++seq, last.length)
      sender.send('GroupSay', {seq, group, text: 'x'.repeat(64)})
    }
    if (pending.size === 0) finish()
  }
  const t0 = Date.now()
  pump()
  await Promise.race([finished, sleep(SECONDS * 1000 + 5000)])
  const secs = (Date.now() - t0) / 1000
  for (const c of [...members, sender]) c.s.destroy()
  await sleep(200)
  return {rate: (done * MEMBERS) / secs, joinMs}
}

async function main() {
  if (execFileSync('sh', ['-c', 'command -v nats-server || true'], {encoding: 'utf8'}).trim() === '') throw new Error('nats-server is not installed (Debian: apt-get install nats-server)')
  const dir = prepareChat()
  const protocol = await import(pathToFileURL(join(dir, 'dist/src/generated/protocol.js')).href)
  const runtime = await import(pathToFileURL(join(root, 'runtime', 'dist', 'index.js')).href)
  codec = {codecs: protocol.codecs, byId: new Map(Object.entries(protocol.codecs).map(([n, c]) => [c.id, n])), Writer: runtime.Writer, Reader: runtime.Reader}
  const nats = await startNats()
  const shards = []
  try {
    for (let i = 0; i < 4; i++) shards.push(await startShard(dir, nats, i))
    const rounds = []
    let base = 100_000
    for (let r = 0; r < RUNS; r++) {
      log(`round ${r + 1}/${RUNS}`)
      const cpu0 = [nats.pid, ...shards.map((s) => s.pid)].map(cpuMs)
      const same = await privateLatency(shards[0], shards[0], (base += 10_000))
      const cross = await privateLatency(shards[0], shards[1], (base += 10_000))
      const fan = {}
      for (const over of [1, 2, 4]) fan[over] = await fanout(shards, over, (base += 10_000), `f${r}-${over}`)
      const cpu1 = [nats.pid, ...shards.map((s) => s.pid)].map(cpuMs)
      const used = cpu1.map((v, i) => v - cpu0[i])
      const natsShare = used[0] / used.reduce((a, b) => a + b, 0)
      rounds.push({same, cross, fan, natsShare})
      log(`same p50 ${same.p50.toFixed(0)} µs p99 ${same.p99.toFixed(0)}; cross p50 ${cross.p50.toFixed(0)} p99 ${cross.p99.toFixed(0)}; fan-out ${[1, 2, 4].map((k) => `${k}: ${Math.round(fan[k].rate)}/s (joins ${fan[k].joinMs} ms)`).join(', ')}; nats cpu ${(natsShare * 100).toFixed(1)}%`)
    }
    const result = {
      date: new Date().toISOString().slice(0, 10),
      node: process.version,
      cores: cpus().length,
      runs: RUNS,
      seconds: SECONDS,
      pairs: PAIRS,
      members: MEMBERS,
      smoke,
      latency: {
        sameP50: median(rounds.map((r) => r.same.p50)),
        sameP99: median(rounds.map((r) => r.same.p99)),
        crossP50: median(rounds.map((r) => r.cross.p50)),
        crossP99: median(rounds.map((r) => r.cross.p99)),
        crossOverSameP50: median(rounds.map((r) => r.cross.p50 / r.same.p50)),
        crossOverSameP99: median(rounds.map((r) => r.cross.p99 / r.same.p99)),
      },
      fanout: Object.fromEntries([1, 2, 4].map((k) => [k, {deliveriesPerSec: median(rounds.map((r) => r.fan[k].rate)), vsOneShard: median(rounds.map((r) => r.fan[k].rate / r.fan[1].rate)), joinMsPerMember: median(rounds.map((r) => r.fan[k].joinMs / MEMBERS))}])),
      natsCpuShare: median(rounds.map((r) => r.natsShare)),
    }
    if (!smoke) writeFileSync(join(here, 'results-cluster.json'), `${JSON.stringify(result, null, 2)}\n`)
    console.log(JSON.stringify(result, null, 2))
  } finally {
    for (const s of shards) s.stop()
    nats.stop()
  }
}

await main()
