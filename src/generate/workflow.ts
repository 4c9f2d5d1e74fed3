// What `new` and `generate` share: validate the spec, render, plan, and say what happened.
import {readFileSync} from 'node:fs'

import type {Diagnostic} from '../diagnostics/diagnostic.js'
import {formatText, makeReport} from '../diagnostics/format.js'
import {validateSpecFile} from '../spec/validate.js'
import {unifiedDiff} from './diff.js'
import {type Plan, planProject, RUNTIME_PACKAGE} from './plan.js'
import {renderProject} from './project.js'

export interface Prepared {
  plan?: Plan
  /** Spec problems, formatted for people, when the spec is invalid. */
  problems?: string
  /** The same problems as data, for --json. */
  diagnostics?: Diagnostic[]
}

/**
 * Validates `specPath` and plans the project in `dir`; `specFile` is the spec relative to dir.
 * `copied` is how the spec's text will read in the project, when `new` edits its copy.
 */
export function prepare(dir: string, specPath: string, specFile: string, copied = (text: string) => text): Prepared {
  const result = validateSpecFile(specPath)
  if (!result.ok || !result.spec) {
    const report = makeReport([{file: result.file, diagnostics: result.diagnostics}])
    return {problems: formatText(report, {color: false, lineText: (_, l) => result.source?.lineText(l)}), diagnostics: result.diagnostics}
  }
  const specText = copied(readFileSync(specPath, 'utf8'))
  const files = renderProject({spec: result.spec, specText, specFile})
  return {plan: planProject(dir, files, result.spec, specFile, specText)}
}

export function describePlan(plan: Plan, withDiff: boolean): string {
  const out: string[] = []
  for (const a of plan.actions) {
    out.push(`${a.kind.padEnd(6)} ${a.path}`)
    if (withDiff && a.kind === 'update') out.push(unifiedDiff(a.path, a.before, a.content))
  }
  if (plan.pin) out.push(`pin    package.json: ${RUNTIME_PACKAGE} ${plan.pin.from} -> ${plan.pin.to}, the version this generator writes for (then run npm install)`)
  for (const c of plan.conflicts) out.push(`conflict ${c.path}: ${c.why}`)
  for (const n of plan.addedHandlers) out.push(`handler  added ${n} to src/handlers/index.ts`)
  for (const o of plan.orphans) out.push(`orphan   ${o} (its message is no longer in the spec; remove it when you are ready)`)
  return out.join('\n')
}
