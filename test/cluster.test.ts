// The chat example as a cluster: two "machines" (shard groups, each on its own loopback
// address and port) of two shards each, joined through a NATS server the test starts.
// Clients spread over all four shards must get every private and group message exactly once,
// in order per sender; one login per user id holds cluster-wide; and the failures of
// docs/architecture.md ("Cluster") behave as documented: a shard killed, NATS restarted, a
// shard stalled.
import {rmSync} from 'node:fs'
import {dirname, join} from 'node:path'

import {afterAll, beforeAll, describe, expect, it} from 'vitest'

import {type ChatCodec, Client as ChatClient, exchangeExactlyOnce, loadCodec, type Msg, prepareCopy, running, type Running, serverEnv, sleep, startLinux, type Stats} from './support/chat.js'
import {type Nats, startNats} from './support/nats.js'
import {readIfExists, requireWindowsAddon, startUnderWine, windowsToolsMissing} from './support/windows.js'

let codec: ChatCodec
let dir: string
let nats: Nats

/** A machine: a supervisor and its shards on one address. */
interface Machine {
  host: string
  server: Running
}
const machines: Machine[] = []
const SHARDS = 2

const ack = (seq: number) => (m: Msg) => m.type === 'Ack' && m.seq === seq

class Client extends ChatClient {
  constructor(userId: number, readonly machine: Machine, from = '127.0.0.1') {
    super(codec, userId, machine.server.port, from, machine.host)
  }
  async login(seq = 1): Promise<number> {
    this.send('Login', {seq, userId: this.userId, nick: `user${this.userId}`})
    await this.when(ack(seq))
    return this.got.find(ack(seq))!.status as number
  }
}

async function startMachine(host: string, env: Record<string, string> = {}): Promise<Machine> {
  const server = await startLinux(dir, {HOST: host, IOCPGEN_SHARDS: String(SHARDS), IOCPGEN_NATS_URL: nats.url, IOCPGEN_PER_IP_MAX_CONNECTIONS: '0', IOCPGEN_PER_IP_CONNECTS_PER_SECOND: '0', ...env})
  return {host, server}
}

/** Stats of every shard of a machine, added up (the supervisor's stats file). */
const stats = (m: Machine): Promise<Stats & {perShard?: {pid: number; connections: number}[]}> => m.server.stats()

beforeAll(async () => {
  nats = await startNats()
  dir = await prepareCopy()
  codec = await loadCodec(dir)
  machines.push(await startMachine('127.0.0.2'), await startMachine('127.0.0.3'))
}, 600_000)

afterAll(async () => {
  for (const m of machines) m.server.child.kill('SIGKILL')
  await nats?.dispose()
  if (dir) rmSync(dirname(dir), {recursive: true, force: true})
})

describe('the chat example as a cluster of 2 machines × 2 shards on NATS', () => {
  const N = 200
  const GROUPS = 4
  const K = 20
  const clients: Client[] = []

  it(`${N} clients on every shard log in and join ${GROUPS} groups; one login per user id cluster-wide`, async () => {
    for (let i = 0; i < N; i++) clients.push(new Client(i + 1, machines[i % 2]!, `127.0.0.${10 + (i % 16)}`))
    const statuses = await Promise.all(clients.map((c) => c.login()))
    expect(statuses.every((s) => s === 0)).toBe(true)
    // The kernel spread each machine's clients over both of its shards.
    for (const m of machines) {
      const s = await stats(m)
      expect(s.connections).toBe(N / 2)
      expect(s.perShard?.length).toBe(SHARDS)
      for (const shard of s.perShard!) expect(shard.connections).toBeGreaterThan(0)
    }
    // The same user id, racing on both machines at once: exactly one wins.
    for (let round = 0; round < 10; round++) {
      const id = 5000 + round
      const pair = [new Client(id, machines[0]!), new Client(id, machines[1]!)]
      const got = await Promise.all(pair.map((c) => c.login()))
      expect(got.sort()).toEqual([0, 4])
      for (const c of pair) c.s.destroy()
    }
    // A user id taken on the other machine is refused here.
    const dup = new Client(2, machines[0]!)
    expect(await dup.login()).toBe(4)
    dup.s.destroy()

    for (const c of clients) c.send('GroupJoin', {seq: 2, group: `g${c.userId % GROUPS}`})
    await Promise.all(clients.map((c) => c.when(ack(2))))
    for (const c of clients) expect(c.got.find(ack(2))!.status).toBe(0)
    // Joins of a group hold its cluster lock, so they happen one at a time across shards:
    // the member lists a group's joiners got grow one by one, each containing the one before,
    // and the last holds every member, from every shard.
    for (let g = 0; g < GROUPS; g++) {
      const members = clients.filter((c) => c.userId % GROUPS === g)
      const lists = members
        .map((c) => (c.got.find((m) => m.type === 'GroupMembers')!.members as {userId: number}[]).map((m) => m.userId).sort((a, b) => a - b))
        .sort((a, b) => a.length - b.length)
      expect(lists.map((l) => l.length)).toEqual(members.map((_, i) => i + 1))
      for (let i = 1; i < lists.length; i++) expect(lists[i]).toEqual(expect.arrayContaining(lists[i - 1]!))
      expect(lists.at(-1)).toEqual(members.map((c) => c.userId))
    }
  }, 120_000)

  it('delivers every private and group message exactly once, in order per sender, across shards and machines', async () => {
    await exchangeExactlyOnce(clients, GROUPS, K)
    // Group messages crossed the bus: each machine's shards received from the others.
    for (const m of machines) expect((await stats(m)).cluster!.received).toBeGreaterThan(0)
  }, 180_000)
})

