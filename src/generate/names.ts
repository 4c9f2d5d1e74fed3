// How spec names become file and identifier names in the generated project.
import type {Message} from '../spec/model.js'

/** PrivateSend -> private-send */
export const kebab = (name: string): string =>
  name.replace(/([a-z0-9])([A-Z])/g, '$1-$2').replace(/([A-Z])([A-Z][a-z])/g, '$1-$2').replace(/_/g, '-').toLowerCase()

/** login -> Login */
export const pascal = (name: string): string => name.charAt(0).toUpperCase() + name.slice(1)

export const handlerFile = (m: Message): string => `src/handlers/${kebab(m.name)}.ts`
export const handlerName = (m: Message): string => `on${pascal(m.name)}`

/** Messages a client may send: these get handlers. */
export const inbound = (messages: readonly Message[]): Message[] => messages.filter((m) => m.direction !== 'server-to-client')
/** Messages the server may send. */
export const outbound = (messages: readonly Message[]): Message[] => messages.filter((m) => m.direction !== 'client-to-server')
