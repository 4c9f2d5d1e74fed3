// The quick pass's parser: js-yaml, about ten times faster than the positioned parser, made
// to read scalars exactly as that parser does (YAML 1.2 core schema, as the yaml package
// resolves it), so that both passes check the same data and reach the same verdict.
import {FAILSAFE_SCHEMA, load, Type} from 'js-yaml'

import {MAX_DEPTH} from './source.js'

const NULL = /^(?:~|[Nn]ull|NULL)?$/
const BOOL = /^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/
const OCT = /^0o[0-7]+$/
const HEX = /^0x[0-9a-fA-F]+$/
const SPECIAL = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/

const ANY_INT = /^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$/
const ANY_FLOAT = /^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+|[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*))$/
// Most scalars are names; one look at the first character rules them out cheaply.
const numeric = (s: string): boolean => {
  const c = s.charCodeAt(0)
  return (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46
}

const core = FAILSAFE_SCHEMA.extend({
  implicit: [
    new Type('tag:yaml.org,2002:null', {kind: 'scalar', resolve: (s: string) => s.length <= 4 && NULL.test(s), construct: () => null}),
    new Type('tag:yaml.org,2002:bool', {kind: 'scalar', resolve: (s: string) => s.length <= 5 && BOOL.test(s), construct: (s: string) => s[0] === 't' || s[0] === 'T'}),
    new Type('tag:yaml.org,2002:int', {
      kind: 'scalar',
      resolve: (s: string) => numeric(s) && ANY_INT.test(s),
      construct: (s: string) => (OCT.test(s) ? parseInt(s.slice(2), 8) : HEX.test(s) ? parseInt(s.slice(2), 16) : parseInt(s, 10)),
    }),
    new Type('tag:yaml.org,2002:float', {
      kind: 'scalar',
      resolve: (s: string) => numeric(s) && ANY_FLOAT.test(s),
      construct: (s: string) => (SPECIAL.test(s) ? (s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? -Infinity : Infinity) : parseFloat(s)),
    }),
  ],
})

// Text the two parsers may read differently, left to the full pass: anchors and aliases (the
// full pass rejects them), tabs, complex keys ("? " or a collection before ": "), tags and
// directives. A false alarm only costs time.
// A tag's "!" starts a node (line start, after "- ", ": ", "? " or a flow indicator); one
// inside a plain scalar, as in the lock order "a !< b", is text.
const RISKY = /(?:^|[\s,[\]{}:])[&*]|(?:^[ ]*|[-:?][ ]+|[[{,][ ]*)!|\t|(?:^|[\s\-,[{])\?(?:\s|$)|[\]}]\s*:(?:\s|$)|^%/m

/** Plain data, or undefined when the text is better left to the full pass. */
export function quickParse(text: string): Record<string, unknown> | undefined {
  if (RISKY.test(text)) return undefined
  let data: unknown
  try {
    data = load(text, {schema: core})
  } catch {
    return undefined
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return undefined
  return depthWithin(data, MAX_DEPTH) ? (data as Record<string, unknown>) : undefined
}

/** Whether collections nest at most `limit` deep, walked without recursion. */
function depthWithin(root: object, limit: number): boolean {
  const stack: [unknown, number][] = [[root, 1]]
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!
    if (typeof v !== 'object' || v === null) continue
    if (depth > limit) return false
    for (const child of Object.values(v)) if (typeof child === 'object' && child !== null) stack.push([child, depth + 1])
  }
  return true
}
