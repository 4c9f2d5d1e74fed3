#!/usr/bin/env node
// Measures what a user of the packed packages gets, and prints a Markdown table:
//   sizes: packed, installed alone, installed with its dependencies (du -sk), per package;
//   time from `npx iocpgen new app --spec echo.yaml` (then the install from the tarballs) to
//     `npm start`'s listening line, median of 3: (a) prebuilt addon, no compiler on PATH;
//     (b) `--build-from-source`;
//   (c) files a patch release of the tool (both packages 0.1.0 -> 0.1.1) changes in a generated
//     project, with `generate --check`'s verdict; (d) files `generate` touches when the spec
//     gains one message.
// Usage: node scripts/measure-install.mjs [--runs N] [--packs DIR]  (DIR: existing tarballs;
// otherwise both packages are packed from this checkout, which needs `npm run build:native`).
// The registry must be reachable (typescript, @types/node and the CLI's dependencies).
import {spawn} from 'node:child_process'
import {createHash} from 'node:crypto'
import {cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join, relative} from 'node:path'

const root = join(import.meta.dirname, '..')
const arg = (name) => {
  const i = process.argv.indexOf(name)
  return i > 0 ? process.argv[i + 1] : undefined
}
const runs = Number(arg('--runs') ?? 3)
const work = mkdtempSync(join(tmpdir(), 'iocpgen-measure-'))
const version = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version
const log = (s) => process.stderr.write(`${s}\n`)

function env(path = process.env.PATH) {
  const e = {}
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k) || /^npm_config_(cache|registry|userconfig)$/.test(k)) e[k] = v
  delete e.IOCPGEN_ADDON
  e.PATH = path
  return e
}

function sh(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, {cwd: opts.cwd, env: opts.env ?? env(), stdio: ['ignore', 'pipe', 'pipe']})
    let out = ''
    c.stdout.on('data', (d) => (out += d))
    c.stderr.on('data', (d) => (out += d))
    c.on('error', reject)
    c.on('close', (code) => (code === 0 || opts.allowFail ? resolve({code, out}) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}\n${out}`))))
  })
}

/** A bin directory with node, npm, npx and sh only: no compiler, make or Python. */
async function bareBin() {
  const bin = join(work, 'bin')
  mkdirSync(bin)
  symlinkSync(process.execPath, join(bin, 'node'))
  for (const t of ['npm', 'npx', 'sh', 'env']) symlinkSync((await sh('sh', ['-c', `command -v ${t}`])).out.trim(), join(bin, t))
  return bin
}

const du = async (p) => Number((await sh('du', ['-sk', p])).out.split(/\s/)[0])
const kb = (k) => (k >= 1024 ? `${(k / 1024).toFixed(1)} MB` : `${k} kB`)
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

/** Starts `npm start` in its own process group; resolves at the listening line, then stops it. */
async function startAndStop(app, e) {
  const c = spawn('npm', ['start'], {cwd: app, env: {...e, PORT: '0'}, detached: true, stdio: ['ignore', 'pipe', 'pipe']})
  let out = ''
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line:\n${out}`)), 300_000)
    const check = (d) => {
      out += d
      if (/ listening on port \d+ /.test(out)) {
        clearTimeout(timer)
        resolve()
      }
    }
    c.stdout.on('data', check)
    c.stderr.on('data', check)
    c.on('exit', (code) => reject(new Error(`npm start exited ${code}:\n${out}`)))
  })
  const at = Date.now()
  // The whole group, as Ctrl+C would: npm's sh does not pass SIGTERM on to node.
  process.kill(-c.pid, 'SIGTERM')
  for (;;) {
    try {
      process.kill(-c.pid, 0)
    } catch {
      break
    }
    if (Date.now() - at > 20_000) process.kill(-c.pid, 'SIGKILL')
    await new Promise((r) => setTimeout(r, 50))
  }
  return at
}

/** Every file of a project but node_modules and dist, with its hash. */
function snapshot(dir) {
  const files = new Map()
  const walk = (d) => {
    for (const f of readdirSync(d, {withFileTypes: true})) {
      const p = join(d, f.name)
      if (f.isDirectory()) {
        if (!['node_modules', 'dist'].includes(f.name)) walk(p)
      } else files.set(relative(dir, p), createHash('sha1').update(readFileSync(p)).digest('hex'))
    }
  }
  walk(dir)
  return files
}
const changed = (a, b) => [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k)).sort()

