// Emits src/generated/spec.ts: the spec's server settings, as the runtime hands them to the
// native core, and its deployment (shards, the cluster bus). The message table is not here:
// the runtime takes it from the codecs.
import type {Spec} from '../spec/model.js'

export function emitSettings(spec: Spec, header: string): string {
  const s = spec.server
  const queueNotice = spec.messages.find((m) => m.name === s.queueNotice)
  const rows: [string, string, string?][] = [
    ['host', JSON.stringify(s.host)],
    ['port', String(s.port)],
    ['workers', String(s.workers), s.workers === 0 ? 'one per core' : undefined],
    ['acceptBacklog', String(s.acceptBacklog)],
    ['listenBacklog', String(s.listenBacklog)],
    ['maxConnections', String(s.maxConnections)],
    ['ioContexts', String(s.ioContexts)],
    ['bufferSize', String(s.bufferSize)],
    ['recvDepth', String(s.recvDepth)],
    ['sendDepth', String(s.sendDepth)],
    ['maxFrame', 'MAX_FRAME'],
    ['sendQueueLimit', String(s.sendQueueLimit)],
    ['zeroByteRecv', String(s.zeroByteRecv)],
    ['socketReuse', String(s.socketReuse)],
    ['dropWhenSlow', String(s.slowClient === 'drop'), `slowClient: ${s.slowClient}`],
    ['perIpMaxConnections', String(s.perIp.maxConnections)],
    ['perIpConnectsPerSecond', String(s.perIp.connectsPerSecond)],
    ['perIpBanMs', String(s.perIp.banForMs)],
    ['loginQueue', String(s.whenFull === 'queue' ? s.loginQueue : 0), `whenFull: ${s.whenFull}`],
    ['queueNoticeType', String(queueNotice?.id ?? 0), queueNotice ? queueNotice.name : 'no queueNotice'],
    ['idleTimeoutMs', String(s.idleTimeoutMs)],
    ['drainTimeoutMs', String(s.drainTimeoutMs)],
    ['frameTimeoutMs', String(s.frameTimeoutMs)],
  ]
  const c = spec.cluster
  const cluster: [string, string][] = [
    ['subject', JSON.stringify(c.subject)],
    ...(c.url !== undefined ? [['url', JSON.stringify(c.url)] as [string, string]] : []),
    ['heartbeatMs', String(c.heartbeatMs)],
    ['leaseMs', String(c.leaseMs)],
    ['maxPendingBytes', String(c.maxPendingBytes)],
  ]
  return `${header}
import type {Deployment, SpecSettings} from '@iocpgen/runtime'

import {MAX_FRAME} from './protocol.js'

/** The spec's server settings. Server options and IOCPGEN_* variables override them per run. */
export const settings: SpecSettings = {
${rows.map(([k, v, note]) => `  ${k}: ${v},${note ? `  // ${note}` : ''}`).join('\n')}
}

/**
 * How the server runs: shard processes (IOCPGEN_SHARDS overrides), and the cluster bus that
 * joins them, on only when a url is known (here, or IOCPGEN_NATS_URL at run time).
 */
export const deployment: Deployment = {
  shards: ${spec.server.shards},${spec.server.shards === 0 ? '  // auto: one per core' : ''}
  cluster: {
${cluster.map(([k, v]) => `    ${k}: ${v},`).join('\n')}
  },
}
`
}
