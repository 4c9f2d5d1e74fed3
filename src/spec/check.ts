// Meaning checks beyond the schema: names, types, sizes, pools and lock references.
import {type Diagnostic, diagnostic, type Position} from '../diagnostics/diagnostic.js'
import {closest} from '../util/suggest.js'
import {requiredIoContexts} from './build.js'
import {identifierProblem} from './identifiers.js'
import {type Field, FRAME_HEADER, PRIMITIVES, type Spec, type Step, type TypeRef} from './model.js'
import {writtenKey} from './schema-check.js'
import type {SourceView} from './source.js'
import {formatBytes} from './units.js'
import {sizeOf, type TypeTable} from './wire.js'

const GiB = 1024 ** 3
const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`

const INT_RANGE: Record<string, [number, number]> = {
  u8: [0, 0xff], u16: [0, 0xffff], u32: [0, 0xffff_ffff],
  i8: [-0x80, 0x7f], i16: [-0x8000, 0x7fff], i32: [-0x8000_0000, 0x7fff_ffff],
}

export function checkSpec(spec: Spec, source: SourceView, core?: Spec): Diagnostic[] {
  const out: Diagnostic[] = []
  const file = spec.file
  const report = (code: Parameters<typeof diagnostic>[0], at: Position, message: string, hint?: string) =>
    out.push(diagnostic(code, file, at, message, hint))
  const name = (n: string, what: string, at: Position, asType = false) => {
    const p = identifierProblem(n, what, asType)
    if (!p) return
    // A plain key such as NULL, ~ or 1.0 is read by YAML as a value; name it as written.
    const w = writtenKey(source, at, n)
    if (w !== n) report('E204', at, `${what} "${w}" is not a name: YAML reads it as ${n === 'null' ? 'null' : /^(true|false)$/.test(n) ? 'a boolean' : 'a number'}`, `quote it ("${w}") to keep it as text, or rename it`)
    else report(p.code, at, p.message, p.hint)
  }

  // Type names share one namespace: each becomes a TypeScript type.
  const typeOwner = new Map<string, string>()
  const define = (n: string, what: string, at: Position) => {
    const prev = typeOwner.get(n)
    if (prev) report('E203', at, `${what} "${n}" has the same name as ${prev}`, 'messages, structs and enums share one namespace in the generated code; rename one of them')
    else typeOwner.set(n, `${what} "${n}"`)
  }
  for (const e of spec.enums) {
    name(e.name, 'enum', e.at, true)
    define(e.name, 'enum', e.at)
    const [lo, hi] = INT_RANGE[e.base]!
    const seenNames = new Map<number, string>()
    for (const v of e.values) {
      name(v.name, `${e.name} value`, v.at)
      const written = source.written(source.at(['enums', e.name, 'values', v.name])) ?? String(v.value)
      if (v.value < lo || v.value > hi) report('E211', v.at, `${e.name}.${v.name} = ${written} does not fit ${e.base} (${lo} to ${hi})`, `change the value, or set the enum's type to a wider integer`)
      const dup = seenNames.get(v.value)
      if (dup !== undefined) report('E212', v.at, `${e.name}.${v.name} has the same value ${v.value} as ${e.name}.${dup}`, 'give each enum value its own integer')
      else seenNames.set(v.value, v.name)
    }
  }
  for (const s of spec.structs) {
    name(s.name, 'struct', s.at, true)
    define(s.name, 'struct', s.at)
  }
  // Retired ids and names (reserved): an old peer would read them as what they used to be.
  const retiredId = (id: number) => spec.reserved.ids.find((r) => id >= r.from && id <= r.to)
  const retiredName = (n: string) => spec.reserved.names.find((r) => r.name === n)
  const freeId = () => {
    const taken = new Set(spec.messages.map((m) => m.id))
    for (let id = 1; id <= 0xffff; id++) if (!taken.has(id) && !retiredId(id)) return id
    return undefined
  }
  spec.messages.forEach((m, i) => {
    const r = retiredId(m.id)
    if (r) {
      const free = freeId()
      report('E213', source.at(['messages', i, 'id']), `message ${m.name} uses id ${m.id}, which is reserved (line ${r.at.line}): a retired message had it`, free === undefined ? 'every id is taken or reserved' : `give ${m.name} an unused id such as ${free}`)
    }
  })
  const named: [string, string, Position][] = [
    ...spec.messages.flatMap((m): [string, string, Position][] => [[m.name, 'message', m.at], ...m.fields.map((f): [string, string, Position] => [f.name, `${m.name} field`, f.at])]),
    ...spec.structs.flatMap((st): [string, string, Position][] => [[st.name, 'struct', st.at], ...st.fields.map((f): [string, string, Position] => [f.name, `${st.name} field`, f.at])]),
    ...spec.enums.flatMap((e): [string, string, Position][] => [[e.name, 'enum', e.at], ...e.values.map((v): [string, string, Position] => [v.name, `${e.name} value`, v.at])]),
  ]
  for (const [n, what, at] of named) {
    const r = retiredName(n)
    if (r) report('E213', at, `${what} "${n}" uses a reserved name (line ${r.at.line}): something retired had it`, 'pick another name; reusing it would let old code compile against a different meaning')
  }

  const ids = new Map<number, string>()
  const names = new Map<string, Position>()
  const maxId = Math.max(-1, ...spec.messages.map((m) => m.id))
  spec.messages.forEach((m, i) => {
    name(m.name, 'message', m.at, true)
    const idAt = source.at(['messages', i, 'id'])
    const prevId = ids.get(m.id)
    if (prevId) report('E201', idAt, `message id ${m.id} is used by both ${prevId} and ${m.name}`, `ids are the stable type ids on the wire; give ${m.name} an unused id such as ${maxId + 1}`)
    else ids.set(m.id, m.name)
    const prevName = names.get(m.name)
    if (prevName) report('E202', m.at, `message name "${m.name}" is defined twice (first at line ${prevName.line})`, 'rename one of the two messages')
    else {
      names.set(m.name, m.at)
      define(m.name, 'message', m.at)
    }
  })

  // Fields: names, references and recursion.
  const table: TypeTable = {structs: new Map(spec.structs.map((s) => [s.name, s])), enums: new Map(spec.enums.map((e) => [e.name, e]))}
  const used = new Set<string>()
  const known = [...PRIMITIVES, 'string<N>', 'bytes<N>', ...table.structs.keys(), ...table.enums.keys()]
  const checkFields = (owner: string, fields: Field[]) => {
    for (const f of fields) {
      name(f.name, `${owner} field`, f.at)
      for (const ref of namedRefs(f.type)) {
        used.add(ref)
        if (!table.structs.has(ref) && !table.enums.has(ref)) {
          const guess = closest(ref, known)
          report('E207', source.at(fieldPath(spec, owner, f.name)), `${owner}.${f.name}: unknown type "${ref}"`, guess ? `did you mean "${guess}"?` : `define "${ref}" under structs or enums, or use a built-in type (${PRIMITIVES.join(', ')}, string<N>, bytes<N>)`)
        }
      }
    }
  }
  for (const s of spec.structs) checkFields(s.name, s.fields)
  for (const m of spec.messages) checkFields(m.name, m.fields)
  for (const cycle of structCycles(table)) {
    const first = table.structs.get(cycle[0]!)!
    report('E208', first.at, `struct ${cycle[0]} contains itself: ${cycle.join(' -> ')}`, 'a struct cannot contain itself, even through an array; refer to the other value by an id field instead')
  }
  for (const t of [...spec.structs, ...spec.enums]) {
    if (!used.has(t.name)) out.push(diagnostic('W001', file, t.at, `${'values' in t ? 'enum' : 'struct'} "${t.name}" is not used by any message`, 'remove it, or use it in a field'))
  }

  // Every message must fit a frame.
  const payloadLimit = spec.maxFrame - FRAME_HEADER
  spec.messages.forEach((m, i) => {
    const fieldSizes = m.fields.map((f) => ({f, max: sizeOf(f.type, table).max}))
    const total = fieldSizes.reduce((a, b) => a + b.max, 0)
    if (total > payloadLimit) {
      const biggest = fieldSizes.reduce((a, b) => (b.max > a.max ? b : a))
      report('E210', source.at(['messages', i, 'name']), `message ${m.name} can be ${formatBytes(total)} bytes, more than the ${formatBytes(payloadLimit)}-byte payload a ${formatBytes(spec.maxFrame)}-byte frame allows`, `lower the bound of "${biggest.f.name}" (${biggest.f.typeText}, up to ${formatBytes(biggest.max)} bytes) or raise framing.maxFrame`)
    }
  })

  // Pool arithmetic and tunables.
  const srv = spec.server
  const need = requiredIoContexts(srv)
  if (srv.ioContexts < need) {
    const missing = need - srv.ioContexts
    report('E301', source.at(['server', 'ioContexts']), `ioContexts is ${srv.ioContexts} but the core needs ${need}: ${plural(srv.acceptBacklog, 'posted accept')} + ${plural(srv.maxConnections, 'client')} x (${plural(srv.recvDepth, 'receive')} + ${plural(srv.sendDepth, 'send')}); ${missing} missing`, `raise ioContexts to ${need}, or set it to "auto"`)
  }
  if (srv.acceptBacklog > srv.maxConnections) {
    report('E302', source.at(['server', 'acceptBacklog']), `acceptBacklog ${srv.acceptBacklog} is larger than maxConnections ${srv.maxConnections}`, `each posted accept holds a per-socket context; lower acceptBacklog to at most ${srv.maxConnections} (10-15 is typical)`)
  }
  if (srv.heartbeatMs > 0 && srv.idleTimeoutMs > 0 && srv.heartbeatMs >= srv.idleTimeoutMs) {
    report('E303', source.at(['server', 'heartbeat']), `heartbeat (${srv.heartbeatMs} ms) must be shorter than idleTimeout (${srv.idleTimeoutMs} ms)`, 'clients send at the heartbeat interval; make idleTimeout two to three heartbeats long')
  }
  const FRAME_TIMEOUT_MIN = 100
  const FRAME_TIMEOUT_MAX = 1000 * 3_600_000
  if (srv.frameTimeoutMs !== 0 && (srv.frameTimeoutMs < FRAME_TIMEOUT_MIN || srv.frameTimeoutMs > FRAME_TIMEOUT_MAX)) {
    report('E306', source.at(['server', 'frameTimeout']), `frameTimeout (${srv.frameTimeoutMs} ms) must be 0s or from 100ms to 1000h`, srv.frameTimeoutMs < FRAME_TIMEOUT_MIN ? 'the core looks for stalled frames a few times a second; use at least 100ms (the default is 10s), or 0s to turn the deadline off' : 'the core keeps it in 32-bit milliseconds; a deadline of hours already stops a trickling client')
  }
  // The cluster bus: a shard silent for a lease is dead to the others, so a lease must
  // outlast a late heartbeat or two.
  const cl = spec.cluster
  const HEARTBEAT_MIN = 100
  const HEARTBEAT_MAX = 3_600_000
  if (source.node(['cluster', 'heartbeat']) !== undefined && (cl.heartbeatMs < HEARTBEAT_MIN || cl.heartbeatMs > HEARTBEAT_MAX)) {
    report('E307', source.at(['cluster', 'heartbeat']), `cluster.heartbeat (${cl.heartbeatMs} ms) must be from 100ms to 1h`, 'every shard publishes a heartbeat at this interval; 1s (the default) suits most clusters')
  } else if (cl.leaseMs <= 2 * cl.heartbeatMs) {
    const where = source.node(['cluster', 'lease']) !== undefined ? ['cluster', 'lease'] : ['cluster', 'heartbeat']
    report('E307', source.at(where), `cluster.lease (${cl.leaseMs} ms) must be longer than two heartbeats (2 x ${cl.heartbeatMs} ms)`, `a shard silent for one lease is taken for dead; make lease more than ${2 * cl.heartbeatMs} ms (five heartbeats is typical)`)
  }
  const pinned = srv.maxConnections * srv.recvDepth * srv.bufferSize
  if (!srv.zeroByteRecv && pinned > GiB) {
    out.push(diagnostic('W002', file, source.at(['server', 'maxConnections']), `posted receives can pin ${(pinned / GiB).toFixed(1)} GiB (${srv.maxConnections} clients x ${srv.recvDepth} x ${srv.bufferSize}-byte buffers)`, 'set zeroByteRecv: true so idle clients hold no buffer, or lower bufferSize or recvDepth'))
  }
  for (const key of ['loginQueue', 'queueNotice']) {
    if (srv.whenFull === 'reject' && source.node(['server', key]) !== undefined) {
      out.push(diagnostic('W004', file, source.at(['server', key], 'key'), `${key} has no effect when whenFull is "reject"`, `remove ${key}, or set whenFull: queue`))
    }
  }
  if (srv.queueNotice !== undefined) {
    // The core writes this frame itself, before any handler runs: a u32 position.
    const m = spec.messages.find((x) => x.name === srv.queueNotice)
    const at = source.at(['server', 'queueNotice'])
    const shape = m?.fields.length === 1 && m.fields[0]!.typeText === 'u32'
    const guess = m ? undefined : closest(srv.queueNotice, spec.messages.map((x) => x.name))
    if (!m) report('E305', at, `queueNotice names "${srv.queueNotice}", which is not a message`, guess ? `did you mean "${guess}"?` : 'name a server-to-client message with one u32 field, e.g. QueuePosition {position: u32}')
    else if (m.direction === 'client-to-server') report('E305', at, `queueNotice message ${m.name} is client-to-server`, `set its direction to server-to-client or both`)
    else if (!shape) report('E305', at, `queueNotice message ${m.name} must have exactly one u32 field (the position); it has ${m.fields.map((f) => `${f.name}: ${f.typeText}`).join(', ') || 'none'}`, 'give it a single field such as position: u32')
    // The core takes type id 0 to mean "no notice".
    else if (m.id === 0) report('E305', at, `queueNotice message ${m.name} has type id 0, which the core reads as "no notice"`, `give ${m.name} another id`)
  }

  // Locks: names and references (the deadlock check itself runs on the lock graph).
  // Specs may name the core's locks in their order and call the core's operations.
  const lockNames = new Set([...spec.locks, ...(core?.locks ?? [])].map((l) => l.name))
  const opNames = new Set([...spec.operations, ...(core?.operations ?? [])].map((o) => o.name))
  const usedLocks = new Set<string>()
  for (const l of spec.locks) name(l.name, 'lock', l.at)
  for (const o of spec.operations) name(o.name, 'operation', o.at)
  const lockRef = (n: string, at: Position) => {
    usedLocks.add(n)
    if (!lockNames.has(n)) {
      const guess = closest(n, lockNames)
      report('E402', at, `unknown lock "${n}"`, guess ? `did you mean "${guess}"?` : `declare it under locks: (e.g. ${n}: {kind: mutex})`)
    }
  }
  for (const st of spec.order) {
    if (st.kind === 'chain') for (const g of st.groups) for (const l of g) lockRef(l.name, l.at)
    else for (const l of [st.before, st.after]) lockRef(l.name, l.at)
  }
  const kinds = new Map([...(core?.locks ?? []), ...spec.locks].map((l) => [l.name, l.kind]))
  const walk = (steps: Step[]) => {
    for (const st of steps) {
      if (st.kind === 'lock') {
        lockRef(st.lock, st.at)
        const kind = kinds.get(st.lock)
        if (st.mode === 'read' && kind !== undefined && kind !== 'rwlock') {
          report('E404', st.modeAt ?? st.at, `lock "${st.lock}" is a ${kind}, which has no read mode`, `remove "mode: read" (a ${kind} is always taken exclusively), or declare ${st.lock} with kind: rwlock`)
        }
        walk(st.then)
      } else if (st.kind === 'call' && !opNames.has(st.operation)) {
        const guess = closest(st.operation, opNames)
        report('E403', st.at, `unknown operation "${st.operation}"`, guess ? `did you mean "${guess}"?` : 'define it under operations:')
      }
    }
  }
  for (const o of spec.operations) walk(o.steps)
  for (const l of spec.locks) {
    if (l.scope === 'cluster' && l.kind !== 'mutex') out.push(diagnostic('E405', file, l.at, `lock "${l.name}" is ${l.kind === 'rwlock' ? 'an' : 'a'} ${l.kind} with scope: cluster`, 'a cluster lock is one lease in the cluster\'s KV, held by one shard at a time; declare it with kind: mutex, or drop scope: cluster'))
    if (!usedLocks.has(l.name)) out.push(diagnostic('W003', file, l.at, `lock "${l.name}" is declared but not used in order or operations`, 'add it to the order and to the operations that take it, or remove it'))
  }
  return out
}

