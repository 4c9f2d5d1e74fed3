// Emits clients/python: one module, standard library only (Python 3.8+): a dataclass per
// message and struct, an IntEnum per enum, a codec writing docs/spec.md's wire format field for
// field as typescript.ts does, and an asyncio client. The module is what a user copies.
import type {EnumDef, Field, Message, Spec, StructDef, TypeRef} from '../../spec/model.js'
import {FRAME_HEADER} from '../../spec/model.js'
import {defaultHeartbeat, pascalSpecName} from './csharp.js'
import type {ClientOutput} from './index.js'

// ---------------------------------------------------------------------------------------------
// Names. Spec names are [A-Za-z_][A-Za-z0-9_]*. Types take the first letter upper-cased, fields
// snake_case, enum values UPPER_SNAKE_CASE. A name that is taken (a keyword, a builtin, a name
// the module defines, an earlier name) gets "_" appended until it is not.

const KEYWORDS = `False None True and as assert async await break class continue def del elif else except finally
for from global if import in is lambda nonlocal not or pass raise return try while with yield`
const BUILTINS = `abs aiter all anext any ascii bin bool breakpoint bytearray bytes callable chr classmethod compile
complex copyright credits delattr dict dir divmod enumerate eval exec exit filter float format frozenset getattr
globals hasattr hash help hex id input int isinstance issubclass iter len license list locals map max memoryview min
next object oct open ord pow print property quit range repr reversed round set setattr slice sorted staticmethod str
sum super tuple type vars zip`
// Capitalised builtins the module relies on (or a user would): a type may not hide them.
const CAPITAL_BUILTINS = `ArithmeticError AssertionError AttributeError BaseException BaseExceptionGroup BlockingIOError
BrokenPipeError BufferError BytesWarning ChildProcessError ConnectionAbortedError ConnectionError ConnectionRefusedError
ConnectionResetError DeprecationWarning EOFError Ellipsis EncodingWarning EnvironmentError Exception ExceptionGroup
FileExistsError FileNotFoundError FloatingPointError FutureWarning GeneratorExit IOError ImportError ImportWarning
IndentationError IndexError InterruptedError IsADirectoryError KeyError KeyboardInterrupt LookupError MemoryError
ModuleNotFoundError NameError NotADirectoryError NotImplemented NotImplementedError OSError OverflowError
PendingDeprecationWarning PermissionError ProcessLookupError RecursionError ReferenceError ResourceWarning RuntimeError
RuntimeWarning StopAsyncIteration StopIteration SyntaxError SyntaxWarning SystemError SystemExit TabError TimeoutError
TypeError UnboundLocalError UnicodeDecodeError UnicodeEncodeError UnicodeError UnicodeTranslateError UnicodeWarning
UserWarning ValueError Warning ZeroDivisionError`
/** Every name the module defines or imports besides the spec's types and their codecs (checked by test/client-python.test.ts). */
export const MODULE_NAMES = `annotations asyncio inspect struct dataclass field IntEnum Any Awaitable Callable TypeVar
SPEC_NAME SPEC_VERSION MAX_FRAME FRAME_HEADER HEARTBEAT_INTERVAL DEFAULT_HEARTBEAT MESSAGE_TYPES
ProtocolError EncodeError DecodeError ConnectError ConnectionClosed Message encode decode decode_payload connect
_INT _RANGE _U16 _U32 _Writer _Reader _CODECS _SENT_BY_SERVER _M _END _Connecting _Handler`

const words = (s: string): string[] => s.split(/\s+/).filter(Boolean)
const KEYWORD_SET = new Set(words(KEYWORDS))

/** The first of name, name_, name__, ... that is not taken; it is then taken. */
function claim(name: string, taken: Set<string>): string {
  let n = name
  while (taken.has(n)) n += '_'
  taken.add(n)
  return n
}

/** userId -> user_id, HTTPCode -> http_code; "__x" -> "_x" (two leading underscores would be name-mangled in a class). */
export function snakeCase(name: string): string {
  const snake = name
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1_$2')
    .toLowerCase()
  return snake.replace(/^__+/, '_')
}

/** kitchen-sink -> kitchen_sink */
const moduleBase = (specName: string): string => specName.replace(/-/g, '_')

export interface PythonNames {
  /** The module's name: the file is <module>.py. */
  module: string
  client: string
  /** Spec type name (message, struct, enum) -> Python class name. */
  types: Map<string, string>
  /** Spec type name -> (spec field name -> attribute name). */
  fields: Map<string, Map<string, string>>
  /** Enum name -> (spec value name -> member name). */
  values: Map<string, Map<string, string>>
}

