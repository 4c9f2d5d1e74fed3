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
  expect(r.stdout).toContain('bench smoke: 3 workload(s) ran against 4 servers')
  const {results} = JSON.parse(readFileSync(join(root, 'bench', 'build', 'results-smoke.json'), 'utf8'))
  expect(results.map((w: {kind: string}) => w.kind)).toEqual(['closed', 'closed', 'idle'])
  expect(Object.keys(results[0].servers).sort()).toEqual(['C epoll', 'iocpgen', 'iocpgen +10us', 'node net'])
  for (const w of results.slice(1)) expect(Object.keys(w.servers).sort()).toEqual(['C epoll', 'iocpgen', 'node net'])
  for (const w of results) {
    for (const s of Object.values(w.servers) as {rate: number; p99_us: number; rssPerConn: number}[]) {
      expect(s.rate).toBeGreaterThan(0)
      expect(s.p99_us).toBeGreaterThan(0)
      expect(s.rssPerConn).toBeGreaterThanOrEqual(0)
    }
  }
}, 300_000)
