// Reads a spec file and parses it into a YAML document that keeps positions.
// Every failure becomes a diagnostic; nothing here throws for bad input.
import {readFileSync, statSync} from 'node:fs'
import {TextDecoder} from 'node:util'
import {
  type Document,
  isMap,
  isPair,
  isScalar,
  isNode,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  parseDocument,
  Scalar,
} from 'yaml'

import {type Diagnostic, diagnostic, type Position} from '../diagnostics/diagnostic.js'

export type PathSegment = string | number

type At = Position & {endCol?: number}

/** What the checks need of a parsed spec: whether a path exists, and where it is. */
export interface SourceView {
  readonly file: string
  node(path: readonly PathSegment[]): unknown
  at(path: readonly PathSegment[], which?: 'value' | 'key'): At
  inScalar(node: unknown, index: number, length?: number): At
}

/**
 * Plain parsed data, with no positions. Validation runs over it first and stops there when
 * nothing is reported; only a spec with problems is parsed again with positions.
 */
export class PlainSource implements SourceView {
  constructor(
    readonly file: string,
    private readonly data: unknown,
  ) {}

  node(path: readonly PathSegment[]): unknown {
    let cur: unknown = this.data
    for (const seg of path) {
      if (typeof cur !== 'object' || cur === null || !Object.hasOwn(cur, seg)) return undefined
      cur = (cur as Record<string, unknown>)[seg]
    }
    return cur
  }

  at(): At {
    return {line: 1, col: 1}
  }

  inScalar(): At {
    return {line: 1, col: 1}
  }
}

/** A parsed spec file: its text, its YAML document and a way to turn offsets into positions. */
export class SpecSource implements SourceView {
  constructor(
    readonly file: string,
    readonly text: string,
    readonly doc: Document.Parsed,
    private readonly lines: LineCounter,
  ) {}

  position(offset: number): Position {
    const {line, col} = this.lines.linePos(offset)
    return {line, col}
  }

  /** The source line (without its newline) for a 1-based line number. */
  lineText(line: number): string {
    const start = this.lines.lineStarts[line - 1] ?? 0
    const next = this.lines.lineStarts[line] ?? this.text.length
    return this.text.slice(start, next).replace(/\r?\n$/, '')
  }

  /** The node at a path of keys and indexes, or undefined when the path does not exist. */
  node(path: readonly PathSegment[]): Node | undefined {
    let cur: unknown = this.doc.contents
    for (const seg of path) {
      const pair = pairAt(cur, seg)
      if (pair) cur = pair.value
      else if (isSeq(cur) && typeof seg === 'number') cur = cur.items[seg]
      else return undefined
    }
    return cur as Node | undefined
  }

  /** The key node of the last segment of a mapping path (e.g. to point at an unknown property). */
  keyNode(path: readonly PathSegment[]): Node | undefined {
    if (path.length === 0) return undefined
    const parent = this.node(path.slice(0, -1))
    const pair = pairAt(parent, path.at(-1)!)
    return pair?.key as Node | undefined
  }

  /**
   * Where to point for a path: its value, else its key, else the nearest existing parent.
   * The range covers the node's first line only.
   */
  at(path: readonly PathSegment[], which: 'value' | 'key' = 'value'): At {
    for (let n = path.length; n >= 0; n--) {
      const p = path.slice(0, n)
      const node = which === 'key' || n < path.length ? (this.keyNode(p) ?? this.node(p)) : this.node(p)
      if (node?.range) return this.span(node.range[0], node.range[1])
    }
    return {line: 1, col: 1}
  }

  /** Position of character `index` inside a scalar's value (accounts for an opening quote). */
  inScalar(node: unknown, index: number, length = 1): At {
    if (!isNode(node) || !node.range) return {line: 1, col: 1}
    const quoted = isScalar(node) && (node.type === Scalar.QUOTE_DOUBLE || node.type === Scalar.QUOTE_SINGLE)
    const block = isScalar(node) && (node.type === Scalar.BLOCK_LITERAL || node.type === Scalar.BLOCK_FOLDED)
    if (block) return this.span(node.range[0], node.range[1])
    const start = node.range[0] + (quoted ? 1 : 0) + index
    return this.span(start, start + Math.max(1, length))
  }

  span(start: number, end: number): Position & {endCol?: number} {
    const a = this.position(start)
    const b = this.position(Math.max(start, end))
    return b.line === a.line ? {...a, endCol: b.col} : a
  }
}

function pairAt(map: unknown, key: PathSegment): Pair | undefined {
  if (!isMap(map)) return undefined
  for (const item of map.items) {
    if (isPair(item) && isScalar(item.key) && String(item.key.value) === String(key)) return item
  }
  return undefined
}

