// The chat example's terminal client (examples/chat/src/client.ts), run as a user would: two of
// them against the built example's server, commands typed into their stdin, their output read.
import {type ChildProcess, spawn} from 'node:child_process'
import {writeFileSync} from 'node:fs'
import {join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {prepareCopy, type Running, startLinux} from './support/chat.js'

const TYPING = `import {connect} from './generated/client.js'
export function typing(): void {
  const client = connect({port: 7000})
  client.send('Login', {seq: 1, userId: 2, nick: 'a'})
  client.send('Ping', {nonce: 1})
  // @ts-expect-error: the server sends LoginOk, the client does not
  client.send('LoginOk', {userId: 1, online: 1})
  // @ts-expect-error: a field missing
  client.send('Login', {seq: 1, userId: 2})
  // @ts-expect-error: a field of the wrong type
  client.send('PrivateSend', {seq: 1, to: 2n, text: ''})
  client.on('PrivateDeliver', (m) => m.text.toUpperCase())
  client.on('Ping', (m) => m.nonce.toFixed())
  // @ts-expect-error: the client sends Login, it does not receive it
  client.on('Login', () => {})
  // @ts-expect-error: Ack has no text
  client.once('Ack', (m) => m.text)
  client.on('close', ({reconnecting}) => reconnecting === true)
  client.on('message', ({name, message}) => name === 'Ack' && message.status)
}
`

/** A client process: type lines, wait for output. */
interface Terminal {
  type(line: string): void
  /** Resolves with all output once it matches, or throws after ms. */
  waitFor(pattern: RegExp, ms?: number): Promise<string>
  output(): string
  exited: Promise<number | null>
  child: ChildProcess
}

describe('chat example: the terminal client', () => {
  let dir: string
  let server: Running
  const terminals: Terminal[] = []

  function terminal(userId: number, nick: string): Terminal {
    const child = spawn(process.execPath, ['dist/src/client.js', String(userId), nick], {cwd: dir, env: {...process.env, PORT: String(server.port), HOST: '127.0.0.1'}, stdio: ['pipe', 'pipe', 'pipe']})
    let out = ''
    const listeners = new Set<() => void>()
    const got = (d: Buffer) => {
      out += d.toString()
      for (const l of listeners) l()
    }
    child.stdout!.on('data', got)
    child.stderr!.on('data', got)
    const t: Terminal = {
      child,
      type: (line) => void child.stdin!.write(`${line}\n`),
      output: () => out,
      exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
      waitFor: (pattern, ms = 5000) =>
        new Promise((resolve, reject) => {
          const check = () => {
            if (!pattern.test(out)) return
            listeners.delete(check)
            clearTimeout(timer)
            resolve(out)
          }
          const timer = setTimeout(() => {
            listeners.delete(check)
            reject(new Error(`no ${pattern} within ${ms} ms; the client printed:\n${out}`))
          }, ms)
          listeners.add(check)
          check()
        }),
    }
    terminals.push(t)
    return t
  }

  beforeAll(async () => {
    // Compiled with the copy: the generated client's typing, proven by the errors it gives.
    dir = await prepareCopy((copy) => writeFileSync(join(copy, 'src', 'client-typing.ts'), TYPING))
    server = await startLinux(dir)
  }, 240_000)
  afterAll(() => {
    for (const t of terminals) if (t.child.exitCode === null) t.child.kill('SIGKILL')
    server?.child.kill('SIGKILL')
  })

  it('lists commands, refuses unknown ones and an empty group, and shows senders by nick', async () => {
    const alice = terminal(1, 'alice')
    const bob = terminal(2, 'bob')
    await alice.waitFor(/logged in as alice \(1\)/)
    await bob.waitFor(/logged in as bob \(2\)/)

    alice.type('/help')
    const help = await alice.waitFor(/\/quit/)
    for (const c of ['/join', '/leave', '/say', '/msg', '/who', '/help', '/quit']) expect(help).toContain(c)

    alice.type('/join lobby')
    await alice.waitFor(/\* lobby: alice/)
    bob.type('/join lobby')
    await bob.waitFor(/\* lobby: (alice, bob|bob, alice)/)
    await alice.waitFor(/\* bob joined lobby/)

    // An unknown command is an error and is not said in the group.
    alice.type('/shout hello')
    await alice.waitFor(/unknown command \/shout/)
    alice.type('/join')
    await alice.waitFor(/\/join needs a group name/)
    alice.type('/msg carol hi')
    await alice.waitFor(/unknown nick "carol"/)

    alice.type('hello everyone')
    await bob.waitFor(/\[lobby\] alice: hello everyone/)
    bob.type('/msg alice hi alice')
    await alice.waitFor(/\[private\] bob: hi alice/)
    alice.type('/msg bob hi bob')
    await bob.waitFor(/\[private\] alice: hi bob/)
    // Nothing of the refused commands reached bob.
    expect(bob.output()).not.toMatch(/shout|\/join|carol/)

    bob.type('/quit')
    expect(await bob.exited).toBe(0)
    await alice.waitFor(/\* bob left lobby|\* bob was disconnected from lobby/)
  }, 30_000)

  it('a second login of a user id already logged in says so and exits non-zero', async () => {
    const first = terminal(3, 'carol')
    await first.waitFor(/logged in as carol/)
    const again = terminal(3, 'mallory')
    await again.waitFor(/login refused: user id 3 is already logged in/)
    expect(await again.exited).toBe(1)
    expect(first.child.exitCode).toBe(null)
    first.type('/quit')
    expect(await first.exited).toBe(0)
  }, 30_000)
})
