// The stable diagnostic codes. A code never changes meaning once released;
// docs/diagnostics.md documents each one (a test keeps the two in step).
export type Severity = 'error' | 'warning'

export interface CodeInfo {
  severity: Severity
  title: string
}

export const CODES = {
  // Reading the file.
  E001: {severity: 'error', title: 'spec file not found'},
  E002: {severity: 'error', title: 'path is a directory'},
  E003: {severity: 'error', title: 'spec file cannot be read'},
  E004: {severity: 'error', title: 'spec file is not text'},
  E005: {severity: 'error', title: 'spec file is empty'},
  E006: {severity: 'error', title: 'YAML or JSON syntax error'},
  E007: {severity: 'error', title: 'duplicate key'},
  E008: {severity: 'error', title: 'spec is not a mapping'},
  E009: {severity: 'error', title: 'YAML anchor or alias'},
  E010: {severity: 'error', title: 'nesting too deep'},
  // Shape (the JSON Schema).
  E101: {severity: 'error', title: 'unknown property'},
  E102: {severity: 'error', title: 'missing required property'},
  E103: {severity: 'error', title: 'wrong type'},
  E104: {severity: 'error', title: 'value out of range'},
  E105: {severity: 'error', title: 'value not allowed'},
  E106: {severity: 'error', title: 'value has the wrong format'},
  E107: {severity: 'error', title: 'invalid value'},
  // The protocol.
  E201: {severity: 'error', title: 'duplicate message id'},
  E202: {severity: 'error', title: 'duplicate message name'},
  E203: {severity: 'error', title: 'type name defined twice'},
  E204: {severity: 'error', title: 'invalid identifier'},
  E205: {severity: 'error', title: 'reserved word'},
  E206: {severity: 'error', title: 'bad field type'},
  E207: {severity: 'error', title: 'unknown type name'},
  E208: {severity: 'error', title: 'recursive struct'},
  E209: {severity: 'error', title: 'bound out of range'},
  E210: {severity: 'error', title: 'message can exceed the max frame'},
  E211: {severity: 'error', title: 'enum value does not fit its type'},
  E212: {severity: 'error', title: 'duplicate enum value'},
  E213: {severity: 'error', title: 'reserved id or name used'},
  E214: {severity: 'error', title: 'bad reserved id range'},
  // The server tunables.
  E301: {severity: 'error', title: 'per-I/O context pool too small'},
  E302: {severity: 'error', title: 'accept backlog larger than the connection pool'},
  E303: {severity: 'error', title: 'heartbeat not shorter than idle timeout'},
  E304: {severity: 'error', title: 'size out of range'},
  E305: {severity: 'error', title: 'queue notice message unusable'},
  E306: {severity: 'error', title: 'frame timeout out of range'},
  E307: {severity: 'error', title: 'cluster heartbeat or lease out of range'},
  // Locks, order and operations (parsing and references; the deadlock check has its own codes).
  E401: {severity: 'error', title: 'lock order syntax error'},
  E402: {severity: 'error', title: 'unknown lock'},
  E403: {severity: 'error', title: 'unknown operation'},
  E404: {severity: 'error', title: 'read mode on a lock without one'},
  E405: {severity: 'error', title: 'cluster scope on a lock that is not a mutex'},
  // The deadlock check on the lock graph.
  E410: {severity: 'error', title: 'lock order contradicts itself'},
  E411: {severity: 'error', title: 'possible deadlock: lock order cycle'},
  E412: {severity: 'error', title: 'self-deadlock'},
  E413: {severity: 'error', title: 'read lock upgraded to write'},
  E414: {severity: 'error', title: 'same-class nesting without a by-id order'},
  E415: {severity: 'error', title: 'lock held across a call into JavaScript'},
  E416: {severity: 'error', title: 'lock held across a blocking wait'},
  E417: {severity: 'error', title: 'lock taken under a leaf lock'},
  E418: {severity: 'error', title: 'forbidden lock order used'},
  E419: {severity: 'error', title: 'operation calls itself'},
  E420: {severity: 'error', title: 'name taken by the core'},
  // The project's code against the declared operations.
  E421: {severity: 'error', title: 'lock taken that the spec does not declare'},
  E422: {severity: 'error', title: 'declared lock step the code no longer performs'},
  E423: {severity: 'error', title: 'operation has no code'},
  // Breaking changes between two versions of a spec (iocpgen breaking). Wire:
  E501: {severity: 'error', title: 'message removed'},
  E502: {severity: 'error', title: 'message id changed'},
  E503: {severity: 'error', title: 'id reused for another message'},
  E504: {severity: 'error', title: 'clients may no longer send a message'},
  E505: {severity: 'error', title: 'field removed'},
  E506: {severity: 'error', title: 'field added'},
  E507: {severity: 'error', title: 'field type changed'},
  E508: {severity: 'error', title: 'field bound changed'},
  E509: {severity: 'error', title: 'fields reordered'},
  E510: {severity: 'error', title: 'enum value renumbered'},
  E511: {severity: 'error', title: 'enum value removed'},
  E512: {severity: 'error', title: 'enum value added'},
  E513: {severity: 'error', title: 'enum type changed'},
  E514: {severity: 'error', title: 'max frame shrank'},
  // Source: the wire is the same, code written against the generated types is not.
  E521: {severity: 'error', title: 'message renamed'},
  E522: {severity: 'error', title: 'field renamed'},
  E523: {severity: 'error', title: 'enum renamed'},
  E524: {severity: 'error', title: 'enum value renamed'},
  E525: {severity: 'error', title: 'struct renamed'},
  // The checker itself failed: a bug in iocpgen, not in the spec.
  E999: {severity: 'error', title: 'internal error'},
  // Warnings.
  W001: {severity: 'warning', title: 'unused type'},
  W002: {severity: 'warning', title: 'large pinned receive memory'},
  W003: {severity: 'warning', title: 'unused lock'},
  W004: {severity: 'warning', title: 'setting has no effect'},
  W005: {severity: 'warning', title: 'undeclared lock ordering'},
} as const satisfies Record<string, CodeInfo>

export type Code = keyof typeof CODES
