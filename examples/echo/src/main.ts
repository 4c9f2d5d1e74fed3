import {createServer} from './generated/server.js'
import {handlers} from './handlers/index.js'

const server = createServer(handlers, {port: Number(process.env.PORT ?? 7001)})
const {port, backend} = await server.start()
console.log(`echo listening on port ${port} (${backend})`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void server.stop().then(() => process.exit(0))
  })
}
