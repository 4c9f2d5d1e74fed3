import {Args, Flags} from '@oclif/core'

import {type ErrorFormat, formatGithub, formatText, makeReport, type Report} from '../diagnostics/format.js'
import {validateSpecFile} from '../spec/validate.js'
import {BaseCommand} from '../util/command.js'

export default class Validate extends BaseCommand {
  static override summary = 'Check protocol specs and report every problem with file:line:col, a code and a hint.'
  static override description = `Exit codes: 0 every spec is valid (warnings allowed), 1 a spec has errors, 2 usage error.
Diagnostic codes are stable and listed in docs/diagnostics.md.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> examples/chat/chat.yaml',
    '<%= config.bin %> <%= command.id %> specs/*.yaml --error-format github',
    '<%= config.bin %> <%= command.id %> chat.yaml --json',
  ]

  static override enableJsonFlag = true
  static override strict = false

  static override args = {
    spec: Args.string({description: 'spec files (YAML or JSON); several may be given', required: true}),
  }

  static override flags = {
    'error-format': Flags.option({
      description: 'how to print problems: text for people, json for tools, github for workflow annotations',
      options: ['text', 'json', 'github'] as const,
      default: 'text',
    })(),
    quiet: Flags.boolean({char: 'q', description: 'print errors only, no warnings or summary lines'}),
  }

  async run(): Promise<Report> {
    const {argv, flags} = await this.parse(Validate)
    const results = (argv as string[]).map((file) => validateSpecFile(file))
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
    else if (format === 'github') {
      const annotations = formatGithub(report)
      if (annotations) this.log(annotations)
      if (!flags.quiet) this.log(`${report.summary.files} spec(s): ${report.summary.errors} error(s), ${report.summary.warnings} warning(s)`)
    } else {
      const sources = new Map(results.map((r) => [r.file, r.source]))
      const text = formatText(flags.quiet ? {...report, files: report.files.filter((f) => !f.ok)} : report, {
        color: Boolean(process.stdout.isTTY) && !process.env.NO_COLOR,
        lineText: (file, line) => sources.get(file)?.lineText(line),
      })
      if (text) this.log(text)
    }
    return report
  }
}
