// The D-Bus wire format (https://dbus.freedesktop.org/doc/dbus-specification.html, "Message
// Protocol"), pure: bytes in, values out. We write little-endian and read both byte orders (a
// big-endian host's systemd sends 'B' messages; dbus-daemon forwards them unchanged).
//
// Values by type code: y n q i u d -> number; x t -> bigint; b -> boolean; s o g -> string;
// a -> array; a{..} -> array of [key, value] pairs; (..) -> array of fields; v -> DbusVariant.
// Unix fds (h) are not supported: we never negotiate fd passing.
import { AuditorError, ErrorCode } from '../../errors.ts';

export type DbusValue = number | bigint | boolean | string | DbusVariant | readonly DbusValue[];

export interface DbusVariant {
  readonly signature: string;
  readonly value: DbusValue;
}

export function isVariant(value: DbusValue): value is DbusVariant {
  return typeof value === 'object' && !Array.isArray(value);
}

/** What went wrong, for callers that act on it (retry, report, give up). */
export type DbusFailure =
  | 'remote' // the peer answered with an ERROR message: see dbusName
  | 'timeout'
  | 'aborted'
  | 'disconnected'
  | 'connect' // the socket could not be opened: see cause (ENOENT, ECONNREFUSED ...)
  | 'auth'
  | 'protocol'; // a message that breaks the spec, ours or the peer's

/**
 * A failed D-Bus operation. code is E_DBUS (ErrorCode.Dbus once errors.ts has it); dbusName is
 * the error name the peer replied with (org.freedesktop.systemd1.NoSuchUnit ...), set only when
 * failure is 'remote'.
 */
export class DbusError extends AuditorError {
  readonly failure: DbusFailure;
  readonly dbusName: string | undefined;

  constructor(
    failure: DbusFailure,
    message: string,
    options?: { cause?: unknown; dbusName?: string },
  ) {
    super(ErrorCode.Dbus, message, options);
    this.name = 'DbusError';
    this.failure = failure;
    this.dbusName = options?.dbusName;
  }
}

function invalid(message: string): DbusError {
  return new DbusError('protocol', message);
}

export const MessageType = { MethodCall: 1, MethodReturn: 2, Error: 3, Signal: 4 } as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

export const MessageFlag = {
  NoReplyExpected: 0x1,
  NoAutoStart: 0x2,
  AllowInteractiveAuthorization: 0x4,
} as const;

export interface DbusMessage {
  type: MessageType;
  flags: number;
  serial: number;
  path?: string;
  interface?: string;
  member?: string;
  errorName?: string;
  replySerial?: number;
  destination?: string;
  sender?: string;
  /** The body's signature, '' for no body. */
  signature: string;
  body: readonly DbusValue[];
}

// Limits from the spec: a reader must refuse beyond them (and dbus-daemon drops a connection
// that sends beyond them, so a writer must too).
export const MAX_MESSAGE_BYTES = 2 ** 27;
const MAX_ARRAY_BYTES = 2 ** 26;
const MAX_SIGNATURE_LENGTH = 255;
const MAX_NAME_LENGTH = 255;
const MAX_NESTING = 32; // arrays and structs each, within one signature
const MAX_DEPTH = 64; // all containers, variants included
export const FIXED_HEADER_BYTES = 16;

// ---- signatures ----

export interface DbusType {
  /** The type code: a basic code, 'v', 'a', '(' or '{'. */
  readonly code: string;
  /** Element (a), fields ((), or key and value ({). */
  readonly children: readonly DbusType[];
  readonly signature: string;
}

const BASIC_CODES = 'ybnqiuxtdsog';
/** A type's alignment, counted from the start of the message. */
function alignment(code: string): number {
  if ('xtd({'.includes(code)) return 8;
  if ('biusoa'.includes(code)) return 4;
  return 'nq'.includes(code) ? 2 : 1;
}

