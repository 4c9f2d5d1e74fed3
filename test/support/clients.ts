// The server the generated clients' round-trip tests run against: a project generated from
// test/fixtures/specs/clients.yaml (every field kind, every message both ways) whose handlers
// log the canonical JSON of each message they decoded (canonical.ts) and send it straight back.
// A client then proves three things: what it sent is what the server decoded (the log), what
// came back is what it sent, and it decodes the server's encoding. An encoder and decoder
// wrong in the same way (byte order, say) pass the echo but not the log.
import {type ChildProcess, spawn} from 'node:child_process'
import {copyFileSync, existsSync, readFileSync, writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {validateSpecFile} from '../../src/spec/validate.js'
import type {TypeTable} from './canonical.js'
import {compileProject, projectDir, requireRuntimeBuilt, root} from './project.js'
import {runOrThrow} from './run.js'

export const clientsSpec = join(root, 'test', 'fixtures', 'specs', 'clients.yaml')

/** The fixture's types, as canonical.ts takes them. */
export function clientsTypes(): TypeTable {
  const spec = validateSpecFile(clientsSpec).spec
  if (!spec) throw new Error(`${clientsSpec} does not validate`)
  const fields = (fs: readonly {name: string; type: unknown}[]) => fs.map((f) => [f.name, f.type]) as [string, TypeTable['messages'][string][number][1]][]
  return {
    messages: Object.fromEntries(spec.messages.map((m) => [m.name, fields(m.fields)])),
    structs: Object.fromEntries(spec.structs.map((s) => [s.name, fields(s.fields)])),
    enums: Object.fromEntries(spec.enums.map((e) => [e.name, e.base])),
  }
}

/** Generates and compiles the round-trip project; returns its directory. */
export async function clientsProject(): Promise<string> {
  requireRuntimeBuilt('linux')
  const dir = projectDir('clients')
  await runOrThrow(process.execPath, [join(root, 'bin', 'run.js'), 'new', dir, '--spec', clientsSpec, '--no-install'], {cwd: root})
  const types = clientsTypes()
  copyFileSync(join(import.meta.dirname, 'canonical.ts'), join(dir, 'src', 'canonical.ts'))
  writeFileSync(join(dir, 'src', 'types.ts'), `import type {TypeTable} from './canonical.js'\nexport const types: TypeTable = ${JSON.stringify(types)}\n`)
  const names = Object.keys(types.messages)
  writeFileSync(
    join(dir, 'src', 'handlers', 'index.ts'),
    [
      "import {appendFileSync} from 'node:fs'",
      "import type {Handlers} from '../generated/handlers.js'",
      "import {canonicalMessage} from '../canonical.js'",
      "import {types} from '../types.js'",
      'const log = process.env.ROUNDTRIP_LOG!',
      'export const handlers: Handlers = {',
      ...names.map((n) => `  ${n}: (session, message) => { appendFileSync(log, JSON.stringify(canonicalMessage(types, '${n}', message)) + '\\n'); session.send('${n}', message) },`),
      '}',
      '',
    ].join('\n'),
  )
  writeFileSync(
    join(dir, 'src', 'roundtrip-main.ts'),
    `import {createServer} from './generated/server.js'
import {handlers} from './handlers/index.js'
const server = createServer(handlers, {port: 0, host: '127.0.0.1'})
const {port} = await server.start()
console.log(\`roundtrip listening on port \${port}\`)
process.once('SIGTERM', () => void server.stop().then(() => process.exit(0)))
`,
  )
  await compileProject(dir)
  return dir
}

export interface RoundTripServer {
  port: number
  /** The canonical messages the server has decoded, in order. */
  decoded(): {type: string; message: Record<string, unknown>}[]
  /** What the server printed, for failure messages. */
  output(): string
  stop(): Promise<void>
}

/** Starts the round-trip server of `dir` on a free port; `log` receives what it decodes. */
export async function startRoundTripServer(dir: string, log: string): Promise<RoundTripServer> {
  writeFileSync(log, '')
  const child: ChildProcess = spawn(process.execPath, ['dist/src/roundtrip-main.js'], {cwd: dir, env: {...process.env, ROUNDTRIP_LOG: log}, stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()))
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout!.on('data', () => {
      const m = /roundtrip listening on port (\d+)/.exec(out)
      if (m) resolve(Number(m[1]))
    })
    child.on('exit', () => reject(new Error(`round-trip server exited:\n${out}`)))
  })
  return {
    port,
    decoded: () =>
      existsSync(log)
        ? readFileSync(log, 'utf8')
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as {type: string; message: Record<string, unknown>})
        : [],
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}