/** Clients on every shard of both machines, logged in and in one group. */
async function groupOf(base: number, n: number, group: string): Promise<Client[]> {
  const out = Array.from({length: n}, (_, i) => new Client(base + i, machines[i % 2]!, `127.0.0.${40 + (i % 8)}`))
  const logins = await Promise.all(out.map((c) => c.login()))
  // On failure, say what the bus saw (binds refused or failed, connected or not).
  const why = logins.every((l) => l === 0) ? '' : JSON.stringify(await Promise.all(machines.map(async (m) => (await stats(m)).cluster)))
  expect(logins, why).toEqual(Array(n).fill(0))
  for (const c of out) c.send('GroupJoin', {seq: 2, group})
  await Promise.all(out.map((c) => c.when(ack(2))))
  return out
}

const delivered = (c: Client, from: number) => c.got.filter((m) => m.type === 'GroupDeliver' && m.from === from).map((m) => m.seq as number)

/** A sender saying seq = 0, 1, 2, ... to a group every `everyMs`, until stopped. */
function talker(c: Client, group: string, everyMs: number) {
  let seq = 0
  const timer = setInterval(() => c.send('GroupSay', {seq: seq++, group, text: `t${seq}`}), everyMs)
  return {next: () => seq, stop: () => clearInterval(timer)}
}