/** The complete types of a signature, in order; throws on an invalid signature. */
export function parseSignature(signature: string): DbusType[] {
  if (signature.length > MAX_SIGNATURE_LENGTH)
    throw invalid(`signature longer than ${MAX_SIGNATURE_LENGTH} characters`);
  const types: DbusType[] = [];
  let pos = 0;
  while (pos < signature.length) {
    const parsed = parseType(signature, pos, 0, 0);
    types.push(parsed.type);
    pos = parsed.end;
  }
  return types;
}

function parseType(
  sig: string,
  start: number,
  arrays: number,
  structs: number,
): { type: DbusType; end: number } {
  const code = sig[start];
  const bad = (why: string): DbusError => invalid(`invalid signature "${sig}": ${why}`);
  const make = (children: DbusType[], end: number) => ({
    type: { code: code as string, children, signature: sig.slice(start, end) },
    end,
  });
  if (code === undefined) throw bad('ends inside a container');
  if (BASIC_CODES.includes(code) || code === 'v') return make([], start + 1);
  if (code === 'a') {
    if (arrays >= MAX_NESTING) throw bad('arrays nested too deep');
    if (sig[start + 1] === '{') {
      if (structs >= MAX_NESTING) throw bad('structs nested too deep');
      const key = parseType(sig, start + 2, arrays + 1, structs + 1);
      if (!BASIC_CODES.includes(key.type.code)) throw bad('a dict key must be a basic type');
      const value = parseType(sig, key.end, arrays + 1, structs + 1);
      if (sig[value.end] !== '}') throw bad('a dict entry holds exactly a key and a value');
      const entry = {
        code: '{',
        children: [key.type, value.type],
        signature: sig.slice(start + 1, value.end + 1),
      };
      return make([entry], value.end + 1);
    }
    const element = parseType(sig, start + 1, arrays + 1, structs);
    return make([element.type], element.end);
  }
  if (code === '(') {
    if (structs >= MAX_NESTING) throw bad('structs nested too deep');
    const fields: DbusType[] = [];
    let pos = start + 1;
    while (sig[pos] !== ')') {
      const field = parseType(sig, pos, arrays, structs + 1);
      fields.push(field.type);
      pos = field.end;
    }
    if (fields.length === 0) throw bad('empty struct');
    return make(fields, pos + 1);
  }
  throw bad(`unexpected "${code}" at ${start}`);
}

// ---- names (dbus-daemon disconnects a client that sends an invalid one, so we check first) ----

const OBJECT_PATH = /^\/(?:[A-Za-z0-9_]+(?:\/[A-Za-z0-9_]+)*)?$/;
const MEMBER_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const INTERFACE_NAME = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$/;
const BUS_NAME =
  /^(?::[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)+|[A-Za-z_-][A-Za-z0-9_-]*(?:\.[A-Za-z_-][A-Za-z0-9_-]*)+)$/;

function checkName(kind: string, pattern: RegExp, name: string | undefined): void {
  if (name === undefined) return;
  if (name.length > MAX_NAME_LENGTH || !pattern.test(name))
    throw invalid(`invalid D-Bus ${kind} "${name}"`);
}

// ---- writing ----

class Writer {
  buffer = Buffer.alloc(256);
  length = 0;

  /** Room for `bytes` more; returns their offset. May replace this.buffer: read it after. */
  reserve(bytes: number): number {
    const at = this.length;
    const needed = at + bytes;
    if (needed > MAX_MESSAGE_BYTES) throw invalid(`message larger than ${MAX_MESSAGE_BYTES} bytes`);
    if (needed > this.buffer.length) {
      const grown = Buffer.alloc(Math.max(needed, this.buffer.length * 2));
      this.buffer.copy(grown, 0, 0, at);
      this.buffer = grown;
    }
    this.length = needed;
    return at;
  }

  align(boundary: number): void {
    const at = this.reserve((boundary - (this.length % boundary)) % boundary);
    this.buffer.fill(0, at, this.length);
  }

  integer(value: number, bytes: number, signed: boolean): void {
    const at = this.reserve(bytes);
    if (signed) this.buffer.writeIntLE(value, at, bytes);
    else this.buffer.writeUIntLE(value, at, bytes);
  }

