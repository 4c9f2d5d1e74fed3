// Reads a spec file and parses it into a YAML document that keeps positions.
// Every failure becomes a diagnostic; nothing here throws for bad input.
import {readFileSync, statSync} from 'node:fs'
import {TextDecoder} from 'node:util'
import {
  Composer,
  type CST,
  type Document,
  isMap,
  isPair,
  isScalar,
  isNode,
  isSeq,
  LineCounter,
  type Node,
  type Pair,
  Parser,
  Scalar,
  YAMLParseError,
} from 'yaml'

import {type Diagnostic, diagnostic, type Position, sortDiagnostics} from '../diagnostics/diagnostic.js'

type Token = CST.Token

export type PathSegment = string | number

type At = Position & {endCol?: number}

/** What the checks need of a parsed spec: whether a path exists, and where it is. */
export interface SourceView {
  readonly file: string
  node(path: readonly PathSegment[]): unknown
  at(path: readonly PathSegment[], which?: 'value' | 'key'): At
  inScalar(node: unknown, index: number, length?: number): At
  /** The source text of a one-line range, for messages; undefined without positions. */
  written(at: At): string | undefined
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

  written(): undefined {
    return undefined
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

  written(at: At): string | undefined {
    if (at.endCol === undefined) return undefined
    return this.lineText(at.line).slice(at.col - 1, at.endCol - 1)
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

/**
 * Collections nested deeper than this are refused before anything recursive runs (the
 * composer, toJS, the schema check). Real specs nest a few levels; a lock step's `then`
 * adds two, so this leaves room for thirty nested locks.
 */
export const MAX_DEPTH = 64

export type TextResult = {text: string; diagnostic?: undefined} | {text?: undefined; diagnostic: Diagnostic}

/**
 * Reads a spec file as text, the same way for both parse passes: UTF-8 without NUL bytes,
 * the BOM removed, and lone CRs (old Mac line ends, a YAML line break) turned into LFs,
 * which the positioned parser does not know. The length stays the same, so offsets hold.
 */
export function readSpecText(file: string): TextResult {
  const at1 = {line: 1, col: 1}
  let bytes: Buffer
  try {
    if (file !== '-' && statSync(file).isDirectory()) {
      return {diagnostic: diagnostic('E002', file, at1, `${file} is a directory, not a spec file`, 'pass the path of a .yaml or .json spec file inside it')}
    }
    // "-" is standard input, as for most tools that read files.
    bytes = readFileSync(file === '-' ? 0 : file)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') {
      return {diagnostic: diagnostic('E001', file, at1, `no such file: ${file}`, 'check the path; it is resolved from the current directory')}
    }
    return {diagnostic: diagnostic('E003', file, at1, `cannot read ${file}: ${code ?? String(error)}`, 'check the file permissions')}
  }
  const text = decodeText(bytes)
  if (text === undefined) {
    return {diagnostic: diagnostic('E004', file, at1, `${file} is not a UTF-8 text file`, 'a spec is YAML or JSON text; check that the right file was passed')}
  }
  return {text: text.includes('\r') ? text.replace(/\r(?!\n)/g, '\n') : text}
}

/** Reads and parses one spec file. A source is returned when the YAML parsed well enough to check. */
export function loadSource(file: string, text?: string): LoadResult {
  if (text === undefined) {
    const read = readSpecText(file)
    if (read.diagnostic) return {diagnostics: [read.diagnostic]}
    text = read.text
  }
  return parseSpec(file, text)
}

function parseSpec(file: string, text: string): LoadResult {
  const at1 = {line: 1, col: 1}
  const lines = new LineCounter()
  const tokens = [...new Parser(lines.addNewLine).parse(text)]
  // The token tree is built without recursion; look at it before the composer recurses.
  const scan = scanTokens(tokens)
  const fromOffset = (offset: number, length = 1) => {
    const {line, col} = lines.linePos(offset)
    const end = lines.linePos(offset + length)
    return end.line === line ? {line, col, endCol: end.col} : {line, col}
  }
  if (scan.tooDeep !== undefined) {
    return {diagnostics: [diagnostic('E010', file, fromOffset(scan.tooDeep), `collections nest more than ${MAX_DEPTH} levels deep here`, 'a spec nests only a few levels deep; flatten this value')]}
  }

  let doc: Document.Parsed | undefined
  const composer = new Composer({prettyErrors: false, uniqueKeys: false, strict: true})
  for (const d of composer.compose(tokens, true, text.length)) {
    if (!doc) doc = d
    else {
      doc.errors.push(new YAMLParseError([d.range[0], d.range[1]], 'MULTIPLE_DOCS', 'multiple documents'))
      break
    }
  }
  if (!doc) return {diagnostics: [diagnostic('E005', file, at1, `${file} is empty`, 'start from examples/echo/echo.yaml or see docs/spec.md')]}
  const source = new SpecSource(file, text, doc, lines)
  if (doc.contents === null && doc.errors.length === 0) {
    return {diagnostics: [diagnostic('E005', file, at1, `${file} is empty`, 'start from examples/echo/echo.yaml or see docs/spec.md')]}
  }

  // After the first syntax error the parser mostly reports its own fallout, so keep that
  // one. A quote or bracket left open is reported where it opens, not where the file ends.
  // Duplicate keys and anchors are independent of it and all kept.
  const syntax = doc.errors.filter((e) => e.code !== 'DUPLICATE_KEY')
  const first = syntax[0]
  const diagnostics: Diagnostic[] = []
  const unclosed = first && openerOf(first, scan.unclosed)
  if (unclosed) {
    const {offset, char} = unclosed
    const [what, close] = char === '[' ? ['bracket', ']'] : char === '{' ? ['brace', '}'] : ['quote', char]
    diagnostics.push(diagnostic('E006', file, fromOffset(offset), `this ${what} is never closed`, `add the closing ${close}; everything after the opening ${char} was read as part of it`))
  } else if (first) {
    diagnostics.push(syntaxDiagnostic(source, first, syntax))
  }
  diagnostics.push(...duplicateKeys(source))
  for (const {offset, length, anchor} of scan.aliases) {
    const name = text.slice(offset, offset + length)
    diagnostics.push(diagnostic('E009', file, fromOffset(offset, length), `YAML ${anchor ? 'anchor' : 'alias'} ${name}: anchors and aliases are not supported`, 'write the value out in full at each place it is used (see E009 in docs/diagnostics.md)'))
  }
  if (diagnostics.length > 0) return {diagnostics: sortDiagnostics(diagnostics)}

  if (!isMap(doc.contents)) {
    const at = doc.contents?.range ? source.span(doc.contents.range[0], doc.contents.range[1]) : at1
    return {diagnostics: [diagnostic('E008', file, at, 'the spec must be a mapping of keys such as name, version and messages', 'see docs/spec.md for the layout of a spec')]}
  }
  return {source, diagnostics}
}

/** One YAML syntax error as a diagnostic, placed at the text it is about. */
function syntaxDiagnostic(source: SpecSource, e: YAMLParseError, all: YAMLParseError[]): Diagnostic {
  const {text, file} = source
  if (e.code === 'BLOCK_AS_IMPLICIT_KEY' && all.some((o) => o.code === 'MULTILINE_IMPLICIT_KEY' && o.pos[0] === e.pos[0])) {
    // A key indented further than the one before it continues that line's value, so the
    // parser blames the value. Point at the key that is out of line instead.
    const key = nextLineStart(text, e.pos[0])
    if (key !== undefined) {
      const name = /^[^:#\n]*/.exec(text.slice(key))![0].trim()
      const at = source.span(key, key + Math.max(1, name.length))
      return diagnostic('E006', file, at, `${name ? `key "${name}"` : 'this line'} is indented further than the line above it`, 'keys of one mapping start in the same column; line it up with its siblings, or indent it under a key that ends with ":"')
    }
  }
  // An error at a line's indentation is about the text that follows it.
  let start = e.pos[0]
  while (text[start] === ' ' && (start === 0 || /[ \n]/.test(text[start - 1]!))) start++
  const at = source.span(start, Math.max(start + 1, e.pos[1]))
  const [message, hint] = explainSyntax(e.code, firstLine(e.message), text[e.pos[0]])
  return diagnostic('E006', file, at, message, hint)
}

/**
 * For an error that says a quote or bracket was never closed (found where the file or the
 * block ends), the opener it is about: the first unclosed one of that kind before it.
 */
function openerOf(e: YAMLParseError, unclosed: TokenScan['unclosed']): TokenScan['unclosed'][number] | undefined {
  const closer = e.code === 'MISSING_CHAR' ? /closing (["'])/.exec(e.message)?.[1] : e.code === 'BAD_INDENT' ? /end with an? ([\]}])/.exec(e.message)?.[1] : undefined
  if (!closer) return undefined
  const opener = closer === ']' ? '[' : closer === '}' ? '{' : closer
  return unclosed.find((u) => u.char === opener && u.offset <= e.pos[0])
}

/** Offset of the first non-blank character on the next non-blank line after `offset`. */
function nextLineStart(text: string, offset: number): number | undefined {
  let i = text.indexOf('\n', offset)
  while (i !== -1) {
    let j = i + 1
    while (text[j] === ' ' || text[j] === '\t') j++
    if (j < text.length && text[j] !== '\n' && text[j] !== '#') return j
    i = text.indexOf('\n', j)
  }
  return undefined
}

interface TokenScan {
  /** Offset of the first collection nested deeper than MAX_DEPTH. */
  tooDeep?: number
  /** Quotes and flow brackets that are never closed, in document order. */
  unclosed: {offset: number; char: string}[]
  aliases: {offset: number; length: number; anchor: boolean}[]
}

/** Walks the parser's token tree with an explicit stack: depth, unclosed openers, anchors. */
function scanTokens(tokens: Token[]): TokenScan {
  const out: TokenScan = {aliases: [], unclosed: []}
  const props = (list: unknown) => {
    if (!Array.isArray(list)) return
    for (const t of list as {type: string; offset: number; source: string}[]) {
      if (t.type === 'anchor') out.aliases.push({offset: t.offset, length: t.source.length, anchor: true})
    }
  }
  // Visited in document order (children pushed in reverse), so "first" means first in the file.
  const stack: [Token, number][] = tokens.map((t): [Token, number] => [t, 0]).reverse()
  while (stack.length > 0) {
    const [t, depth] = stack.pop()!
    switch (t.type) {
      case 'document':
        props(t.start)
        if (t.value) stack.push([t.value, depth])
        break
      case 'block-map':
      case 'block-seq':
      case 'flow-collection': {
        if (depth + 1 > MAX_DEPTH) {
          out.tooDeep ??= t.offset
          break
        }
        if (t.type === 'flow-collection') {
          const closer = t.start.source === '[' ? 'flow-seq-end' : 'flow-map-end'
          if (!t.end.some((e) => e.type === closer)) out.unclosed.push({offset: t.start.offset, char: t.start.source})
        }
        const children: [Token, number][] = []
        for (const item of t.items) {
          props(item.start)
          if (item.key) children.push([item.key as Token, depth + 1])
          props((item as {sep?: unknown}).sep)
          if (item.value) children.push([item.value, depth + 1])
        }
        stack.push(...children.reverse())
        break
      }
      case 'alias':
        out.aliases.push({offset: t.offset, length: t.source.length, anchor: false})
        break
      case 'block-scalar':
        props(t.props)
        break
      case 'double-quoted-scalar':
      case 'single-quoted-scalar':
        if (!quoteClosed(t.source)) out.unclosed.push({offset: t.offset, char: t.source[0]!})
        break
      default:
        break
    }
  }
  out.aliases.sort((a, b) => a.offset - b.offset)
  return out
}

function quoteClosed(src: string): boolean {
  const q = src[0]!
  const body = src.trimEnd()
  if (body.length < 2 || body.at(-1) !== q) return false
  // Count the run of closing characters: "" in single quotes and \" in double quotes escape.
  let i = body.length - 2
  let run = 0
  const esc = q === "'" ? "'" : '\\'
  while (i >= 1 && body[i] === esc) {
    run++
    i--
  }
  return run % 2 === 0
}

/**
 * Each repeated key in a mapping, at the repeat, naming the key as written and the line of
 * its first use. Keys compare as the checks see them (the same text after YAML resolves it).
 */
function duplicateKeys(source: SpecSource): Diagnostic[] {
  const out: Diagnostic[] = []
  const stack: unknown[] = [source.doc.contents]
  while (stack.length > 0) {
    const node = stack.pop()
    if (isSeq(node)) stack.push(...node.items)
    if (!isMap(node)) continue
    const seen = new Map<string, Node>()
    for (const pair of node.items) {
      stack.push(pair.value)
      if (!isScalar(pair.key) || !pair.key.range) continue
      const name = keyString(pair.key.value)
      const prev = seen.get(name)
      if (!prev) {
        seen.set(name, pair.key)
        continue
      }
      const [s, e] = pair.key.range
      const firstLine = source.position(prev.range![0]).line
      out.push(diagnostic('E007', source.file, source.span(s, e), `duplicate key "${source.text.slice(s, e)}" (first at line ${firstLine})`, 'each key may appear once in a mapping; remove or rename the repeat'))
    }
  }
  return out
}

/** A mapping key as a property name, as js-yaml writes it (null becomes "null"). */
export const keyString = (v: unknown): string => String(v)

/**
 * The document as plain data. Not yaml's toJS: keys are named as the quick pass names them,
 * and "__proto__" stays an ordinary key. Depth is already bounded, so recursion is safe.
 */
export function toData(node: unknown): unknown {
  if (isScalar(node)) return node.value
  if (isSeq(node)) return node.items.map(toData)
  if (isMap(node)) {
    const obj: Record<string, unknown> = {}
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? keyString(pair.key.value) : String(toData(pair.key))
      Object.defineProperty(obj, key, {value: toData(pair.value), enumerable: true, writable: true, configurable: true})
    }
    return obj
  }
  return null
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