export function pythonNames(spec: Spec): PythonNames {
  const module = `${moduleBase(spec.name)}_client`
  const client = `${pascalSpecName(spec.name)}Client`
  const taken = new Set([...KEYWORD_SET, ...words(BUILTINS), ...words(CAPITAL_BUILTINS), ...words(MODULE_NAMES), client])
  const types = new Map<string, string>()
  for (const t of [...spec.enums, ...spec.structs, ...spec.messages]) types.set(t.name, claim(t.name.charAt(0).toUpperCase() + t.name.slice(1), taken))
  // Codec functions are named after the types: _write_Point, _read_Point.
  const fields = new Map<string, Map<string, string>>()
  // "field" is called in class bodies, where a field of that name would hide it.
  const fieldTaken = () => new Set([...KEYWORD_SET, ...words(BUILTINS), 'field'])
  for (const s of [...spec.structs, ...spec.messages]) {
    const used = fieldTaken()
    fields.set(s.name, new Map(s.fields.map((f) => [f.name, claim(snakeCase(f.name), used)])))
  }
  const values = new Map<string, Map<string, string>>()
  for (const e of spec.enums) {
    const used = new Set<string>()
    values.set(
      e.name,
      new Map(
        e.values.map((v) => {
          // Enum reserves _names_ for itself: members start with a letter.
          let upper = snakeCase(v.name).toUpperCase().replace(/^_+/, '')
          if (!/^[A-Z]/.test(upper)) upper = `V_${upper}`
          return [v.name, claim(upper, used)]
        }),
      ),
    )
  }
  return {module, client, types, fields, values}
}

// ---------------------------------------------------------------------------------------------
// Types and codecs.

const INT_KINDS = new Set(['u8', 'u16', 'u32', 'u64', 'i8', 'i16', 'i32', 'i64'])

interface Context {
  names: PythonNames
  enums: Map<string, EnumDef>
}

function pyType(t: TypeRef, c: Context): string {
  switch (t.kind) {
    case 'primitive':
      return INT_KINDS.has(t.name) ? 'int' : t.name === 'bool' ? 'bool' : 'float'
    case 'string':
      return 'str'
    case 'bytes':
      return 'bytes'
    case 'named':
      return c.names.types.get(t.name)!
    case 'array':
      return `list[${pyType(t.of, c)}]`
  }
}

/** A field's default: what a new message holds, so it encodes as it is. */
function defaultOf(t: TypeRef, c: Context): string {
  switch (t.kind) {
    case 'primitive':
      return INT_KINDS.has(t.name) ? '0' : t.name === 'bool' ? 'False' : '0.0'
    case 'string':
      return '""'
    case 'bytes':
      return 'b""'
    case 'array':
      return 'field(default_factory=list)'
    case 'named': {
      const type = c.names.types.get(t.name)!
      const e = c.enums.get(t.name)
      if (!e) return `field(default_factory=${type})`
      const v = e.values.find((x) => x.value === 0) ?? e.values[0]!
      return `${type}.${c.names.values.get(e.name)!.get(v.name)!}`
    }
  }
}

/** Where a value is, for error messages: literal text with {variables}, rendered as a Python string. */
const pyWhere = (where: string): string => (where.includes('{') ? `f"${where}"` : `"${where}"`)

/** Statements writing `value` (a Python expression) of type t to the _Writer `w`. */
function writeLines(t: TypeRef, value: string, where: string, c: Context, depth: number): string[] {
  switch (t.kind) {
    case 'primitive':
      return [t.name === 'bool' ? `w.boolean(${value}, ${pyWhere(where)})` : `w.${t.name}(${value}, ${pyWhere(where)})`]
    case 'string':
      return [`w.string(${value}, ${t.max}, ${pyWhere(where)})`]
    case 'bytes':
      return [`w.blob(${value}, ${t.max}, ${pyWhere(where)})`]
    case 'named': {
      const e = c.enums.get(t.name)
      const type = c.names.types.get(t.name)!
      return [e ? `w.enum(${type}, "${e.base}", ${value}, ${pyWhere(where)})` : `_write_${type}(w, ${value}, ${pyWhere(where)})`]
    }
    case 'array': {
      const of = t.of
      if (of.kind === 'primitive') {
        if (of.name === 'bool') return [`w.booleans(${value}, ${t.max}, ${pyWhere(where)})`]
        return [`w.${INT_KINDS.has(of.name) ? 'ints' : 'floats'}("${of.name}", ${value}, ${t.max}, ${pyWhere(where)})`]
      }
      const i = `i${depth}`
      const item = `item${depth}`
      return [`for ${i}, ${item} in enumerate(w.items(${value}, ${t.max}, ${pyWhere(where)})):`, ...writeLines(of, item, `${where}[{${i}}]`, c, depth + 1).map((l) => `    ${l}`)]
    }
  }
}

/** An expression reading a value of type t from the _Reader `r`. */
function readExpr(t: TypeRef, c: Context): string {
  switch (t.kind) {
    case 'primitive':
      return t.name === 'bool' ? 'r.boolean()' : `r.${t.name}()`
    case 'string':
      return `r.string(${t.max})`
    case 'bytes':
      return `r.blob(${t.max})`
    case 'named': {
      const e = c.enums.get(t.name)
      const type = c.names.types.get(t.name)!
      return e ? `r.enum(${type}, "${e.base}")` : `_read_${type}(r)`
    }
    case 'array': {
      const of = t.of
      if (of.kind === 'primitive') {
        if (of.name === 'bool') return `r.booleans(${t.max})`
        return `r.${INT_KINDS.has(of.name) ? 'ints' : 'floats'}("${of.name}", ${t.max})`
      }
      return `[${readExpr(of, c)} for _ in range(r.count(${t.max}))]`
    }
  }
}