  /** A string's length (1 or 4 bytes), its bytes and a NUL. */
  text(data: Buffer, lengthBytes: 1 | 4): void {
    this.integer(data.length, lengthBytes, false);
    const at = this.reserve(data.length + 1);
    data.copy(this.buffer, at);
    this.buffer[at + data.length] = 0;
  }
}

/** The fixed-size integers below 64 bits: [bytes, signed]. */
const INTEGERS: Record<string, readonly [1 | 2 | 4, boolean]> = {
  y: [1, false],
  n: [2, true],
  q: [2, false],
  i: [4, true],
  u: [4, false],
};

/** A value in an error message (never "[object Object]"). */
function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
    return String(value);
  return Array.isArray(value) ? 'an array' : typeof value;
}

function wrongValue(code: string, wanted: string, value: DbusValue): DbusError {
  return invalid(`D-Bus "${code}" needs ${wanted}, got ${show(value)}`);
}

function text(value: DbusValue, code: string): string {
  if (typeof value !== 'string' || value.includes('\0'))
    throw wrongValue(code, 'a string without NUL', value);
  return value;
}

function writeValue(w: Writer, type: DbusType, value: DbusValue, depth: number): void {
  const code = type.code;
  w.align(alignment(code));
  const integer = INTEGERS[code];
  if (integer !== undefined) {
    const [bytes, signed] = integer;
    const min = signed ? -(2 ** (bytes * 8 - 1)) : 0;
    const max = signed ? 2 ** (bytes * 8 - 1) - 1 : 2 ** (bytes * 8) - 1;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max)
      throw wrongValue(code, `an integer in ${min}..${max}`, value);
    w.integer(value, bytes, signed);
    return;
  }
  switch (code) {
    case 'b':
      if (typeof value !== 'boolean') throw wrongValue(code, 'a boolean', value);
      w.integer(value ? 1 : 0, 4, false);
      return;
    case 'x':
    case 't': {
      const [min, max] = code === 'x' ? [-(2n ** 63n), 2n ** 63n - 1n] : [0n, 2n ** 64n - 1n];
      if (typeof value !== 'bigint' || value < min || value > max)
        throw wrongValue(code, `a bigint in ${min}..${max}`, value);
      const at = w.reserve(8);
      if (code === 'x') w.buffer.writeBigInt64LE(value, at);
      else w.buffer.writeBigUInt64LE(value, at);
      return;
    }
    case 'd': {
      if (typeof value !== 'number') throw wrongValue(code, 'a number', value);
      const at = w.reserve(8);
      w.buffer.writeDoubleLE(value, at);
      return;
    }
    case 's':
    case 'o': {
      const string = text(value, code);
      if (code === 'o') checkName('object path', OBJECT_PATH, string);
      w.text(Buffer.from(string, 'utf8'), 4);
      return;
    }
    case 'g': {
      const signature = text(value, code);
      parseSignature(signature);
      w.text(Buffer.from(signature, 'ascii'), 1);
      return;
    }
    case 'v': {
      if (!isVariant(value)) throw wrongValue(code, 'a { signature, value }', value);
      if (depth >= MAX_DEPTH) throw invalid(`values nested deeper than ${MAX_DEPTH}`);
      const inner = parseSignature(value.signature);
      if (inner.length !== 1 || inner[0] === undefined)
        throw invalid(`a variant holds exactly one complete type, not "${value.signature}"`);
      w.text(Buffer.from(value.signature, 'ascii'), 1);
      writeValue(w, inner[0], value.value, depth + 1);
      return;
    }
  }
  if (!Array.isArray(value)) throw wrongValue(type.signature, 'an array', value);
  const items = value as readonly DbusValue[];
  if (depth >= MAX_DEPTH) throw invalid(`values nested deeper than ${MAX_DEPTH}`);
  if (code === 'a') {
    const element = type.children[0] as DbusType;
    const lengthAt = w.reserve(4);
    // The length counts the elements only, not the padding to the first one (which is there
    // even when the array is empty).
    w.align(alignment(element.code));
    const start = w.length;
    for (const item of items) writeValue(w, element, item, depth + 1);
    const bytes = w.length - start;
    if (bytes > MAX_ARRAY_BYTES) throw invalid(`array larger than ${MAX_ARRAY_BYTES} bytes`);
    w.buffer.writeUInt32LE(bytes, lengthAt);
    return;
  }
  // A struct or a dict entry: its fields in order.
  if (items.length !== type.children.length)
    throw invalid(
      `D-Bus "${type.signature}" needs ${type.children.length} fields, got ${items.length}`,
    );
  type.children.forEach((field, i) => {
    writeValue(w, field, items[i] as DbusValue, depth + 1);
  });
}

