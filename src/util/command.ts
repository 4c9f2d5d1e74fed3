// The base of every command: with --json, a failure is one short JSON object on stdout and
// the documented exit code (oclif's own would be exit 1 and, for a usage error, a dump of
// the whole parser configuration).
import {Command, Errors} from '@oclif/core'

import {closest} from './suggest.js'

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
    // An unknown flag: the closest known one, instead of the whole usage.
    const unknown = (err as {flags?: unknown}).flags
    if (err.constructor.name === 'NonExistentFlagsError' && Array.isArray(unknown)) {
      const known = Object.entries(this.ctor.flags ?? {}).flatMap(([name, f]) => [`--${name}`, ...((f as {allowNo?: boolean}).allowNo ? [`--no-${name}`] : [])])
      const hints = unknown.map((flag: string) => {
        const guess = closest(flag.split('=')[0]!, known)
        return guess ? `${flag} (did you mean ${guess}?)` : flag
      })
      err = new Errors.CLIError(`unknown flag${unknown.length === 1 ? '' : 's'} ${hints.join(', ')}; "${this.config.bin} ${this.id} --help" lists them`, {exit: 2})
    }
    if (!this.jsonEnabled()) return super.catch(err)
    const exit = err.oclif?.exit ?? 1
    process.exitCode = exit
    const failure: JsonFailure = {ok: false, error: {message: err.message, exit}}
    if (err instanceof SpecError) failure.diagnostics = err.diagnostics
    this.logJson(failure)
    return undefined
  }
}
