import {existsSync, readFileSync} from 'node:fs'
import {join, resolve} from 'node:path'

import {Flags} from '@oclif/core'

import {applyPlan, readManifest, RUNTIME_PACKAGE} from '../generate/plan.js'
import {describePlan, prepare} from '../generate/workflow.js'
import {BaseCommand, SpecError} from '../util/command.js'

export default class Generate extends BaseCommand {
  static override summary = 'Regenerate a project after its spec changed; your handlers are never overwritten.'
  static override description = `Rewrites what changed in src/generated/ and test/generated/, adds a handler stub and a
table entry for each new client message, moves package.json's pin of @iocpgen/runtime to
this generator's version, deletes generated files the spec no longer needs,
and lists handlers of removed messages without deleting them. A generated file edited by
hand is a conflict: nothing is written unless --force.
Exit codes: 0 done (or up to date with --check), 1 spec errors, conflicts, or --check found
changes, 2 usage error.`

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --dry-run', '<%= config.bin %> <%= command.id %> --check   # in CI']

  static override enableJsonFlag = true

  static override flags = {
    dir: Flags.string({char: 'd', description: 'the project directory', default: '.'}),
    spec: Flags.string({char: 's', description: 'the spec, relative to the project (default: package.json "iocpgen.spec")'}),
    'dry-run': Flags.boolean({description: 'print the plan and the diff of each change; write nothing'}),
    check: Flags.boolean({description: 'write nothing; exit 1 if generating would change any file'}),
    force: Flags.boolean({description: 'overwrite generated files that were edited by hand'}),
  }

  async run(): Promise<{changes: {kind: string; path: string}[]; conflicts: {path: string; why: string}[]; orphans: string[]; written: boolean}> {
    const {flags} = await this.parse(Generate)
    const dir = resolve(flags.dir)
    const specFile = flags.spec ?? specOf(dir) ?? readManifest(dir)?.spec
    if (!specFile) this.error(`${flags.dir} has no spec: pass --spec, or set "iocpgen": {"spec": "..."} in its package.json`, {exit: 2})
    if (!existsSync(join(dir, specFile))) this.error(`no such spec file: ${join(flags.dir, specFile)}`, {exit: 2})

    const prepared = prepare(dir, join(dir, specFile), specFile)
    if (!prepared.plan) {
      this.logToStderr(prepared.problems)
      throw new SpecError(`${specFile} has errors; nothing was written`, prepared.diagnostics ?? [])
    }
    const plan = prepared.plan
    const result = {changes: plan.actions.map((a) => ({kind: a.kind, path: a.path})), conflicts: plan.conflicts, orphans: plan.orphans, written: false}
    // --check reports the pin as a warning of its own, not as a change.
    const text = describePlan(flags.check ? {...plan, pin: undefined} : plan, flags['dry-run'])

    if (flags.check || flags['dry-run']) {
      if (text) this.log(text)
      // The pin is not generated output: a project made by another version of the tool
      // passes while its output is the same.
      if (flags.check && plan.pin) this.logToStderr(`warning: package.json pins ${RUNTIME_PACKAGE} ${plan.pin.from}; this generator is ${plan.pin.to}. Run "npx iocpgen generate" and npm install to move it.`)
      if (flags.check && plan.actions.length > 0) {
        process.exitCode = 1
        this.logToStderr(`${plan.actions.length} file(s) out of date: run "npx iocpgen generate"`)
      } else if (flags.check) this.log('up to date')
      return result
    }
    if (plan.conflicts.length > 0 && !flags.force) {
      if (text) this.logToStderr(text)
      this.error(`${plan.conflicts.length} generated file(s) changed by hand; nothing was written. Move your changes out of them, or pass --force to overwrite.`, {exit: 1})
    }
    applyPlan(dir, plan)
    result.written = true
    this.log(text || 'up to date')
    return result
  }
}

function specOf(dir: string): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {iocpgen?: {spec?: string}}
    return pkg.iocpgen?.spec
  } catch {
    return undefined
  }
}
