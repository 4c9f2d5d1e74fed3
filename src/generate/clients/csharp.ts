// Emits clients/csharp: a netstandard2.0 client with synchronous and async APIs, in one file a
// Unity project can take as it is, and a project file for dotnet. The wire format is docs/spec.md's,
// field for field as typescript.ts writes it; the C# is kept to what C# 7.2 (mcs) compiles.
import type {EnumDef, Field, Message, Spec, TypeRef} from '../../spec/model.js'
import {FRAME_HEADER} from '../../spec/model.js'
import {prefixSize} from '../../spec/wire.js'
import type {ClientOutput} from './index.js'

// ---------------------------------------------------------------------------------------------
// Names. A spec name is an ASCII identifier ([A-Za-z_][A-Za-z0-9_]*). Types, fields and enum
// values take it with the first letter upper-cased; a name that would clash gets "_" appended
// until it does not; "@" escapes a member that is still a C# keyword. No C# keyword starts with
// an upper case letter, so only names starting with "_" can still be one (__arglist and its kind).

const KEYWORDS = new Set(['__arglist', '__makeref', '__reftype', '__refvalue'])

/** Members every class has from object: a field of that name would hide one. */
const OBJECT_MEMBERS = ['Equals', 'GetHashCode', 'GetType', 'ToString', 'MemberwiseClone', 'Finalize', 'ReferenceEquals']

const upperFirst = (name: string): string => name.charAt(0).toUpperCase() + name.slice(1)
const escape = (name: string): string => (KEYWORDS.has(name) ? `@${name}` : name)

/** The first of name, name_, name__, ... that is not taken; it is then taken. */
function claim(name: string, taken: Set<string>): string {
  let n = name
  while (taken.has(n)) n += '_'
  taken.add(n)
  return n
}

/** kitchen-sink -> KitchenSink */
export const pascalSpecName = (name: string): string => name.split('-').map(upperFirst).join('')

export interface CsharpNames {
  /** The spec's name in PascalCase: the file names and the client's and codec's class names start with it. */
  pascal: string
  namespace: string
  client: string
  codec: string
  /** Spec type name (message, struct, enum) -> C# type name. */
  types: Map<string, string>
  /** Spec type name -> (spec field name -> C# member name). */
  fields: Map<string, Map<string, string>>
  /** Enum name -> (spec value name -> C# member name). */
  values: Map<string, Map<string, string>>
  /** The codec's private nested types, renamed away from the spec's types. */
  writer: string
  reader: string
  floatBits: string
}

export function csharpNames(spec: Spec): CsharpNames {
  const pascal = pascalSpecName(spec.name)
  const client = `${pascal}Client`
  const codec = `${pascal}Codec`
  // The client's own types keep their names; a spec type clashing with one yields. So does a
  // type named like a keyword: Write<Type> and Read<Type> could not take an "@".
  const taken = new Set(['IMessage', 'EncodeException', 'DecodeException', client, codec, 'TypeId', ...KEYWORDS])
  const types = new Map<string, string>()
  for (const t of [...spec.enums, ...spec.structs, ...spec.messages]) types.set(t.name, claim(upperFirst(t.name), taken))

  const fields = new Map<string, Map<string, string>>()
  const members = (owner: string, fs: readonly Field[], isMessage: boolean) => {
    const used = new Set([types.get(owner)!, ...OBJECT_MEMBERS, ...(isMessage ? ['TypeId'] : [])])
    fields.set(owner, new Map(fs.map((f) => [f.name, escape(claim(upperFirst(f.name), used))])))
  }
  for (const s of spec.structs) members(s.name, s.fields, false)
  for (const m of spec.messages) members(m.name, m.fields, true)

  const values = new Map<string, Map<string, string>>()
  for (const e of spec.enums) {
    const used = new Set<string>()
    values.set(e.name, new Map(e.values.map((v) => [v.name, escape(claim(upperFirst(v.name), used))])))
  }

  const typeNames = new Set(types.values())
  let namespace = pascal
  if (typeNames.has(namespace)) namespace = claim(`${pascal}Protocol`, new Set(typeNames))
  const nested = (name: string) => claim(name, new Set(typeNames))
  return {pascal, namespace, client, codec, types, fields, values, writer: nested('Writer'), reader: nested('Reader'), floatBits: nested('FloatBits')}
}

// ---------------------------------------------------------------------------------------------
// Types.

const PRIMITIVE_CS: Record<string, string> = {
  u8: 'byte', u16: 'ushort', u32: 'uint', u64: 'ulong', i8: 'sbyte', i16: 'short', i32: 'int', i64: 'long', f32: 'float', f64: 'double', bool: 'bool',
}
/** The Writer's and Reader's method for each primitive. */
const PRIMITIVE_OP: Record<string, string> = {
  u8: 'U8', u16: 'U16', u32: 'U32', u64: 'U64', i8: 'I8', i16: 'I16', i32: 'I32', i64: 'I64', f32: 'F32', f64: 'F64', bool: 'Bool',
}

/** u8[N] is byte[] on the wire as in C#: a count prefix and the bytes, the same as bytes<N>. */
const isByteArray = (t: TypeRef): boolean => t.kind === 'array' && t.of.kind === 'primitive' && t.of.name === 'u8'

interface Context {
  names: CsharpNames
  enums: Map<string, EnumDef>
}

function csType(t: TypeRef, c: Context): string {
  switch (t.kind) {
    case 'primitive':
      return PRIMITIVE_CS[t.name]!
    case 'string':
      return 'string'
    case 'bytes':
      return 'byte[]'
    case 'named':
      return c.names.types.get(t.name)!
    case 'array':
      return `${csType(t.of, c)}[]`
  }
}

/** `new T[n]` for an element type that may itself be an array: new ushort[n][] for ushort[]. */
function newArray(elementType: string, n: string): string {
  const bracket = elementType.indexOf('[')
  return bracket < 0 ? `new ${elementType}[${n}]` : `new ${elementType.slice(0, bracket)}[${n}]${elementType.slice(bracket)}`
}

