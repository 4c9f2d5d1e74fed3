#!/usr/bin/env node
import {flush, handle, run} from '@oclif/core'

// Exit codes are part of the interface: 0 valid, 1 spec problems, 2 usage error.
// The not-found plugin exits 127 for an unknown command; that is a usage error too.
try {
  await run(process.argv.slice(2), import.meta.url)
  await flush()
} catch (error) {
  if (error?.oclif?.exit === 127) error.oclif.exit = 2
  await handle(error)
}
