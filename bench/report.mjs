// Writes bench/results.md (tables with ratios to each peer and each server's share of the
// floor, the targets met or missed, and the hand-written analysis in bench/analysis.md) and
// bench/results.svg (iocpgen's ratio to each peer, per main workload) from one run's medians.
// `node bench/report.mjs` rewrites both from bench/results.json without running anything.
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

// The floor echoes bytes without parsing frames: no framed server can beat it on this machine.
export const FLOOR = 'C raw echo (floor)'
export const PEERS = ['node net', 'node net (decoding)', 'C epoll', FLOOR]
const fmt = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a')
const x = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : 'n/a')
const pct = (v) => (Number.isFinite(v) ? `${Math.round(v * 100)}%` : 'n/a')

const isChurn = (r) => r.mode === 'churn' || r.workload.startsWith('accept')
const unit = (r) => (r.kind === 'fanout' ? 'deliveries/s' : r.kind === 'idle' ? 'msgs/s (one each)' : r.kind === 'open' ? 'msgs/s answered' : isChurn(r) ? 'conns/s' : 'msgs/s')
// Results written before p99.9 was kept have no such figure; their tables go without it.
const has999 = (r) => Object.values(r.servers).every((s) => s.p999_us !== undefined)

function table(r) {
  const idle = r.kind === 'idle'
  const open = r.kind === 'open'
  const peers = PEERS.filter((p) => r.servers[p])
  // Results written before the floor existed have no shares; their tables keep their columns.
  const floor = r.toFloor ? ['of floor'] : open ? ['of offered'] : []
  const p999 = has999(r) ? ['p99.9 µs'] : []
  const cols = [unit(r), ...floor, 'p50 µs', 'p99 µs', ...p999, 'server CPU µs/msg', idle ? 'RSS B/conn idle' : 'RSS growth B/conn', ...(idle ? ['RSS B/conn after one msg'] : []), ...peers.map((p) => `vs ${p}`)]
  const out = [`| server | ${cols.join(' | ')} |`, `| --- | ${cols.map(() => '---:').join(' | ')} |`]
  for (const [name, s] of Object.entries(r.servers)) {
    const vs = peers.map((p) => {
      if (PEERS.includes(name)) return ''
      const q = r.ratios[name][p]
      // At a fixed rate the rates match: latency is what differs.
      if (open) return `${x(q.p99_us)} p99${p999.length ? `, ${x(q.p999_us)} p99.9` : ''}, ${x(q.cpuPerMsgUs)} CPU`
      const mem = idle ? `, ${x(q.rssPerConn)} RSS` : ''
      return `${x(q.rate)} rate, ${x(q.cpuPerMsgUs)} CPU${mem}`
    })
    const share = r.toFloor ? [pct(r.toFloor[name])] : open ? [pct(s.rate / r.offeredRate)] : []
    const cells = [fmt(s.rate), ...share, fmt(s.p50_us), fmt(s.p99_us), ...(p999.length ? [fmt(s.p999_us)] : []), Number.isFinite(s.cpuPerMsgUs) ? s.cpuPerMsgUs.toFixed(2) : 'n/a', fmt(s.rssPerConn), ...(idle ? [fmt(s.rssPerConnAfterOne)] : []), ...vs]
    out.push(`| ${name} | ${cells.join(' | ')} |`)
  }
  return out
}

/** What ran, above each table: the load's command line and, for the open loop, its rate. */
function about(r) {
  const out = []
  if (r.kind === 'open') {
    out.push(`Offered rate: ${fmt(r.offeredRate)} msgs/s, half of node net's median rate in "${r.rateFrom}" of this run, one message per write. Latency is timed from each message's scheduled send time, so a server that falls behind is charged for its queue.`)
    out.push('Of offered is the rate answered within the measured seconds over the offered rate: well under 100% means the server did not keep up and its latencies are queueing; over 100% means it was draining a queue built during the warm-up.')
    // The floor does the least work per message: if it fell behind, the machine did.
    const floor = r.servers[FLOOR]
    if (floor && floor.rate < 0.95 * r.offeredRate) out.push(`**The floor answered only ${pct(floor.rate / r.offeredRate)} of the offered rate**: at this rate the load generator (one write per message) and the servers saturate these cores, so every latency here is mostly queueing, not the server's own.`)
  }
  if (r.load) out.push(`Load: \`${r.load}\``)
  return out.flatMap((l) => [l, ''])
}