describe('failures', () => {
  it('a shard killed with SIGKILL mid-traffic: the others keep serving, its users are seen leaving within the lease, the supervisor restarts it', async () => {
    const members = await groupOf(1001, 40, 'k')
    const sender = members.find((c) => c.machine === machines[1])!
    const before = await stats(machines[0]!)
    const victim = before.perShard![0]!.pid
    const t = talker(sender, 'k', 10)
    await sleep(300)
    const killedAt = Date.now()
    process.kill(victim, 'SIGKILL')
    // Its clients are cut off; those of the other shards are not.
    await sleep(500)
    const gone = members.filter((c) => c.s.destroyed)
    const stay = members.filter((c) => !c.s.destroyed)
    expect(gone.length).toBeGreaterThan(0)
    expect(stay).toContain(sender)
    // Every survivor hears each user of the dead shard disconnect, within the lease (5 s) and a heartbeat.
    const watcher = stay.find((c) => c !== sender)!
    for (const g of gone) await watcher.when((m) => m.type === 'Presence' && (m.member as {userId: number}).userId === g.userId && m.event === 2)
    expect(Date.now() - killedAt).toBeLessThan(5000 + 1000 + 2000)
    await sleep(300)
    t.stop()
    const last = t.next() - 1
    // The others kept serving: each survivor got every message of the sender, once, in order.
    await Promise.all(stay.filter((c) => c !== sender).map((c) => c.when((m) => m.type === 'GroupDeliver' && m.seq === last)))
    for (const c of stay) if (c !== sender) expect(delivered(c, sender.userId)).toEqual(Array.from({length: last + 1}, (_, k) => k))
    // The supervisor restarted the shard; the dead shard's users can log in again.
    let now = await stats(machines[0]!)
    for (let i = 0; i < 100 && (now.perShard?.length !== SHARDS || now.perShard.some((s) => s.pid === victim)); i++) {
      await sleep(100)
      now = await stats(machines[0]!)
    }
    expect(now.perShard!.map((s) => s.pid)).not.toContain(victim)
    expect(now.shardRestarts).toBe(1)
    const again = await Promise.all(gone.map((g) => new Client(g.userId, machines[0]!).login()))
    expect(again).toEqual(Array(gone.length).fill(0))
  }, 60_000)

  it('nats-server restarted mid-traffic: shards reconnect, delivery resumes, and nothing is lost outside the outage', async () => {
    const members = await groupOf(2001, 8, 'r')
    const sender = members.find((c) => c.machine === machines[0])!
    const remote = members.filter((c) => c.machine === machines[1])
    const t = talker(sender, 'r', 5)
    await sleep(500)
    const outageFrom = t.next()
    await nats.restart()
    // Wait for both machines to be back on the bus.
    for (const m of machines) {
      let s = await stats(m)
      for (let i = 0; i < 200 && (s.cluster!.connected < SHARDS || s.cluster!.reconnects < SHARDS); i++) {
        await sleep(50)
        s = await stats(m)
      }
      expect(s.cluster!.reconnects).toBeGreaterThanOrEqual(SHARDS)
      expect(s.cluster!.connected).toBe(SHARDS)
    }
    // Interest is back once a message sent now arrives; from then on nothing may be lost.
    const mark = t.next()
    await Promise.all(remote.map((c) => c.when((m) => m.type === 'GroupDeliver' && (m.seq as number) > mark)))
    const outageTo = t.next()
    await sleep(1000)
    t.stop()
    const last = t.next() - 1
    await Promise.all(remote.map((c) => c.when((m) => m.type === 'GroupDeliver' && m.seq === last)))
    let lost = 0
    for (const c of remote) {
      const seqs = delivered(c, sender.userId)
      // In order, no duplicates.
      expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b))
      const missing = Array.from({length: last + 1}, (_, k) => k).filter((k) => !seqs.includes(k))
      // Only within the outage (core NATS is at-most-once).
      for (const k of missing) expect(k >= outageFrom && k <= outageTo, `seq ${k} lost outside the outage ${outageFrom}..${outageTo}`).toBe(true)
      lost += missing.length
    }
    console.log(`nats restart: ${lost} group messages lost during the outage (seqs ${outageFrom}..${outageTo} at risk), over ${remote.length} receivers`)
    // Private messages across machines work again.
    const a = sender
    const b = remote[0]!
    a.send('PrivateSend', {seq: 9000, to: b.userId, text: 'after'})
    await a.when(ack(9000))
    expect(a.got.find(ack(9000))!.status).toBe(0)
  }, 90_000)

  it('a shard stalled past the lease: the others keep serving and see its users leave; NATS cuts it off past max_pending; it is fenced and serves again', async () => {
    // NATS again, now buffering at most 256 KiB for a client that does not read.
    await nats.restart({maxPending: '256KB'})
    for (const m of machines) {
      let s = await stats(m)
      for (let i = 0; i < 200 && s.cluster!.connected < SHARDS; i++) {
        await sleep(50)
        s = await stats(m)
      }
    }
    await sleep(500)
    const [sender, reader] = [new Client(3001, machines[0]!), new Client(3002, machines[0]!)]
    const far = Array.from({length: 12}, (_, i) => new Client(3100 + i, machines[1]!))
    for (const c of [sender, reader, ...far]) {
      expect(await c.login()).toBe(0)
      c.send('GroupJoin', {seq: 2, group: 's'})
      await c.when(ack(2))
    }
    const before = await stats(machines[1]!)
    const stalledPid = before.perShard![0]!.pid
    const stalledAt = Date.now()
    process.kill(stalledPid, 'SIGSTOP')
    let sent = 0
    try {
      const text = 'x'.repeat(1000)
      // 16 MB to the group, paced by a member that reads, for at least the lease (5 s) and a
      // heartbeat: more than NATS may buffer for the shard that reads nothing.
      while (sent < 16_000 || Date.now() - stalledAt < 6500) {
        for (let k = 0; k < 100; k++) sender.send('GroupSay', {seq: 10_000 + sent++, group: 's', text})
        await reader.when((m) => m.type === 'GroupDeliver' && m.seq === 10_000 + sent - 1)
      }
      // The reader got everything, in order, while the other shard slept.
      expect(delivered(reader, 3001)).toEqual(Array.from({length: sent}, (_, k) => 10_000 + k))
      // The stalled shard was found dead: the others told the group its users disconnected.
      await reader.when((m) => m.type === 'Presence' && m.event === 2)
    } finally {
      process.kill(stalledPid, 'SIGCONT')
    }
    expect(nats.log()).toMatch(/Slow Consumer/i)
    // Back, it learns it was fenced: its users (their names may have logged in elsewhere) are closed.
    const stalledUsers = far.filter((c) => reader.got.some((m) => m.type === 'Presence' && m.event === 2 && (m.member as {userId: number}).userId === c.userId))
    expect(stalledUsers.length).toBeGreaterThan(0)
    await Promise.all(stalledUsers.map((c) => c.closed))
    let s = await stats(machines[1]!)
    for (let i = 0; i < 200 && (s.cluster!.fenced < 1 || s.cluster!.connected < SHARDS); i++) {
      await sleep(50)
      s = await stats(machines[1]!)
    }
    expect(s.cluster!.fenced).toBe(1)
    expect(s.cluster!.disconnects).toBeGreaterThan(before.cluster!.disconnects)
    expect(s.cluster!.connected).toBe(SHARDS)
    // It serves again: its users log in anew and hear the group.
    const again = await Promise.all(stalledUsers.map(async (c) => {
      const n = new Client(c.userId, machines[1]!)
      expect(await n.login()).toBe(0)
      n.send('GroupJoin', {seq: 2, group: 's'})
      await n.when(ack(2))
      return n
    }))
    sender.send('GroupSay', {seq: 99_999, group: 's', text: 'back'})
    await Promise.all([reader, ...again].map((c) => c.when((m) => m.type === 'GroupDeliver' && m.seq === 99_999)))
  }, 90_000)
})

