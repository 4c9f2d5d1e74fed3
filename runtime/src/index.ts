// @iocpgen/runtime: what generated projects import.
export {type LostSession, type Whereabouts, type ClusterStats} from './cluster.js'
export {ENV_OPTIONS, type Handler, type Handlers, type NativeStats, optionsFromEnv, type PoolStats, Server, type ServerDefinition, type ServerEvents, type ServerOptions, type ServerStats} from './server.js'
export {Session, sessionId, SLOT_BITS} from './session.js'
export {devMode, MessageLifetimeError} from './lifetime.js'
export {DecodeError, EncodeError, Reader, Writer} from './wire.js'
export {type ClusterSettings, type Codec, type Deployment, type MessageOf, type Protocol, type ProtocolTypes, RUNTIME_API, type SpecSettings} from './protocol.js'
export {loadAddon} from './addon.js'
export type {NativeOptions} from './bridge.js'