// Workloads by what they measure, not by name, so renamed tables still find their targets.
const closedLoop = (size, conns, depth) => (r) => r.kind === 'closed' && r.mode === 'closed' && r.size === size && r.conns === conns && r.depth === depth

/** The issue's targets, checked against this run's medians (reported, never asserted). */
function targets(results) {
  const out = ['## Targets', '', 'iocpgen in its default configuration; ratios are iocpgen / peer in the same run (the median of the rounds\' ratios).', '', '| target | workload | measured | verdict |', '| --- | --- | ---: | --- |']
  const row = (target, w, value, met, by) => out.push(`| ${target} | ${w} | ${value} | ${met ? 'met' : `missed by ${by}`} |`)
  // A near miss keeps enough digits that it never reads as the target itself, nor as 0%.
  const ratioRow = (target, w, a, goal, atMost = false) => {
    if (!Number.isFinite(a)) return
    const met = atMost ? a <= goal : a >= goal
    const miss = (atMost ? a / goal - 1 : 1 - a / goal) * 100
    let d = 2
    while (!met && d < 6 && a.toFixed(d) === goal.toFixed(d)) d++
    let m = 0
    while (!met && m < 4 && Number(miss.toFixed(m)) === 0) m++
    row(target, w, `${a.toFixed(d)}x`, met, `${miss.toFixed(m)}%`)
  }
  const bytesRow = (target, w, v, goal) => {
    if (!Number.isFinite(v)) return
    row(target, w, `${fmt(v)} B`, v <= goal, `${((v / goal - 1) * 100).toFixed(0)}%`)
  }
  const find = (test) => results.find((r) => test(r) && r.servers.iocpgen && r.ratios.iocpgen)
  const rates = [
    [closedLoop(64, 50, 8), 'echo 64 B × 50, 8 in flight', {'C epoll': 1.0, 'node net (decoding)': 2.0, 'node net': 1.5}],
    [closedLoop(1024, 50, 8), 'echo 1 KiB × 50, 8 in flight', {'C epoll': 0.8, 'node net (decoding)': 1.5, 'node net': 1.0}],
    [closedLoop(64, 50, 1), 'request/response 64 B × 50, 1 in flight', {'C epoll': 0.9, 'node net (decoding)': 1.3, 'node net': 1.1}],
  ]
  for (const [test, what, goals] of rates) {
    const r = find(test)
    if (!r) continue
    for (const [peer, goal] of Object.entries(goals)) if (r.ratios.iocpgen[peer]) ratioRow(`${what}: ≥ ${goal.toFixed(1)}x ${peer}`, r.workload, r.ratios.iocpgen[peer].rate, goal)
  }
  const open = find((r) => r.kind === 'open')
  if (open) {
    for (const peer of ['node net', 'node net (decoding)']) {
      if (open.ratios.iocpgen[peer]) ratioRow(`p99 at half of Node's max rate: ≤ 0.5x ${peer}'s p99`, open.workload, open.ratios.iocpgen[peer].p99_us, 0.5, true)
    }
  }
  const fanout = find((r) => r.kind === 'fanout')
  if (fanout?.ratios.iocpgen['node net']) ratioRow('fan-out: ≥ 3x Node', fanout.workload, fanout.ratios.iocpgen['node net'].rate, 3)
  const held = results.find((r) => r.kind === 'shards-idle')
  if (held) row(`${fmt(held.conns)} idle connections held across ≥ 6 shards`, held.workload, `${fmt(held.held)} held`, held.allHeld && held.shards >= 6, `${fmt(held.conns - held.held)} connections`)
  const idle = find((r) => r.kind === 'idle')
  if (idle) {
    bytesRow('idle: ≤ 256 B RSS per connection', idle.workload, idle.servers.iocpgen.rssPerConn, 256)
    bytesRow('idle, after one message each: ≤ 1 KiB RSS per connection', idle.workload, idle.servers.iocpgen.rssPerConnAfterOne, 1024)
  }
  return out.length > 6 ? out : []
}

/** Says what the second and third iocpgen rows are, when the run had them. */
function configs(results) {
  const ran = new Set(results.flatMap((r) => Object.keys(r.servers ?? {})))
  const out = []
  if (ran.has('iocpgen (I/O threads)')) out.push('iocpgen (I/O threads) is the same generated server run with `IOCPGEN_JS_THREAD_IO=0`: the core\'s I/O worker threads drive the sockets instead of the JS thread.')
  if (ran.has('iocpgen +10us')) out.push('iocpgen +10us is the same server spending 10 µs of busy work in each handler call.')
  return out
}

