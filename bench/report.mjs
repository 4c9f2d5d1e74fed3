// Writes bench/results.md (tables with ratios to each peer and each server's share of the
// floor, the targets met or missed, and the hand-written analysis in bench/analysis.md) and
// bench/results.svg (a bar chart of throughput) from one run's medians.
import {existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

// The floor echoes bytes without parsing frames: no framed server can beat it on this machine.
export const FLOOR = 'C raw echo (floor)'
export const PEERS = ['node net', 'node net (decoding)', 'C epoll', FLOOR]
const fmt = (n) => Math.round(n).toLocaleString('en-US')
const x = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}x` : 'n/a')
const pct = (v) => (Number.isFinite(v) ? `${Math.round(v * 100)}%` : 'n/a')

const unit = (r) => (r.kind === 'fanout' ? 'deliveries/s' : r.kind === 'idle' ? 'msgs/s (one each)' : r.workload.startsWith('accept') ? 'conns/s' : 'msgs/s')

function table(r) {
  const idle = r.kind === 'idle'
  const peers = PEERS.filter((p) => r.servers[p])
  // Results written before the floor existed have no shares; their tables keep their columns.
  const floor = r.toFloor ? ['of floor'] : []
  const cols = [unit(r), ...floor, 'p50 µs', 'p99 µs', 'server CPU µs/msg', idle ? 'RSS B/conn idle' : 'RSS growth B/conn', ...(idle ? ['RSS B/conn after one msg'] : []), ...peers.map((p) => `vs ${p}`)]
  const out = [`| server | ${cols.join(' | ')} |`, `| --- | ${cols.map(() => '---:').join(' | ')} |`]
  for (const [name, s] of Object.entries(r.servers)) {
    const vs = peers.map((p) => {
      if (PEERS.includes(name)) return ''
      const q = r.ratios[name][p]
      const mem = idle ? `, ${x(q.rssPerConn)} RSS` : ''
      return `${x(q.rate)} rate, ${x(q.cpuPerMsgUs)} CPU${mem}`
    })
    const cells = [fmt(s.rate), ...(r.toFloor ? [pct(r.toFloor[name])] : []), fmt(s.p50_us), fmt(s.p99_us), s.cpuPerMsgUs.toFixed(2), fmt(s.rssPerConn), ...(idle ? [fmt(s.rssPerConnAfterOne)] : []), ...vs]
    out.push(`| ${name} | ${cells.join(' | ')} |`)
  }
  return out
}

/** The issue's targets, checked against this run's medians (reported, never asserted). */
function targets(results) {
  const out = ['## Targets', '', '| target | workload | measured | verdict |', '| --- | --- | ---: | --- |']
  const row = (target, w, value, met, by) => out.push(`| ${target} | ${w} | ${value} | ${met ? 'met' : `missed by ${by}`} |`)
  // A near miss keeps enough digits that it never reads as the target itself.
  const ratioRow = (target, w, a, goal) => {
    const short = a < goal && (a.toFixed(2) === goal.toFixed(2) || (1 - a / goal) * 100 < 0.5)
    row(target, w, `${a.toFixed(short ? 3 : 2)}x`, a >= goal, `${((1 - a / goal) * 100).toFixed(short ? 1 : 0)}%`)
  }
  for (const r of results) {
    const me = r.servers.iocpgen
    if (!me) continue
    const vs = r.ratios.iocpgen
    if (r.kind === 'closed' && r.workload.startsWith('echo')) {
      ratioRow('echo ≥ 1.5x Node net', r.workload, vs['node net'].rate, 1.5)
      ratioRow('echo ≥ 1.0x C epoll', r.workload, vs['C epoll'].rate, 1)
    } else if (r.kind === 'fanout') {
      ratioRow('fan-out ≥ 3x Node net', r.workload, vs['node net'].rate, 3)
    } else if (r.kind === 'idle') {
      row('idle ≤ 256 B/conn', r.workload, `${fmt(me.rssPerConn)} B`, me.rssPerConn <= 256, `${fmt(me.rssPerConn - 256)} B`)
    }
  }
  return out
}

export function writeReport(dir, meta, results) {
  const md = [
    '# Benchmark results',
    '',
    `Run on ${meta.date}, Node ${meta.node}, ${meta.cores} cores (shared, loopback), median of ${meta.runs} runs of ${meta.seconds} s each; every server in the same run, interleaved round by round.`,
    'Reproduce: `npm run bench` (env RUNS, SECONDS, IDLE_CONNS, FANOUT_MEMBERS override the defaults).',
    'Load: `bench/build/loadgen` (closed loop with a pipeline depth; churn; idle) and `bench/build/fanout` (group fan-out); both check every reply.',
    'Ratios are iocpgen / peer, the median of the ratios of each round (servers of a round run back to back): above 1 is faster for rates, below 1 is better for CPU and memory. Absolute figures are medians over the rounds.',
    `Of floor is each server's rate over that of ${FLOOR}, a C epoll server that writes back the bytes it reads without parsing frames (the most any server can do here); the median of the rounds' shares.`,
    'Server CPU is user + system time of the server process over the run, divided by the messages (deliveries for fan-out, connections for churn).',
    `RSS per connection is the server's RSS growth over its RSS before the load, divided by the connections. Idle: ${fmt(meta.idleConns)} connections per server, spread over 127.0.0.x source addresses; the container's hard NOFILE limit (20,000) rules out the issue's 100,000.`,
    '',
  ]
  for (const r of results) md.push(`## ${r.workload}`, '', ...table(r), '')
  md.push(...targets(results), '')
  const analysis = join(dir, 'analysis.md')
  if (existsSync(analysis)) md.push(readFileSync(analysis, 'utf8').trim(), '')
  writeFileSync(join(dir, 'results.md'), md.join('\n'))
  writeFileSync(join(dir, 'results.svg'), chart(results))
}

const COLORS = {'iocpgen': '#2b6cb0', 'iocpgen +10us': '#63b3ed', 'node net': '#c05621', 'node net (decoding)': '#ed8936', 'C epoll': '#4a5568', [FLOOR]: '#a0aec0'}

// One group of bars per workload, each scaled to that workload's fastest server: the
// workloads' rates differ by orders of magnitude.
function chart(results) {
  const names = [...new Set(results.flatMap((r) => Object.keys(r.servers)))]
  const rowH = 18
  const labelW = 140 // fits 'node net (decoding)'
  const plotW = 480
  const groups = results.map((r) => names.filter((n) => r.servers[n]))
  const height = 50 + groups.reduce((h, g) => h + g.length * rowH + 28, 0)
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + plotW + 180}" height="${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="10" y="20" font-size="14" font-weight="bold">Throughput per workload (median; bars scaled to each workload's fastest)</text>`,
  ]
  let y0 = 40
  results.forEach((r, g) => {
    const max = Math.max(...Object.values(r.servers).map((s) => s.rate))
    out.push(`<text x="10" y="${y0 + 12}" font-weight="bold">${r.workload} (${unit(r)})</text>`)
    groups[g].forEach((n, i) => {
      const s = r.servers[n]
      const y = y0 + 20 + i * rowH
      const w = Math.max(1, (s.rate / max) * plotW)
      out.push(`<text x="${labelW - 8}" y="${y + 12}" text-anchor="end">${n}</text>`)
      out.push(`<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 4}" fill="${COLORS[n] ?? '#718096'}"/>`)
      out.push(`<text x="${labelW + w + 6}" y="${y + 12}">${fmt(s.rate)}</text>`)
    })
    y0 += groups[g].length * rowH + 28
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}
