// Expands a quoted glob the shell did not expand ('specs/**/*.yaml' in CI, or from cmd.exe,
// which expands nothing). Supports *, ?, [abc], {a,b} and ** (any depth, itself included).
// Node's own fs.globSync arrives only in Node 22.
import {readdirSync, statSync} from 'node:fs'
import {join} from 'node:path'

export const isGlob = (s: string): boolean => /[*?[{]/.test(s)

/** {a,b}c -> [ac, bc], nested and repeated braces included. */
function braces(pattern: string): string[] {
  const open = pattern.indexOf('{')
  if (open < 0) return [pattern]
  let depth = 0
  const parts: string[] = []
  let from = open + 1
  for (let i = open; i < pattern.length; i++) {
    const c = pattern[i]
    if (c === '{') depth++
    else if (c === '}' && --depth === 0) {
      parts.push(pattern.slice(from, i))
      return parts.flatMap((p) => braces(pattern.slice(0, open) + p + pattern.slice(i + 1)))
    } else if (c === ',' && depth === 1) {
      parts.push(pattern.slice(from, i))
      from = i + 1
    }
  }
  return [pattern]  // an unclosed brace is a literal
}

/** One path segment's pattern as a regular expression; a dot file matches only a leading dot. */
function segment(p: string): RegExp {
  let re = ''
  for (let i = 0; i < p.length; i++) {
    const c = p[i]!
    if (c === '*') re += '[^/]*'
    else if (c === '?') re += '[^/]'
    else if (c === '[') {
      const close = p.indexOf(']', i + 2)
      if (close < 0) re += '\\['
      else {
        const body = p.slice(i + 1, close).replace(/^!/, '^').replace(/\\/g, '\\\\')
        re += `[${body}]`
        i = close
      }
    } else re += c.replace(/[.+^$()|\\]/g, '\\$&')
  }
  return new RegExp(`^${p.startsWith('.') ? '' : '(?!\\.)'}${re}$`)
}

const entries = (dir: string): string[] => {
  try {
    return readdirSync(dir === '' ? '.' : dir).sort()
  } catch {
    return []
  }
}
const isDir = (p: string): boolean => statSync(p, {throwIfNoEntry: false})?.isDirectory() ?? false
const isFile = (p: string): boolean => statSync(p, {throwIfNoEntry: false})?.isFile() ?? false

/** The files `pattern` matches, relative as the pattern is written, sorted; none is []. */
export function expandGlob(pattern: string): string[] {
  const found = new Set<string>()
  for (const p of braces(pattern.replace(/\\/g, '/'))) {
    const absolute = p.startsWith('/')
    const parts = p.split('/').filter((s, i) => s !== '' || i === 0)
    const walk = (base: string, rest: string[]): void => {
      const [head, ...tail] = rest
      if (head === undefined) {
        if (base !== '' && isFile(base)) found.add(base)
        return
      }
      const at = (name: string) => (base === '' ? name : base === '/' ? `/${name}` : join(base, name))
      if (head === '**') {
        walk(base, tail)
        for (const name of entries(base)) if (!name.startsWith('.') && isDir(at(name))) walk(at(name), rest)
      } else if (!isGlob(head)) walk(at(head), tail)
      else {
        const re = segment(head)
        for (const name of entries(base)) if (re.test(name)) walk(at(name), tail)
      }
    }
    walk(absolute ? '/' : '', absolute ? parts.slice(1) : parts)
  }
  return [...found].sort()
}
