// The bridge between the addon and the runtime is declared once (bridge.json). Both derived
// files must be current, and every option must mean the same on both sides: each is sent
// through the built addon with a value that is not its default, and must come back as sent.
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'

import {describe, expect, it} from 'vitest'

import {NATIVE_OPTIONS, type NativeOptions} from '../runtime/src/bridge.js'
import {loadAddon} from '../runtime/src/addon.js'
import {Server} from '../runtime/src/server.js'

const root = join(import.meta.dirname, '..')
const declaration = JSON.parse(readFileSync(join(root, 'native-template/addon/bridge.json'), 'utf8')) as {options: {name: string; type: string}[]}

// A value of each option that differs from EngineConfig's default.
const changed: Required<NativeOptions> = {
  host: '127.0.0.2',
  port: 40001,
  backend: 'epoll',
  workers: 3,
  jsThreadIo: true,
  acceptBacklog: 7,
  listenBacklog: 77,
  maxConnections: 333,
  ioContexts: 4444,
  bufferSize: 8192,
  recvDepth: 2,
  sendDepth: 3,
  maxFrame: 12345,
  sendQueueLimit: 2 ** 40,
  recvBuffers: 55,
  zeroByteRecv: true,
  socketReuse: true,
  reusePort: true,
  dropWhenSlow: true,
  perIpMaxConnections: 9,
  perIpConnectsPerSecond: 11,
  perIpBanMs: 1234,
  loginQueue: 66,
  queueNoticeType: 65535,
  idleTimeoutMs: 4321,
  drainTimeoutMs: 999,
  frameTimeoutMs: 250,
  messages: [[1, 0, 10], [65535, 4, 4], [300, 2, 65000]],
  eventQueueLimit: 3 << 20,
}

describe('the bridge', () => {
  it('bridge.h and bridge.ts are derived from bridge.json as it is now', () => {
    execFileSync(process.execPath, [join(root, 'scripts/gen-bridge.mjs'), '--check'], {stdio: 'pipe'})
  })

  it('every option of the declaration is in NativeOptions and in the test above', () => {
    expect([...NATIVE_OPTIONS]).toEqual(declaration.options.map((o) => o.name))
    expect(Object.keys(changed).sort()).toEqual([...NATIVE_OPTIONS].sort())
  })

  it('every option reaches the addon and comes back unchanged', () => {
    const addon = loadAddon()
    const defaults = new addon.NativeServer({}, () => {}).options()
    for (const key of NATIVE_OPTIONS) expect(changed[key], `${key} must differ from its default`).not.toEqual(defaults[key])
    expect(new addon.NativeServer(changed, () => {}).options()).toEqual(changed)
  })

  it('a value of the wrong type or out of range is refused with the option\'s name', () => {
    const addon = loadAddon()
    const bad: [keyof NativeOptions, unknown][] = [
      ['port', 65536], ['port', -1], ['port', 1.5], ['port', '80'], ['workers', NaN], ['maxConnections', 0],
      ['backend', 'kqueue'], ['host', 7], ['zeroByteRecv', 1], ['messages', [[65536, 1, 2]]], ['messages', [[-1, 1, 2]]], ['messages', [[1, 5, 4]]],
      ['messages', [[1, 2]]], ['messages', 'all'], ['sendQueueLimit', 2 ** 60],
    ]
    for (const [key, value] of bad) {
      expect(() => new addon.NativeServer({[key]: value} as NativeOptions, () => {}), `${key}: ${String(value)}`).toThrow(new RegExp(`option ${key}: expected`))
    }
  })

  it('an addon built from another declaration is refused, naming what to do', () => {
    const dir = mkdtempSync(join(tmpdir(), 'iocpgen-bridge-'))
    const fake = join(dir, 'fake.cjs')
    writeFileSync(fake, `module.exports = {bridge: '0000000000000000', closeReasons: [], NativeServer: class {}}\n`)
    expect(() => loadAddon(fake)).toThrow(/built for another version of the runtime.*rebuild it or reinstall @iocpgen\/runtime/)
  })

  it('generated code written for another runtime API is refused before anything starts', () => {
    const protocol = {api: 999, codecs: {}, settings: {maxFrame: 64}}
    expect(() => new Server({protocol, handlers: {}, initialState: () => ({})})).toThrow(/written for @iocpgen\/runtime API 999.*npx iocpgen generate/)
  })

  it('the runtime hands the addon the message table from the codecs, and overrides win over the spec', () => {
    const codec = (id: number, minSize: number, maxSize: number) => ({id, minSize, maxSize, encode() {}, decode: () => ({})})
    const protocol = {api: 1, codecs: {A: codec(1, 0, 9), B: codec(7, 2, 300)}, settings: {maxFrame: 400, maxConnections: 10, ioContexts: 50, port: 1}}
    const server = new Server({protocol, handlers: {}, initialState: () => ({})}, {port: 2})
    expect(server.nativeOptions()).toMatchObject({maxFrame: 400, port: 2, ioContexts: 50, messages: [[1, 0, 9], [7, 2, 300]]})
    // More connections than the spec sized its I/O pool for: the pool is derived again.
    const bigger = new Server({protocol, handlers: {}, initialState: () => ({})}, {maxConnections: 20})
    expect(bigger.nativeOptions().ioContexts).toBe(0)
  })
})
