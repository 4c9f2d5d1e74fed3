import {serve} from '@iocpgen/runtime'

import {disconnected, lost} from './directory.js'
import {createServer} from './generated/server.js'
import {deployment} from './generated/spec.js'
import {handlers} from './handlers/index.js'

// One server per shard (IOCPGEN_SHARDS, else the spec's server.shards). serve() starts them,
// prints the port, restarts a shard that dies, stops them all on SIGINT or SIGTERM, and
// gives the stats as one JSON line: on SIGUSR1 (POSIX), or every STATS_EVERY_MS milliseconds
// in the file STATS_FILE (any platform), added up over the shards.
await serve({
  name: 'chat',
  deployment,
  server: (shard) => {
    const host = process.env.HOST ? {host: process.env.HOST} : {}
    const server = createServer(handlers, {port: Number(process.env.PORT ?? 7000), ...host, ...shard.options})
    server.on('close', (session) => disconnected(server, session))
    server.on('lost', (sessions) => lost(server, sessions))
    return server
  },
})