function namedRefs(t: TypeRef): string[] {
  if (t.kind === 'named') return [t.name]
  if (t.kind === 'array') return namedRefs(t.of)
  return []
}

function fieldPath(spec: Spec, owner: string, field: string): (string | number)[] {
  const i = spec.messages.findIndex((m) => m.name === owner)
  return i >= 0 ? ['messages', i, 'fields', field] : ['structs', owner, field]
}

/** Each struct cycle once, as names from its first-defined member back to itself. */
function structCycles(table: TypeTable): string[][] {
  const cycles: string[][] = []
  const done = new Set<string>()
  const order = [...table.structs.keys()]
  for (const start of order) {
    if (done.has(start)) continue
    // Shortest path from start back to start, breadth first.
    const prev = new Map<string, string>()
    const queue = [start]
    let found = false
    while (queue.length > 0 && !found) {
      const cur = queue.shift()!
      for (const f of table.structs.get(cur)?.fields ?? []) {
        for (const ref of namedRefs(f.type)) {
          if (!table.structs.has(ref)) continue
          if (ref === start) {
            const path = [cur]
            while (path[0] !== start) path.unshift(prev.get(path[0]!)!)
            cycles.push([...path, start])
            path.forEach((p) => done.add(p))
            found = true
            break
          }
          if (!prev.has(ref) && ref !== start) {
            prev.set(ref, cur)
            queue.push(ref)
          }
        }
        if (found) break
      }
    }
  }
  return cycles
}
