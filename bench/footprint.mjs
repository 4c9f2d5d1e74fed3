// What a generated server's native core adds to Node's resident memory before any client
// connects: RSS after loading the addon, after constructing the server (pools sized from the
// spec), and after starting it. Usage: node bench/footprint.mjs <built project dir>
import {readFileSync} from 'node:fs'
import {createRequire} from 'node:module'
import {join, resolve} from 'node:path'
import {pathToFileURL} from 'node:url'

const dir = resolve(process.argv[2] ?? 'examples/chat')
const rssKiB = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1])
const load = (path) => import(pathToFileURL(path).href)
// The runtime the project resolves, and the options its server would hand the core.
const runtime = await load(createRequire(join(dir, 'package.json')).resolve('@iocpgen/runtime'))
const {codecs} = await load(join(dir, 'dist', 'src', 'generated', 'protocol.js'))
const {settings} = await load(join(dir, 'dist', 'src', 'generated', 'spec.js'))
const options = new runtime.Server({protocol: {api: runtime.RUNTIME_API, codecs, settings}, handlers: {}, initialState: () => ({})}, {port: 0, host: '127.0.0.1'}).nativeOptions()
const addon = runtime.loadAddon()
const loaded = rssKiB()
const server = new addon.NativeServer(options, () => {})
const constructed = rssKiB()
const {backend} = server.start()
await new Promise((r) => setTimeout(r, 300))
const started = rssKiB()
const stats = server.stats()
server.stop()
console.log(JSON.stringify({dir, backend, maxConnections: stats.socketPool.capacity, ioContexts: stats.ioPool.capacity,
  rssKiB: {loaded, constructed, started}, addedByCoreKiB: started - loaded}))