const DIRECTION_TEXT: Record<Message['direction'], string> = {
  'client-to-server': 'Sent by clients.',
  'server-to-client': 'Sent by the server.',
  both: 'Sent both ways.',
}

/** A docstring's text: no triple quotes or backslashes from the spec reach Python. */
const doc = (s: string): string => s.replace(/\\/g, '\\\\').replace(/"""/g, '\\"\\"\\"')

function classOf(owner: string, fields: readonly Field[], c: Context, docText: string, typeId?: number): string[] {
  const names = c.names.fields.get(owner)!
  const out = ['@dataclass', `class ${c.names.types.get(owner)!}${typeId === undefined ? '' : '(Message)'}:`, `    """${doc(docText)}"""`, '']
  if (typeId !== undefined) out.push(`    TYPE_ID = ${typeId}`)
  for (const f of fields) out.push(`    ${names.get(f.name)!}: ${pyType(f.type, c)} = ${defaultOf(f.type, c)}${f.typeText === pyType(f.type, c) ? '' : `  # ${f.typeText}`}`)
  if (out[out.length - 1] === '') out.pop()
  return out
}

function codecOf(owner: string, fields: readonly Field[], c: Context, isMessage: boolean): string[] {
  const type = c.names.types.get(owner)!
  const names = c.names.fields.get(owner)!
  const v = isMessage ? 'm' : 'v'
  const where = (f: Field) => (isMessage ? `${type}.${names.get(f.name)!}` : `{at}.${names.get(f.name)!}`)
  const write = isMessage
    ? [`def _write_${type}(w: _Writer, ${v}: ${type}) -> None:`]
    : [
        `def _write_${type}(w: _Writer, ${v}: ${type}, at: str) -> None:`,
        `    if not isinstance(${v}, ${type}):`,
        `        raise EncodeError(at, f"is {type(${v}).__name__}, not ${type}")`,
      ]
  const body = fields.flatMap((f) => writeLines(f.type, `${v}.${names.get(f.name)!}`, where(f), c, 0))
  write.push(...(body.length ? body.map((l) => `    ${l}`) : isMessage ? ['    pass'] : []))
  const read = [
    `def _read_${type}(r: _Reader) -> ${type}:`,
    fields.length === 0
      ? `    return ${type}()`
      : fields.length === 1
        ? `    return ${type}(${names.get(fields[0]!.name)!}=${readExpr(fields[0]!.type, c)})`
        : [`    return ${type}(`, ...fields.map((f) => `        ${names.get(f.name)!}=${readExpr(f.type, c)},`), '    )'].join('\n'),
  ]
  return [...write, '', '', ...read]
}

/** Structs in an order where each comes after the structs it holds (default_factory needs them defined). */
function structOrder(spec: Spec): StructDef[] {
  const byName = new Map(spec.structs.map((s) => [s.name, s]))
  const done = new Set<string>()
  const out: StructDef[] = []
  const visit = (s: StructDef) => {
    if (done.has(s.name)) return
    done.add(s.name)
    const deps = (t: TypeRef): string[] => (t.kind === 'named' ? [t.name] : t.kind === 'array' ? deps(t.of) : [])
    for (const f of s.fields) for (const d of deps(f.type)) if (byName.has(d)) visit(byName.get(d)!)
    out.push(s)
  }
  spec.structs.forEach(visit)
  return out
}

function pyString(s: string): string {
  return JSON.stringify(s)
}

// ---------------------------------------------------------------------------------------------
// The module.

function runtimeCode(): string {
  return `
class ProtocolError(Exception):
    """Base of the errors this module raises."""


class EncodeError(ProtocolError, ValueError):
    """A message that cannot be encoded. Nothing of it was sent.

    \`\`field\`\` is where the bad value is: \`\`Message.field\`\`, with \`\`[index]\`\` and
    \`\`.field\`\` for array elements and struct fields (\`\`Outer.points[2].x\`\`).
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field


class DecodeError(ProtocolError, ValueError):
    """A frame that does not decode. \`\`type_id\`\` is its type id, None when its header is bad."""

    def __init__(self, problem: str, type_id: int | None = None) -> None:
        super().__init__(problem)
        self.type_id = type_id


class ConnectError(ProtocolError, ConnectionError):
    """The connection could not be made: refused, unreachable or timed out."""


class ConnectionClosed(ProtocolError, ConnectionError):
    """The connection is closed (or was lost) and the client does not reconnect.

    \`\`clean\`\` is true when the client closed it, or the server did between frames.
    """

    def __init__(self, reason: str, clean: bool = False) -> None:
        super().__init__(reason)
        self.clean = clean


class Message:
    """Base of the message classes. \`\`TYPE_ID\`\` is a message's u16 type id on the wire."""

    TYPE_ID: int


# Integer kinds: struct format letter and range.
_INT = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "i8": "b", "i16": "h", "i32": "i", "i64": "q", "f32": "f", "f64": "d"}
_RANGE = {kind: (0, 2 ** (8 * struct.calcsize(code)) - 1) if kind[0] == "u" else (-(2 ** (8 * struct.calcsize(code) - 1)), 2 ** (8 * struct.calcsize(code) - 1) - 1) for kind, code in _INT.items() if kind[0] != "f"}
# Lengths and counts: u16 when the bound is at most 65535, else u32.
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")


class _Writer:
    """Appends a payload, little-endian, checking each value against its type."""

    __slots__ = ("out",)

    def __init__(self) -> None:
        self.out = bytearray()

    def _int(self, kind: str, value: int, where: str) -> None:
        if not isinstance(value, int):
            raise EncodeError(where, f"is {value!r}, not an int")
        lo, hi = _RANGE[kind]
        if not lo <= value <= hi:
            raise EncodeError(where, f"is {value}, outside the {kind} range {lo}..{hi}")
        self.out += struct.pack("<" + _INT[kind], value)

    def u8(self, value: int, where: str) -> None:
        self._int("u8", value, where)

    def u16(self, value: int, where: str) -> None:
        self._int("u16", value, where)

    def u32(self, value: int, where: str) -> None:
        self._int("u32", value, where)

    def u64(self, value: int, where: str) -> None:
        self._int("u64", value, where)

    def i8(self, value: int, where: str) -> None:
        self._int("i8", value, where)

    def i16(self, value: int, where: str) -> None:
        self._int("i16", value, where)

    def i32(self, value: int, where: str) -> None:
        self._int("i32", value, where)

    def i64(self, value: int, where: str) -> None:
        self._int("i64", value, where)

    def _float(self, kind: str, value: float, where: str) -> None:
        try:
            self.out += struct.pack("<" + _INT[kind], value)
        except (struct.error, OverflowError):
            raise EncodeError(where, f"is {value!r}, not a float in the {kind} range") from None

    def f32(self, value: float, where: str) -> None:
        self._float("f32", value, where)

    def f64(self, value: float, where: str) -> None:
        self._float("f64", value, where)

    def boolean(self, value: bool, where: str) -> None:
        self.out.append(1 if value else 0)

    def enum(self, enum_type: type[IntEnum], kind: str, value: int, where: str) -> None:
        try:
            member = enum_type(value)
        except ValueError:
            raise EncodeError(where, f"is {value!r}, not a value of {enum_type.__name__}") from None
        self._int(kind, int(member), where)

    def _length(self, n: int, bound: int, where: str, unit: str) -> None:
        if n > bound:
            raise EncodeError(where, f"is {n} {unit}, over its bound of {bound}")
        self.out += (_U16 if bound <= 0xFFFF else _U32).pack(n)

    def string(self, value: str, bound: int, where: str) -> None:
        if not isinstance(value, str):
            raise EncodeError(where, f"is {type(value).__name__}, not str")
        try:
            data = value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise EncodeError(where, f"holds a lone surrogate at index {e.start}: not UTF-8") from None
        self._length(len(data), bound, where, "bytes of UTF-8")
        self.out += data

    def blob(self, value: bytes, bound: int, where: str) -> None:
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise EncodeError(where, f"is {type(value).__name__}, not bytes")
        data = bytes(value)
        self._length(len(data), bound, where, "bytes")
        self.out += data

    def items(self, values: list[Any], bound: int, where: str) -> list[Any]:
        """Writes the count of an array and returns it, for its elements to be written."""
        if not isinstance(values, (list, tuple)):
            raise EncodeError(where, f"is {type(values).__name__}, not a list")
        self._length(len(values), bound, where, "items")
        return values

    def ints(self, kind: str, values: list[int], bound: int, where: str) -> None:
        self.items(values, bound, where)
        try:
            self.out += struct.pack(f"<{len(values)}{_INT[kind]}", *values)
        except (struct.error, TypeError):
            for i, value in enumerate(values):
                self._int(kind, value, f"{where}[{i}]")  # raises for the first bad one
            raise

    def floats(self, kind: str, values: list[float], bound: int, where: str) -> None:
        self.items(values, bound, where)
        try:
            self.out += struct.pack(f"<{len(values)}{_INT[kind]}", *values)
        except (struct.error, OverflowError, TypeError):
            for i, value in enumerate(values):
                self._float(kind, value, f"{where}[{i}]")
            raise

    def booleans(self, values: list[bool], bound: int, where: str) -> None:
        self.items(values, bound, where)
        self.out += bytes(1 if value else 0 for value in values)


class _Reader:
    """Reads a payload, checking every length against its bound and the payload's end."""

    __slots__ = ("data", "at")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.at = 0

    def _take(self, n: int) -> int:
        at = self.at
        if at + n > len(self.data):
            raise DecodeError(f"the payload ends {at + n - len(self.data)} bytes early")
        self.at = at + n
        return at

    def _scalar(self, kind: str, size: int) -> Any:
        return struct.unpack_from("<" + _INT[kind], self.data, self._take(size))[0]

    def u8(self) -> int:
        return self._scalar("u8", 1)

    def u16(self) -> int:
        return self._scalar("u16", 2)

    def u32(self) -> int:
        return self._scalar("u32", 4)

    def u64(self) -> int:
        return self._scalar("u64", 8)

    def i8(self) -> int:
        return self._scalar("i8", 1)

    def i16(self) -> int:
        return self._scalar("i16", 2)

    def i32(self) -> int:
        return self._scalar("i32", 4)

    def i64(self) -> int:
        return self._scalar("i64", 8)

    def f32(self) -> float:
        return self._scalar("f32", 4)

    def f64(self) -> float:
        return self._scalar("f64", 8)

    def boolean(self) -> bool:
        value = self.u8()
        if value > 1:
            raise DecodeError(f"a bool is {value}, not 0 or 1")
        return value == 1

    def enum(self, enum_type: type[IntEnum], kind: str) -> Any:
        value = self._scalar(kind, struct.calcsize(_INT[kind]))
        try:
            return enum_type(value)
        except ValueError:
            raise DecodeError(f"{value} is not a value of {enum_type.__name__}") from None

    def count(self, bound: int) -> int:
        n = self.u16() if bound <= 0xFFFF else self.u32()
        if n > bound:
            raise DecodeError(f"a length of {n} is over its bound of {bound}")
        return n

    def string(self, bound: int) -> str:
        n = self.count(bound)
        at = self._take(n)
        try:
            return self.data[at : at + n].decode("utf-8")  # strict: no surrogates, overlongs or truncation
        except UnicodeDecodeError as e:
            raise DecodeError(f"a string of {n} bytes is not valid UTF-8 ({e.reason} at byte {e.start})") from None

    def blob(self, bound: int) -> bytes:
        n = self.count(bound)
        at = self._take(n)
        return bytes(self.data[at : at + n])

    def ints(self, kind: str, bound: int) -> list[int]:
        n = self.count(bound)
        code = _INT[kind]
        return list(struct.unpack_from(f"<{n}{code}", self.data, self._take(n * struct.calcsize(code))))

    floats = ints

    def booleans(self, bound: int) -> list[bool]:
        return [self.boolean() for _ in range(self.count(bound))]

    def done(self) -> None:
        if self.at != len(self.data):
            raise DecodeError(f"{len(self.data) - self.at} bytes are left over after the payload")
`
}

