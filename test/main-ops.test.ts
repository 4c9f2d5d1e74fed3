// What an operator meets running a generated project's main.ts (npm start): a port in use
// is one line naming it, alone or with shards, and the stats hooks work as its README says.
import {type ChildProcess, spawn} from 'node:child_process'
import {existsSync, readFileSync} from 'node:fs'
import {createServer, type Server} from 'node:net'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {echoProject} from './support/echo.js'

let dir = ''
let holder: Server
let taken = 0

beforeAll(async () => {
  dir = await echoProject()
  holder = createServer()
  await new Promise<void>((resolve) => holder.listen(0, '0.0.0.0', resolve))
  taken = (holder.address() as {port: number}).port
}, 240_000)
afterAll(() => holder?.close())

/** Runs main.js to its exit (at most `ms`), with what it printed. */
function runMain(env: Record<string, string>, ms = 20_000): Promise<{code: number | null; stdout: string; stderr: string}> {
  const child = spawn(process.execPath, ['dist/src/main.js'], {cwd: dir, env: {...process.env, ...env}})
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const timer = setTimeout(() => child.kill('SIGKILL'), ms)
  return new Promise((resolve) => child.on('exit', (code) => (clearTimeout(timer), resolve({code, stdout, stderr}))))
}

describe('npm start on a port in use', () => {
  it.each([['1'], ['2']])('with %s shard(s): one line naming the port, no stack, no restarts, exit 1', async (shards) => {
    const r = await runMain({PORT: String(taken), IOCPGEN_SHARDS: shards})
    expect(r.code).toBe(1)
    const lines = r.stderr.split('\n').filter((l) => l && !l.includes('shards and no cluster'))
    expect(lines).toEqual([expect.stringMatching(new RegExp(`^echo: cannot start: (shard 0: )?port ${taken} on 0\\.0\\.0\\.0 is in use \\(EADDRINUSE\\): stop what holds it, or set PORT`))])
    expect(r.stdout).toBe('')
  }, 30_000)
})

describe("main.ts's stats hooks", () => {
  let child: ChildProcess | undefined
  afterAll(() => child?.kill('SIGKILL'))

  it('STATS_FILE is rewritten with the stats as JSON, and SIGUSR1 prints them as one line', async () => {
    const file = join(dir, 'stats.json')
    child = spawn(process.execPath, ['dist/src/main.js'], {cwd: dir, env: {...process.env, PORT: '0', STATS_FILE: file, STATS_EVERY_MS: '50'}})
    let out = ''
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    const until = Date.now() + 20_000
    while (!/listening on port \d+/.test(out) || !existsSync(file)) {
      if (Date.now() > until) throw new Error(`no stats file; printed: ${out}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    const stats = JSON.parse(readFileSync(file, 'utf8'))
    expect(stats).toMatchObject({at: expect.any(Number), connections: 0})
    child.kill('SIGUSR1')
    while (!/^stats \{/m.test(out)) {
      if (Date.now() > until) throw new Error(`no stats line after SIGUSR1; printed: ${out}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    expect(JSON.parse(/^stats (\{.*\})$/m.exec(out)![1]!)).toMatchObject({connections: 0})
  }, 30_000)
})
