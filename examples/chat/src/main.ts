import {Server} from './generated/runtime/server.js'
import {handlers} from './handlers/index.js'

const server = new Server(handlers, {port: Number(process.env.PORT ?? 7000)})
const {port, backend} = await server.start()
console.log(`chat listening on port ${port} (${backend})`)

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    void server.stop().then(() => process.exit(0))
  })
}
