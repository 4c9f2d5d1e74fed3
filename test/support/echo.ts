// An echo project as a user makes one (`iocpgen new --spec examples/echo/echo.yaml`, the
// example's handler filled in), and a client that checks every echo byte for byte.
import {copyFileSync} from 'node:fs'
import {connect, type Socket} from 'node:net'
import {join} from 'node:path'

import {compileProject, projectDir, root} from './project.js'
import {runOrThrow} from './run.js'

/** A compiled echo project under .cache/projects: its template main.ts, the example's handler. */
export async function echoProject(): Promise<string> {
  const dir = projectDir('echo')
  await runOrThrow(process.execPath, [join(root, 'bin', 'run.js'), 'new', dir, '--spec', join(root, 'examples', 'echo', 'echo.yaml'), '--no-install'], {cwd: root})
  copyFileSync(join(root, 'examples', 'echo', 'src', 'handlers', 'echo.ts'), join(dir, 'src', 'handlers', 'echo.ts'))
  await compileProject(dir)
  return dir
}

/** One Echo frame (type id 1, `data: bytes<4096>`): u32 length, u16 type, u16 byte count, bytes. */
export function echoFrame(text: string): Buffer {
  const data = Buffer.from(text)
  const f = Buffer.alloc(8 + data.length)
  f.writeUInt32LE(4 + data.length, 0)
  f.writeUInt16LE(1, 4)
  f.writeUInt16LE(data.length, 6)
  data.copy(f, 8)
  return f
}

/** A connection that sends numbered frames and keeps what comes back. */
export class EchoClient {
  readonly s: Socket
  sent = Buffer.alloc(0)
  got = Buffer.alloc(0)
  frames = 0
  reset = false
  ended = false
  readonly closed: Promise<void>
  readonly connected: Promise<void>

  constructor(
    port: number,
    readonly name: string,
  ) {
    this.s = connect({port, host: '127.0.0.1'})
    this.s.setNoDelay(true)
    this.connected = new Promise((resolve, reject) => {
      this.s.once('connect', resolve)
      this.s.once('error', reject)
    })
    this.connected.catch(() => {})
    this.s.on('error', () => (this.reset = true))
    this.s.on('end', () => (this.ended = true))
    this.s.on('data', (d: Buffer) => (this.got = Buffer.concat([this.got, d])))
    this.closed = new Promise((resolve) => this.s.on('close', () => resolve()))
  }

  /** Sends the next `n` frames. */
  send(n = 1): void {
    const out: Buffer[] = []
    for (let i = 0; i < n; i++) out.push(echoFrame(`${this.name}#${this.frames++}`))
    const b = Buffer.concat(out)
    this.sent = Buffer.concat([this.sent, b])
    if (!this.s.destroyed) this.s.write(b)
  }

  /** Every byte sent has come back, as sent. */
  get answered(): boolean {
    return this.got.length === this.sent.length && this.got.equals(this.sent)
  }

  /** What came back is what was sent, so far. */
  get faithful(): boolean {
    return this.got.equals(this.sent.subarray(0, this.got.length))
  }

  /** Resolves when every frame sent so far has come back; rejects after `ms` or if the connection ends first. */
  async echoed(ms = 10_000): Promise<void> {
    const until = Date.now() + ms
    while (!this.answered) {
      if (this.s.destroyed) throw new Error(`${this.name}: connection closed with ${this.got.length} of ${this.sent.length} bytes back`)
      if (Date.now() > until) throw new Error(`${this.name}: ${this.got.length} of ${this.sent.length} bytes back after ${ms} ms`)
      await new Promise((r) => setTimeout(r, 10))
    }
  }
}
