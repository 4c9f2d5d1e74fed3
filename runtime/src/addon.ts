// Loads the native addon the usual way (node-gyp-build): a source build in build/Release if
// there is one, else the prebuild for this platform from prebuilds/<platform>-<arch>/.
import {createRequire} from 'node:module'
import {fileURLToPath} from 'node:url'

import {BRIDGE_HASH, type EngineStats, type NativeOptions} from './bridge.js'

export interface NativeStats extends EngineStats {
  backend: string
  /** Times an I/O thread waited for JavaScript to take queued events (eventQueueLimit). */
  backpressureWaits: number
  /** I/O worker threads; 0 when the JS thread drives I/O itself (jsThreadIo). */
  ioThreads: number
  /**
   * Closes by reason: peer_closed, reset, bad_frame_*, slow_consumer, idle_timeout, frame_timeout, ... and
   * connections refused at accept: banned, per_ip_limit, connect_rate, login_queue_full,
   * pool_exhausted; and the runtime's own: bad_payload (a reset) and handler_error.
   */
  closes: Record<string, number>
}

export interface NativeServer {
  start(): {port: number; backend: string}
  send(batch: Buffer): number
  close(index: number, gen: number, reason?: number): boolean
  stats(): NativeStats
  /** The settings in effect, defaults included. */
  options(): Required<NativeOptions>
  stop(): void
}

export interface Addon {
  NativeServer: new (options: NativeOptions, onEvents: (batch: Buffer) => void) => NativeServer
  closeReasons: string[]
  bridge: string
}

const packageRoot = fileURLToPath(new URL('..', import.meta.url))
const loaded = new Map<string, Addon>()

/**
 * The addon at `path`, or the one node-gyp-build finds for this platform (IOCPGEN_ADDON names
 * a file instead). Throws when none fits, or when it was built from another bridge.
 */
export function loadAddon(path = process.env.IOCPGEN_ADDON || undefined): Addon {
  const key = path ?? ''
  const known = loaded.get(key)
  if (known) return known
  const require = createRequire(import.meta.url)
  let addon: Addon
  let where = path
  try {
    if (path) addon = require(path) as Addon
    else {
      const find = require('node-gyp-build') as {(dir: string): Addon; resolve(dir: string): string}
      where = find.resolve(packageRoot)
      addon = require(where) as Addon
    }
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error)
    throw new Error(
      `@iocpgen/runtime: no native addon loads for ${process.platform}-${process.arch}: ${reason}\n` +
        'Prebuilds cover linux-x64 (glibc) and win32-x64. Elsewhere build it from source: ' +
        'npm rebuild @iocpgen/runtime --build-from-source (needs Python 3, make and a C++17 compiler).',
      {cause: error},
    )
  }
  if (addon.bridge !== BRIDGE_HASH) {
    throw new Error(`@iocpgen/runtime: the native addon at ${where} was built for another version of the runtime (bridge ${addon.bridge}, expected ${BRIDGE_HASH}); rebuild it or reinstall @iocpgen/runtime`)
  }
  loaded.set(key, addon)
  return addon
}