function writeValues(w: Writer, signature: string, values: readonly DbusValue[]): void {
  const types = parseSignature(signature);
  if (types.length !== values.length)
    throw invalid(`signature "${signature}" has ${types.length} values, got ${values.length}`);
  types.forEach((type, i) => {
    writeValue(w, type, values[i] as DbusValue, 0);
  });
}

/** Marshal any values by signature, as a body at offset 0 (an 8-aligned start). */
export function marshalValues(signature: string, values: readonly DbusValue[]): Buffer {
  const w = new Writer();
  writeValues(w, signature, values);
  return Buffer.from(w.buffer.subarray(0, w.length));
}

// ---- reading ----

const utf8 = new TextDecoder('utf-8', { fatal: true });

class Reader {
  pos: number;
  readonly buffer: Buffer;
  readonly end: number;
  readonly littleEndian: boolean;

  constructor(buffer: Buffer, pos: number, end: number, littleEndian: boolean) {
    this.buffer = buffer;
    this.pos = pos;
    this.end = end;
    this.littleEndian = littleEndian;
  }

  take(bytes: number): number {
    const at = this.pos;
    if (at + bytes > this.end)
      throw invalid(`truncated D-Bus message (needed ${bytes} bytes at ${at})`);
    this.pos = at + bytes;
    return at;
  }

  align(boundary: number): void {
    const pad = (boundary - (this.pos % boundary)) % boundary;
    const at = this.take(pad);
    for (let i = at; i < at + pad; i++)
      if (this.buffer[i] !== 0) throw invalid(`non-zero padding at byte ${i}`);
  }

  u32(): number {
    const at = this.take(4);
    return this.littleEndian ? this.buffer.readUInt32LE(at) : this.buffer.readUInt32BE(at);
  }

  string(lengthBytes: 1 | 4): string {
    const length = lengthBytes === 1 ? (this.buffer[this.take(1)] as number) : this.u32();
    const at = this.take(length + 1);
    const bytes = this.buffer.subarray(at, at + length);
    if (this.buffer[at + length] !== 0 || bytes.includes(0))
      throw invalid(`string at byte ${at} is not NUL-terminated or holds a NUL`);
    try {
      return utf8.decode(bytes);
    } catch (error) {
      throw new DbusError('protocol', `string at byte ${at} is not UTF-8`, { cause: error });
    }
  }
}

