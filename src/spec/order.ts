// The lock order language, one statement at a time:
//   chain := group ('<' group)+        a < b < c    x, y < z
//   never := name '!<' name            a !< z       (a must never be held while taking z)
// Statements are separated by ';'.
export interface OrderToken {
  name: string
  index: number
}

export type ParsedStatement =
  | {kind: 'chain'; groups: OrderToken[][]; index: number}
  | {kind: 'never'; before: OrderToken; after: OrderToken; index: number}

export interface OrderSyntaxError {
  index: number
  length: number
  message: string
}

type Tok = {t: 'name' | '<' | '!<' | ',' | ';'; text: string; index: number}

function tokenize(src: string): Tok[] | OrderSyntaxError {
  const out: Tok[] = []
  const re = /\s*(?:([A-Za-z_][A-Za-z0-9_.-]*)|(!<)|(<)|(,)|(;)|(\S))/y
  let m: RegExpExecArray | null
  while (re.lastIndex < src.length && (m = re.exec(src))) {
    const index = m.index + m[0].length - m[0].trimStart().length
    if (m[1]) out.push({t: 'name', text: m[1], index})
    else if (m[2]) out.push({t: '!<', text: '!<', index})
    else if (m[3]) out.push({t: '<', text: '<', index})
    else if (m[4]) out.push({t: ',', text: ',', index})
    else if (m[5]) out.push({t: ';', text: ';', index})
    else if (m[6]) return {index, length: 1, message: `unexpected "${m[6]}" in the lock order`}
  }
  return out
}

export function parseOrder(src: string): ParsedStatement[] | OrderSyntaxError {
  const toks = tokenize(src)
  if (!Array.isArray(toks)) return toks
  const out: ParsedStatement[] = []
  let i = 0
  const end = src.trimEnd().length
  const expectName = (what: string): OrderToken | OrderSyntaxError => {
    const tok = toks[i]
    if (tok?.t !== 'name') {
      return {index: tok?.index ?? end, length: tok?.text.length ?? 1, message: `expected a lock name ${what}, found ${tok ? `"${tok.text}"` : 'the end'}`}
    }
    i++
    return {name: tok.text, index: tok.index}
  }
  while (i < toks.length) {
    if (toks[i]!.t === ';') {
      i++
      continue
    }
    const start = toks[i]!.index
    const first = expectName('at the start of a statement')
    if ('message' in first) return first
    if (toks[i]?.t === '!<') {
      i++
      const after = expectName('after "!<"')
      if ('message' in after) return after
      out.push({kind: 'never', before: first, after, index: start})
    } else {
      const groups: OrderToken[][] = [[first]]
      for (;;) {
        const tok = toks[i]
        if (tok?.t === ',') {
          i++
          const n = expectName('after ","')
          if ('message' in n) return n
          groups.at(-1)!.push(n)
        } else if (tok?.t === '<') {
          i++
          const n = expectName('after "<"')
          if ('message' in n) return n
          groups.push([n])
        } else break
      }
      if (groups.length < 2) {
        const tok = toks[i]
        return {index: tok?.index ?? end, length: tok?.text.length ?? 1, message: `a statement orders two or more locks with "<" (e.g. "${first.name} < other")`}
      }
      out.push({kind: 'chain', groups, index: start})
    }
    const tok = toks[i]
    if (tok && tok.t !== ';') return {index: tok.index, length: tok.text.length, message: `expected ";" or the end after a statement, found "${tok.text}"`}
  }
  return out
}