/** A field's initial value, so a new message can be sent as it is; undefined: C#'s default will do. */
function initialValue(t: TypeRef, c: Context, clashes: (name: string) => boolean): string | undefined {
  switch (t.kind) {
    case 'primitive':
      return undefined
    case 'string':
      return '""'
    case 'bytes':
      return 'new byte[0]'
    case 'array':
      return newArray(csType(t.of, c), '0')
    case 'named': {
      const type = c.names.types.get(t.name)!
      const e = c.enums.get(t.name)
      if (!e) return `new ${type}()`
      // An enum whose values do not include 0 starts at its first value, which encodes.
      if (e.values.some((v) => v.value === 0)) return undefined
      const member = c.names.values.get(e.name)!.get(e.values[0]!.name)!
      return `${clashes(type) ? `global::${c.names.namespace}.` : ''}${type}.${member}`
    }
  }
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

const DIRECTION_TEXT: Record<Message['direction'], string> = {
  'client-to-server': 'sent by clients',
  'server-to-client': 'sent by the server',
  both: 'sent both ways',
}

// ---------------------------------------------------------------------------------------------
// The codec's statements. Field names in errors are Class.Member, with [] for an array's element.

function writeExpr(t: TypeRef, value: string, field: string, c: Context, w: string, depth: number): string {
  switch (t.kind) {
    case 'primitive':
      return `${w}.${PRIMITIVE_OP[t.name]}(${value})`
    case 'string':
      return `${w}.String(${value}, ${t.max}, ${prefixSize(t.max)}, "${field}")`
    case 'bytes':
      return `${w}.Bytes(${value}, ${t.max}, ${prefixSize(t.max)}, "${field}")`
    case 'named':
      return `Write${c.names.types.get(t.name)!}(${w}, ${value}, "${field}")`
    case 'array': {
      if (isByteArray(t)) return `${w}.Bytes(${value}, ${t.max}, ${prefixSize(t.max)}, "${field}")`
      const [wn, vn] = [`w${depth}`, `v${depth}`]
      return `${w}.Array(${value}, ${t.max}, ${prefixSize(t.max)}, "${field}", (${wn}, ${vn}) => ${writeExpr(t.of, vn, `${field}[]`, c, wn, depth + 1)})`
    }
  }
}

function readExpr(t: TypeRef, field: string, c: Context, r: string, depth: number): string {
  switch (t.kind) {
    case 'primitive':
      return t.name === 'bool' ? `${r}.Bool("${field}")` : `${r}.${PRIMITIVE_OP[t.name]}()`
    case 'string':
      return `${r}.String(${t.max}, ${prefixSize(t.max)}, "${field}")`
    case 'bytes':
      return `${r}.Bytes(${t.max}, ${prefixSize(t.max)}, "${field}")`
    case 'named': {
      const type = c.names.types.get(t.name)!
      return c.enums.has(t.name) ? `Read${type}(${r}, "${field}")` : `Read${type}(${r})`
    }
    case 'array': {
      if (isByteArray(t)) return `${r}.Bytes(${t.max}, ${prefixSize(t.max)}, "${field}")`
      const rn = `r${depth}`
      return `${r}.Array(${t.max}, ${prefixSize(t.max)}, "${field}", ${rn} => ${readExpr(t.of, `${field}[]`, c, rn, depth + 1)})`
    }
  }
}

const ind = (n: number) => ' '.repeat(n)

/** Write<T> and Read<T> for a message (m) or a struct (s, checked for null: it is a field). */
function codecMethods(owner: string, fs: readonly Field[], isMessage: boolean, c: Context): string[] {
  const {names} = c
  const type = names.types.get(owner)!
  const member = names.fields.get(owner)!
  const v = isMessage ? 'm' : 's'
  const W = names.writer
  const R = names.reader
  const fieldName = (f: Field) => `${type}.${member.get(f.name)!.replace(/^@/, '')}`
  return [
    `        private static void Write${type}(${W} w, ${type} ${v}${isMessage ? '' : ', string field'})`,
    '        {',
    ...(isMessage ? [] : [`            if (s == null) throw w.Error(field, "is null");`]),
    ...fs.map((f) => `            ${writeExpr(f.type, `${v}.${member.get(f.name)!}`, fieldName(f), c, 'w', 1)};`),
    '        }',
    '',
    `        private static ${type} Read${type}(${R} r)`,
    '        {',
    ...(fs.length
      ? [
          `            var ${v} = new ${type}();`,
          ...fs.map((f) => `            ${v}.${member.get(f.name)!} = ${readExpr(f.type, fieldName(f), c, 'r', 1)};`),
          `            return ${v};`,
        ]
      : [`            return new ${type}();`]),
    '        }',
  ]
}

const ENUM_CS: Record<EnumDef['base'], string> = {u8: 'byte', u16: 'ushort', u32: 'uint', i8: 'sbyte', i16: 'short', i32: 'int'}

/** Case labels, several to a line. */
function caseLabels(values: readonly number[], indent: number): string[] {
  const lines: string[] = []
  for (let i = 0; i < values.length; i += 8) lines.push(ind(indent) + values.slice(i, i + 8).map((v) => `case ${v}:`).join(' '))
  return lines
}

function enumMethods(e: EnumDef, c: Context): string[] {
  const type = c.names.types.get(e.name)!
  const base = ENUM_CS[e.base]
  const op = PRIMITIVE_OP[e.base]
  const values = e.values.map((v) => v.value)
  return [
    `        private static void Write${type}(${c.names.writer} w, ${type} value, string field)`,
    '        {',
    `            switch ((${base})value)`,
    '            {',
    ...caseLabels(values, 16),
    `                    w.${op}((${base})value);`,
    '                    return;',
    '                default:',
    `                    throw w.Error(field, "is " + (${base})value + ", not a value of ${type}");`,
    '            }',
    '        }',
    '',
    `        private static ${type} Read${type}(${c.names.reader} r, string field)`,
    '        {',
    `            var value = r.${op}();`,
    '            switch (value)',
    '            {',
    ...caseLabels(values, 16),
    `                    return (${type})value;`,
    '                default:',
    `                    throw r.Error(field, "is " + value + ", not a value of ${type}");`,
    '            }',
    '        }',
  ]
}

function idSwitch(ids: number[], fallback: boolean): string[] {
  if (ids.length === 0) return [`            return ${fallback};`]
  return ['            switch (typeId)', '            {', ...caseLabels(ids, 16), `                    return ${!fallback};`, '                default:', `                    return ${fallback};`, '            }']
}

// ---------------------------------------------------------------------------------------------
// Framework types the codec and the client name. They are brought in by using directives inside
// the namespace, so a type of the same name in the user's project (Unity scripts often live in
// the global namespace) does not hide them; a spec type of the same name would, so there each
// is written out in full instead.

const FRAMEWORK: Record<string, string> = {
  Action: 'System.Action',
  AggregateException: 'System.AggregateException',
  ArgumentException: 'System.ArgumentException',
  ArgumentNullException: 'System.ArgumentNullException',
  ArgumentOutOfRangeException: 'System.ArgumentOutOfRangeException',
  BitConverter: 'System.BitConverter',
  Buffer: 'System.Buffer',
  CancellationToken: 'System.Threading.CancellationToken',
  CancellationTokenSource: 'System.Threading.CancellationTokenSource',
  DecoderFallbackException: 'System.Text.DecoderFallbackException',
  Delegate: 'System.Delegate',
  Dictionary: 'System.Collections.Generic.Dictionary',
  EncoderFallbackException: 'System.Text.EncoderFallbackException',
  EndOfStreamException: 'System.IO.EndOfStreamException',
  Exception: 'System.Exception',
  FieldOffset: 'System.Runtime.InteropServices.FieldOffsetAttribute',
  Func: 'System.Func',
  IDisposable: 'System.IDisposable',
  IOException: 'System.IO.IOException',
  Interlocked: 'System.Threading.Interlocked',
  InvalidOperationException: 'System.InvalidOperationException',
  LayoutKind: 'System.Runtime.InteropServices.LayoutKind',
  Math: 'System.Math',
  NetworkStream: 'System.Net.Sockets.NetworkStream',
  ObjectDisposedException: 'System.ObjectDisposedException',
  OperationCanceledException: 'System.OperationCanceledException',
  SelectMode: 'System.Net.Sockets.SelectMode',
  SemaphoreSlim: 'System.Threading.SemaphoreSlim',
  Socket: 'System.Net.Sockets.Socket',
  Stopwatch: 'System.Diagnostics.Stopwatch',
  StructLayout: 'System.Runtime.InteropServices.StructLayoutAttribute',
  Task: 'System.Threading.Tasks.Task',
  TaskCompletionSource: 'System.Threading.Tasks.TaskCompletionSource',
  TcpClient: 'System.Net.Sockets.TcpClient',
  TimeSpan: 'System.TimeSpan',
  Timeout: 'System.Threading.Timeout',
  TimeoutException: 'System.TimeoutException',
  Timer: 'System.Threading.Timer',
  Type: 'System.Type',
  UTF8Encoding: 'System.Text.UTF8Encoding',
}

const USINGS = [
  'System',
  'System.Collections.Generic',
  'System.Diagnostics',
  'System.IO',
  'System.Net.Sockets',
  'System.Runtime.InteropServices',
  'System.Text',
  'System.Threading',
  'System.Threading.Tasks',
]

// In the codec and the client, spec type names are wrapped in these marks until qualify has run,
// so that only the framework's names are written out in full.
const MARK_OPEN = '\u0001'
const MARK_CLOSE = '\u0002'

/** Writes out in full each framework name a spec type hides, then drops the marks. */
function qualify(code: string, typeNames: ReadonlySet<string>): string {
  let out = code
  for (const [short, full] of Object.entries(FRAMEWORK)) {
    if (typeNames.has(short)) out = out.replace(new RegExp(`(?<![\\w.@${MARK_OPEN}])${short}(?!\\w)`, 'g'), `global::${full}`)
  }
  return out.replace(new RegExp(`[${MARK_OPEN}${MARK_CLOSE}]`, 'g'), '')
}

// ---------------------------------------------------------------------------------------------
// The emitter.

/** The one client-sendable message named Heartbeat, Ping or KeepAlive (any case), if exactly one is. */
export function defaultHeartbeat(spec: Spec): Message | undefined {
  const found = spec.messages.filter((m) => m.direction !== 'server-to-client' && ['heartbeat', 'ping', 'keepalive'].includes(m.name.toLowerCase()))
  return found.length === 1 ? found[0] : undefined
}

function dataTypes(spec: Spec, c: Context): string[] {
  const {names} = c
  const out: string[] = []
  for (const e of spec.enums) {
    const member = names.values.get(e.name)!
    out.push(
      `    /// <summary>The ${xml(e.name)} enum (${e.base} on the wire).</summary>`,
      `    public enum ${names.types.get(e.name)!} : ${ENUM_CS[e.base]}`,
      '    {',
      ...e.values.map((v) => `        ${member.get(v.name)!} = ${v.value},`),
      '    }',
      '',
    )
  }
  const classOf = (owner: string, fs: readonly Field[], message?: Message) => {
    const type = names.types.get(owner)!
    const member = names.fields.get(owner)!
    // A member named like the enum but of another type hides it (one of the same type does not).
    const memberTypes = new Map(fs.map((f) => [member.get(f.name)!, csType(f.type, c)]))
    const clashes = (n: string) => memberTypes.has(n) && memberTypes.get(n) !== n
    out.push(
      message
        ? `    /// <summary>Message ${message.id}, ${DIRECTION_TEXT[message.direction]}.</summary>`
        : `    /// <summary>The ${xml(owner)} struct.</summary>`,
      `    public sealed partial class ${type}${message ? ' : IMessage' : ''}`,
      '    {',
    )
    if (message) out.push('        /// <summary>The type id on the wire.</summary>', `        public const ushort TypeId = ${message.id};`, ...(fs.length ? [''] : []))
    for (const f of fs) {
      const init = initialValue(f.type, c, clashes)
      out.push(`        /// <summary>${xml(f.name)}: ${xml(f.typeText)}</summary>`, `        public ${csType(f.type, c)} ${member.get(f.name)!}${init ? ` = ${init}` : ''};`)
    }
    if (message) out.push('', '        ushort IMessage.TypeId { get { return TypeId; } }')
    out.push('    }', '')
  }
  for (const s of spec.structs) classOf(s.name, s.fields)
  for (const m of spec.messages) classOf(m.name, m.fields, m)
  return out
}

function codecClass(spec: Spec, c: Context): string[] {
  const {names} = c
  const {writer: W, reader: R, floatBits: FB} = names
  const type = (m: Message) => names.types.get(m.name)!
  const decode = spec.messages.length
    ? [
        `            ${R} r;`,
        '            IMessage m;',
        '            switch (typeId)',
        '            {',
        ...spec.messages.flatMap((m) => [`                case ${m.id}:`, `                    r = new ${R}("${type(m)}", buffer, offset, count);`, `                    m = Read${type(m)}(r);`, '                    break;']),
        '                default:',
        '                    throw new DecodeException(null, null, "type id " + typeId + " is not a message of this protocol");',
        '            }',
        '            r.End();',
        '            return m;',
      ]
    : ['            throw new DecodeException(null, null, "type id " + typeId + " is not a message of this protocol");']
  const encode = spec.messages.length
    ? [
        `            ${W} w;`,
        '            switch (message.TypeId)',
        '            {',
        ...spec.messages.flatMap((m) => [`                case ${m.id}:`, `                    w = new ${W}("${type(m)}");`, `                    Write${type(m)}(w, (${type(m)})message);`, '                    break;']),
        '                default:',
        '                    throw new ArgumentException("type id " + message.TypeId + " is not a message of this protocol", nameof(message));',
        '            }',
        '            length = w.Finish(message.TypeId);',
        '            return w.Data;',
      ]
    : ['            throw new ArgumentException("type id " + message.TypeId + " is not a message of this protocol", nameof(message));']
  const clientIds = spec.messages.filter((m) => m.direction !== 'server-to-client').map((m) => m.id)
  const serverIds = spec.messages.filter((m) => m.direction !== 'client-to-server').map((m) => m.id)

  const perType = [
    ...spec.enums.map((e) => enumMethods(e, c)),
    ...spec.structs.map((s) => codecMethods(s.name, s.fields, false, c)),
    ...spec.messages.map((m) => codecMethods(m.name, m.fields, true, c)),
  ].flatMap((lines) => [...lines, ''])

  return `    /// <summary>
    /// The wire format of the protocol (iocpgen's docs/spec.md): each frame is a u32 length, a u16
    /// type id and the payload, little-endian. For a transport of your own; the client uses it.
    /// </summary>
    public static class ${names.codec}
    {
        /// <summary>The largest whole frame, header included (the spec's framing.maxFrame).</summary>
        public const int MaxFrame = ${spec.maxFrame};

        /// <summary>Bytes before the payload: the u32 length and the u16 type id.</summary>
        public const int HeaderSize = ${FRAME_HEADER};

        // Strict both ways: a lone surrogate is refused at encode, invalid UTF-8 at decode.
        private static readonly UTF8Encoding Utf8 = new UTF8Encoding(false, true);

        /// <summary>Encodes a message as a whole frame, header included.</summary>
        /// <exception cref="EncodeException">A field is null, over its bound, or not a value of its enum.</exception>
        public static byte[] Encode(IMessage message)
        {
            int length;
            var buffer = EncodeFrame(message, out length);
            var frame = new byte[length];
            Buffer.BlockCopy(buffer, 0, frame, 0, length);
            return frame;
        }

        /// <summary>Decodes the payload of a frame (the bytes after its header) whose type id is typeId.</summary>
        /// <exception cref="DecodeException">The payload is not a valid message of that type.</exception>
        public static IMessage Decode(ushort typeId, byte[] buffer, int offset, int count)
        {
            if (buffer == null) throw new ArgumentNullException(nameof(buffer));
            if (offset < 0 || offset > buffer.Length) throw new ArgumentOutOfRangeException(nameof(offset));
            if (count < 0 || count > buffer.Length - offset) throw new ArgumentOutOfRangeException(nameof(count));
${decode.join('\n')}
        }

        /// <summary>Whether clients may send messages of this type id.</summary>
        public static bool IsSentByClient(ushort typeId)
        {
${idSwitch(clientIds, false).join('\n')}
        }

        /// <summary>Whether the server may send messages of this type id.</summary>
        public static bool IsSentByServer(ushort typeId)
        {
${idSwitch(serverIds, false).join('\n')}
        }

        /// <summary>Encodes a frame into a buffer that may be longer than the frame's length.</summary>
        internal static byte[] EncodeFrame(IMessage message, out int length)
        {
            if (message == null) throw new ArgumentNullException(nameof(message));
${encode.join('\n')}
        }

${perType.join('\n')}        private sealed class ${W}
        {
            public readonly string Message;
            public byte[] Data = new byte[256];
            public int Length = HeaderSize;

            public ${W}(string message)
            {
                Message = message;
            }

            public void U8(byte value)
            {
                Reserve(1);
                Data[Length++] = value;
            }

            public void U16(ushort value)
            {
                Reserve(2);
                Data[Length] = unchecked((byte)value);
                Data[Length + 1] = unchecked((byte)(value >> 8));
                Length += 2;
            }

            public void U32(uint value)
            {
                Reserve(4);
                Data[Length] = unchecked((byte)value);
                Data[Length + 1] = unchecked((byte)(value >> 8));
                Data[Length + 2] = unchecked((byte)(value >> 16));
                Data[Length + 3] = unchecked((byte)(value >> 24));
                Length += 4;
            }

            public void U64(ulong value)
            {
                U32(unchecked((uint)value));
                U32(unchecked((uint)(value >> 32)));
            }

            public void I8(sbyte value) { U8(unchecked((byte)value)); }
            public void I16(short value) { U16(unchecked((ushort)value)); }
            public void I32(int value) { U32(unchecked((uint)value)); }
            public void I64(long value) { U64(unchecked((ulong)value)); }
            public void F32(float value) { U32(new ${FB} { Float = value }.Bits); }
            public void F64(double value) { I64(BitConverter.DoubleToInt64Bits(value)); }
            public void Bool(bool value) { U8(value ? (byte)1 : (byte)0); }

            public void String(string value, int max, int prefix, string field)
            {
                if (value == null) throw Error(field, "is null");
                int count;
                try
                {
                    count = Utf8.GetByteCount(value);
                }
                catch (EncoderFallbackException)
                {
                    throw Error(field, "is not valid UTF-16 (it holds a lone surrogate)");
                }
                if (count > max) throw Error(field, "is " + count + " UTF-8 bytes, over its bound of " + max);
                Prefix(count, prefix);
                Reserve(count);
                Length += Utf8.GetBytes(value, 0, value.Length, Data, Length);
            }

            public void Bytes(byte[] value, int max, int prefix, string field)
            {
                if (value == null) throw Error(field, "is null");
                if (value.Length > max) throw Error(field, "is " + value.Length + " bytes, over its bound of " + max);
                Prefix(value.Length, prefix);
                Reserve(value.Length);
                Buffer.BlockCopy(value, 0, Data, Length, value.Length);
                Length += value.Length;
            }

            public void Array<T>(T[] items, int max, int prefix, string field, Action<${W}, T> write)
            {
                if (items == null) throw Error(field, "is null");
                if (items.Length > max) throw Error(field, "has " + items.Length + " elements, over its bound of " + max);
                Prefix(items.Length, prefix);
                foreach (var item in items) write(this, item);
            }

            /// <summary>Writes the header in front of the payload; returns the frame's length.</summary>
            public int Finish(ushort typeId)
            {
                var length = Length;
                Length = 0;
                U32(unchecked((uint)(length - 4)));
                U16(typeId);
                Length = length;
                return length;
            }

            public EncodeException Error(string field, string reason)
            {
                return new EncodeException(Message, field, reason);
            }

            private void Prefix(int count, int size)
            {
                if (size == 2) U16(unchecked((ushort)count));
                else U32(unchecked((uint)count));
            }

            private void Reserve(int count)
            {
                if (Length + count <= Data.Length) return;
                var grown = new byte[Math.Max(Data.Length * 2, Length + count)];
                Buffer.BlockCopy(Data, 0, grown, 0, Length);
                Data = grown;
            }
        }

        private sealed class ${R}
        {
            private readonly string message;
            private readonly byte[] data;
            private readonly int start;
            private readonly int end;
            private int position;

            public ${R}(string message, byte[] data, int offset, int count)
            {
                this.message = message;
                this.data = data;
                start = offset;
                end = offset + count;
                position = offset;
            }

            public byte U8()
            {
                Need(1);
                return data[position++];
            }

            public ushort U16()
            {
                Need(2);
                var value = (ushort)(data[position] | data[position + 1] << 8);
                position += 2;
                return value;
            }

            public uint U32()
            {
                Need(4);
                var value = unchecked((uint)(data[position] | data[position + 1] << 8 | data[position + 2] << 16 | data[position + 3] << 24));
                position += 4;
                return value;
            }

            public ulong U64()
            {
                ulong low = U32();
                return low | (ulong)U32() << 32;
            }

            public sbyte I8() { return unchecked((sbyte)U8()); }
            public short I16() { return unchecked((short)U16()); }
            public int I32() { return unchecked((int)U32()); }
            public long I64() { return unchecked((long)U64()); }
            public float F32() { return new ${FB} { Bits = U32() }.Float; }
            public double F64() { return BitConverter.Int64BitsToDouble(I64()); }

            public bool Bool(string field)
            {
                var value = U8();
                if (value > 1) throw Error(field, "is " + value + ", not a bool (0 or 1)");
                return value == 1;
            }

            public string String(int max, int prefix, string field)
            {
                var count = Length(max, prefix, field);
                string value;
                try
                {
                    value = Utf8.GetString(data, position, count);
                }
                catch (DecoderFallbackException)
                {
                    throw Error(field, "is not valid UTF-8");
                }
                position += count;
                return value;
            }

            public byte[] Bytes(int max, int prefix, string field)
            {
                var count = Length(max, prefix, field);
                var value = new byte[count];
                Buffer.BlockCopy(data, position, value, 0, count);
                position += count;
                return value;
            }

            public T[] Array<T>(int max, int prefix, string field, Func<${R}, T> read)
            {
                var count = Prefix(prefix);
                if (count > max) throw Error(field, "has " + count + " elements, over its bound of " + max);
                var items = new T[count];
                for (var i = 0; i < items.Length; i++) items[i] = read(this);
                return items;
            }

            public void End()
            {
                var left = end - position;
                if (left != 0) throw Error(null, (left == 1 ? "1 byte is" : left + " bytes are") + " left over after the last field");
            }

            public DecodeException Error(string field, string reason)
            {
                return new DecodeException(message, field, reason);
            }

            private long Prefix(int size)
            {
                return size == 2 ? U16() : U32();
            }

            // A length prefix, checked against the bound and against what is left.
            private int Length(int max, int prefix, string field)
            {
                var count = Prefix(prefix);
                if (count > max) throw Error(field, "is " + count + " bytes long, over its bound of " + max);
                Need((int)count);
                return (int)count;
            }

            private void Need(int count)
            {
                if (end - position < count) throw Error(null, "the payload ends early: " + count + " more bytes needed at offset " + (position - start) + " of " + (end - start));
            }
        }

        // The bits of a float, whatever the byte order of the host.
        [StructLayout(LayoutKind.Explicit)]
        private struct ${FB}
        {
            [FieldOffset(0)] public float Float;
            [FieldOffset(0)] public uint Bits;
        }
    }
`.split('\n')
}

function exceptions(): string {
  return `    /// <summary>
    /// A message that cannot be sent: a field is null, over its bound, not valid UTF-16 or not a
    /// value of its enum, or the message is one only the server sends. Nothing was sent.
    /// </summary>
    public sealed class EncodeException : Exception
    {
        public EncodeException(string messageName, string field, string reason)
            : base(messageName + ": " + (field == null ? "" : field + " ") + reason)
        {
            MessageName = messageName;
            Field = field;
        }

        /// <summary>The message's class.</summary>
        public string MessageName { get; private set; }

        /// <summary>The field, as Class.Member (Class.Member[] for an element of an array); null when the message as a whole is refused.</summary>
        public string Field { get; private set; }
    }

    /// <summary>A frame that does not decode: a payload not valid for its type, or a type id the server does not send.</summary>
    public sealed class DecodeException : Exception
    {
        public DecodeException(string messageName, string field, string reason)
            : base((messageName == null ? "" : messageName + ": ") + (field == null ? "" : field + " ") + reason)
        {
            MessageName = messageName;
            Field = field;
        }

        /// <summary>The message's class; null when the type id is not one the server sends.</summary>
        public string MessageName { get; private set; }

        /// <summary>The field, as Class.Member; null when the problem is the payload as a whole.</summary>
        public string Field { get; private set; }
    }
`
}

function clientClass(spec: Spec, c: Context): string {
  const {names} = c
  const heartbeat = defaultHeartbeat(spec)
  const interval = spec.server.heartbeatMs
  const beat = heartbeat ? names.types.get(heartbeat.name)! : undefined
  const codec = names.codec
  return `    /// <summary>
    /// A client of the ${xml(spec.name)} protocol over TCP. Connect, Send and Receive block (with
    /// timeouts); ConnectAsync, SendAsync and ReceiveAsync take a CancellationToken. Send may be
    /// called from any thread at once; one Receive runs at a time. A message received goes to
    /// the handlers registered with On and to Received, on the thread that called Receive (with
    /// ReceiveAsync, on the caller's SynchronizationContext: Unity's main thread, say).
    /// </summary>
    public sealed class ${names.client} : IDisposable
    {
        /// <summary>The spec's heartbeat interval${interval ? `, ${interval % 1000 ? `${interval} ms` : `${interval / 1000} s`}` : ': zero, the spec sets none'}.</summary>
        public static readonly TimeSpan SpecHeartbeatInterval = TimeSpan.FromMilliseconds(${interval});

        private readonly object gate = new object();
        private readonly SemaphoreSlim sendLock = new SemaphoreSlim(1, 1);
        private readonly Stopwatch clock = Stopwatch.StartNew();
        private readonly Dictionary<Type, Delegate> handlers = new Dictionary<Type, Delegate>();
        private readonly Dictionary<Type, Action<Delegate, IMessage>> invokers = new Dictionary<Type, Action<Delegate, IMessage>>();
        private TcpClient tcp;
        private Socket socket;
        private NetworkStream stream;
        private bool disposed;
        private long lastSendMs;
        private Timer heartbeatTimer;
        private TimeSpan heartbeatInterval = SpecHeartbeatInterval;
        private IMessage heartbeatMessage;
        private byte[] heartbeatFrame;
        private int heartbeatLength;

        // Received bytes not yet decoded are input[inputStart..inputEnd).
        private byte[] input = new byte[Math.Min(${codec}.MaxFrame, 65536)];
        private int inputStart;
        private int inputEnd;
        private bool ended;
        private Task<int> pendingRead;
        private int receiving;

        /// <summary>A client, not yet connected.${beat ? ` Its heartbeat is a ${xml(beat)} with default fields.` : ''}</summary>
        public ${names.client}()
        {${beat ? `\n            HeartbeatMessage = new ${beat}();` : ''}
        }

        /// <summary>Every message received, after the handlers registered with On for its type.</summary>
        public event Action<IMessage> Received;

        /// <summary>How long Connect and ConnectAsync wait; 10 s unless set.</summary>
        public TimeSpan ConnectTimeout { get; set; } = TimeSpan.FromSeconds(10);

        /// <summary>How long Receive() waits for a message; infinite unless set.</summary>
        public TimeSpan ReceiveTimeout { get; set; } = Timeout.InfiniteTimeSpan;

        /// <summary>Connected, and the server has not closed the connection as far as received data tells.</summary>
        public bool IsConnected
        {
            get { lock (gate) return tcp != null && !ended; }
        }

        /// <summary>
        /// How often the heartbeat is sent when nothing else was: SpecHeartbeatInterval unless set;
        /// zero stops it. It is sent only while HeartbeatMessage is set.
        /// </summary>
        public TimeSpan HeartbeatInterval
        {
            get { lock (gate) return heartbeatInterval; }
            set
            {
                if (value < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(value), "the heartbeat interval may not be negative");
                lock (gate)
                {
                    heartbeatInterval = value;
                    ScheduleHeartbeat();
                }
            }
        }

        /// <summary>
        /// The message sent as the heartbeat, or null for none${beat ? ` (a new ${xml(beat)} unless set)` : ' (the spec names none: set one to send heartbeats)'}.
        /// It is encoded when set: changing it later has no effect until it is set again.
        /// </summary>
        /// <exception cref="EncodeException">The message does not encode, or only the server sends it.</exception>
        public IMessage HeartbeatMessage
        {
            get { lock (gate) return heartbeatMessage; }
            set
            {
                byte[] frame = null;
                var length = 0;
                if (value != null) frame = EncodeForSending(value, out length);
                lock (gate)
                {
                    heartbeatMessage = value;
                    heartbeatFrame = frame;
                    heartbeatLength = length;
                    ScheduleHeartbeat();
                }
            }
        }

        /// <summary>Connects to the server, waiting at most ConnectTimeout.</summary>
        /// <exception cref="TimeoutException">The server did not answer in time.</exception>
        public void Connect(string host, int port)
        {
            var client = NewConnection();
            try
            {
                var connecting = client.BeginConnect(host, port, null, null);
                if (!connecting.AsyncWaitHandle.WaitOne(ConnectTimeout)) throw new TimeoutException("connecting to " + host + ":" + port + " took longer than " + ConnectTimeout);
                client.EndConnect(connecting);
            }
            catch
            {
                client.Dispose();
                throw;
            }
            Connected(client);
        }

        /// <summary>Connects to the server, waiting at most ConnectTimeout.</summary>
        /// <exception cref="TimeoutException">The server did not answer in time.</exception>
        /// <exception cref="OperationCanceledException">cancellationToken was cancelled first.</exception>
        public async Task ConnectAsync(string host, int port, CancellationToken cancellationToken = default(CancellationToken))
        {
            var client = NewConnection();
            try
            {
                using (var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
                {
                    if (ConnectTimeout != Timeout.InfiniteTimeSpan) limit.CancelAfter(ConnectTimeout);
                    // Closing the socket is the one way to abandon a connect under way.
                    using (limit.Token.Register(() => client.Dispose()))
                    {
                        try
                        {
                            await client.ConnectAsync(host, port).ConfigureAwait(false);
                        }
                        catch (Exception) when (limit.IsCancellationRequested)
                        {
                        }
                    }
                    if (limit.IsCancellationRequested)
                    {
                        cancellationToken.ThrowIfCancellationRequested();
                        throw new TimeoutException("connecting to " + host + ":" + port + " took longer than " + ConnectTimeout);
                    }
                }
            }
            catch
            {
                client.Dispose();
                throw;
            }
            Connected(client);
        }

        /// <summary>Sends a message; blocks while another send is under way or the socket's buffer is full.</summary>
        /// <exception cref="EncodeException">The message does not encode, or only the server sends it: nothing was sent.</exception>
        public void Send(IMessage message)
        {
            int length;
            var frame = EncodeForSending(message, out length);
            var output = CurrentStream();
            sendLock.Wait();
            try
            {
                output.Write(frame, 0, length);
                Interlocked.Exchange(ref lastSendMs, clock.ElapsedMilliseconds);
            }
            finally
            {
                sendLock.Release();
            }
        }

        /// <summary>
        /// Sends a message. cancellationToken applies while waiting for another send to finish;
        /// a frame once begun is written whole, so the stream stays in step.
        /// </summary>
        /// <exception cref="EncodeException">The message does not encode, or only the server sends it: nothing was sent.</exception>
        public async Task SendAsync(IMessage message, CancellationToken cancellationToken = default(CancellationToken))
        {
            int length;
            var frame = EncodeForSending(message, out length);
            var output = CurrentStream();
            await sendLock.WaitAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                await output.WriteAsync(frame, 0, length).ConfigureAwait(false);
                Interlocked.Exchange(ref lastSendMs, clock.ElapsedMilliseconds);
            }
            finally
            {
                sendLock.Release();
            }
        }

        /// <summary>The next message, waiting at most ReceiveTimeout; null once the server has closed the connection.</summary>
        /// <exception cref="TimeoutException">No whole message arrived in time; the bytes received so far are kept.</exception>
        /// <exception cref="DecodeException">A frame did not decode; it is skipped, and the next Receive goes on after it.</exception>
        public IMessage Receive()
        {
            return Receive(ReceiveTimeout);
        }

        /// <summary>The next message, waiting at most timeout; null once the server has closed the connection.</summary>
        /// <exception cref="TimeoutException">No whole message arrived in time; the bytes received so far are kept.</exception>
        /// <exception cref="DecodeException">A frame did not decode; it is skipped, and the next Receive goes on after it.</exception>
        public IMessage Receive(TimeSpan timeout)
        {
            IMessage message;
            if (!ReceiveFrame(timeout, out message)) throw new TimeoutException("no message within " + timeout);
            if (message != null) Dispatch(message);
            return message;
        }

        /// <summary>The next message if a whole one has arrived, without waiting (from a game loop's update, say).</summary>
        /// <exception cref="DecodeException">A frame did not decode; it is skipped.</exception>
        public bool TryReceive(out IMessage message)
        {
            if (!ReceiveFrame(TimeSpan.Zero, out message) || message == null) return false;
            Dispatch(message);
            return true;
        }

        /// <summary>The next message; null once the server has closed the connection.</summary>
        /// <exception cref="OperationCanceledException">cancellationToken was cancelled first; the bytes received so far are kept.</exception>
        /// <exception cref="DecodeException">A frame did not decode; it is skipped, and the next receive goes on after it.</exception>
        public async Task<IMessage> ReceiveAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            // No ConfigureAwait(false) here: the handlers run on the caller's context.
            var message = await ReceiveFrameAsync(cancellationToken);
            if (message != null) Dispatch(message);
            return message;
        }

        /// <summary>Receives until the server closes the connection, giving every message to the handlers.</summary>
        public async Task RunAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            while (await ReceiveAsync(cancellationToken) != null)
            {
            }
        }

        /// <summary>Calls handler with every message of type T received.</summary>
        public void On<T>(Action<T> handler) where T : class, IMessage
        {
            if (handler == null) throw new ArgumentNullException(nameof(handler));
            lock (gate)
            {
                Delegate existing;
                handlers.TryGetValue(typeof(T), out existing);
                handlers[typeof(T)] = Delegate.Combine(existing, handler);
                invokers[typeof(T)] = Invoke<T>;
            }
        }

        /// <summary>Removes a handler added with On.</summary>
        public void Off<T>(Action<T> handler) where T : class, IMessage
        {
            lock (gate)
            {
                Delegate existing;
                if (!handlers.TryGetValue(typeof(T), out existing)) return;
                var rest = Delegate.Remove(existing, handler);
                if (rest == null) handlers.Remove(typeof(T));
                else handlers[typeof(T)] = rest;
            }
        }

        /// <summary>Closes the connection. Connect may be called again; handlers stay registered.</summary>
        public void Close()
        {
            TcpClient client;
            lock (gate)
            {
                client = tcp;
                tcp = null;
                socket = null;
                stream = null;
                ScheduleHeartbeat();
            }
            if (client != null) client.Dispose();
        }

        /// <summary>Closes the connection for good.</summary>
        public void Dispose()
        {
            lock (gate) disposed = true;
            Close();
        }

        private static void Invoke<T>(Delegate handler, IMessage message) where T : class, IMessage
        {
            ((Action<T>)handler)((T)message);
        }

        private TcpClient NewConnection()
        {
            lock (gate)
            {
                if (disposed) throw new ObjectDisposedException(GetType().Name);
                if (tcp != null) throw new InvalidOperationException("already connected: Close first");
            }
            // Small frames go out at once rather than waiting to be coalesced.
            return new TcpClient { NoDelay = true };
        }

        private void Connected(TcpClient client)
        {
            lock (gate)
            {
                if (disposed || tcp != null)
                {
                    client.Dispose();
                    if (disposed) throw new ObjectDisposedException(GetType().Name);
                    throw new InvalidOperationException("already connected: Close first");
                }
                tcp = client;
                socket = client.Client;
                stream = client.GetStream();
                inputStart = 0;
                inputEnd = 0;
                ended = false;
                pendingRead = null;
                Interlocked.Exchange(ref lastSendMs, clock.ElapsedMilliseconds);
                ScheduleHeartbeat();
            }
        }

        private NetworkStream CurrentStream()
        {
            Socket unused;
            return CurrentStream(out unused);
        }

        private NetworkStream CurrentStream(out Socket connection)
        {
            lock (gate)
            {
                if (disposed) throw new ObjectDisposedException(GetType().Name);
                if (stream == null) throw new InvalidOperationException("not connected");
                connection = socket;
                return stream;
            }
        }

        private static byte[] EncodeForSending(IMessage message, out int length)
        {
            if (message == null) throw new ArgumentNullException(nameof(message));
            if (!${codec}.IsSentByClient(message.TypeId)) throw new EncodeException(message.GetType().Name, null, "is sent by the server only");
            return ${codec}.EncodeFrame(message, out length);
        }

        private void Dispatch(IMessage message)
        {
            Delegate handler;
            Action<Delegate, IMessage> invoke = null;
            lock (gate)
            {
                if (handlers.TryGetValue(message.GetType(), out handler)) invoke = invokers[message.GetType()];
            }
            if (invoke != null) invoke(handler, message);
            var received = Received;
            if (received != null) received(message);
        }

        // Called with gate held: (re)starts the heartbeat timer for the current settings.
        private void ScheduleHeartbeat()
        {
            if (heartbeatTimer != null)
            {
                heartbeatTimer.Dispose();
                heartbeatTimer = null;
            }
            var interval = (long)heartbeatInterval.TotalMilliseconds;
            if (stream == null || heartbeatFrame == null || interval <= 0) return;
            // Checked four times an interval, sent once a client has been idle for three quarters
            // of one: the server hears from it at least once an interval.
            var period = Math.Max(1, interval / 4);
            heartbeatTimer = new Timer(OnHeartbeatTimer, null, period, period);
        }

        private void OnHeartbeatTimer(object state)
        {
            NetworkStream output;
            byte[] frame;
            int length;
            long interval;
            lock (gate)
            {
                output = stream;
                frame = heartbeatFrame;
                length = heartbeatLength;
                interval = (long)heartbeatInterval.TotalMilliseconds;
            }
            if (output == null || frame == null || interval <= 0) return;
            if (clock.ElapsedMilliseconds - Interlocked.Read(ref lastSendMs) < interval - Math.Max(1, interval / 4)) return;
            // A send under way means the connection is not idle.
            if (!sendLock.Wait(0)) return;
            try
            {
                output.Write(frame, 0, length);
                Interlocked.Exchange(ref lastSendMs, clock.ElapsedMilliseconds);
            }
            catch (IOException)
            {
                // The connection is gone; the next Receive or Send reports it.
            }
            catch (ObjectDisposedException)
            {
            }
            finally
            {
                sendLock.Release();
            }
        }

        private void EnterReceive()
        {
            if (Interlocked.Exchange(ref receiving, 1) == 1) throw new InvalidOperationException("another receive is under way: receive from one thread or loop at a time");
        }

        private bool ReceiveFrame(TimeSpan timeout, out IMessage message)
        {
            Socket connection;
            var source = CurrentStream(out connection);
            EnterReceive();
            try
            {
                var deadline = timeout == Timeout.InfiniteTimeSpan ? -1 : clock.ElapsedMilliseconds + (long)timeout.TotalMilliseconds;
                while (!TakeFrame(out message))
                {
                    var wait = deadline < 0 ? -1 : (int)Math.Min(int.MaxValue, Math.Max(0, deadline - clock.ElapsedMilliseconds));
                    if (!Fill(source, connection, wait) && deadline >= 0 && clock.ElapsedMilliseconds >= deadline) return false;
                }
                return true;
            }
            finally
            {
                Interlocked.Exchange(ref receiving, 0);
            }
        }

        private async Task<IMessage> ReceiveFrameAsync(CancellationToken cancellationToken)
        {
            var source = CurrentStream();
            EnterReceive();
            try
            {
                IMessage message;
                while (!TakeFrame(out message))
                {
                    if (pendingRead == null)
                    {
                        MakeRoom();
                        pendingRead = source.ReadAsync(input, inputEnd, input.Length - inputEnd);
                    }
                    if (!pendingRead.IsCompleted) await WhenDone(pendingRead, cancellationToken).ConfigureAwait(false);
                    var read = pendingRead;
                    pendingRead = null;
                    Arrived(await read.ConfigureAwait(false));
                }
                return message;
            }
            finally
            {
                Interlocked.Exchange(ref receiving, 0);
            }
        }

        // A cancelled receive leaves its read pending: the next receive takes its bytes.
        private static async Task WhenDone(Task read, CancellationToken cancellationToken)
        {
            var cancelled = new TaskCompletionSource<bool>();
            using (cancellationToken.Register(() => cancelled.TrySetResult(true)))
            {
                if (await Task.WhenAny(read, cancelled.Task).ConfigureAwait(false) != read) throw new OperationCanceledException(cancellationToken);
            }
        }

        // Reads what has arrived, waiting at most wait ms (-1: no limit). False when nothing came.
        private bool Fill(NetworkStream source, Socket connection, int wait)
        {
            if (pendingRead != null)
            {
                try
                {
                    if (!pendingRead.Wait(wait)) return false;
                }
                catch (AggregateException)
                {
                    // Rethrown as itself below.
                }
                var read = pendingRead;
                pendingRead = null;
                Arrived(read.GetAwaiter().GetResult());
                return true;
            }
            MakeRoom();
            // Poll takes microseconds in an int: wait at most 30 minutes at a time.
            if (!connection.Poll(wait < 0 ? -1 : (int)Math.Min(wait * 1000L, 1800000000L), SelectMode.SelectRead)) return false;
            Arrived(source.Read(input, inputEnd, input.Length - inputEnd));
            return true;
        }

        private void Arrived(int count)
        {
            if (count == 0) ended = true;
            else inputEnd += count;
        }

        // Moves undecoded bytes to the front, growing the buffer for a frame longer than it.
        private void MakeRoom()
        {
            var available = inputEnd - inputStart;
            var needed = available >= 4 ? 4 + (int)ReadLength() : 0;
            var target = needed > input.Length ? new byte[Math.Max(needed, Math.Min(input.Length * 2, ${codec}.MaxFrame))] : input;
            if (inputStart > 0 || target != input) Buffer.BlockCopy(input, inputStart, target, 0, available);
            input = target;
            inputStart = 0;
            inputEnd = available;
        }

        private uint ReadLength()
        {
            return unchecked((uint)(input[inputStart] | input[inputStart + 1] << 8 | input[inputStart + 2] << 16 | input[inputStart + 3] << 24));
        }

        // Decodes the next whole frame received: true with a message, or with null once the
        // server closed the connection; false when more bytes are needed.
        private bool TakeFrame(out IMessage message)
        {
            message = null;
            var available = inputEnd - inputStart;
            if (available >= 4)
            {
                var length = ReadLength();
                if (length < 2 || length > ${codec}.MaxFrame - 4)
                {
                    // Frames can no longer be told apart: the connection is useless.
                    Close();
                    throw new DecodeException(null, null, "a frame length of " + length + " is outside 2.." + (${codec}.MaxFrame - 4) + ": the connection was closed");
                }
                var size = 4 + (int)length;
                if (available >= size)
                {
                    var typeId = (ushort)(input[inputStart + 4] | input[inputStart + 5] << 8);
                    var payload = inputStart + ${FRAME_HEADER};
                    // Taken before decoding: a frame that does not decode is skipped.
                    inputStart += size;
                    if (!${codec}.IsSentByServer(typeId)) throw new DecodeException(null, null, "type id " + typeId + " is not a message the server sends");
                    message = ${codec}.Decode(typeId, input, payload, size - ${FRAME_HEADER});
                    return true;
                }
            }
            if (!ended) return false;
            if (available > 0)
            {
                inputStart = inputEnd;
                throw new EndOfStreamException("the server closed the connection " + available + " bytes into a frame");
            }
            return true;
        }
    }
`
}

export function csharpClient(spec: Spec, header: string): ClientOutput {
  const names = csharpNames(spec)
  const c: Context = {names, enums: new Map(spec.enums.map((e) => [e.name, e]))}
  const typeNames = new Set(names.types.values())
  const marked: Context = {...c, names: {...names, types: new Map([...names.types].map(([k, v]) => [k, MARK_OPEN + v + MARK_CLOSE]))}}
  const support = qualify([codecClass(spec, marked).join('\n'), exceptions(), clientClass(spec, marked)].join('\n'), typeNames)
  const interfaceDoc = `    /// <summary>A message of the ${xml(spec.name)} protocol; TypeId is its type id on the wire.</summary>
    public interface IMessage
    {
        ushort TypeId { get; }
    }
`
  const code = [
    header,
    '// <auto-generated/>',
    `// A client of the ${spec.name} protocol (${spec.version}) for .NET (netstandard2.0) and Unity.`,
    '',
    `namespace ${names.namespace}`,
    '{',
    // global::, or a spec type named System would be taken for the namespace.
    ...USINGS.map((u) => `    using global::${u};`),
    '',
    interfaceDoc,
    ...dataTypes(spec, c),
    support.trimEnd(),
    '}',
    '',
  ].join('\n')

  const message = spec.messages.find((m) => m.direction !== 'server-to-client')
  const csproj = `<!-- ${header.replace(/^\/\/ ?/, '').replace(/--/g, '- -')} -->
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>
    <TargetFramework>netstandard2.0</TargetFramework>
    <LangVersion>7.3</LangVersion>
    <RootNamespace>${names.namespace}</RootNamespace>
    <AssemblyName>${names.pascal}.Client</AssemblyName>
  </PropertyGroup>
</Project>
`
  return {
    files: [
      {path: `clients/csharp/${names.pascal}Client.cs`, content: code},
      {path: `clients/csharp/${names.pascal}.Client.csproj`, content: csproj},
    ],
    view: {
      csharpFile: `${names.pascal}Client.cs`,
      csharpProject: `${names.pascal}.Client.csproj`,
      csharpNamespace: names.namespace,
      csharpClient: names.client,
      csharpCodec: names.codec,
      csharpSendLine: message ? `${names.types.get(message.name)!}()` : '',
      csharpHeartbeat: defaultHeartbeat(spec) ? names.types.get(defaultHeartbeat(spec)!.name)! : '',
    },
  }
}