async function main() {
  // The tarballs.
  let packs = arg('--packs')
  if (!packs) {
    packs = join(work, 'packs')
    mkdirSync(packs)
    log('packing both packages ...')
    await sh('npm', ['pack', '--pack-destination', packs], {cwd: root})
    await sh('npm', ['pack', '--workspace', 'runtime', '--pack-destination', packs], {cwd: root})
  }
  const cli = join(packs, `iocpgen-${version}.tgz`)
  const runtime = join(packs, `iocpgen-runtime-${version}.tgz`)
  const bare = env(await bareBin())
  const rows = []

  // Sizes: each package alone in an empty project.
  for (const [name, tgz] of [['iocpgen', cli], ['@iocpgen/runtime', runtime]]) {
    const dir = join(work, `size-${name.replace('/', '-')}`)
    mkdirSync(dir)
    writeFileSync(join(dir, 'package.json'), '{"private": true}\n')
    await sh('npm', ['install', '--no-audit', '--no-fund', tgz], {cwd: dir, env: bare})
    const packages = readdirSync(join(dir, 'node_modules')).flatMap((d) => (d.startsWith('@') ? readdirSync(join(dir, 'node_modules', d)).map((s) => `${d}/${s}`) : d.startsWith('.') ? [] : [d]))
    rows.push([`${name}: packed / installed alone / with dependencies`, `${kb(Math.round(statSync(tgz).size / 1024))} / ${kb(await du(join(dir, 'node_modules', name)))} / ${kb(await du(join(dir, 'node_modules')))} (${packages.length} packages)`])
  }

  // The user's own install of the CLI, once.
  const user = join(work, 'user')
  mkdirSync(user)
  writeFileSync(join(user, 'package.json'), '{"private": true}\n')
  await sh('npm', ['install', '--no-audit', '--no-fund', cli, runtime], {cwd: user, env: bare})
  cpSync(join(root, 'examples/echo/echo.yaml'), join(user, 'echo.yaml'))

  /** new -> install from the tarballs -> npm start's listening line, in seconds, with each step's share. */
  async function newToListening(name, fromSource) {
    const e = fromSource ? env() : bare
    const t0 = Date.now()
    await sh('npx', ['iocpgen', 'new', name, '--spec', 'echo.yaml', '--no-install'], {cwd: user, env: e})
    const t1 = Date.now()
    const app = join(user, name)
    // The flags `new` itself installs with.
    const install = ['install', '--no-save', '--no-audit', '--no-fund', '--prefer-offline', cli, runtime]
    if (fromSource) {
      // npm 11 warns about a dependency's install script that allowScripts does not list, and its docs say it blocks it.
      const pkg = JSON.parse(readFileSync(join(app, 'package.json'), 'utf8'))
      writeFileSync(join(app, 'package.json'), JSON.stringify({...pkg, allowScripts: {'@iocpgen/runtime': true}}, null, 2) + '\n')
      install.push('--build-from-source')
    }
    await sh('npm', install, {cwd: app, env: e})
    const t2 = Date.now()
    if (fromSource && !existsSync(join(app, 'node_modules/@iocpgen/runtime/build/Release/iocpgen.node'))) throw new Error('the source build did not happen')
    const listening = await startAndStop(app, e)
    return {total: (listening - t0) / 1000, steps: [(t1 - t0) / 1000, (t2 - t1) / 1000, (listening - t2) / 1000]}
  }
  for (const [label, fromSource] of [['(a) new to listening, prebuilt addon (s)', false], ['(b) new to listening, --build-from-source (s)', true]]) {
    const results = []
    for (let i = 0; i < runs; i++) {
      results.push(await newToListening(`app-${fromSource ? 'src' : 'pre'}-${i}`, fromSource))
      log(`${label} run ${i + 1}: ${results.at(-1).total.toFixed(1)} s`)
    }
    const times = results.map((r) => r.total)
    const step = (k) => median(results.map((r) => r.steps[k])).toFixed(1)
    rows.push([label, `${median(times).toFixed(1)} (runs: ${times.map((t) => t.toFixed(1)).join(', ')}; medians: new ${step(0)}, npm install ${step(1)}, npm start to listening ${step(2)})`])
  }

  // (c) A patch release: the project's installed tool and runtime become 0.1.1.
  {
    const app = join(user, 'app-pre-0')
    const bumped = version.replace(/\d+$/, (n) => String(Number(n) + 1))
    for (const f of ['node_modules/iocpgen/package.json', 'node_modules/iocpgen/oclif.manifest.json', 'node_modules/@iocpgen/runtime/package.json']) {
      const p = join(app, f)
      if (existsSync(p)) writeFileSync(p, readFileSync(p, 'utf8').replace(`"version": "${version}"`, `"version": "${bumped}"`))
    }
    const bin = join(app, 'node_modules/iocpgen/bin/run.js')
    const before = snapshot(app)
    const check = await sh(process.execPath, [bin, 'generate', '--check'], {cwd: app, env: bare, allowFail: true})
    await sh(process.execPath, [bin, 'generate'], {cwd: app, env: bare, allowFail: true})
    const files = changed(before, snapshot(app))
    // package.json is not generated output: generate moves its pin of the runtime on purpose.
    const generated = files.filter((f) => f !== 'package.json')
    const warned = /pins @iocpgen\/runtime/.test(check.out) ? ', warns about the pin' : ''
    rows.push([
      `(c) patch release ${version} -> ${bumped}: files generate changes`,
      `${files.length}${files.length ? ` (${files.join(', ')})` : ''}: ${generated.length} generated, package.json ${files.includes('package.json') ? 'pin moved' : 'unchanged'}; generate --check exit ${check.code}${warned}`,
    ])
  }

  // (d) One more message in the spec.
  {
    const app = join(user, 'app-msg')
    const tool = join(user, 'node_modules/iocpgen/bin/run.js')
    await sh(process.execPath, [tool, 'new', 'app-msg', '--spec', 'echo.yaml', '--no-install'], {cwd: user, env: bare})
    writeFileSync(join(app, 'echo.yaml'), readFileSync(join(app, 'echo.yaml'), 'utf8') + `  - id: 2
    name: Ping
    direction: both
    fields:
      seq: u32
`)
    const before = snapshot(app)
    await sh(process.execPath, [tool, 'generate'], {cwd: app, env: bare})
    const files = changed(before, snapshot(app))
    rows.push(['(d) one message added to the spec: files generate writes', `${files.length} (${files.join(', ')})`])
  }

  const node = process.version
  const npmVersion = (await sh('npm', ['-v'])).out.trim()
  console.log(`Measured ${new Date().toISOString().slice(0, 10)}, iocpgen ${version}, Node ${node}, npm ${npmVersion}, npm cache warm.\n`)
  console.log('| what | value |\n| --- | --- |')
  for (const [k, v] of rows) console.log(`| ${k} | ${v} |`)
}

try {
  await main()
} finally {
  rmSync(work, {recursive: true, force: true})
}
