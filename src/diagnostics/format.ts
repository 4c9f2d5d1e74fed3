// Renders diagnostics as text for people, JSON for tools, or GitHub workflow annotations
// (SARIF, for code scanning, is in sarif.ts).
import {CODES} from './codes.js'
import type {Diagnostic} from './diagnostic.js'

export type ErrorFormat = 'text' | 'json' | 'github' | 'sarif'

export interface FileReport {
  file: string
  ok: boolean
  errors: number
  warnings: number
  messages?: number
}

export interface Report {
  ok: boolean
  files: FileReport[]
  diagnostics: Diagnostic[]
  summary: {files: number; errors: number; warnings: number}
}

export function makeReport(files: {file: string; diagnostics: Diagnostic[]; messages?: number}[]): Report {
  const count = (ds: Diagnostic[], s: 'error' | 'warning') => ds.filter((d) => d.severity === s).length
  const reports = files.map((f) => {
    const r: FileReport = {file: f.file, ok: count(f.diagnostics, 'error') === 0, errors: count(f.diagnostics, 'error'), warnings: count(f.diagnostics, 'warning')}
    if (f.messages !== undefined) r.messages = f.messages
    return r
  })
  const diagnostics = files.flatMap((f) => f.diagnostics)
  return {
    ok: reports.every((r) => r.ok),
    files: reports,
    diagnostics,
    summary: {files: reports.length, errors: count(diagnostics, 'error'), warnings: count(diagnostics, 'warning')},
  }
}

export interface TextOptions {
  color: boolean
  /** Source lines by file, to show the offending line under each diagnostic. */
  lineText?: (file: string, line: number) => string | undefined
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`

export function formatText(report: Report, opts: TextOptions): string {
  const paint = (code: string, s: string) => (opts.color ? `\u001B[${code}m${s}\u001B[0m` : s)
  const out: string[] = []
  for (const d of report.diagnostics) {
    const sev = d.severity === 'error' ? paint('1;31', 'error') : paint('1;33', 'warning')
    out.push(`${paint('1', `${d.file}:${d.line}:${d.col}`)}: ${sev} ${d.code}: ${d.message}`)
    const src = opts.lineText?.(d.file, d.line)
    if (src !== undefined && src.trim() !== '') {
      const gutter = String(d.line).padStart(5)
      const width = Math.max(1, (d.endCol ?? d.col + 1) - d.col)
      out.push(`${paint('2', `${gutter} |`)} ${src}`, `${paint('2', `${' '.repeat(gutter.length)} |`)} ${' '.repeat(d.col - 1)}${paint(d.severity === 'error' ? '31' : '33', '^'.repeat(width))}`)
    }
    for (const line of d.detail ?? []) out.push(line ? `  ${line}` : '')
    if (d.hint) out.push(`  ${paint('36', 'hint:')} ${d.hint}`)
    out.push('')
  }
  for (const f of report.files) {
    if (f.ok) {
      const extra = f.warnings > 0 ? ` with ${plural(f.warnings, 'warning')}` : ''
      out.push(`${paint('32', 'ok')}    ${f.file}${f.messages !== undefined ? ` (${plural(f.messages, 'message')})` : ''}${extra}`)
    } else {
      out.push(`${paint('31', 'fail')}  ${f.file}: ${plural(f.errors, 'error')}${f.warnings > 0 ? `, ${plural(f.warnings, 'warning')}` : ''}`)
    }
  }
  return out.join('\n')
}

// GitHub workflow commands: property values and messages escape differently.
const escapeData = (s: string) => s.replaceAll('%', '%25').replaceAll('\r', '%0D').replaceAll('\n', '%0A')
const escapeProperty = (s: string) => escapeData(s).replaceAll(':', '%3A').replaceAll(',', '%2C')

export function formatGithub(report: Report): string {
  return report.diagnostics
    .map((d) => {
      const props = [`file=${d.file}`, `line=${d.line}`, `col=${d.col}`]
      if (d.endCol !== undefined) props.push(`endColumn=${d.endCol}`)
      props.push(`title=${d.code} ${CODES[d.code].title}`)
      const text = [d.message, ...(d.detail ?? []), ...(d.hint ? [`hint: ${d.hint}`] : [])].join('\n')
      return `::${d.severity} ${props.map((p) => {
        const eq = p.indexOf('=')
        return `${p.slice(0, eq)}=${escapeProperty(p.slice(eq + 1))}`
      }).join(',')}::${escapeData(text)}`
    })
    .join('\n')
}
