import {type Code, CODES, type Severity} from './codes.js'

/** A 1-based line and column (columns count UTF-16 code units, as editors do). */
export interface Position {
  line: number
  col: number
}

export interface Diagnostic {
  file: string
  line: number
  col: number
  /** End of the marked range on the same line, exclusive; omitted when unknown. */
  endCol?: number
  code: Code
  severity: Severity
  message: string
  hint?: string
  /** Extra lines that explain the problem, e.g. a lock chain and a deadlocking interleaving. */
  detail?: string[]
}

export function diagnostic(
  code: Code,
  file: string,
  at: Position & {endCol?: number},
  message: string,
  hint?: string,
  detail?: string[],
): Diagnostic {
  const d: Diagnostic = {file, line: at.line, col: at.col, code, severity: CODES[code].severity, message}
  if (at.endCol !== undefined && at.endCol > at.col) d.endCol = at.endCol
  if (hint) d.hint = hint
  if (detail?.length) d.detail = detail
  return d
}

/** Orders diagnostics by file, then position, then code, so output is stable. */
export function sortDiagnostics(list: Diagnostic[]): Diagnostic[] {
  return [...list].sort(
    (a, b) =>
      a.file.localeCompare(b.file) || a.line - b.line || a.col - b.col || a.code.localeCompare(b.code),
  )
}

export const hasErrors = (list: readonly Diagnostic[]): boolean => list.some((d) => d.severity === 'error')
