// Builds the typed model from the parsed document. It tolerates shapes the schema
// already reported (skipping them), so one run can report every problem.
import {type Diagnostic, diagnostic} from '../diagnostics/diagnostic.js'
import {isTypeError, parseFieldType} from './field-type.js'
import type {ClusterConfig, Direction, Reserved, EnumDef, Field, LockDef, Message, Operation, OrderStatement, ServerConfig, Spec, Step, StructDef} from './model.js'
import {parseOrder} from './order.js'
import {describePath} from './schema-check.js'
import type {PathSegment, SourceView} from './source.js'
import {parseDuration, parseSize} from './units.js'

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const int = (v: unknown, fallback: number): number => (typeof v === 'number' && Number.isInteger(v) ? v : fallback)
const bool = (v: unknown, fallback: boolean): boolean => (typeof v === 'boolean' ? v : fallback)
const oneOf = <T extends string>(v: unknown, allowed: readonly T[], fallback: T): T =>
  allowed.includes(v as T) ? (v as T) : fallback

export const DEFAULTS = {
  port: 7000,
  host: '0.0.0.0',
  acceptBacklog: 12,
  listenBacklog: 511,
  maxConnections: 10_000,
  bufferSize: 4096,
  recvDepth: 1,
  sendDepth: 1,
  sendQueueLimit: 256 * 1024,
  loginQueue: 1000,
  drainTimeoutMs: 5000,
  frameTimeoutMs: 10_000,
  banForMs: 60_000,
  maxFrame: 64 * 1024,
  shards: 1,
  clusterHeartbeatMs: 1000,
  clusterLeaseMs: 5000,
  clusterMaxPending: 8 * 1024 * 1024,
} as const

/** Per-I/O contexts the core needs: posted accepts, plus each client's receives and sends. */
export const requiredIoContexts = (s: Pick<ServerConfig, 'acceptBacklog' | 'maxConnections' | 'recvDepth' | 'sendDepth'>): number =>
  s.acceptBacklog + s.maxConnections * (s.recvDepth + s.sendDepth)

