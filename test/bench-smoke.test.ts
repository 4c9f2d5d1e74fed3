// The benchmark harness works end to end: every server starts, the load generator verifies
// every echo (closed loop, accept churn, idle connections), and each produces a figure. It
// asserts no speed (speed lives in npm run bench).
import {spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import {join} from 'node:path'

import {expect, it} from 'vitest'

const root = join(import.meta.dirname, '..')

it('bench --smoke runs every server through each workload without errors', () => {
  const r = spawnSync(process.execPath, [join(root, 'bench', 'run.mjs'), '--smoke'], {cwd: root, encoding: 'utf8', timeout: 280_000})
  expect(r.status, r.stderr.slice(-3000)).toBe(0)
  expect(r.stdout).toContain('bench smoke: 3 workload(s) ran against 6 servers')
  const {results} = JSON.parse(readFileSync(join(root, 'bench', 'build', 'results-smoke.json'), 'utf8'))
  expect(results.map((w: {kind: string}) => w.kind)).toEqual(['closed', 'closed', 'idle'])
  const peers = ['C epoll', 'C raw echo (floor)', 'iocpgen', 'node net', 'node net (decoding)']
  expect(Object.keys(results[0].servers).sort()).toEqual([...peers, 'iocpgen +10us'].sort())
  for (const w of results.slice(1)) expect(Object.keys(w.servers).sort()).toEqual(peers)
  // Every server's share of the floor is there, and the floor's own is 1.
  for (const w of results) {
    expect(Object.keys(w.toFloor).sort()).toEqual(Object.keys(w.servers).sort())
    expect(w.toFloor['C raw echo (floor)']).toBe(1)
    expect(Object.keys(w.ratios.iocpgen).sort()).toEqual(['C epoll', 'C raw echo (floor)', 'node net', 'node net (decoding)'])
  }
  for (const w of results) {
    for (const s of Object.values(w.servers) as {rate: number; p99_us: number; rssPerConn: number}[]) {
      expect(s.rate).toBeGreaterThan(0)
      expect(s.p99_us).toBeGreaterThan(0)
      expect(s.rssPerConn).toBeGreaterThanOrEqual(0)
    }
  }
}, 300_000)
