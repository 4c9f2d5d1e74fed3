import {rmSync} from 'node:fs'
import {dirname} from 'node:path'

import {Args, Flags} from '@oclif/core'

import {type Category, categoryOf, compareSpecs} from '../breaking/compare.js'
import {GitError, specAtRef} from '../breaking/git.js'
import type {Diagnostic} from '../diagnostics/diagnostic.js'
import {type ErrorFormat, formatGithub, formatText, makeReport, type Report} from '../diagnostics/format.js'
import {formatSarif} from '../diagnostics/sarif.js'
import {type SpecResult, validateSpecFile} from '../spec/validate.js'
import {BaseCommand, SpecError} from '../util/command.js'

export default class Breaking extends BaseCommand {
  static override summary = 'Report what a spec change breaks for peers and code built from the old spec.'
  static override description = `Compares two versions of a spec, as buf breaking does. Findings come in two categories:
wire (a peer built from the old spec can no longer talk to one built from the new: an id
changed or reused, a message or field removed, a field added, moved, retyped or rebounded,
an enum value renumbered, removed or added, clients no longer allowed to send a message,
maxFrame shrunk) and source (the wire is the same, but code using the old generated types
no longer compiles: renames). Each finding is at file:line:col in the new spec, or in the
old one for what was removed.
Exit codes: 0 nothing breaks in the selected categories, 1 something does (or a spec has
errors), 2 usage error.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> old/chat.yaml chat.yaml',
    '<%= config.bin %> <%= command.id %> chat.yaml --against main',
    '<%= config.bin %> <%= command.id %> chat.yaml --against HEAD~1 --category wire --error-format github',
  ]

  static override enableJsonFlag = true

  static override args = {
    old: Args.string({description: 'the old spec; with --against, the spec (its version at the ref is the old one)', required: true}),
    new: Args.string({description: 'the new spec'}),
  }

  static override flags = {
    against: Flags.string({description: 'compare the spec with its version at this git ref (commit, branch, tag)'}),
    category: Flags.option({description: 'which findings fail the check (default: both)', options: ['wire', 'source'] as const, multiple: true})(),
    'error-format': Flags.option({
      description: 'how to print findings: text for people, json for tools, github for workflow annotations, sarif for code scanning',
      options: ['text', 'json', 'github', 'sarif'] as const,
      default: 'text',
    })(),
  }

  async run(): Promise<Report & {findings: {wire: number; source: number}}> {
    const {args, flags} = await this.parse(Breaking)
    let oldFile: string
    let shownOld: string
    let newFile: string
    if (flags.against !== undefined) {
      if (args.new !== undefined) this.error('give either two specs, or one spec and --against', {exit: 2})
      newFile = args.old
      let at: ReturnType<typeof specAtRef>
      try {
        at = specAtRef(newFile, flags.against)
      } catch (error) {
        if (error instanceof GitError) this.error(error.message, {exit: 2})
        throw error
      }
      if (!at) {
        this.log(`${newFile} did not exist at ${flags.against}: everything in it is new`)
        return {...makeReport([]), findings: {wire: 0, source: 0}}
      }
      ;[oldFile, shownOld] = [at.path, at.shown]
    } else {
      if (args.new === undefined) this.error('give the old and the new spec, or one spec and --against <git ref>', {exit: 2})
      ;[oldFile, shownOld, newFile] = [args.old, args.old, args.new]
    }

    // Both must be valid specs: a finding about a broken spec would mean nothing.
    const sides = [named(validateSpecFile(oldFile, true, false), shownOld), validateSpecFile(newFile, true, false)]
    // The copy of the spec at the ref is read: remove it.
    if (oldFile !== shownOld) rmSync(dirname(oldFile), {recursive: true, force: true})
    const invalid = sides.filter((r) => !r.ok || !r.spec)
    if (invalid.length > 0) {
      const diagnostics = invalid.flatMap((r) => r.diagnostics)
      this.logToStderr(formatText(makeReport(invalid.map((r) => ({file: r.file, diagnostics: r.diagnostics}))), {color: false, lineText: lineOf(sides)}))
      throw new SpecError(`${invalid.map((r) => r.file).join(' and ')} ${invalid.length === 1 ? 'has' : 'have'} errors; nothing was compared`, diagnostics)
    }
    const [before, after] = sides as [Required<SpecResult>, Required<SpecResult>]
    const findings = compareSpecs(
      {spec: before.spec, file: shownOld, maxFrameAt: maxFrameAt(before)},
      {spec: after.spec, file: newFile, maxFrameAt: maxFrameAt(after)},
    )
    const selected = new Set<Category>(flags.category ?? ['wire', 'source'])
    const shown = findings.filter((d) => selected.has(categoryOf(d.code)!))
    const counts = {wire: shown.filter((d) => categoryOf(d.code) === 'wire').length, source: shown.filter((d) => categoryOf(d.code) === 'source').length}
    const report = {...makeReport([{file: newFile, diagnostics: shown}]), findings: counts}
    if (shown.length > 0) process.exitCode = 1
    if (this.jsonEnabled()) return report

    const format: ErrorFormat = flags['error-format']
    if (format === 'json') this.log(JSON.stringify(report, null, 2))
    else if (format === 'sarif') this.log(formatSarif(report, this.config.version))
    else if (format === 'github') {
      const annotations = formatGithub(report)
      if (annotations) this.log(annotations)
    } else {
      const text = formatText({...report, files: []}, {color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR, lineText: lineOf(sides)})
      if (text) this.log(text)
    }
    if (format === 'text' || format === 'github') this.log(summary(counts, selected, shownOld, newFile))
    return report
  }
}

/** Findings and diagnostics of the old side name it as shown (ref:path), not by its temporary copy. */
function named(r: SpecResult, shown: string): SpecResult {
  if (r.file === shown) return r
  const rename = (d: Diagnostic) => ({...d, file: d.file === r.file ? shown : d.file})
  return {...r, file: shown, diagnostics: r.diagnostics.map(rename), ...(r.spec ? {spec: {...r.spec, file: shown}} : {})}
}

function lineOf(sides: SpecResult[]) {
  return (file: string, line: number) => sides.find((s) => s.file === file)?.source?.lineText(line)
}

function maxFrameAt(r: Required<SpecResult>) {
  return r.source.node(['framing', 'maxFrame']) === undefined ? undefined : r.source.at(['framing', 'maxFrame'])
}

function summary(counts: {wire: number; source: number}, selected: Set<Category>, from: string, to: string): string {
  const parts = [...selected].map((c) => `${counts[c]} ${c === 'wire' ? 'wire-incompatible' : 'source-incompatible'}`)
  return counts.wire + counts.source === 0 ? `ok    ${from} -> ${to}: nothing breaks (${[...selected].join(', ')})` : `fail  ${from} -> ${to}: ${parts.join(', ')}`
}
