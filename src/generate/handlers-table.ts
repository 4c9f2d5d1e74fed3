// Keeps src/handlers/index.ts in step with the spec without touching what the user wrote:
// ts-morph adds an import and an entry for each new client message, and reports entries
// for messages the spec no longer has (the Handlers type makes those compile errors).
import {createRequire} from 'node:module'

import type * as TsMorph from 'ts-morph'

import type {Message} from '../spec/model.js'
import {handlerName, kebab} from './names.js'

export interface TableUpdate {
  content: string
  added: string[]
  /** Entries whose message is gone from the spec: left for the user to remove. */
  orphaned: string[]
}

// ts-morph carries the TypeScript compiler: load it only when a table is edited, so that
// every other command starts fast.
const load = () => createRequire(import.meta.url)('ts-morph') as typeof TsMorph

export function updateHandlerTable(source: string, inbound: readonly Message[]): TableUpdate {
  const {Project, QuoteKind, SyntaxKind, ts} = load()
  // Match the generated file's style: single quotes, no semicolons, no spaces inside braces.
  const project = new Project({
    useInMemoryFileSystem: true,
    manipulationSettings: {quoteKind: QuoteKind.Single, useTrailingCommas: true, insertSpaceAfterOpeningAndBeforeClosingNonemptyBraces: false},
  })
  const file = project.createSourceFile('index.ts', source)
  const table = file.getVariableDeclaration('handlers')?.getInitializerIfKind(SyntaxKind.ObjectLiteralExpression)
  if (!table) return {content: source, added: [], orphaned: []}

  const present = new Set(table.getProperties().flatMap((p) => (p.isKind(SyntaxKind.PropertyAssignment) || p.isKind(SyntaxKind.ShorthandPropertyAssignment) ? [p.getName()] : [])))
  const wanted = new Set(inbound.map((m) => m.name))
  const added: string[] = []
  for (const m of inbound) {
    if (present.has(m.name)) continue
    const spec = `./${kebab(m.name)}.js`
    if (!file.getImportDeclaration((d) => d.getModuleSpecifierValue() === spec)) {
      file.addImportDeclaration({namedImports: [handlerName(m)], moduleSpecifier: spec})
    }
    table.addPropertyAssignment({name: m.name, initializer: handlerName(m)})
    added.push(m.name)
  }
  const orphaned = [...present].filter((n) => !wanted.has(n)).sort()
  if (added.length) file.formatText({semicolons: ts.SemicolonPreference.Remove, insertSpaceAfterOpeningAndBeforeClosingNonemptyBraces: false, indentSize: 2, convertTabsToSpaces: true})
  return {content: added.length ? file.getFullText() : source, added, orphaned}
}