export function buildSpec(source: SourceView, data: Obj): {spec: Spec; diagnostics: Diagnostic[]} {
  const diagnostics: Diagnostic[] = []
  const file = source.file
  const at = (path: readonly PathSegment[], which: 'value' | 'key' = 'value') => source.at(path, which)

  const size = (path: PathSegment[], v: unknown, fallback: number, min: number, max: number): number => {
    if (v === undefined) return fallback
    const n = parseSize(v)
    // Malformed, or an integer below the schema's minimum: the schema reported it.
    if (n === undefined || (typeof v === 'number' && v < 1)) return fallback
    if (n < min || n > max) {
      diagnostics.push(diagnostic('E304', file, at(path), `${describePath(path)} is ${n} bytes; it must be between ${min} and ${max}`, `pick a size in that range, e.g. ${fallback}`))
      return fallback
    }
    return n
  }
  const duration = (v: unknown, fallback: number): number => (v === undefined ? fallback : (parseDuration(v) ?? fallback))

  const fields = (path: PathSegment[], v: unknown): Field[] => {
    if (!isObj(v)) return []
    const out: Field[] = []
    for (const [name, typeValue] of Object.entries(v)) {
      if (typeof typeValue !== 'string') continue
      const type = parseFieldType(typeValue)
      if (isTypeError(type)) {
        const node = source.node([...path, name])
        diagnostics.push(diagnostic(type.code, file, source.inScalar(node, type.index, type.length), `${describePath([...path, name])}: ${type.message}`, type.hint))
        continue
      }
      out.push({name, type, typeText: typeValue, at: at([...path, name], 'key')})
    }
    return out
  }

  // Protocol.
  const enums: EnumDef[] = []
  for (const [name, e] of Object.entries(isObj(data.enums) ? data.enums : {})) {
    if (!isObj(e) || !isObj(e.values)) continue
    enums.push({
      name,
      base: oneOf(e.type, ['u8', 'u16', 'u32', 'i8', 'i16', 'i32'] as const, 'u8'),
      values: Object.entries(e.values)
        .filter((kv): kv is [string, number] => Number.isInteger(kv[1]))
        .map(([vname, value]) => ({name: vname, value, at: at(['enums', name, 'values', vname], 'key')})),
      at: at(['enums', name], 'key'),
    })
  }
  const structs: StructDef[] = Object.entries(isObj(data.structs) ? data.structs : {}).map(([name, f]) => ({
    name,
    fields: fields(['structs', name], f),
    at: at(['structs', name], 'key'),
  }))
  const messages: Message[] = []
  ;(Array.isArray(data.messages) ? data.messages : []).forEach((m: unknown, i) => {
    if (!isObj(m) || typeof m.name !== 'string' || !Number.isInteger(m.id)) return
    messages.push({
      id: m.id as number,
      name: m.name,
      direction: oneOf<Direction>(m.direction, ['client-to-server', 'server-to-client', 'both'], 'both'),
      fields: fields(['messages', i, 'fields'], m.fields),
      at: at(['messages', i, 'name']),
    })
  })

  // Server tunables.
  const s = isObj(data.server) ? data.server : {}
  const perIp = isObj(s.perIp) ? s.perIp : {}
  const server: ServerConfig = {
    port: int(s.port, DEFAULTS.port),
    host: typeof s.host === 'string' ? s.host : DEFAULTS.host,
    workers: s.workers === 'auto' ? 0 : int(s.workers, 0),
    acceptBacklog: int(s.acceptBacklog, DEFAULTS.acceptBacklog),
    listenBacklog: int(s.listenBacklog, DEFAULTS.listenBacklog),
    maxConnections: int(s.maxConnections, DEFAULTS.maxConnections),
    ioContexts: 0,
    bufferSize: size(['server', 'bufferSize'], s.bufferSize, DEFAULTS.bufferSize, 128, 16 * 1024 * 1024),
    recvDepth: int(s.recvDepth, DEFAULTS.recvDepth),
    sendDepth: int(s.sendDepth, DEFAULTS.sendDepth),
    zeroByteRecv: bool(s.zeroByteRecv, false),
    sendQueueLimit: size(['server', 'sendQueueLimit'], s.sendQueueLimit, DEFAULTS.sendQueueLimit, 1, 2 ** 32 - 1),
    slowClient: oneOf(s.slowClient, ['disconnect', 'drop'] as const, 'disconnect'),
    idleTimeoutMs: duration(s.idleTimeout, 0),
    heartbeatMs: duration(s.heartbeat, 0),
    frameTimeoutMs: duration(s.frameTimeout, DEFAULTS.frameTimeoutMs),
    perIp: {
      maxConnections: int(perIp.maxConnections, 0),
      connectsPerSecond: int(perIp.connectsPerSecond, 0),
      banForMs: duration(perIp.banFor, DEFAULTS.banForMs),
    },
    whenFull: oneOf(s.whenFull, ['queue', 'reject'] as const, 'queue'),
    loginQueue: int(s.loginQueue, DEFAULTS.loginQueue),
    ...(typeof s.queueNotice === 'string' ? {queueNotice: s.queueNotice} : {}),
    drainTimeoutMs: duration(s.drainTimeout, DEFAULTS.drainTimeoutMs),
    socketReuse: bool(s.socketReuse, true),
    shards: s.shards === 'auto' ? 0 : int(s.shards, DEFAULTS.shards),
  }
  server.ioContexts = Number.isInteger(s.ioContexts) ? (s.ioContexts as number) : requiredIoContexts(server)
  const framing = isObj(data.framing) ? data.framing : {}
  const maxFrame = size(['framing', 'maxFrame'], framing.maxFrame, DEFAULTS.maxFrame, 6, 1024 ** 3)

  // The cluster bus: always described, so that IOCPGEN_NATS_URL alone turns it on.
  const c = isObj(data.cluster) ? data.cluster : {}
  const specName = typeof data.name === 'string' ? data.name : 'unnamed'
  const cluster: ClusterConfig = {
    subject: typeof c.subject === 'string' ? c.subject : specName,
    ...(typeof c.url === 'string' ? {url: c.url} : {}),
    heartbeatMs: duration(c.heartbeat, DEFAULTS.clusterHeartbeatMs),
    leaseMs: duration(c.lease, DEFAULTS.clusterLeaseMs),
    maxPendingBytes: size(['cluster', 'maxPending'], c.maxPending, DEFAULTS.clusterMaxPending, 1024, 1024 ** 3),
  }

  // Locks, order and operations: parsed with positions; the lock check reads them.
  const locks: LockDef[] = Object.entries(isObj(data.locks) ? data.locks : {})
    .filter((kv): kv is [string, Obj] => isObj(kv[1]))
    .map(([name, l]) => ({
      name,
      kind: oneOf(l.kind, ['mutex', 'rwlock', 'spin'] as const, 'mutex'),
      leaf: bool(l.leaf, false),
      perInstance: bool(l.perInstance, false),
      nestById: bool(l.nestById, false),
      scope: oneOf(l.scope, ['local', 'cluster'] as const, 'local'),
      at: at(['locks', name], 'key'),
    }))

  const order: OrderStatement[] = []
  const orderTexts: [PathSegment[], string][] =
    typeof data.order === 'string' ? [[['order'], data.order]]
    : Array.isArray(data.order) ? data.order.flatMap((o, i): [PathSegment[], string][] => (typeof o === 'string' ? [[['order', i], o]] : []))
    : []
  for (const [path, text] of orderTexts) {
    const node = source.node(path)
    const parsed = parseOrder(text)
    if (!Array.isArray(parsed)) {
      diagnostics.push(diagnostic('E401', file, source.inScalar(node, parsed.index, parsed.length), parsed.message, 'write statements like "a < b < c", "x, y < z" or "a !< z", separated by ";"'))
      continue
    }
    const pos = (index: number, length: number) => source.inScalar(node, index, length)
    for (const st of parsed) {
      if (st.kind === 'chain') {
        order.push({kind: 'chain', groups: st.groups.map((g) => g.map((t) => ({name: t.name, at: pos(t.index, t.name.length)}))), at: pos(st.index, 1)})
      } else {
        order.push({
          kind: 'never',
          before: {name: st.before.name, at: pos(st.before.index, st.before.name.length)},
          after: {name: st.after.name, at: pos(st.after.index, st.after.name.length)},
          at: pos(st.index, 1),
        })
      }
    }
  }

  const steps = (path: PathSegment[], v: unknown): Step[] =>
    (Array.isArray(v) ? v : []).flatMap((st: unknown, i): Step[] => {
      const p = [...path, i]
      if (st === 'js' || st === 'wait') return [{kind: st, at: at(p)}]
      if (isObj(st) && typeof st.lock === 'string') {
        const step: Step = {kind: 'lock', lock: st.lock, mode: st.mode === 'read' ? 'read' : 'write', then: steps([...p, 'then'], st.then), at: at([...p, 'lock'])}
        if (st.mode !== undefined) step.modeAt = at([...p, 'mode'])
        return [step]
      }
      if (isObj(st) && typeof st.call === 'string') return [{kind: 'call', operation: st.call, at: at([...p, 'call'])}]
      return []
    })
  const operations: Operation[] = Object.entries(isObj(data.operations) ? data.operations : {}).map(([name, v]) => ({
    name,
    steps: steps(['operations', name], v),
    at: at(['operations', name], 'key'),
  }))

  // reserved: {ids: [5, "100-120"], names: [...]}; the schema vouched for the shapes.
  const reservedData = isObj(data.reserved) ? data.reserved : {}
  const reserved: Reserved = {ids: [], names: []}
  ;(Array.isArray(reservedData.ids) ? reservedData.ids : []).forEach((v: unknown, i: number) => {
    const where = at(['reserved', 'ids', i])
    if (typeof v === 'number') reserved.ids.push({from: v, to: v, at: where})
    const range = typeof v === 'string' ? /^\s*(\d+)\s*-\s*(\d+)\s*$/.exec(v) : null
    if (!range) return
    const [from, to] = [Number(range[1]), Number(range[2])]
    if (from > to || to > 0xffff) diagnostics.push(diagnostic('E214', file, where, `reserved range "${v}" ${from > to ? 'runs backwards' : 'goes past 65535, the largest type id'}`, `write it low-high, within 0-65535, e.g. "${Math.min(from, to)}-${Math.min(Math.max(from, to), 0xffff)}"`))
    else reserved.ids.push({from, to, at: where})
  })
  ;(Array.isArray(reservedData.names) ? reservedData.names : []).forEach((v: unknown, i: number) => {
    if (typeof v === 'string') reserved.names.push({name: v, at: at(['reserved', 'names', i])})
  })

  const spec: Spec = {
    file,
    name: specName,
    version: typeof data.version === 'string' ? data.version : '0.0.0',
    maxFrame,
    server,
    cluster,
    enums,
    structs,
    messages,
    locks,
    order,
    operations,
    reserved,
  }
  if (typeof data.description === 'string') spec.description = data.description
  return {spec, diagnostics}
}