function readValue(r: Reader, type: DbusType, depth: number): DbusValue {
  const code = type.code;
  const { buffer, littleEndian: le } = r;
  r.align(alignment(code));
  const integer = INTEGERS[code];
  if (integer !== undefined) {
    const [bytes, signed] = integer;
    const at = r.take(bytes);
    if (signed) return le ? buffer.readIntLE(at, bytes) : buffer.readIntBE(at, bytes);
    return le ? buffer.readUIntLE(at, bytes) : buffer.readUIntBE(at, bytes);
  }
  switch (code) {
    case 'b': {
      const value = r.u32();
      if (value > 1) throw invalid(`boolean with value ${value}`);
      return value === 1;
    }
    case 'x':
      return le ? buffer.readBigInt64LE(r.take(8)) : buffer.readBigInt64BE(r.take(8));
    case 't':
      return le ? buffer.readBigUInt64LE(r.take(8)) : buffer.readBigUInt64BE(r.take(8));
    case 'd':
      return le ? buffer.readDoubleLE(r.take(8)) : buffer.readDoubleBE(r.take(8));
    case 's':
      return r.string(4);
    case 'o': {
      const path = r.string(4);
      checkName('object path', OBJECT_PATH, path);
      return path;
    }
    case 'g': {
      const signature = r.string(1);
      parseSignature(signature);
      return signature;
    }
  }
  if (depth >= MAX_DEPTH) throw invalid(`values nested deeper than ${MAX_DEPTH}`);
  if (code === 'v') {
    const signature = r.string(1);
    const inner = parseSignature(signature);
    if (inner.length !== 1 || inner[0] === undefined)
      throw invalid(`a variant holds exactly one complete type, not "${signature}"`);
    return { signature, value: readValue(r, inner[0], depth + 1) };
  }
  if (code === 'a') {
    const element = type.children[0] as DbusType;
    const bytes = r.u32();
    if (bytes > MAX_ARRAY_BYTES)
      throw invalid(`array of ${bytes} bytes (limit ${MAX_ARRAY_BYTES})`);
    r.align(alignment(element.code));
    const end = r.pos + bytes;
    if (end > r.end) throw invalid(`array of ${bytes} bytes runs past the message`);
    const items: DbusValue[] = [];
    while (r.pos < end) items.push(readValue(r, element, depth + 1));
    if (r.pos !== end) throw invalid('array elements overrun the array length');
    return items;
  }
  return type.children.map((field) => readValue(r, field, depth + 1));
}

/** Unmarshal values by signature from a body that starts at offset 0. */
export function unmarshalValues(signature: string, data: Buffer, littleEndian = true): DbusValue[] {
  const r = new Reader(data, 0, data.length, littleEndian);
  const values = parseSignature(signature).map((type) => readValue(r, type, 0));
  if (r.pos !== data.length) throw invalid(`${data.length - r.pos} bytes left after the values`);
  return values;
}

// ---- messages ----

// Header fields by code, with their type. Code 9 (UNIX_FDS) we only read, to refuse fds.
const HEADER_FIELDS = [
  [1, 'path', 'o'],
  [2, 'interface', 's'],
  [3, 'member', 's'],
  [4, 'errorName', 's'],
  [5, 'replySerial', 'u'],
  [6, 'destination', 's'],
  [7, 'sender', 's'],
  [8, 'signature', 'g'],
] as const;
const UNIX_FDS_FIELD = 9;
const HEADER_FIELDS_TYPE = parseSignature('a(yv)')[0] as DbusType;

/** The fields each message type must carry (spec, "Message Types"). */
const REQUIRED_FIELDS: Record<MessageType, readonly (keyof DbusMessage)[]> = {
  [MessageType.MethodCall]: ['path', 'member'],
  [MessageType.MethodReturn]: ['replySerial'],
  [MessageType.Error]: ['errorName', 'replySerial'],
  [MessageType.Signal]: ['path', 'interface', 'member'],
};

function checkRequiredFields(m: DbusMessage): void {
  for (const field of REQUIRED_FIELDS[m.type])
    if (m[field] === undefined)
      throw invalid(`D-Bus message of type ${m.type} lacks its ${field} header field`);
}

