import {Server} from './generated/runtime/server.js'
import {disconnected} from './directory.js'
import {handlers} from './handlers/index.js'

const server = new Server(handlers, {port: Number(process.env.PORT ?? 7000), ...(process.env.HOST ? {host: process.env.HOST} : {})})
server.on('close', (session) => disconnected(server, session))
const {port, backend} = await server.start()
console.log(`chat listening on port ${port} (${backend})`)

// Operators: kill -USR1 <pid> prints the server's stats as one JSON line.
process.on('SIGUSR1', () => console.log(`stats ${JSON.stringify(server.stats())}`))

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void server.stop().then(() => process.exit(0))
  })
}