describe('a Windows shard (IOCP, under Wine) in the same cluster', () => {
  let windows: Machine | undefined
  afterAll(() => {
    windows?.server.child.kill('SIGKILL')
  })

  it('chats with the Linux machines: private and group messages both ways, one login per user id', async () => {
    const missing = windowsToolsMissing()
    if (missing) throw new Error(`cannot run on Windows: ${missing}`)
    requireWindowsAddon()
    const e = serverEnv(dir, 'wine-cluster', {HOST: '127.0.0.4', IOCPGEN_NATS_URL: nats.url, IOCPGEN_PER_IP_MAX_CONNECTIONS: '0', IOCPGEN_PER_IP_CONNECTS_PER_SECOND: '0'})
    const out = join(dir, 'stdout-wine-cluster.txt')
    const child = startUnderWine(dir, 'dist/src/main.js', e, out)
    windows = {host: '127.0.0.4', server: await running(dir, child, () => readIfExists(out), e.STATS_FILE, 180_000)}
    expect((await stats(windows)).backend).toBe('iocp')
    const win = new Client(4001, windows)
    const lin = new Client(4002, machines[1]!)
    expect(await win.login()).toBe(0)
    expect(await lin.login()).toBe(0)
    // User 4001 is taken on Windows: Linux refuses it, and the other way round.
    const dupOnLinux = new Client(4001, machines[0]!)
    expect(await dupOnLinux.login()).toBe(4)
    const dupOnWindows = new Client(4002, windows)
    expect(await dupOnWindows.login()).toBe(4)
    for (const c of [win, lin]) {
      c.send('GroupJoin', {seq: 2, group: 'w'})
      await c.when(ack(2))
    }
    for (let k = 0; k < 50; k++) {
      win.send('GroupSay', {seq: 100 + k, group: 'w', text: `from windows ${k}`})
      lin.send('PrivateSend', {seq: 200 + k, to: 4001, text: `from linux ${k}`})
    }
    await lin.when((m) => m.type === 'GroupDeliver' && m.seq === 149)
    await win.when((m) => m.type === 'PrivateDeliver' && m.seq === 249)
    expect(delivered(lin, 4001)).toEqual(Array.from({length: 50}, (_, k) => 100 + k))
    expect(win.got.filter((m) => m.type === 'PrivateDeliver').map((m) => m.seq)).toEqual(Array.from({length: 50}, (_, k) => 200 + k))
    expect(lin.got.filter((m) => m.type === 'Ack' && (m.seq as number) >= 200).every((m) => m.status === 0)).toBe(true)
    for (const c of [win, lin, dupOnLinux, dupOnWindows]) c.s.destroy()
  }, 240_000)
})
