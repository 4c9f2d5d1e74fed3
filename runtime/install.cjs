// npm runs this when @iocpgen/runtime is installed. The prebuilt addon for this platform
// (prebuilds/<platform>-<arch>/, node-gyp-build's layout) needs nothing more, if it loads:
// the Linux one needs glibc 2.36. Without one that loads (another platform, musl, an older
// glibc, or `--build-from-source`) the addon is built from native/ with node-gyp, which needs
// Python 3, make and a C++17 compiler (and liburing's headers for io_uring on Linux; without
// them the build serves epoll only). node-gyp-build prefers that build at run time.
'use strict'
const {spawnSync} = require('node:child_process')
const {existsSync} = require('node:fs')
const path = require('node:path')

const fromSource = process.env.npm_config_build_from_source === 'true'
if (!fromSource) {
  try {
    require('node-gyp-build')(__dirname)
    process.exit(0)
  } catch (error) {
    if (existsSync(path.join(__dirname, 'prebuilds'))) console.log(`@iocpgen/runtime: no prebuilt addon loads here (${error.message.split('\n')[0]}); building from source`)
  }
}
if (!existsSync(path.join(__dirname, 'native'))) {
  // A checkout of the repository: `npm run build:native` there builds the prebuilds.
  console.log(`@iocpgen/runtime: no addon for ${process.platform}-${process.arch} yet; in the iocpgen repository, run "npm run build:native".`)
  process.exit(0)
}
// npm hands its own node-gyp to install scripts.
const nodeGyp = process.env.npm_config_node_gyp
if (!nodeGyp) {
  console.error('@iocpgen/runtime: building the addon needs npm\'s node-gyp: run "npm rebuild @iocpgen/runtime --build-from-source"')
  process.exit(1)
}
const r = spawnSync(process.execPath, [nodeGyp, 'rebuild'], {cwd: __dirname, stdio: 'inherit'})
process.exit(r.status ?? 1)