export type LoadResult = {source: SpecSource; diagnostics: Diagnostic[]} | {source?: undefined; diagnostics: Diagnostic[]}

/** Reads and parses one spec file. A source is returned when the YAML parsed well enough to check. */
export function loadSource(file: string): LoadResult {
  const at1 = {line: 1, col: 1}
  let bytes: Buffer
  try {
    if (statSync(file).isDirectory()) {
      return {diagnostics: [diagnostic('E002', file, at1, `${file} is a directory, not a spec file`, 'pass the path of a .yaml or .json spec file inside it')]}
    }
    bytes = readFileSync(file)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      return {diagnostics: [diagnostic('E001', file, at1, `no such file: ${file}`, 'check the path; it is resolved from the current directory')]}
    }
    return {diagnostics: [diagnostic('E003', file, at1, `cannot read ${file}: ${code ?? String(error)}`, 'check the file permissions')]}
  }

  const text = decodeText(bytes)
  if (text === undefined) {
    return {diagnostics: [diagnostic('E004', file, at1, `${file} is not a UTF-8 text file`, 'a spec is YAML or JSON text; check that the right file was passed')]}
  }
  const lines = new LineCounter()
  const doc = parseDocument(text, {lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true})
  const source = new SpecSource(file, text, doc, lines)
  if (doc.contents === null && doc.errors.length === 0) {
    return {diagnostics: [diagnostic('E005', file, at1, `${file} is empty`, 'start from examples/echo/echo.yaml or see docs/spec.md')]}
  }

  // After the first syntax error the parser mostly reports its own fallout, so keep
  // that one; duplicate keys are independent of it and are all kept.
  const firstSyntax = doc.errors.find((e) => e.code !== 'DUPLICATE_KEY')
  const diagnostics: Diagnostic[] = doc.errors
    .filter((e) => e.code === 'DUPLICATE_KEY' || e === firstSyntax)
    .map((e) => {
      // An error at a line's indentation is about the text that follows it.
      let start = e.pos[0]
      while (text[start] === ' ' && (start === 0 || /[ \n]/.test(text[start - 1]!))) start++
      const at = source.span(start, Math.max(start + 1, e.pos[1]))
      if (e.code === 'DUPLICATE_KEY') {
        const key = text.slice(e.pos[0], e.pos[1]).trim()
        return diagnostic('E007', file, at, `duplicate key${key ? ` "${key}"` : ''}`, 'each key may appear once in a mapping; remove or rename the repeat')
      }
      const [message, hint] = explainSyntax(e.code, firstLine(e.message), text[e.pos[0]])
      return diagnostic('E006', file, at, message, hint)
    })
  if (diagnostics.length > 0) return {diagnostics}

  if (!isMap(doc.contents)) {
    const at = doc.contents?.range ? source.span(doc.contents.range[0], doc.contents.range[1]) : at1
    return {diagnostics: [diagnostic('E008', file, at, 'the spec must be a mapping of keys such as name, version and messages', 'see docs/spec.md for the layout of a spec')]}
  }
  return {source, diagnostics}
}

/** UTF-8 text without NUL bytes, BOM removed; undefined for anything else. */
function decodeText(bytes: Buffer): string | undefined {
  if (bytes.includes(0)) return undefined
  try {
    return new TextDecoder('utf-8', {fatal: true, ignoreBOM: false}).decode(bytes)
  } catch {
    return undefined
  }
}

const firstLine = (s: string): string => s.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '').trim()

function explainSyntax(code: string, message: string, char: string | undefined): [string, string] {
  if (code === 'MULTIPLE_DOCS') return ['the file holds more than one YAML document', 'a spec file holds one document; remove the extra "---"']
  if (code === 'TAB_AS_INDENT') return [message, 'indent with spaces, not tabs']
  if (code === 'BAD_INDENT') return [message, 'check the indentation: keys of one mapping start in the same column, nested keys further right']
  if (code === 'BLOCK_AS_IMPLICIT_KEY' || code === 'MULTILINE_IMPLICIT_KEY') return [message, 'a key must fit on one line; quote a value that contains ": "']
  if (/without - indicator/.test(message)) return ['this line does not line up with the lines above it', 'indent it exactly as far as the keys it belongs with']
  if (code === 'MISSING_CHAR') return [message, 'close the quote or bracket that starts earlier']
  if (char === '[' || char === ']' || char === '{' || char === '}' || char === ',') {
    return [`unexpected "${char}" here`, `inside { } and [ ], quote values that contain brackets or commas, e.g. next: "Member[2]"`]
  }
  return [message.replace(/ token in YAML stream/, '').replace(/ at node end$/, ' after a value'), 'check the indentation and quoting on this line']
}
