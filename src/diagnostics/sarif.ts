// SARIF 2.1.0, the format GitHub code scanning (and other scanners' viewers) read: one run of
// iocpgen, a rule per diagnostic code used, a result per diagnostic.
import {CODES} from './codes.js'
import type {Report} from './format.js'

const DOCS = 'https://github.com/iocpgen/iocpgen/blob/main/docs/diagnostics.md'

/** A file as SARIF wants it: a relative URI with forward slashes ("-" for standard input stays). */
const uri = (file: string) => file.replaceAll('\\', '/').replace(/^\.\//, '')

export function formatSarif(report: Report, version: string): string {
  const codes = [...new Set(report.diagnostics.map((d) => d.code))].sort()
  const sarif = {
    $schema: 'https://json.schemastore.org/sarif-2.1.0.json',
    version: '2.1.0',
    runs: [
      {
        tool: {
          driver: {
            name: 'iocpgen',
            version,
            informationUri: 'https://github.com/iocpgen/iocpgen',
            rules: codes.map((code) => ({
              id: code,
              name: CODES[code].title.replace(/(^|[^a-z0-9]+)([a-z0-9])/gi, (_, _sep: string, c: string) => c.toUpperCase()),
              shortDescription: {text: CODES[code].title},
              helpUri: DOCS,
              defaultConfiguration: {level: CODES[code].severity},
            })),
          },
        },
        results: report.diagnostics.map((d) => ({
          ruleId: d.code,
          ruleIndex: codes.indexOf(d.code),
          level: d.severity,
          message: {text: [d.message, ...(d.detail ?? []), ...(d.hint ? [`hint: ${d.hint}`] : [])].join('\n')},
          locations: [
            {
              physicalLocation: {
                artifactLocation: {uri: uri(d.file)},
                region: {startLine: d.line, startColumn: d.col, ...(d.endCol !== undefined ? {endLine: d.line, endColumn: d.endCol} : {})},
              },
            },
          ],
        })),
      },
    ],
  }
  return JSON.stringify(sarif, null, 2)
}
