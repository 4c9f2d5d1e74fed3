// A connected client. Its id carries the native slot's generation, so an id kept after the
// client left never reaches the next client in that slot.
import type {MessageOf, ProtocolTypes} from './protocol.js'

/** A connection as the native core knows it. */
export interface Connection {
  readonly index: number
  readonly gen: number
}

/** What a Session needs from its server; kept narrow so sessions stay cheap. */
export interface SessionHost {
  sendFrame(connection: Connection, type: string, message: unknown): boolean
  closeSession(connection: Connection): boolean
}

/** Slots are below 2^22 (maxConnections is at most 4,000,000), so ids stay exact numbers. */
export const SLOT_BITS = 22
const NO_GROUPS: ReadonlySet<string> = new Set()

export const sessionId = (index: number, gen: number): number => (gen % 2 ** 31) * 2 ** SLOT_BITS + index

/** A client of a server speaking protocol T, with the handlers' per-client state S. */
export class Session<T extends ProtocolTypes = ProtocolTypes, S = unknown> {
  readonly id: number
  /** Whatever the handlers keep per client; see the project's src/session-state.ts. */
  state: S
  /** False once the client left or close() was called. */
  open = true
  // Made on the first join: most clients of a big server are in no group, and an empty Set
  // per client is a good part of an idle client's memory.
  private joined: Set<string> | undefined
  /** Handler work still running for this session: frames are handled one after another. */
  pending: Promise<void> | undefined

  constructor(
    private readonly host: SessionHost,
    readonly index: number,
    readonly gen: number,
    readonly address: string,
    readonly port: number,
    state: S,
  ) {
    this.id = sessionId(index, gen)
    this.state = state
  }

  /** Groups this session is in, so a disconnect leaves them all. */
  get groups(): ReadonlySet<string> {
    return this.joined ?? NO_GROUPS
  }

  /** The server's bookkeeping for join and leave. */
  groupSet(): Set<string> {
    return (this.joined ??= new Set())
  }

  /** Queues a message to this client; false when the client is gone or its queue refused it. */
  send<K extends T['outbound']>(type: K, message: MessageOf<T, K>): boolean {
    return this.open && this.host.sendFrame(this, type, message)
  }

  /**
   * Closes the connection gracefully: messages already sent are delivered, then the client
   * sees the end of the stream. The 'close' event follows once the client has closed its
   * side too, or has been reset after the spec's drainTimeout. Later sends are refused.
   */
  close(): boolean {
    if (!this.open) return false
    this.open = false  // from now on sends are refused and later frames are not handled
    return this.host.closeSession(this)
  }
}
