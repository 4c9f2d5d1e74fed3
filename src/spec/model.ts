// The checked, typed form of a spec: what generation and the lock check consume.
import type {Position} from '../diagnostics/diagnostic.js'

export const INT_TYPES = ['u8', 'u16', 'u32', 'u64', 'i8', 'i16', 'i32', 'i64'] as const
export const PRIMITIVES = [...INT_TYPES, 'f32', 'f64', 'bool'] as const
export type IntType = (typeof INT_TYPES)[number]
export type Primitive = (typeof PRIMITIVES)[number]

export type TypeRef =
  | {kind: 'primitive'; name: Primitive}
  | {kind: 'string'; max: number}
  | {kind: 'bytes'; max: number}
  | {kind: 'named'; name: string}
  | {kind: 'array'; of: TypeRef; max: number}

export interface Field {
  name: string
  type: TypeRef
  /** The type as written, e.g. "string<32>[8]". */
  typeText: string
  at: Position
}

export type Direction = 'client-to-server' | 'server-to-client' | 'both'

export interface Message {
  id: number
  name: string
  direction: Direction
  fields: Field[]
  at: Position
}

export interface StructDef {
  name: string
  fields: Field[]
  at: Position
}

export interface EnumDef {
  name: string
  base: Extract<IntType, 'u8' | 'u16' | 'u32' | 'i8' | 'i16' | 'i32'>
  values: {name: string; value: number; at: Position}[]
  at: Position
}

export interface ServerConfig {
  port: number
  host: string
  /** 0 means one per core ("auto"). */
  workers: number
  acceptBacklog: number
  listenBacklog: number
  maxConnections: number
  /** Resolved: explicit, or derived from the pool arithmetic. */
  ioContexts: number
  bufferSize: number
  recvDepth: number
  sendDepth: number
  zeroByteRecv: boolean
  sendQueueLimit: number
  slowClient: 'disconnect' | 'drop'
  idleTimeoutMs: number
  heartbeatMs: number
  /** A begun frame must be complete within this; 0: no deadline. */
  frameTimeoutMs: number
  perIp: {maxConnections: number; connectsPerSecond: number; banForMs: number}
  whenFull: 'queue' | 'reject'
  loginQueue: number
  /** Message sent to queued clients with their position; undefined: none. */
  queueNotice?: string
  drainTimeoutMs: number
  socketReuse: boolean
  /** Shard processes; 0 means one per core ("auto"), decided at run time. */
  shards: number
}

/** The `cluster:` section: the NATS bus that joins shards. On only when a url is known at run time. */
export interface ClusterConfig {
  /** Prefix of every subject on the bus; the spec's name by default. */
  subject: string
  url?: string
  heartbeatMs: number
  leaseMs: number
  maxPendingBytes: number
}

export interface LockDef {
  name: string
  kind: 'mutex' | 'rwlock' | 'spin'
  leaf: boolean
  perInstance: boolean
  nestById: boolean
  /** `cluster`: a lease in the cluster's KV as well, so one holder cluster-wide (mutexes only). */
  scope: 'local' | 'cluster'
  at: Position
}

export interface LockName {
  name: string
  at: Position
}

/** One statement of the order language: groups in ascending order, or a forbidden pair. */
export type OrderStatement =
  | {kind: 'chain'; groups: LockName[][]; at: Position}
  | {kind: 'never'; before: LockName; after: LockName; at: Position}

export type Step =
  | {kind: 'lock'; lock: string; mode: 'read' | 'write'; then: Step[]; at: Position; modeAt?: Position}
  | {kind: 'call'; operation: string; at: Position}
  | {kind: 'js'; at: Position}
  | {kind: 'wait'; at: Position}

export interface Operation {
  name: string
  steps: Step[]
  at: Position
}

export interface Spec {
  file: string
  name: string
  version: string
  description?: string
  maxFrame: number
  server: ServerConfig
  cluster: ClusterConfig
  enums: EnumDef[]
  structs: StructDef[]
  messages: Message[]
  locks: LockDef[]
  order: OrderStatement[]
  operations: Operation[]
  /** Retired ids and names: never to be used again, so old peers never misread them. */
  reserved: Reserved
}

export interface Reserved {
  /** Inclusive ranges; a single id is a range of one. */
  ids: {from: number; to: number; at: Position}[]
  names: {name: string; at: Position}[]
}

/** Bytes in the frame header: u32 length, u16 type id. */
export const FRAME_HEADER = 6
