// The base of every command: with --json, a failure is one short JSON object on stdout and
// the documented exit code (oclif's own would be exit 1 and, for a usage error, a dump of
// the whole parser configuration).
import {Command, Errors} from '@oclif/core'

import type {Diagnostic} from '../diagnostics/diagnostic.js'

/** A failure that carries the spec's diagnostics, so --json can show them. */
export class SpecError extends Errors.CLIError {
  constructor(
    message: string,
    readonly diagnostics: Diagnostic[],
  ) {
    super(message, {exit: 1})
  }
}

export interface JsonFailure {
  ok: false
  error: {message: string; exit: number}
  diagnostics?: Diagnostic[]
}

export abstract class BaseCommand extends Command {
  protected override async catch(err: Error & {oclif?: {exit?: number}}): Promise<unknown> {
    if (!this.jsonEnabled()) return super.catch(err)
    const exit = err.oclif?.exit ?? 1
    process.exitCode = exit
    const failure: JsonFailure = {ok: false, error: {message: err.message, exit}}
    if (err instanceof SpecError) failure.diagnostics = err.diagnostics
    this.logJson(failure)
    return undefined
  }
}
