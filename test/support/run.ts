// Runs a command without blocking the test worker. Builds and generated test runs can take
// minutes on a busy machine; a worker blocked that long in spawnSync cannot answer vitest's
// RPC, and the run fails with a timeout error.
import {spawn} from 'node:child_process'

export interface RunResult {
  status: number | null
  stdout: string
  stderr: string
  /** Set when the command could not be started (e.g. it is not installed). */
  error?: Error
}

export function run(cmd: string, args: string[], options: {cwd?: string; input?: string; env?: NodeJS.ProcessEnv} = {}): Promise<RunResult> {
  return new Promise((done) => {
    const child = spawn(cmd, args, {cwd: options.cwd, env: options.env})
    let stdout = ''
    let stderr = ''
    // Decoded as a stream: a UTF-8 character split across two chunks stays whole.
    child.stdout.setEncoding('utf8')
    child.stderr.setEncoding('utf8')
    child.stdout.on('data', (d: string) => (stdout += d))
    child.stderr.on('data', (d: string) => (stderr += d))
    child.on('error', (error) => done({status: null, stdout, stderr, error}))
    child.on('close', (status) => done({status, stdout, stderr}))
    // A command that exits before reading its input must not fail the test with EPIPE.
    child.stdin.on('error', () => {})
    child.stdin.end(options.input ?? '')
  })
}

/** Like run, but a failure throws with the command's output. */
export async function runOrThrow(cmd: string, args: string[], options: {cwd?: string; input?: string; env?: NodeJS.ProcessEnv} = {}): Promise<string> {
  const r = await run(cmd, args, options)
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed${r.error ? `: ${r.error.message}` : ''}\n${r.stdout}\n${r.stderr}`)
  return r.stdout
}
