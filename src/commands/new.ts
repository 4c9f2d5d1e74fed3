import {spawn} from 'node:child_process'
import {existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {basename, extname, join, relative, resolve} from 'node:path'

import {Args, Flags, ux} from '@oclif/core'

import {applyPlan} from '../generate/plan.js'
import {INSTALLED_SCHEMA, withSchemaComment} from '../generate/schema-ref.js'
import {describePlan, prepare} from '../generate/workflow.js'
import {BaseCommand, SpecError} from '../util/command.js'

export default class New extends BaseCommand {
  static override summary = 'Create a server project from a spec: typed handlers, codec and tests on the native core of @iocpgen/runtime.'
  static override description = `Copies the spec into the project (its yaml-language-server comment pointing at the
schema the project installs), writes every file, then installs dependencies (skip with
--no-install); @iocpgen/runtime brings its native addon prebuilt. Refuses a directory that is not empty
unless --force. Exit codes: 0 created, 1 the spec has errors or a step failed, 2 usage error.`

  static override examples = ['<%= config.bin %> <%= command.id %> my-server --spec chat.yaml', '<%= config.bin %> <%= command.id %> my-server --spec chat.yaml --no-install']

  static override enableJsonFlag = true

  static override args = {
    dir: Args.string({description: 'directory to create the project in', required: true}),
  }

  static override flags = {
    spec: Flags.string({char: 's', description: 'the spec file (YAML or JSON)', required: true}),
    force: Flags.boolean({description: 'write into a directory that is not empty'}),
    install: Flags.boolean({description: 'run npm install', default: true, allowNo: true}),
  }

  async run(): Promise<{dir: string; files: string[]; installed: boolean}> {
    const {args, flags} = await this.parse(New)
    const dir = resolve(args.dir)
    if (existsSync(dir) && readdirSync(dir).length > 0 && !flags.force) {
      this.error(`${args.dir} is not empty; pass --force to write into it anyway`, {exit: 2})
    }
    if (!existsSync(flags.spec)) this.error(`no such spec file: ${flags.spec}`, {exit: 2})

    // The directory is made only once the spec is known good: a failed new leaves nothing.
    const specFile = basename(flags.spec)
    // The copy's schema comment names the schema the project installs (iocpgen is a devDependency).
    const copied = (text: string) => withSchemaComment(text, INSTALLED_SCHEMA, extname(specFile) === '.json')
    const prepared = prepare(dir, flags.spec, specFile, copied)
    if (!prepared.plan) {
      this.logToStderr(prepared.problems)
      throw new SpecError(`${flags.spec} has errors; nothing was written`, prepared.diagnostics ?? [])
    }
    mkdirSync(dir, {recursive: true})
    const specTarget = join(dir, specFile)
    const specText = readFileSync(flags.spec, 'utf8')
    if (copied(specText) !== specText || resolve(flags.spec) !== specTarget) writeFileSync(specTarget, copied(specText))
    applyPlan(dir, prepared.plan)
    const files = prepared.plan.actions.map((a) => a.path)
    this.log(describePlan(prepared.plan, false))
    this.log(`\ncreated ${args.dir} from ${specFile}: ${files.length} files`)

    let installed = false
    if (flags.install) {
      ux.action.start('installing dependencies (npm install)')
      const started = Date.now()
      const {code, output} = await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], dir)
      writeFileSync(join(dir, '.iocpgen', 'install.log'), output)
      if (code !== 0) {
        ux.action.stop('failed')
        this.logToStderr(output.split('\n').slice(-30).join('\n'))
        this.error(`npm install failed (exit ${code}); the full log is in ${relative(process.cwd(), join(dir, '.iocpgen', 'install.log'))}`, {exit: 1})
      }
      ux.action.stop(`done in ${((Date.now() - started) / 1000).toFixed(1)} s`)
      installed = true
    }
    const cd = args.dir
    this.log(['', 'next:', `  cd ${cd}`, ...(installed ? [] : ['  npm install']), '  npm start', '  npm test', '', 'Write your handlers in src/handlers/; after changing the spec, run npx iocpgen generate.'].join('\n'))
    return {dir, files, installed}
  }
}

function run(cmd: string, args: string[], cwd: string): Promise<{code: number; output: string}> {
  return new Promise((resolvePromise) => {
    const child = spawn(cmd, args, {cwd, shell: process.platform === 'win32', env: process.env})
    let output = ''
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => (output += d.toString()))
    child.on('close', (code) => resolvePromise({code: code ?? 1, output}))
    child.on('error', (e) => resolvePromise({code: 1, output: String(e)}))
  })
}
