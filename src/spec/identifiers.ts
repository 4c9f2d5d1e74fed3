// Names in a spec become TypeScript and C++ identifiers, so they must be valid in both.
import {readFileSync} from 'node:fs'

const TS_RESERVED = `break case catch class const continue debugger default delete do else enum export extends
false finally for function if import in instanceof new null return super switch this throw true try typeof var
void while with implements interface let package private protected public static yield await`
// Names a TypeScript type may not take.
const TS_TYPE_RESERVED = 'any boolean never number object string symbol unknown bigint undefined'
const CPP_RESERVED = `alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
char32_t class compl concept const consteval constexpr constinit const_cast continue co_await co_return co_yield
decltype default delete do double dynamic_cast else enum explicit export extern false float for friend goto if
inline int long mutable namespace new noexcept not not_eq nullptr operator or or_eq private protected public
register reinterpret_cast requires return short signed sizeof static static_assert static_cast struct switch
template this thread_local throw true try typedef typeid typename union unsigned using virtual void volatile
wchar_t while xor xor_eq`
// Macros the preprocessor would rewrite in the generated C++: native-template/macros.txt is
// derived from the headers it includes (scripts/cpp-macros.mjs); these few are macros of other
// headers or of some libraries only, kept out on principle.
const MACROS = `ERROR DELETE IN OUT OPTIONAL TRUE FALSE NULL EOF min max near far small interface errno stdin stdout
stderr assert SendMessage PostMessage GetMessage PeekMessage DispatchMessage CreateEvent OpenEvent CreateMutex
CreateFile DeleteFile CopyFile MoveFile GetObject LoadString MessageBox CreateWindow GetUserName GetComputerName
RegisterClass DrawText GetClassName FindResource GetCurrentDirectory SetCurrentDirectory`

const words = (s: string): Set<string> => new Set(s.split(/\s+/).filter(Boolean))
const TS = words(TS_RESERVED)
const TS_TYPES = words(TS_TYPE_RESERVED)
const CPP = words(CPP_RESERVED)
const EXTRA = words(MACROS)
let list: string | undefined
/** Whether the sorted list has `name` as a line: a binary search of the text, which is large. */
const isMacro = (name: string): boolean => {
  if (EXTRA.has(name)) return true
  list ??= readFileSync(new URL('../../native-template/macros.txt', import.meta.url), 'utf8')
  let lo = 0
  let hi = list.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    const start = list.lastIndexOf('\n', mid - 1) + 1
    const end = list.indexOf('\n', start)
    const line = list.slice(start, end < 0 ? list.length : end)
    if (line === name) return true
    if (line < name) lo = end < 0 ? list.length : end + 1
    else hi = start
  }
  return false
}

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
  const inTs = TS.has(name) || (asType && TS_TYPES.has(name))
  const inCpp = CPP.has(name)
  if (inTs || inCpp) {
    const langs = inTs && inCpp ? 'TypeScript and C++' : inTs ? 'TypeScript' : 'C++'
    return {code: 'E205', message: `${what} "${name}" is a reserved word in ${langs}`, hint: `rename it, e.g. "${name}Value"`}
  }
  if (isMacro(name)) {
    const fixed = [`${name}Value`, `${name}_`].find((n) => !isMacro(n))!
    return {code: 'E205', message: `${what} "${name}" is a macro in the headers the generated C++ includes (<windows.h>, the C and C++ libraries) and would break it`, hint: `rename it, e.g. "${fixed}"`}
  }
  if (name.includes('__') || /^_[A-Z]/.test(name)) {
    return {code: 'E205', message: `${what} "${name}" is reserved for the C++ implementation (it contains "__" or starts with "_" and a capital)`, hint: `rename it, e.g. "${name.replace(/^_+/, '').replace(/__+/g, '_')}"`}
  }
  return undefined
}
