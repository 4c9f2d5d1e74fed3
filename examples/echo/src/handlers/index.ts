// The handler for each message clients send. `iocpgen generate` adds entries for new
// messages; the Handlers type makes a stale or missing entry a compile error.
import type {Handlers} from '../generated/handlers.js'
import {onEcho} from './echo.js'

export const handlers: Handlers = {
  Echo: onEcho,
}
