// The lifetime of a message's bytes: `bytes` fields are views of the received data, valid
// until the handler returns or first awaits. In development each bytes field is decoded
// into memory of its own which, once the handler's synchronous part is over, is detached,
// and every later use of the field or its view throws MessageLifetimeError.

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

const lifetimeError = (path: string): MessageLifetimeError =>
  new MessageLifetimeError(`${path} was used after its handler returned or awaited: bytes fields are views of the received frame, valid only until then. Copy what you keep with .slice() inside the handler.`)

/** Where each expired view was in its message, for the error. */
const paths = new WeakMap<object, string>()

// The prototype of an expired view: still a Uint8Array to instanceof, but every property and
// method throws, so a kept view fails on use instead of reading as empty.
const EXPIRED: Uint8Array = (() => {
  const proto = Object.create(Uint8Array.prototype) as Uint8Array
  const keys = new Set<PropertyKey>([...Reflect.ownKeys(Object.getPrototypeOf(Uint8Array.prototype) as object), ...Reflect.ownKeys(Uint8Array.prototype), 'valueOf', 'toJSON'])
  keys.delete('constructor')
  keys.delete(Symbol.toStringTag)
  for (const key of keys) {
    Object.defineProperty(proto, key, {
      get(this: object): never {
        throw lifetimeError(paths.get(this) ?? 'a bytes field')
      },
    })
  }
  return proto
})()

const isPlain = (v: object): boolean => {
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null || Array.isArray(v)
}

/**
 * Ends the lifetime of `views`, the bytes decoded into `message` (each in its own memory):
 * where the message still holds one (at any depth), reading that field throws; the views
 * themselves throw when used, and their memory is detached.
 */
export function expire(message: unknown, views: readonly Uint8Array[], type: string): void {
  const mine = new Set(views)
  const seen = new Set<object>()
  const walk = (holder: Record<PropertyKey, unknown>, path: string): void => {
    if (seen.has(holder)) return
    seen.add(holder)
    const array = Array.isArray(holder)
    for (const key of Object.keys(holder)) {
      const at = array ? `${path}[${key}]` : `${path}.${key}`
      const v = holder[key]
      if (v instanceof Uint8Array) {
        if (!mine.has(v)) continue
        paths.set(v, at)
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
  for (const v of views) {
    if (!paths.has(v)) paths.set(v, `a bytes field of ${type}`)
    detach(v.buffer)
    Object.setPrototypeOf(v, EXPIRED)
  }
}

function detach(memory: ArrayBufferLike): void {
  const transfer = (memory as ArrayBuffer & {transfer?: () => ArrayBuffer}).transfer
  if (typeof transfer === 'function') transfer.call(memory)
  else structuredClone(memory, {transfer: [memory as ArrayBuffer]})
}