export function writeReport(dir, meta, results) {
  const command = `RUNS=${meta.runs} SECONDS=${meta.seconds} IDLE_CONNS=${meta.idleConns} FANOUT_MEMBERS=${meta.fanoutMembers} npm run bench`
  const md = [
    '# Benchmark results',
    '',
    `Run on ${meta.date}, Node ${meta.node}, ${meta.cores} cores (shared, loopback); ${meta.runs} rounds of ${meta.seconds} s per server and workload, every server in the same run, interleaved round by round; figures are medians over the rounds.`,
    `Reproduce: \`${command}\``,
    'Load: `bench/build/loadgen` (closed loop with a number of messages in flight per connection; open loop at a fixed rate; churn; idle) and `bench/build/fanout` (group fan-out); both check every reply. Each table gives its exact command line (P is the server\'s port).',
    'Ratios are iocpgen / peer, the median of the ratios of each round (servers of a round run back to back): above 1 is faster for rates, below 1 is better for latency, CPU and memory.',
    `Of floor is each server's rate over that of ${FLOOR}, a C epoll server that writes back the bytes it reads without parsing frames (the most any server can do here); the median of the rounds' shares.`,
    ...configs(results),
    'Server CPU is user + system time of the server process over the run, divided by the messages (deliveries for fan-out, connections for churn).',
    `RSS per connection is the server's RSS growth over its RSS before the load, divided by the connections. Idle: ${fmt(meta.idleConns)} connections per server, spread over 127.0.0.x source addresses (the container's hard NOFILE limit, 20,000, caps one process; 100,000 across shards is under "Shards").`,
    '',
  ]
  for (const r of results.filter((r) => r.group !== 'shards')) md.push(`## ${r.workload}`, '', ...ranApart(r, meta), ...about(r), ...table(r), '')
  md.push(...shardsSection(results, meta), ...clusterSection(dir))
  const t = targets(results)
  if (t.length) md.push(...t, '')
  const analysis = join(dir, 'analysis.md')
  if (existsSync(analysis)) md.push(readFileSync(analysis, 'utf8').trim(), '')
  writeFileSync(join(dir, 'results.md'), md.join('\n'))
  writeFileSync(join(dir, 'results.svg'), chart(results))
}

const mib = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`
const readJson = (file) => (existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : undefined)

/** The command that reruns one row alone, with the rounds it ran. */
const rerun = (r) => `${r.kind === 'shards-idle' ? '' : `RUNS=${r.run.runs} SECONDS=${r.run.seconds} `}node bench/run.mjs --only ${r.id}`

/** A row from another run than the file's (a merged --only run) says when and how it ran. */
function ranApart(r, meta) {
  if (!r.run || !r.id || (r.run.date === meta.date && r.run.runs === meta.runs && r.run.seconds === meta.seconds && r.run.node === meta.node)) return []
  return [`Run on ${r.run.date}, Node ${r.run.node}, ${r.run.runs} rounds of ${r.run.seconds} s, apart from the run above: \`${rerun(r)}\``, '']
}

