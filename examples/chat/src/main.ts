import {writeFileSync} from 'node:fs'

import {disconnected, lost} from './directory.js'
import {createServer} from './generated/server.js'
import {handlers} from './handlers/index.js'

const server = createServer(handlers, {port: Number(process.env.PORT ?? 7000), ...(process.env.HOST ? {host: process.env.HOST} : {})})
server.on('close', (session) => disconnected(server, session))
server.on('lost', (sessions) => lost(server, sessions))
const {port, backend} = await server.start()
console.log(`chat listening on port ${port} (${backend})`)

// Operators read the stats as one JSON line: on SIGUSR1 (POSIX), or every STATS_EVERY_MS
// milliseconds in the file STATS_FILE (any platform).
const stats = () => JSON.stringify({at: Date.now(), ...server.stats()})
process.on('SIGUSR1', () => console.log(`stats ${stats()}`))
if (process.env.STATS_FILE) {
  const file = process.env.STATS_FILE
  setInterval(() => writeFileSync(file, stats()), Number(process.env.STATS_EVERY_MS ?? 1000)).unref()
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void server.stop().then(() => process.exit(0))
  })
}
