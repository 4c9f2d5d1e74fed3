import {existsSync, readFileSync} from 'node:fs'
import {dirname, join, relative, resolve} from 'node:path'

import {Flags} from '@oclif/core'

import {applyPlan, MANIFEST, readManifest, RUNTIME_PACKAGE} from '../generate/plan.js'
import {TOOL_VERSION} from '../generate/project.js'
import {describePlan, prepare} from '../generate/workflow.js'
import {BaseCommand, SpecError} from '../util/command.js'

export default class Generate extends BaseCommand {
  static override summary = 'Regenerate a project after its spec changed; your handlers are never overwritten.'
  static override description = `Rewrites what changed in src/generated/ and test/generated/, adds a handler stub and a
table entry for each new client message, moves package.json's pin of @iocpgen/runtime to
this generator's version, deletes generated files the spec no longer needs,
and lists handlers of removed messages without deleting them. A generated file edited by
hand is a conflict: nothing is written unless --force, which first copies it under
.iocpgen/backup/. Run from anywhere in the project: without --dir, the project is the nearest
directory up with a package.json naming its spec or an .iocpgen/manifest.json.
Exit codes: 0 done (or up to date with --check), 1 spec errors, conflicts (--dry-run too), or
--check found changes, 2 usage error.`

  static override examples = ['<%= config.bin %> <%= command.id %>', '<%= config.bin %> <%= command.id %> --dry-run', '<%= config.bin %> <%= command.id %> --check   # in CI']

  static override enableJsonFlag = true

  static override flags = {
    dir: Flags.string({char: 'd', description: 'the project directory (default: the project around the current directory)'}),
    spec: Flags.string({char: 's', description: 'the spec, relative to the project (default: package.json "iocpgen.spec")'}),
    'dry-run': Flags.boolean({description: 'print the plan and the diff of each change; write nothing'}),
    check: Flags.boolean({description: 'write nothing; exit 1 if generating would change any file'}),
    force: Flags.boolean({description: 'overwrite generated files that were edited by hand, keeping a copy under .iocpgen/backup/'}),
  }

  async run(): Promise<{changes: {kind: string; path: string}[]; conflicts: {path: string; why: string}[]; orphans: string[]; written: boolean}> {
    const {flags} = await this.parse(Generate)
    const dir = flags.dir === undefined ? projectAround(process.cwd()) : resolve(flags.dir)
    const shown = relative(process.cwd(), dir) || '.'
    const specFile = flags.spec ?? specOf(dir) ?? readManifest(dir)?.spec
    if (!specFile) this.error(`${shown} has no spec: pass --spec, or set "iocpgen": {"spec": "..."} in its package.json`, {exit: 2})
    if (!existsSync(join(dir, specFile))) this.error(`no such spec file: ${join(shown, specFile)}`, {exit: 2})

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
      if (flags['dry-run'] && plan.conflicts.length > 0 && !flags.force) {
        process.exitCode = 1
        this.logToStderr(`${plan.conflicts.length} generated file(s) changed by hand: generate would refuse (or, with --force, back them up and overwrite them)`)
      }
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
    const backups = applyPlan(dir, plan)
    result.written = true
    this.log(text || 'up to date')
    for (const b of backups) this.log(`backup ${b} (your edit, overwritten)`)
    const addon = addonNotice(dir, Boolean(plan.pin))
    if (addon) this.log(addon)
    else if (plan.actions.length > 0) this.log('addon: nothing to rebuild (the spec reaches the native core as data); npm start compiles the TypeScript')
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

/** The nearest directory up from `from` that is a generated project; `from` itself if none is. */
function projectAround(from: string): string {
  for (let d = from; ; d = dirname(d)) {
    if (specOf(d) !== undefined || existsSync(join(d, MANIFEST))) return d
    if (dirname(d) === d) return from
  }
}

/**
 * The spec reaches the native core as data, so a spec change never needs the addon rebuilt;
 * a different @iocpgen/runtime does, and npm install brings it (prebuilt, or built from source).
 */
function addonNotice(dir: string, pinMoved: boolean): string | undefined {
  let installed: string | undefined
  try {
    installed = (JSON.parse(readFileSync(join(dir, 'node_modules', '@iocpgen', 'runtime', 'package.json'), 'utf8')) as {version?: string}).version
  } catch {
    installed = undefined
  }
  if (pinMoved || (installed !== undefined && installed !== TOOL_VERSION)) {
    return `addon: run npm install: the project now needs ${RUNTIME_PACKAGE} ${TOOL_VERSION}${installed ? ` (installed: ${installed})` : ''}, and its native addon comes with it`
  }
  return undefined
}