function codecRegistry(spec: Spec, c: Context): string {
  const t = (m: Message) => c.names.types.get(m.name)!
  const serverOnly = spec.messages.filter((m) => m.direction === 'server-to-client')
  return `
# Each message's codec by type id.
_CODECS: dict[int, tuple[type[Message], Callable[[_Writer, Any], None], Callable[[_Reader], Message]]] = {
${spec.messages.map((m) => `    ${m.id}: (${t(m)}, _write_${t(m)}, _read_${t(m)}),`).join('\n')}
}

MESSAGE_TYPES: dict[int, type[Message]] = {type_id: codec[0] for type_id, codec in _CODECS.items()}
"""Every message class by its type id."""

# Messages only the server sends: the client refuses to send them.
_SENT_BY_SERVER: frozenset[int] = frozenset({${serverOnly.map((m) => m.id).join(', ')}})


def encode(message: Message) -> bytes:
    """The frame of a message: u32 length, u16 type id, payload. Raises EncodeError."""
    codec = _CODECS.get(getattr(message, "TYPE_ID", -1))
    if codec is None or type(message) is not codec[0]:
        raise EncodeError(type(message).__name__, "is not a message of this protocol")
    w = _Writer()
    w.out += bytes(${FRAME_HEADER})
    codec[1](w, message)
    size = len(w.out)
    if size > MAX_FRAME:
        raise EncodeError(codec[0].__name__, f"is a frame of {size} bytes, over maxFrame ({MAX_FRAME})")
    struct.pack_into("<IH", w.out, 0, size - 4, message.TYPE_ID)
    return bytes(w.out)


def decode_payload(type_id: int, payload: bytes) -> Message:
    """The message of a frame's type id and payload. Raises DecodeError."""
    codec = _CODECS.get(type_id)
    if codec is None:
        raise DecodeError(f"unknown type id {type_id}", type_id)
    r = _Reader(bytes(payload))
    try:
        message = codec[2](r)
        r.done()
    except DecodeError as e:
        raise DecodeError(f"{codec[0].__name__} (type id {type_id}): {e}", type_id) from None
    return message


def decode(frame: bytes) -> Message:
    """The message of one whole frame, header included. Raises DecodeError."""
    if len(frame) < FRAME_HEADER:
        raise DecodeError(f"a frame of {len(frame)} bytes is shorter than its header")
    length, type_id = struct.unpack_from("<IH", frame)
    if length != len(frame) - 4:
        raise DecodeError(f"the frame's length says {length} bytes but {len(frame) - 4} follow it", type_id)
    return decode_payload(type_id, frame[FRAME_HEADER:])
`
}

