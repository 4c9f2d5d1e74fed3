// A NATS server of the test's own: JetStream on (the cluster keeps names in KV), on a free
// loopback port, in a directory of its own. Tests that need one fail when nats-server is missing.
import {type ChildProcess, spawn, spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {createServer} from 'node:net'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

export const natsMissing = (): string | undefined =>
  spawnSync('sh', ['-c', 'command -v nats-server']).status === 0 ? undefined : 'nats-server is not installed (Debian: apt-get install nats-server; .ci/run installs it)'

/** A free TCP port on loopback (closed again before it is returned). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const {port} = s.address() as {port: number}
      s.close(() => resolve(port))
    })
  })
}

export interface Nats {
  url: string
  port: number
  /** Stops the server (SIGTERM, then SIGKILL after 3 s); its JetStream store stays for restart(). */
  stop(): Promise<void>
  /** Starts it again on the same port with the same store (and, if given, another maxPending). */
  restart(options?: {maxPending?: string}): Promise<void>
  /** The server's log so far. */
  log(): string
  /** Removes everything: the process and its directory. */
  dispose(): Promise<void>
}

/** Starts nats-server; `maxPending` (at least 64KB, the largest message) bounds what it buffers for one slow client before cutting it off. */
export async function startNats(options: {maxPending?: string} = {}): Promise<Nats> {
  const missing = natsMissing()
  if (missing) throw new Error(missing)
  const dir = mkdtempSync(join(tmpdir(), 'iocpgen-nats-'))
  const port = await freePort()
  const conf = join(dir, 'nats.conf')
  const configure = (maxPending = '64MB') =>
    writeFileSync(conf, [`listen: "127.0.0.1:${port}"`, `jetstream {store_dir: "${join(dir, 'js')}"}`, `max_pending: ${maxPending}`, 'max_payload: 64KB', 'write_deadline: "2s"', ''].join('\n'))
  configure(options.maxPending)
  let child: ChildProcess | undefined
  let out = ''
  const launch = async () => {
    child = spawn('nats-server', ['-c', conf], {stdio: ['ignore', 'pipe', 'pipe']})
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
    const from = out.length  // a restart's log follows the last run's
    const until = Date.now() + 10_000
    while (!/Server is ready/.test(out.slice(from))) {
      if (child.exitCode !== null || Date.now() > until) throw new Error(`nats-server did not start: ${out}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  const stop = async () => {
    const c = child
    if (!c || c.exitCode !== null) return
    const exited = new Promise((r) => c.once('exit', r))
    c.kill('SIGTERM')
    const t = setTimeout(() => c.kill('SIGKILL'), 3000)
    await exited
    clearTimeout(t)
  }
  await launch()
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    stop,
    restart: async (again) => {
      await stop()
      if (again?.maxPending) configure(again.maxPending)
      out += '--- restart ---\n'
      await launch()
    },
    log: () => out,
    dispose: async () => {
      await stop()
      rmSync(dir, {recursive: true, force: true})
    },
  }
}
