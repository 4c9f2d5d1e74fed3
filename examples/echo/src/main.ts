import {serve} from '@iocpgen/runtime'

import {createServer} from './generated/server.js'
import {deployment} from './generated/spec.js'
import {handlers} from './handlers/index.js'

// One server per shard (IOCPGEN_SHARDS, else the spec's server.shards). serve() starts them,
// prints the port, restarts a shard that dies, stops them all on SIGINT or SIGTERM, and
// gives the stats (STATS_FILE, SIGUSR1). Spread shard.options last: they carry its port.
await serve({
  name: 'echo',
  deployment,
  server: (shard) => createServer(handlers, {port: Number(process.env.PORT ?? 7001), ...shard.options}),
})
