// Writes bench/results.md (tables with ratios to each peer) and bench/results.svg (a bar chart
// of throughput) from one run's medians.
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

const PEERS = ['node net', 'C epoll']
const fmt = (n) => Math.round(n).toLocaleString('en-US')
const ratio = (a, b) => (b ? `${(a / b).toFixed(2)}x` : 'n/a')

export function writeReport(dir, meta, results) {
  const md = [
    '# Benchmark results',
    '',
    `Run on ${meta.date}, Node ${meta.node}, ${meta.cores} cores, median of ${meta.runs} runs of ${meta.seconds} s each, every server in the same run, interleaved.`,
    'Reproduce: `npm run bench`. Load: `bench/build/loadgen`, closed loop (pipelined) on loopback.',
    'Throughput ratios are iocpgen / peer (above 1 is faster); latency and CPU ratios are iocpgen / peer (below 1 is better).',
    '',
  ]
  for (const r of results) {
    md.push(`## ${r.workload}`, '', '| server | msgs/s | p50 µs | p99 µs | server CPU µs/msg | ' + PEERS.map((p) => `vs ${p}`).join(' | ') + ' |', '| --- | ---: | ---: | ---: | ---: | ' + PEERS.map(() => '---:').join(' | ') + ' |')
    for (const [name, s] of Object.entries(r.servers)) {
      const vs = PEERS.map((p) => (r.servers[p] && !PEERS.includes(name) ? `${ratio(s.rate, r.servers[p].rate)} msgs/s, ${ratio(s.cpuPerMsgUs, r.servers[p].cpuPerMsgUs)} CPU` : ''))
      md.push(`| ${name} | ${fmt(s.rate)} | ${fmt(s.p50_us)} | ${fmt(s.p99_us)} | ${s.cpuPerMsgUs.toFixed(2)} | ${vs.join(' | ')} |`)
    }
    md.push('')
  }
  writeFileSync(join(dir, 'results.md'), md.join('\n'))
  writeFileSync(join(dir, 'results.svg'), chart(results))
}

const COLORS = {'iocpgen': '#2b6cb0', 'iocpgen +10us': '#63b3ed', 'node net': '#c05621', 'C epoll': '#4a5568'}

function chart(results) {
  const names = [...new Set(results.flatMap((r) => Object.keys(r.servers)))]
  const rowH = 18
  const groupH = names.length * rowH + 26
  const labelW = 170
  const plotW = 520
  const height = results.length * groupH + 50
  const max = Math.max(...results.flatMap((r) => Object.values(r.servers).map((s) => s.rate)))
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${labelW + plotW + 120}" height="${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<text x="10" y="20" font-size="14" font-weight="bold">Echo throughput, messages per second (median)</text>`,
  ]
  results.forEach((r, g) => {
    const y0 = 40 + g * groupH
    out.push(`<text x="10" y="${y0 + 12}" font-weight="bold">${r.workload}</text>`)
    names.forEach((n, i) => {
      const s = r.servers[n]
      if (!s) return
      const y = y0 + 20 + i * rowH
      const w = Math.max(1, (s.rate / max) * plotW)
      out.push(`<text x="${labelW - 8}" y="${y + 12}" text-anchor="end">${n}</text>`)
      out.push(`<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${rowH - 4}" fill="${COLORS[n] ?? '#718096'}"/>`)
      out.push(`<text x="${labelW + w + 6}" y="${y + 12}">${fmt(s.rate)}</text>`)
    })
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}