/** Shards (rows of group "shards" in results.json): idle connections across shards; echo on 1 and 2 shards. */
function shardsSection(results, meta) {
  const rows = results.filter((r) => r.group === 'shards')
  if (!rows.length) return []
  const out = [
    '## Shards',
    '',
    'The bench echo server started as `npm start` starts it (`node dist/src/main.js`) with `IOCPGEN_SHARDS=N`: for N > 1 a supervisor forking N shard processes that share the port (SO_REUSEPORT; the kernel spreads the accepts), with `STATS_FILE` for the shards\' stats added up. For N = 1 the server runs in the process itself. Every server figure is of all its processes (supervisor and shards).',
    '',
  ]
  const idle = rows.find((r) => r.kind === 'shards-idle')
  if (idle) {
    const b = idle.before
    const h = idle.holding
    const shardRss = (m) => m.shards.reduce((t, p) => t + p.rss, 0)
    const line = (what, v0, v1, per = true) => `| ${what} | ${mib(v0)} | ${mib(v1)} | ${mib(v1 - v0)} | ${per ? `${fmt((v1 - v0) / Math.max(1, idle.held))} B` : ''} |`
    const verdict = idle.allHeld
      ? `**All ${fmt(idle.conns)} connections held**`
      : `**Missed: ${fmt(idle.held)} of ${fmt(idle.conns)} held** (load generators connected ${fmt(idle.loadgensConnected)}, ${fmt(idle.connectFailures)} connect failures${idle.loadErrors.length ? `; ${idle.loadErrors.join('; ')}` : ''})`
    out.push(
      `### ${idle.workload}`,
      '',
      `Run on ${idle.run.date}, Node ${idle.run.node}, ${idle.run.cores} cores. Reproduce: \`${rerun(idle)}\` (stops by itself: connect, hold ${idle.hold} s, drain).`,
      `Load: \`${idle.load}\`, each load generator spreading its connections over the source addresses ${idle.sources} (up to ${fmt(idle.perLoader)} connections per process, under the 20,000 open files one process may hold here).`,
      '',
      `${verdict} on ${idle.shards} shards, by the server's own stats both right after the load generators were up (all connected ${idle.connectSeconds.toFixed(1)} s after they started) and again near the end of the hold: ${fmt(idle.stats.first.connections)} then ${fmt(idle.stats.last.connections)} connections, ${idle.stats.last.shardsReporting} of ${idle.shards} shards reporting, ${idle.stats.last.shardRestarts} restarts. Per shard: ${idle.perShard.map((p) => fmt(p.connections)).join(', ')}.`,
      '',
      '| server memory | before | holding | growth | per connection |',
      '| --- | ---: | ---: | ---: | ---: |',
      line('supervisor RSS', b.supervisor.rss, h.supervisor.rss, false),
      line(`${idle.shards} shards' RSS`, shardRss(b), shardRss(h)),
      line('**total RSS**', b.rss, h.rss),
      line('total PSS (shared pages split between the processes)', b.pss, h.pss),
      line('kernel TCP memory (the whole machine, both ends)', b.kernelTcp, h.kernelTcp, false),
      '',
      `Before: 1 s after the server listens; holding: 1.5 s after the last load generator is up. Per connection: growth over the connections held.`,
      '',
      `The server's total memory while holding them: ${mib(h.rss)} RSS over its ${idle.shards + 1} processes (${mib(h.pss)} PSS: each process's RSS counts the pages it shares with the others, the Node binary and libraries, in full). Most of it is there before the first connection: each shard is a Node process with its runtime, heap and native pools (${mib(shardRss(b) / idle.shards)} RSS per shard idle here); the connections add ${fmt(idle.rssPerConn)} B each.`,
      '',
    )
  }
  const echo = rows.find((r) => r.id === 'shards-echo')
  if (echo) {
    const one = echo.servers['iocpgen, 1 shard']
    const two = echo.servers['iocpgen, 2 shards']
    const q = echo.twoOverOne
    const cores = (v) => (Number.isFinite(v) ? v.toFixed(2) : 'n/a')
    out.push(
      `### ${echo.workload}`,
      '',
      `Run on ${echo.run.date}, Node ${echo.run.node}, ${echo.run.cores} cores; ${echo.run.runs} rounds of ${echo.run.seconds} s, the two servers interleaved in every round (order alternating), medians over the rounds. Reproduce: \`${rerun(echo)}\`.`,
      `Load: \`${echo.load}\` (the load of "echo 64 B, 50 conns, 8 in flight").`,
      '',
      '| server | msgs/s | p50 µs | p99 µs | p99.9 µs | server CPU µs/msg | cores: server | cores: load generator | cores: other processes |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...[
        ['1 shard (`IOCPGEN_SHARDS=1`)', one],
        ['2 shards (`IOCPGEN_SHARDS=2`)', two],
      ].map(([n, v]) => `| ${n} | ${fmt(v.rate)} | ${fmt(v.p50_us)} | ${fmt(v.p99_us)} | ${fmt(v.p999_us)} | ${v.cpuPerMsgUs.toFixed(2)} | ${cores(v.serverCores)} | ${cores(v.loadCores)} | ${cores(v.otherCores)} |`),
      '',
      `**2 shards / 1 shard: ${x(q.rate)} the rate**, ${x(q.p99_us)} the p99, ${x(q.cpuPerMsgUs)} the server CPU per message (medians of the rounds' ratios).`,
      '',
      `Cores are CPU seconds over the load's wall time (connect and warm-up included): of the server's processes, of the load generator (its own getrusage), and of everything else on the machine (busy time in /proc/stat less those two). The machine has ${echo.run.cores} cores.`,
    )
    const others = Math.max(one.otherCores ?? 0, two.otherCores ?? 0)
    const ratios = (echo.rounds ?? []).map((r) => r.rateTwoOverOne)
    const noisy = ratios.length > 1 && Math.max(...ratios) / Math.min(...ratios) > 1.2
    if (others > 0.2) out.push(`**Other processes used ${cores(one.otherCores)} (1 shard) and ${cores(two.otherCores)} (2 shards) cores during these runs** (medians; the machine is shared): the servers ran on what was left, so the rates are lower than on a quiet machine${noisy ? ', and the contention changed from round to round: the rounds\' ratios spread widely (below), so the median is noisy' : ''}.`)
    if (echo.rounds) {
      out.push('', '| round | 1 shard msgs/s | 2 shards msgs/s | 2 / 1 | cores: other processes (1 shard; 2 shards) |', '| ---: | ---: | ---: | ---: | ---: |')
      echo.rounds.forEach((r, i) => out.push(`| ${i + 1} | ${fmt(r.oneShard.rate)} | ${fmt(r.twoShards.rate)} | ${x(r.rateTwoOverOne)} | ${cores(r.oneShard.otherCores)}; ${cores(r.twoShards.otherCores)} |`))
      out.push('')
    }
    out.push(
      `Server, load generator and other processes together kept ${cores(one.serverCores + one.loadCores + one.otherCores)} of the ${echo.run.cores} cores busy with 1 shard and ${cores(two.serverCores + two.loadCores + two.otherCores)} with 2. With 2 shards the server's processes used ${cores(two.serverCores)} cores against ${cores(one.serverCores)} with 1, at ${x(q.cpuPerMsgUs)} the CPU per message, and the load generator got ${cores(two.loadCores)} against ${cores(one.loadCores)}. On ${echo.run.cores} cores shared with the load generator, a second shard has no core of its own: it competes with the first and with the load generator, and each message costs more (not profiled: likely fewer messages per event-loop wake-up in each shard, and two processes' fixed costs). Shards are for machines with cores to spare, and for holding more connections than one process may open (above); this machine cannot show the first.`,
      '',
    )
  }
  return out
}

