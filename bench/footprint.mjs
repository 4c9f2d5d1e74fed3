// What a generated server's native core adds to Node's resident memory before any client
// connects: RSS after loading the addon, after constructing the server (pools sized from the
// spec), and after starting it. Usage: node bench/footprint.mjs <built project dir>
import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {join, resolve} from 'node:path'

const dir = resolve(process.argv[2] ?? 'examples/chat')
const rssKiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1])
const require = createRequire(import.meta.url)
const addon = require(join(dir, 'build', 'Release', 'iocpgen.node'))
const loaded = rssKiB()
const server = new addon.NativeServer({port: 0, host: '127.0.0.1'}, () => {})
const constructed = rssKiB()
const {backend} = server.start()
await new Promise((r) => setTimeout(r, 300))
const started = rssKiB()
const stats = server.stats()
server.stop()
console.log(JSON.stringify({dir, backend, maxConnections: stats.socketPool.capacity, ioContexts: stats.ioPool.capacity,
  rssKiB: {loaded, constructed, started}, addedByCoreKiB: started - loaded}))