/** The bytes of one message, little-endian. */
export function marshalMessage(m: DbusMessage): Buffer {
  checkRequiredFields(m);
  checkName('object path', OBJECT_PATH, m.path);
  checkName('interface name', INTERFACE_NAME, m.interface);
  checkName('member name', MEMBER_NAME, m.member);
  checkName('error name', INTERFACE_NAME, m.errorName);
  checkName('bus name', BUS_NAME, m.destination);
  checkName('bus name', BUS_NAME, m.sender);
  if (m.serial < 1 || m.serial > 0xffffffff) throw invalid(`serial ${m.serial} out of 1..2^32-1`);
  const fields: DbusValue[] = [];
  for (const [code, key, signature] of HEADER_FIELDS) {
    const value = m[key];
    if (value !== undefined && value !== '') fields.push([code, { signature, value }]);
  }
  const w = new Writer();
  // Byte order 'l', type, flags, protocol version 1, body length (set below), serial, fields.
  const header = [0x6c, m.type, m.flags, 1, 0, m.serial, fields];
  writeValues(w, 'yyyyuua(yv)', header);
  // The body starts 8-aligned, so its alignment counted from the message start holds.
  w.align(8);
  const bodyStart = w.length;
  writeValues(w, m.signature, m.body);
  w.buffer.writeUInt32LE(w.length - bodyStart, 4);
  return Buffer.from(w.buffer.subarray(0, w.length));
}

/**
 * The whole length of the message whose first 16 bytes are given, so a stream reader knows how
 * much to wait for. Throws on a header that cannot start a valid message.
 */
export function messageLength(fixedHeader: Buffer): number {
  if (fixedHeader.length < FIXED_HEADER_BYTES) throw invalid('fixed header shorter than 16 bytes');
  const order = fixedHeader[0];
  if (order !== 0x6c && order !== 0x42)
    throw invalid(`bad byte-order mark 0x${order?.toString(16) ?? ''}`);
  if (fixedHeader[3] !== 1) throw invalid(`unsupported protocol version ${fixedHeader[3] ?? ''}`);
  const le = order === 0x6c;
  const bodyBytes = le ? fixedHeader.readUInt32LE(4) : fixedHeader.readUInt32BE(4);
  const fieldBytes = le ? fixedHeader.readUInt32LE(12) : fixedHeader.readUInt32BE(12);
  if (fieldBytes > MAX_ARRAY_BYTES) throw invalid(`header fields of ${fieldBytes} bytes`);
  const headerEnd = Math.ceil((FIXED_HEADER_BYTES + fieldBytes) / 8) * 8;
  const total = headerEnd + bodyBytes;
  if (total > MAX_MESSAGE_BYTES)
    throw invalid(`message of ${total} bytes (limit ${MAX_MESSAGE_BYTES})`);
  return total;
}

/**
 * One message from exactly its bytes. Returns undefined for a message type this version of the
 * protocol does not know: the spec says to ignore those.
 */
export function unmarshalMessage(frame: Buffer): DbusMessage | undefined {
  const total = messageLength(frame);
  if (frame.length !== total) throw invalid(`frame of ${frame.length} bytes, header says ${total}`);
  const le = frame[0] === 0x6c;
  const type = frame[1] as MessageType;
  const serial = le ? frame.readUInt32LE(8) : frame.readUInt32BE(8);
  if (serial === 0) throw invalid('message serial 0');
  const r = new Reader(frame, 12, total, le);
  const fields = readValue(r, HEADER_FIELDS_TYPE, 0) as [number, DbusVariant][];
  const m: DbusMessage = { type, flags: frame[2] as number, serial, signature: '', body: [] };
  const set = m as unknown as Record<string, DbusValue>;
  let unixFds = 0;
  for (const [code, variant] of fields) {
    const known = HEADER_FIELDS.find(([c]) => c === code);
    const expected = code === UNIX_FDS_FIELD ? 'u' : known?.[2];
    if (expected === undefined) continue; // unknown fields must be ignored
    if (variant.signature !== expected)
      throw invalid(`header field ${code} has type "${variant.signature}", not "${expected}"`);
    if (known === undefined) unixFds = variant.value as number;
    else set[known[1]] = variant.value;
  }
  if (!(type in REQUIRED_FIELDS)) return undefined;
  if (unixFds !== 0) throw invalid('message carries unix fds, which were not negotiated');
  checkRequiredFields(m);
  r.align(8);
  if (m.signature === '' && r.pos !== total) throw invalid('message has a body but no signature');
  m.body = parseSignature(m.signature).map((t) => readValue(r, t, 0));
  if (r.pos !== total) throw invalid(`${total - r.pos} bytes left after the body`);
  return m;
}
