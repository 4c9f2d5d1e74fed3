import {Args, Command, Flags} from '@oclif/core'

import {formatText, makeReport} from '../diagnostics/format.js'
import {checkLockGraph} from '../locks/check.js'
import {type GraphFormat, type GraphView, renderGraph, viewOf} from '../locks/render.js'
import {coreLockModel, lockGraphOf, validateSpecFile} from '../spec/validate.js'

export default class Locks extends Command {
  static override summary = 'Print the lock graph of a spec: which lock is taken while which is held, and by whom.'
  static override description = `Solid edges are taken by operations (labelled with them), dashed ones are only declared,
red ones are on a deadlock cycle or break a forbidden order. Exit codes as for validate.`

  static override examples = [
    '<%= config.bin %> <%= command.id %> examples/chat/chat.yaml',
    '<%= config.bin %> <%= command.id %> examples/chat/chat.yaml --format mermaid',
    '<%= config.bin %> <%= command.id %> examples/chat/chat.yaml --format dot | dot -Tsvg > locks.svg',
  ]

  static override enableJsonFlag = true

  static override args = {
    spec: Args.string({description: 'spec file', required: true}),
  }

  static override flags = {
    format: Flags.option({description: 'output format', options: ['text', 'dot', 'mermaid', 'json'] as const, default: 'text'})(),
    core: Flags.boolean({description: "include the native core's own locks (they are always part of the check)", default: false, allowNo: true}),
  }

  async run(): Promise<GraphView & {diagnostics: unknown[]}> {
    const {args, flags} = await this.parse(Locks)
    const result = validateSpecFile(args.spec)
    const lockDiagnostics = result.diagnostics.filter((d) => /^(E4|W003|W005)/.test(d.code))
    if (!result.spec) {
      process.exitCode = 1
      this.logToStderr(formatText(makeReport([{file: result.file, diagnostics: result.diagnostics}]), {color: false}))
      return {locks: [], edges: [], diagnostics: result.diagnostics}
    }
    if (!result.ok) process.exitCode = 1
    const coreSpec = flags.core ? coreLockModel().spec : undefined
    const graph = lockGraphOf(result.spec, coreSpec)
    const view = viewOf(graph, checkLockGraph(graph))
    const format: GraphFormat = flags.format
    if (this.jsonEnabled()) return {...view, diagnostics: lockDiagnostics}
    if (format === 'json') this.log(JSON.stringify({...view, diagnostics: lockDiagnostics}, null, 2))
    else this.log(renderGraph(view, format))
    if (!result.ok) {
      const sources = new Map([[result.file, result.source]])
      this.logToStderr(formatText(makeReport([{file: result.file, diagnostics: result.diagnostics}]), {color: false, lineText: (f, l) => sources.get(f)?.lineText(l)}))
    }
    return {...view, diagnostics: lockDiagnostics}
  }
}
