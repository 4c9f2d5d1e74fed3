// What generated code hands the runtime: the spec's messages (types, codecs, size bounds)
// and its settings. The runtime imports nothing of a project; a project's generated
// server.ts binds these to its own types.
import type {NativeOptions} from './bridge.js'
import type {Reader, Writer} from './wire.js'

/**
 * The version of this contract. Generated code states the one it was written for, and the
 * server refuses to start on a mismatch instead of misreading it.
 */
export const RUNTIME_API = 1

/** A message's codec, as generated from the spec. */
export interface Codec<T> {
  /** The u16 type id on the wire. */
  id: number
  encode(w: Writer, m: T): void
  decode(r: Reader): T
  /** Payload size bounds in bytes, as the native core checks them. */
  minSize: number
  maxSize: number
}

/** A protocol's types: every message by name, and which ones each side sends. */
export interface ProtocolTypes {
  messages: object
  /** Names of the messages clients send. */
  inbound: string
  /** Names of the messages the server sends. */
  outbound: string
}

/** The message type called K. */
export type MessageOf<T extends ProtocolTypes, K> = K extends keyof T['messages'] ? T['messages'][K] : never

/** The spec's server settings, as the native core takes them. */
export type SpecSettings = Omit<NativeOptions, 'messages' | 'eventQueueLimit'> & {maxFrame: number}

/** The spec's `cluster:` section. The cluster is on only when a url is known (here or IOCPGEN_NATS_URL). */
export interface ClusterSettings {
  subject: string
  url?: string
  heartbeatMs: number
  leaseMs: number
  maxPendingBytes: number
}

/** How the server is deployed: shard processes, and the cluster they join. */
export interface Deployment {
  /** shard processes; 0: one per core */
  shards: number
  cluster: ClusterSettings
}

/** A generated protocol: the values the runtime needs, typed by T. */
export interface Protocol<T extends ProtocolTypes> {
  /** The RUNTIME_API the generated code was written for. */
  api: number
  /** Codecs of every message, by name. */
  codecs: {readonly [K in keyof T['messages']]: Codec<T['messages'][K]>}
  settings: SpecSettings
  deployment?: Deployment
}