function clientCode(client: string, spec: Spec): string {
  return `
_M = TypeVar("_M", bound=Message)
_Handler = Callable[[Any], Any]
_END = object()  # ends the inbox


class ${client}:
    """A connection to a ${spec.name} server. Open one with :func:\`connect\`.

    Receive with \`\`async for message in client\`\` (or \`\`await client.receive()\`\`), or
    register callbacks with :meth:\`on\`: a message goes to the callbacks of its class if it
    has any, else to the inbox that \`\`receive\`\` and \`\`async for\`\` read.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        heartbeat: Message | None = DEFAULT_HEARTBEAT,
        heartbeat_interval: float = HEARTBEAT_INTERVAL,
        reconnect: bool = False,
        reconnect_delay: float = 0.5,
        reconnect_max_delay: float = 30.0,
        connect_timeout: float | None = 10.0,
        queue_size: int = 1024,
    ) -> None:
        self.host = host
        self.port = port
        self.heartbeat_interval = heartbeat_interval
        self.reconnect = reconnect
        self.reconnect_delay = reconnect_delay
        self.reconnect_max_delay = reconnect_max_delay
        self.connect_timeout = connect_timeout
        self._heartbeat_frame = encode(heartbeat) if heartbeat is not None else None
        self._queue_size = queue_size
        self._handlers: dict[type, list[_Handler]] = {}
        self._decode_error_handlers: list[Callable[[DecodeError], Any]] = []
        self._reconnect_handlers: list[Callable[[], Any]] = []
        self._writer: asyncio.StreamWriter | None = None
        self._closing = False
        self._end: ConnectionClosed | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._last_send = 0.0

    # -- connecting and closing ---------------------------------------------------------------

    async def connect(self) -> ${client}:
        """Connects; raises ConnectError when the server cannot be reached."""
        self._inbox: asyncio.Queue[Any] = asyncio.Queue()
        self._room = asyncio.Semaphore(self._queue_size)  # messages the inbox may hold
        self._send_lock = asyncio.Lock()
        self._connected = asyncio.Event()
        reader = await self._open()
        self._tasks = [asyncio.ensure_future(self._run(reader))]
        if self._heartbeat_frame is not None and self.heartbeat_interval > 0:
            self._tasks.append(asyncio.ensure_future(self._beat()))
        return self

    async def _open(self) -> asyncio.StreamReader:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.connect_timeout)
        except asyncio.TimeoutError:
            raise ConnectError(f"could not connect to {self.host}:{self.port}: timed out after {self.connect_timeout} s") from None
        except OSError as e:
            raise ConnectError(f"could not connect to {self.host}:{self.port}: {e.strerror or e}") from e
        self._writer = writer
        self._last_send = asyncio.get_running_loop().time()
        self._connected.set()
        return reader

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    async def close(self) -> None:
        """Closes the connection and stops the heartbeat and reconnecting. Safe to call twice."""
        self._closing = True
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        # Not the current task: close() may be called from a callback the receiving task runs.
        tasks = [task for task in self._tasks if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if writer is not None:
            try:
                await writer.wait_closed()
            except OSError:
                pass
        self._finish(None)

    async def __aenter__(self) -> ${client}:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -- sending --------------------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        """Encodes and sends a message, and waits while the socket's buffer is full.

        Raises EncodeError (nothing is sent) or ConnectionClosed. While reconnecting, waits
        for the new connection.
        """
        if getattr(message, "TYPE_ID", None) in _SENT_BY_SERVER:
            raise EncodeError(type(message).__name__, "is sent by the server only")
        await self._send_frame(encode(message))

    async def _send_frame(self, frame: bytes) -> None:
        while True:
            if self._end is not None or self._closing:
                raise ConnectionClosed(str(self._end or "the client is closed"), clean=True)
            writer = self._writer
            if writer is not None and not writer.is_closing():
                break
            await self._connected.wait()
        writer.write(frame)
        self._last_send = asyncio.get_running_loop().time()
        try:
            async with self._send_lock:  # Python before 3.10 allows one drain() at a time
                await writer.drain()
        except OSError as e:
            raise ConnectionClosed(f"the connection was lost: {e}") from e

    async def _beat(self) -> None:
        # Sends the heartbeat when nothing else was sent for a whole interval.
        loop = asyncio.get_running_loop()
        assert self._heartbeat_frame is not None
        while self.heartbeat_interval > 0:  # setting it to 0 stops the heartbeat
            idle = loop.time() - self._last_send
            if idle >= self.heartbeat_interval and self.connected:
                try:
                    await self._send_frame(self._heartbeat_frame)
                except ConnectionError:
                    pass  # the receiving side sees the loss
                idle = 0.0
            await asyncio.sleep(max(self.heartbeat_interval - idle, 0.01))

    # -- receiving ------------------------------------------------------------------------------

    def on(self, message_type: type[_M], callback: Callable[[_M], Any] | None = None) -> Any:
        """Calls callback(message) for each message of that class; a coroutine is awaited
        before the next frame is read. Usable as a decorator: \`\`@client.on(Pong)\`\`."""
        def register(cb: Callable[[_M], Any]) -> Callable[[_M], Any]:
            self._handlers.setdefault(message_type, []).append(cb)
            return cb

        return register(callback) if callback is not None else register

    def off(self, message_type: type[Message], callback: Callable[..., Any]) -> None:
        """Removes a callback registered with :meth:\`on\`."""
        self._handlers.get(message_type, []).remove(callback)

    def on_decode_error(self, callback: Callable[[DecodeError], Any]) -> None:
        """Calls callback(error) for each frame that does not decode, instead of raising it
        from receive() and async for."""
        self._decode_error_handlers.append(callback)

    def on_reconnect(self, callback: Callable[[], Any]) -> None:
        """Calls callback() (awaited if a coroutine) after each reconnect: log in again there."""
        self._reconnect_handlers.append(callback)

    async def receive(self) -> Message:
        """The next message without a callback. Raises DecodeError for a frame that does
        not decode (the next call goes on with the next frame) and ConnectionClosed at the end."""
        item = await self._inbox.get()
        if item is _END:
            self._inbox.put_nowait(_END)  # for every other receiver
            raise self._end or ConnectionClosed("the client is closed", clean=True)
        self._room.release()
        if isinstance(item, DecodeError):
            raise item
        return item

    def __aiter__(self) -> ${client}:
        return self

    async def __anext__(self) -> Message:
        try:
            return await self.receive()
        except ConnectionClosed:
            if self._end is not None and self._end.clean:
                raise StopAsyncIteration from None
            raise

    async def _run(self, reader: asyncio.StreamReader) -> None:
        while True:
            end = await self._read(reader)
            writer, self._writer = self._writer, None
            self._connected.clear()
            if writer is not None:
                writer.close()
            if self._closing or not self.reconnect:
                self._finish(end)
                return
            reader = await self._reconnect()
            for callback in self._reconnect_handlers:
                await self._call(callback)

    async def _reconnect(self) -> asyncio.StreamReader:
        delay = self.reconnect_delay
        while True:
            await asyncio.sleep(delay)
            try:
                return await self._open()
            except ConnectError:
                delay = min(delay * 2, self.reconnect_max_delay)

    async def _read(self, reader: asyncio.StreamReader) -> ConnectionClosed:
        """Reads frames until the connection ends; returns why it ended."""
        while True:
            try:
                header = await reader.readexactly(${FRAME_HEADER})
                length, type_id = struct.unpack("<IH", header)
                if length < 2 or length + 4 > MAX_FRAME:
                    await self._deliver(DecodeError(f"a frame length of {length} is outside 2..{MAX_FRAME - 4}: the stream cannot be read on"))
                    return ConnectionClosed("closed after a bad frame length")
                payload = await reader.readexactly(length - 2)
            except asyncio.IncompleteReadError as e:
                if e.partial:
                    return ConnectionClosed("the server closed the connection within a frame")
                return ConnectionClosed("the server closed the connection", clean=True)
            except OSError as e:
                return ConnectionClosed(f"the connection was lost: {e}")
            try:
                message: Any = decode_payload(type_id, payload)
            except DecodeError as e:
                message = e
            await self._deliver(message)

    async def _deliver(self, item: Message | DecodeError) -> None:
        handlers = self._decode_error_handlers if isinstance(item, DecodeError) else self._handlers.get(type(item))
        if handlers:
            for callback in list(handlers):
                await self._call(callback, item)
            return
        await self._room.acquire()  # a full inbox stops reading: the server sees backpressure
        self._inbox.put_nowait(item)

    async def _call(self, callback: Callable[..., Any], *args: Any) -> None:
        # A callback's exception is reported like an unhandled task's; receiving goes on.
        try:
            result = callback(*args)
            if inspect.isawaitable(result):
                await result
        except Exception as e:
            asyncio.get_running_loop().call_exception_handler({"message": f"{callback!r} raised", "exception": e})

    def _finish(self, end: ConnectionClosed | None) -> None:
        if self._end is None and hasattr(self, "_inbox"):
            self._end = end or ConnectionClosed("the client is closed", clean=True)
            self._connected.set()  # wakes senders waiting for a reconnect: they raise
            self._inbox.put_nowait(_END)


class _Connecting:
    """What connect() returns: await it for a client, or use it in async with."""

    def __init__(self, client: ${client}) -> None:
        self._client = client

    def __await__(self) -> Any:
        return self._client.connect().__await__()

    async def __aenter__(self) -> ${client}:
        return await self._client.connect()

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.close()


def connect(
    host: str = "127.0.0.1",
    port: int = ${spec.server.port},
    *,
    heartbeat: Message | None = DEFAULT_HEARTBEAT,
    heartbeat_interval: float = HEARTBEAT_INTERVAL,
    reconnect: bool = False,
    reconnect_delay: float = 0.5,
    reconnect_max_delay: float = 30.0,
    connect_timeout: float | None = 10.0,
    queue_size: int = 1024,
) -> _Connecting:
    """Connects to a ${spec.name} server: \`\`client = await connect(host, port)\`\` or
    \`\`async with connect(host, port) as client:\`\`.

    heartbeat is sent when nothing else was sent for heartbeat_interval seconds (None or 0:
    never). With reconnect, a lost connection is opened again after reconnect_delay seconds,
    doubling up to reconnect_max_delay; the first connect is not retried.
    """
    return _Connecting(
        ${client}(
            host,
            port,
            heartbeat=heartbeat,
            heartbeat_interval=heartbeat_interval,
            reconnect=reconnect,
            reconnect_delay=reconnect_delay,
            reconnect_max_delay=reconnect_max_delay,
            connect_timeout=connect_timeout,
            queue_size=queue_size,
        )
    )
`
}