/** bench/results-cluster.json (node bench/cluster.mjs): the chat example's shards on NATS. */
function clusterSection(dir) {
  const r = readJson(join(dir, 'results-cluster.json'))
  if (!r) return []
  const l = r.latency
  const us = (v) => `${fmt(v)} µs`
  return [
    '## Cluster (NATS)',
    '',
    `Run on ${r.date}, Node ${r.node}, ${r.cores} cores, nats-server with JetStream on the same machine. Reproduce: \`RUNS=${r.runs} SECONDS=${r.seconds} node bench/cluster.mjs\`. Four shard processes of the bench chat server (the chat example's handlers), each on its own port so the harness chooses who is where, joined through one nats-server; clients in Node.`,
    '',
    `**Private messages**, ${r.pairs} pairs, one in flight each, timed from the sender's write to the receiver's read of \`PrivateDeliver\`:`,
    '',
    '| | p50 | p99 |',
    '| --- | ---: | ---: |',
    `| both users on one shard | ${us(l.sameP50)} | ${us(l.sameP99)} |`,
    `| on two shards (through NATS) | ${us(l.crossP50)} | ${us(l.crossP99)} |`,
    `| cross / same | ${x(l.crossOverSameP50)} | ${x(l.crossOverSameP99)} |`,
    '',
    `**Group fan-out**: one sender, ${fmt(r.members)} members spread evenly over 1, 2 or 4 shards, 64 B, 8 messages in flight (a message counts once it reached each shard's last member):`,
    '',
    '| members on | deliveries/s | vs one shard | join, per member |',
    '| --- | ---: | ---: | ---: |',
    ...[1, 2, 4].map((k) => `| ${k} shard${k > 1 ? 's' : ''} | ${fmt(r.fanout[k].deliveriesPerSec)} | ${x(r.fanout[k].vsOneShard)} | ${r.fanout[k].joinMsPerMember === undefined ? '—' : `${r.fanout[k].joinMsPerMember.toFixed(1)} ms`} |`),
    '',
    'The members join before the clock starts, all at once. A join holds the group\'s cluster lock while it lists the members on every shard (a NATS request that waits 50 ms for the last shard to answer), so joins of one group happen one at a time: "join, per member" is the time all the joins took, divided by the members.',
    '',
    `**nats-server's CPU**: ${pct(r.natsCpuShare)} of the CPU time of nats-server and the four shards together over these workloads.`,
    '',
    'A cross-shard private message is a NATS request: the holder\'s shard queues it and replies, so the sender\'s acknowledgement means delivered. It crosses two more processes and two more loopback hops than one within a shard. A broadcast crosses NATS once per shard that has members (published once; interest-based), so fan-out over more shards adds a hop per shard and, on 2 cores, more processes contending for them.',
    '',
  ]
}

