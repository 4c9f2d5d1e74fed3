// Names in a spec become TypeScript identifiers (types, fields, enum members), so they must
// be valid and unreserved there. No spec name reaches C++: the native core takes the spec as
// data.

const TS_RESERVED = `break case catch class const continue debugger default delete do else enum export extends
false finally for function if import in instanceof new null return super switch this throw true try typeof var
void while with implements interface let package private protected public static yield await`
// Names a TypeScript type may not take.
const TS_TYPE_RESERVED = 'any boolean never number object string symbol unknown bigint undefined'

const words = (s: string): Set<string> => new Set(s.split(/\s+/).filter(Boolean))
const TS = words(TS_RESERVED)
const TS_TYPES = words(TS_TYPE_RESERVED)

export type IdentifierProblem = {code: 'E204' | 'E205'; message: string; hint: string}

/**
 * Why `name` cannot be used, or undefined when it can. `asType` adds the names a
 * TypeScript type may not take (messages, structs and enums become types).
 */
export function identifierProblem(name: string, what: string, asType = false): IdentifierProblem | undefined {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) {
    const fixed = name.replace(/[^A-Za-z0-9_]+(.)?/g, (_, c: string | undefined) => (c ? c.toUpperCase() : '')).replace(/^(\d)/, '_$1')
    return {code: 'E204', message: `${what} "${name}" is not a valid identifier`, hint: `use ASCII letters, digits and "_", not starting with a digit${fixed && fixed !== name ? `, e.g. "${fixed}"` : ''}`}
  }
  if (TS.has(name) || (asType && TS_TYPES.has(name))) {
    return {code: 'E205', message: `${what} "${name}" is a reserved word in TypeScript`, hint: `rename it, e.g. "${name}Value"`}
  }
  return undefined
}