export function pythonClient(spec: Spec, header: string): ClientOutput {
  const names = pythonNames(spec)
  const c: Context = {names, enums: new Map(spec.enums.map((e) => [e.name, e]))}
  const heartbeat = defaultHeartbeat(spec)
  const beat = heartbeat ? names.types.get(heartbeat.name)! : undefined
  const interval = spec.server.heartbeatMs / 1000

  const out: string[] = [
    header.replace(/^\/\/ ?/, '# '),
    `"""Client for the ${spec.name} protocol, version ${spec.version}${spec.description ? `: ${doc(spec.description)}` : '.'}`,
    '',
    'Messages and structs are dataclasses, enums IntEnums; encode() and decode() are the wire',
    `format, connect() opens an asyncio ${names.client}. Standard library only, Python 3.8+.`,
    '"""',
    'from __future__ import annotations',
    '',
    'import asyncio',
    'import inspect',
    'import struct',
    'from dataclasses import dataclass, field',
    'from enum import IntEnum',
    'from typing import Any, Awaitable, Callable, TypeVar',
    '',
    `SPEC_NAME = ${pyString(spec.name)}`,
    `SPEC_VERSION = ${pyString(spec.version)}`,
    `MAX_FRAME = ${spec.maxFrame}`,
    '"""The largest frame in bytes, header included (the spec\'s framing.maxFrame)."""',
    `FRAME_HEADER = ${FRAME_HEADER}`,
    `HEARTBEAT_INTERVAL = ${Number.isInteger(interval) ? `${interval}.0` : interval}`,
    `"""Seconds between heartbeats (the spec's server.heartbeat)${interval ? '' : '; 0: the spec sets none'}."""`,
    runtimeCode(),
  ]

  for (const e of spec.enums) {
    const members = names.values.get(e.name)!
    out.push('', `class ${names.types.get(e.name)!}(IntEnum):`, `    """On the wire as ${e.base}."""`, '')
    for (const v of e.values) out.push(`    ${members.get(v.name)!} = ${v.value}`)
    out.push('')
  }
  for (const s of structOrder(spec)) out.push('', ...classOf(s.name, s.fields, c, `Struct ${s.name}.`), '')
  for (const m of spec.messages) out.push('', ...classOf(m.name, m.fields, c, `Message ${m.name}, type id ${m.id}. ${DIRECTION_TEXT[m.direction]}`, m.id), '')

  out.push(
    '',
    `DEFAULT_HEARTBEAT: Message | None = ${beat ? `${beat}()` : 'None'}`,
    beat
      ? `"""What the client sends as its heartbeat unless told otherwise: the spec's one ${beat} message."""`
      : '"""None: the spec has no one message named Heartbeat, Ping or KeepAlive that clients send."""',
    '',
  )
  for (const s of spec.structs) out.push('', ...codecOf(s.name, s.fields, c, false), '')
  for (const m of spec.messages) out.push('', ...codecOf(m.name, m.fields, c, true), '')
  out.push(codecRegistry(spec, c), clientCode(names.client, spec))

  const code = `${out.join('\n').replace(/\n{3,}/g, '\n\n\n').trimEnd()}\n`
  const sample = spec.messages.find((m) => m.direction !== 'server-to-client')
  return {
    files: [{path: `clients/python/${names.module}.py`, content: code}],
    view: {
      pythonFile: `${names.module}.py`,
      pythonModule: names.module,
      pythonClient: names.client,
      pythonSendType: sample ? names.types.get(sample.name)! : '',
      pythonSend: sample ? `${names.types.get(sample.name)!}()` : '',
      pythonHeartbeat: beat ?? '',
    },
  }
}
