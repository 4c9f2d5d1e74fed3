// The lifetime of a message's bytes: `bytes` fields are views of the received data, valid
// until the handler returns or first awaits. In development the server hands each handler
// a private copy of the frame and, once the handler's synchronous part is over, detaches
// it and makes every later use of its views throw MessageLifetimeError.

/** Thrown in development when a message's bytes are used after their handler returned. */
export class MessageLifetimeError extends Error {
  override name = 'MessageLifetimeError'
}

/**
 * Whether the lifetime checks run: IOCPGEN_DEV=1 or 0 decides; without it, everywhere
 * except under NODE_ENV=production.
 */
export function devMode(env: NodeJS.ProcessEnv = process.env): boolean {
  const dev = env.IOCPGEN_DEV
  if (dev === '1') return true
  if (dev === '0') return false
  if (dev !== undefined && dev !== '') throw new Error(`IOCPGEN_DEV=${dev}: expected 0 or 1`)
  return env.NODE_ENV !== 'production'
}

/** A frame's payload in its own ArrayBuffer, which expire() can detach. */
export function ownCopy(batch: Buffer, start: number, end: number): Buffer {
  const copy = Buffer.from(new ArrayBuffer(end - start))
  batch.copy(copy, 0, start, end)
  return copy
}

const lifetimeError = (path: string): MessageLifetimeError =>
  new MessageLifetimeError(`${path} was used after its handler returned or awaited: bytes fields are views of the received frame, valid only until then. Copy what you keep with .slice() inside the handler.`)

// Everything a Uint8Array offers, so a kept view throws on use instead of reading as empty.
const VIEW_KEYS: readonly PropertyKey[] = (() => {
  const typedArrayProto = Object.getPrototypeOf(Uint8Array.prototype) as object
  const keys = new Set<PropertyKey>([...Reflect.ownKeys(typedArrayProto), ...Reflect.ownKeys(Uint8Array.prototype), 'valueOf'])
  keys.delete('constructor')
  keys.delete(Symbol.toStringTag)
  return [...keys]
})()

function guardView(view: Uint8Array, path: string): void {
  const get = (): never => {
    throw lifetimeError(path)
  }
  for (const key of VIEW_KEYS) Object.defineProperty(view, key, {get, configurable: true})
}

const isPlain = (v: object): boolean => {
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null || Array.isArray(v)
}

/**
 * Ends the lifetime of a message decoded from `frame`: each view of the frame still in the
 * message (at any depth) throws when read or used, and the frame's memory is detached.
 */
export function expire(message: unknown, frame: ArrayBufferLike, type: string): void {
  const seen = new Set<object>()
  const walk = (holder: Record<PropertyKey, unknown>, path: string): void => {
    if (seen.has(holder)) return
    seen.add(holder)
    const array = Array.isArray(holder)
    for (const key of Object.keys(holder)) {
      const at = array ? `${path}[${key}]` : `${path}.${key}`
      const v = holder[key]
      if (v instanceof Uint8Array) {
        if (v.buffer !== frame) continue
        guardView(v, at)
        Object.defineProperty(holder, key, {
          get: (): never => {
            throw lifetimeError(at)
          },
          // The handler's own code may still replace the field.
          set: (value: unknown) => Object.defineProperty(holder, key, {value, writable: true, enumerable: true, configurable: true}),
          enumerable: true,
          configurable: true,
        })
      } else if (typeof v === 'object' && v !== null && !ArrayBuffer.isView(v) && isPlain(v)) {
        walk(v as Record<PropertyKey, unknown>, at)
      }
    }
  }
  if (typeof message === 'object' && message !== null) walk(message as Record<PropertyKey, unknown>, type)
  detach(frame)
}

function detach(frame: ArrayBufferLike): void {
  const transfer = (frame as ArrayBuffer & {transfer?: () => ArrayBuffer}).transfer
  if (typeof transfer === 'function') transfer.call(frame)
  else structuredClone(frame, {transfer: [frame as ArrayBuffer]})
}