const esc = (t) => String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
const COLORS = {'node net': '#c05621', 'node net (decoding)': '#ed8936', 'C epoll': '#4a5568', [FLOOR]: '#a0aec0'}

/**
 * iocpgen's standing against each peer, one group of bars per main workload (echo,
 * request/response, latency at a fixed rate, fan-out). Every bar reads "right of 1x is
 * iocpgen better": the rate ratio, or for the fixed rate the peer's p99 over iocpgen's. The
 * scale is logarithmic so 0.5x and 2x sit the same distance from 1x.
 */
function chart(results) {
  const main = results.filter((r) => (r.kind === 'closed' && !isChurn(r)) || r.kind === 'open' || r.kind === 'fanout')
  const better = (r, q) => (r.kind === 'open' ? 1 / q.p99_us : q.rate)
  const groups = main.map((r) => {
    const mine = Object.keys(r.ratios).filter((n) => !n.includes('+')) // handler work is no comparison
    const bars = mine.flatMap((n) => PEERS.filter((p) => r.ratios[n][p]).map((p) => ({label: `${n} vs ${p}`, peer: p, v: better(r, r.ratios[n][p])})))
    return {r, bars: bars.filter((b) => Number.isFinite(b.v) && b.v > 0)}
  })
  const all = groups.flatMap((g) => g.bars.map((b) => Math.abs(Math.log2(b.v))))
  const span = Math.max(1, Math.ceil(Math.max(0, ...all))) // log2 units each side of 1x
  const rowH = 18
  const labelW = 300 // fits 'iocpgen (I/O threads) vs node net (decoding)'
  const plotW = 440
  const mid = labelW + plotW / 2
  const at = (v) => mid + (Math.log2(v) / span) * (plotW / 2)
  const height = 70 + groups.reduce((h, g) => h + g.bars.length * rowH + 28, 0)
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + plotW + 90}" height="${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">iocpgen against each peer, same run (median of the rounds' ratios; log scale)</text>`,
    `<text x="10" y="38">Right of 1x: iocpgen better. Rate ratio; for the fixed rate, peer's p99 / iocpgen's p99.</text>`,
  ]
  let y0 = 50
  for (const {r, bars} of groups) {
    out.push(`<text x="10" y="${y0 + 12}" font-weight="bold">${esc(r.workload)}${r.kind === 'open' ? ' (p99)' : ''}</text>`)
    bars.forEach((b, i) => {
      const y = y0 + 20 + i * rowH
      const x1 = Math.max(labelW, Math.min(labelW + plotW, at(b.v)))
      out.push(`<text x="${labelW - 8}" y="${y + 12}" text-anchor="end">${esc(b.label)}</text>`)
      out.push(`<rect x="${Math.min(mid, x1).toFixed(1)}" y="${y}" width="${Math.max(1, Math.abs(x1 - mid)).toFixed(1)}" height="${rowH - 4}" fill="${COLORS[b.peer] ?? '#718096'}"/>`)
      out.push(`<text x="${(Math.max(mid, x1) + 6).toFixed(1)}" y="${y + 12}">${b.v.toFixed(2)}x</text>`)
    })
    y0 += bars.length * rowH + 28
  }
  out.push(`<line x1="${mid}" y1="46" x2="${mid}" y2="${y0 - 8}" stroke="#000000" stroke-width="1"/>`)
  out.push(`<text x="${mid}" y="${y0 + 4}" text-anchor="middle">1x</text>`)
  out.push(`<text x="${labelW}" y="${y0 + 4}">1/${2 ** span}x</text>`)
  out.push(`<text x="${labelW + plotW}" y="${y0 + 4}" text-anchor="end">${2 ** span}x</text>`)
  out.push('</svg>')
  return out.join('\n') + '\n'
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const dir = fileURLToPath(new URL('.', import.meta.url))
  const {meta, results} = JSON.parse(readFileSync(join(dir, 'results.json'), 'utf8'))
  writeReport(dir, meta, results)
  console.log('bench: wrote bench/results.md and bench/results.svg from bench/results.json')
}
