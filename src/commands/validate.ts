import {existsSync, readFileSync} from 'node:fs'

import {Args, Flags} from '@oclif/core'

import {diagnostic, hasErrors, sortDiagnostics} from '../diagnostics/diagnostic.js'
import {type ErrorFormat, formatGithub, formatText, makeReport, type Report} from '../diagnostics/format.js'
import {formatSarif} from '../diagnostics/sarif.js'
import {checkCodeLocks, projectOf} from '../locks/code.js'
import {type SpecResult, validateSpecFile} from '../spec/validate.js'
import {BaseCommand} from '../util/command.js'
import {expandGlob, isGlob} from '../util/glob.js'

export default class Validate extends BaseCommand {
  static override summary = 'Check protocol specs and report every problem with file:line:col, a code and a hint.'
  static override description = `A spec inside a generated project (a directory upward with tsconfig.json and src/generated/locks.ts)
is also compared with the locks the project's code takes, unless --no-code is given.
Exit codes: 0 every spec is valid (warnings allowed), 1 a spec has errors, 2 usage error.
Diagnostic codes are stable and listed in docs/diagnostics.md.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> examples/chat/chat.yaml',
    '<%= config.bin %> <%= command.id %> specs/*.yaml --error-format github',
    '<%= config.bin %> <%= command.id %> chat.yaml --json',
  ]

  static override enableJsonFlag = true
  static override strict = false

  static override args = {
    spec: Args.string({description: "spec files (YAML or JSON); several may be given; - reads standard input; a quoted glob such as 'specs/**/*.yaml' is expanded", required: true}),
  }

  static override flags = {
    'error-format': Flags.option({
      description: 'how to print problems: text for people, json for tools, github for workflow annotations, sarif for code scanning',
      options: ['text', 'json', 'github', 'sarif'] as const,
      default: 'text',
    })(),
    quiet: Flags.boolean({char: 'q', description: 'print errors only, no warnings or summary lines'}),
    code: Flags.boolean({description: "compare the locks the project's TypeScript takes with the spec's operations (when the spec is in a project)", default: true, allowNo: true}),
  }

  async run(): Promise<Report> {
    const {argv, flags} = await this.parse(Validate)
    // A pattern the shell left alone (quoted, or a shell that expands nothing) is expanded here.
    const files = (argv as string[]).flatMap((arg) => {
      if (arg === '-' || existsSync(arg) || !isGlob(arg)) return [arg]
      const matched = expandGlob(arg)
      if (matched.length === 0) this.error(`no file matches ${arg}`, {exit: 2})
      return matched
    })
    const results = files.map((file) => (flags.code ? withCode(validateSpecFile(file)) : validateSpecFile(file)))
    const report = makeReport(
      results.map((r) => ({
        file: r.file,
        diagnostics: flags.quiet ? r.diagnostics.filter((d) => d.severity === 'error') : r.diagnostics,
        ...(r.ok && r.spec ? {messages: r.spec.messages.length} : {}),
      })),
    )
    if (!report.ok) process.exitCode = 1

    if (this.jsonEnabled()) return report
    const format: ErrorFormat = flags['error-format']
    if (format === 'json') this.log(JSON.stringify(report, null, 2))
    else if (format === 'sarif') this.log(formatSarif(report, this.config.version))
    else if (format === 'github') {
      const annotations = formatGithub(report)
      if (annotations) this.log(annotations)
      if (!flags.quiet) this.log(`${report.summary.files} spec(s): ${report.summary.errors} error(s), ${report.summary.warnings} warning(s)`)
    } else {
      const sources = new Map(results.map((r) => [r.file, r.source]))
      const text = formatText(flags.quiet ? {...report, files: report.files.filter((f) => !f.ok)} : report, {
        color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
        lineText: (file, line) => sources.get(file)?.lineText(line) ?? codeLine(file, line),
      })
      if (text) this.log(text)
    }
    return report
  }
}

/** The spec's result with the code of its project checked against it, when it is in one. */
function withCode(result: SpecResult): SpecResult {
  // Standard input has no project around it, and cannot be read twice.
  if (!result.spec || result.file === '-') return result
  const dir = projectOf(result.file)
  if (!dir) return result
  // Code findings cite the spec's steps: those need the pass that keeps positions.
  const full = result.source ? result : validateSpecFile(result.file, true, false)
  if (!full.spec) return full
  try {
    const diagnostics = sortDiagnostics([...full.diagnostics, ...checkCodeLocks(full.spec, dir).diagnostics])
    return {...full, diagnostics, ok: !hasErrors(diagnostics)}
  } catch (error) {
    const what = error instanceof Error ? `${error.name}: ${error.message}` : String(error)
    const d = diagnostic('E999', full.file, {line: 1, col: 1}, `iocpgen failed while checking the code of ${dir} (${what.split('\n')[0]!.slice(0, 200)})`, 'this is a bug in iocpgen; run with --no-code to check the spec alone, and please report it')
    return {...full, diagnostics: [...full.diagnostics, d], ok: false}
  }
}

// Source lines of the project's files, for code diagnostics.
const codeLines = new Map<string, string[] | undefined>()
function codeLine(file: string, line: number): string | undefined {
  if (!codeLines.has(file)) {
    try {
      codeLines.set(file, readFileSync(file, 'utf8').split(/\r\n|\r|\n/))
    } catch {
      codeLines.set(file, undefined)
    }
  }
  return codeLines.get(file)?.[line - 1]
}
