// dockerd's daemon.json as dockerd itself reads it (moby daemon/config/config.go): a byte-order
// mark picks UTF-8 or UTF-16, the text must be valid UTF-8, an all-whitespace file is an empty
// configuration, and the JSON is checked by Go's encoding/json scanner. A file that fails any
// of that stops dockerd from starting and makes a reload (SIGHUP) keep the old configuration.
// Pure: bytes in, settings or the error out.
//
// The syntax check is a port of Go's scanner, not JSON.parse: the message is the one dockerd
// logs ("invalid character '}' looking for beginning of object key string"), and the position
// is computed here (V8's JSON.parse messages have changed across Node versions).
import { isIPv4, isIPv6 } from 'node:net';
import { isLoopbackHost } from './registryHost.ts';
import { textPosition } from './textPosition.ts';

/** The settings this check reads; undefined when the file does not set them (or sets null). */
export interface DockerDaemonSettings {
  insecureRegistries?: string[];
  hosts?: string[];
  tls?: boolean;
  tlsverify?: boolean;
}

export interface DockerDaemonJsonError {
  /** What dockerd's error says (Go's wording where it is Go's check). */
  message: string;
  /** 1-based position of the offending character, when there is one. */
  line?: number;
  column?: number;
}

export type DockerDaemonJson =
  | {
      ok: true;
      settings: DockerDaemonSettings;
      /** The top-level object as written (empty for an empty file or null): its keys. */
      json: Record<string, unknown>;
    }
  | { ok: false; error: DockerDaemonJsonError };

export function parseDockerDaemonJson(bytes: Uint8Array): DockerDaemonJson {
  const decoded = decodeConfigBytes(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length));
  if ('error' in decoded) return { ok: false, error: decoded.error };
  const { text } = decoded;
  // dockerd trims whitespace and takes an empty file as an empty configuration.
  if (text.trim() === '') return { ok: true, settings: {}, json: {} };
  const syntax = goJsonSyntaxError(text);
  if (syntax !== undefined) return { ok: false, error: syntax };
  const value = JSON.parse(text) as unknown;
  // dockerd decodes into a map[string]interface{} first: only an object (or null) fits.
  if (value === null) return { ok: true, settings: {}, json: {} };
  if (typeof value !== 'object' || Array.isArray(value)) {
    return {
      ok: false,
      error: {
        message: `json: cannot unmarshal ${goKind(value)} into Go value of type map[string]interface {}`,
      },
    };
  }
  return settingsOf(value as Record<string, unknown>);
}

function goKind(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'boolean') return 'bool';
  return typeof value;
}

/** Type errors in the keys read here stop dockerd as surely as a syntax error. */
function settingsOf(json: Record<string, unknown>): DockerDaemonJson {
  const settings: DockerDaemonSettings = {};
  const problems: string[] = [];
  const strings = (key: string): string[] | undefined => {
    const value = json[key];
    if (value === undefined || value === null) return undefined;
    if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value;
    problems.push(`"${key}" must be a list of strings, not ${describeJson(value)}`);
    return undefined;
  };
  const bool = (key: string): boolean | undefined => {
    const value = json[key];
    if (value === undefined || value === null) return undefined;
    if (typeof value === 'boolean') return value;
    problems.push(`"${key}" must be true or false, not ${describeJson(value)}`);
    return undefined;
  };
  const insecureRegistries = strings('insecure-registries');
  const hosts = strings('hosts');
  const tls = bool('tls');
  const tlsverify = bool('tlsverify');
  if (problems.length > 0) return { ok: false, error: { message: problems.join('; ') } };
  if (insecureRegistries !== undefined) settings.insecureRegistries = insecureRegistries;
  if (hosts !== undefined) settings.hosts = hosts;
  if (tls !== undefined) settings.tls = tls;
  if (tlsverify !== undefined) settings.tlsverify = tlsverify;
  return { ok: true, settings, json };
}

function describeJson(value: unknown): string {
  if (Array.isArray(value)) return 'a list holding something other than strings';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  if (typeof value === 'object') return 'an object';
  return `${goKind(value)} ${JSON.stringify(value)}`;
}

/**
 * The text of a config file as dockerd decodes it: a UTF-8 BOM is dropped, a UTF-16 BOM
 * (Notepad and PowerShell write them) selects UTF-16; what remains must be valid UTF-8.
 */
function decodeConfigBytes(bytes: Buffer): { text: string } | { error: DockerDaemonJsonError } {
  if (bytes[0] === 0xff && bytes[1] === 0xfe)
    return { text: bytes.subarray(2).toString('utf16le') };
  if (bytes[0] === 0xfe && bytes[1] === 0xff) {
    const swapped = Buffer.from(bytes.subarray(2, 2 + ((bytes.length - 2) & ~1)));
    return { text: swapped.swap16().toString('utf16le') };
  }
  const body =
    bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes;
  const bad = invalidUtf8At(body);
  if (bad !== undefined) {
    const before = body.subarray(0, bad).toString('utf8');
    const position = textPosition(before, before.length);
    return {
      error: {
        message: `failed to decode configuration JSON at offset ${bad}: not valid UTF-8`,
        ...position,
      },
    };
  }
  return { text: body.toString('utf8') };
}

/** Index of the first byte that does not start a well-formed UTF-8 sequence, or undefined. */
function invalidUtf8At(bytes: Buffer): number | undefined {
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i] ?? 0;
    let length: number;
    let min: number;
    if (b < 0x80) {
      i++;
      continue;
    } else if (b >= 0xc2 && b <= 0xdf) [length, min] = [2, 0x80];
    else if (b >= 0xe0 && b <= 0xef) [length, min] = [3, 0x800];
    else if (b >= 0xf0 && b <= 0xf4) [length, min] = [4, 0x10000];
    else return i;
    let code = b & (0xff >> (length + 1));
    for (let k = 1; k < length; k++) {
      const next = bytes[i + k];
      if (next === undefined || (next & 0xc0) !== 0x80) return i;
      code = (code << 6) | (next & 0x3f);
    }
    if (code < min || code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff)) return i;
    i += length;
  }
  return undefined;
}

// ---- Go's encoding/json scanner (scanner.go), state for state ----

/** One byte in; the error's context ("after object key") or null when the byte fits. */
type Step = (c: number) => string | null;

/**
 * The first syntax error Go's json.Unmarshal reports for a text, with dockerd's wording and
 * the position of the offending character; undefined when the text is valid JSON.
 */
export function goJsonSyntaxError(text: string): DockerDaemonJsonError | undefined {
  const bytes = Buffer.from(text, 'utf8');
  const scanner = new GoJsonScanner();
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] ?? 0;
    const error = scanner.step(c);
    if (error !== null) {
      // The offending byte always starts a character (Go fails on a multi-byte one's first).
      const before = bytes.subarray(0, i).toString('utf8');
      const position = textPosition(before, before.length);
      return { message: `invalid character ${goQuoteByte(c)} ${error}`, ...position };
    }
  }
  if (!scanner.atEnd()) {
    const position = textPosition(text, text.length);
    return { message: 'unexpected end of JSON input', ...position };
  }
  return undefined;
}

/** What the innermost open object or array expects next (Go's parseState). */
const Expect = { objectKey: 0, objectValue: 1, arrayValue: 2 } as const;

class GoJsonScanner {
  private readonly stack: number[] = [];
  private endTop = false;
  step: Step = (c) => this.beginValue(c);

  atEnd(): boolean {
    if (this.endTop) return true;
    // Go feeds a space at EOF: that ends a trailing number ("1" is a whole document).
    const error = this.step(0x20);
    return error === null && this.endTop;
  }

  private to(next: Step): null {
    this.step = next;
    return null;
  }

  private beginValueOrEmpty(c: number): string | null {
    if (isSpace(c)) return null;
    if (c === 0x5d /* ] */) return this.endValue(c);
    return this.beginValue(c);
  }

  private beginValue(c: number): string | null {
    if (isSpace(c)) return null;
    switch (c) {
      case 0x7b /* { */:
        this.stack.push(Expect.objectKey);
        return this.to((x) => this.beginStringOrEmpty(x));
      case 0x5b /* [ */:
        this.stack.push(Expect.arrayValue);
        return this.to((x) => this.beginValueOrEmpty(x));
      case 0x22 /* " */:
        return this.to((x) => this.inString(x));
      case 0x2d /* - */:
        return this.to((x) => this.neg(x));
      case 0x30 /* 0 */:
        return this.to((x) => this.zero(x));
      case 0x74 /* t */:
        return this.to(this.literal('true', 1));
      case 0x66 /* f */:
        return this.to(this.literal('false', 1));
      case 0x6e /* n */:
        return this.to(this.literal('null', 1));
    }
    if (isDigit1to9(c)) return this.to((x) => this.one(x));
    return 'looking for beginning of value';
  }

  private beginStringOrEmpty(c: number): string | null {
    if (isSpace(c)) return null;
    if (c === 0x7d /* } */) {
      this.stack[this.stack.length - 1] = Expect.objectValue;
      return this.endValue(c);
    }
    return this.beginString(c);
  }

  private beginString(c: number): string | null {
    if (isSpace(c)) return null;
    if (c === 0x22) return this.to((x) => this.inString(x));
    return 'looking for beginning of object key string';
  }

  private endValue(c: number): string | null {
    const top = this.stack.length - 1;
    if (top < 0) {
      this.endTop = true;
      this.step = (x) => this.endOfTop(x);
      return this.endOfTop(c);
    }
    if (isSpace(c)) return this.to((x) => this.endValue(x));
    switch (this.stack[top]) {
      case Expect.objectKey:
        if (c === 0x3a /* : */) {
          this.stack[top] = Expect.objectValue;
          return this.to((x) => this.beginValue(x));
        }
        return 'after object key';
      case Expect.objectValue:
        if (c === 0x2c /* , */) {
          this.stack[top] = Expect.objectKey;
          return this.to((x) => this.beginString(x));
        }
        if (c === 0x7d) return this.pop();
        return 'after object key:value pair';
      default:
        if (c === 0x2c) return this.to((x) => this.beginValue(x));
        if (c === 0x5d) return this.pop();
        return 'after array element';
    }
  }

  private pop(): null {
    this.stack.pop();
    if (this.stack.length === 0) {
      this.endTop = true;
      return this.to((x) => this.endOfTop(x));
    }
    return this.to((x) => this.endValue(x));
  }

  private endOfTop(c: number): string | null {
    return isSpace(c) ? null : 'after top-level value';
  }

  private inString(c: number): string | null {
    if (c === 0x22) return this.to((x) => this.endValue(x));
    if (c === 0x5c /* \ */) return this.to((x) => this.inStringEscape(x));
    if (c < 0x20) return 'in string literal';
    return null;
  }

  private inStringEscape(c: number): string | null {
    // b f n r t \ / "
    if ([0x62, 0x66, 0x6e, 0x72, 0x74, 0x5c, 0x2f, 0x22].includes(c))
      return this.to((x) => this.inString(x));
    if (c === 0x75 /* u */) return this.to(this.hexEscape(4));
    return 'in string escape code';
  }

  private hexEscape(left: number): Step {
    return (c) => {
      if (!isHex(c)) return 'in \\u hexadecimal character escape';
      return this.to(left === 1 ? (x) => this.inString(x) : this.hexEscape(left - 1));
    };
  }

  private neg(c: number): string | null {
    if (c === 0x30) return this.to((x) => this.zero(x));
    if (isDigit1to9(c)) return this.to((x) => this.one(x));
    return 'in numeric literal';
  }

  private one(c: number): string | null {
    if (isDigit(c)) return null;
    return this.zero(c);
  }

  private zero(c: number): string | null {
    if (c === 0x2e /* . */) return this.to((x) => this.dot(x));
    if (c === 0x65 || c === 0x45) return this.to((x) => this.exponent(x));
    return this.endValue(c);
  }

  private dot(c: number): string | null {
    if (isDigit(c)) return this.to((x) => this.dotDigits(x));
    return 'after decimal point in numeric literal';
  }

  private dotDigits(c: number): string | null {
    if (isDigit(c)) return null;
    if (c === 0x65 || c === 0x45) return this.to((x) => this.exponent(x));
    return this.endValue(c);
  }

  private exponent(c: number): string | null {
    if (c === 0x2b || c === 0x2d) return this.to((x) => this.exponentSign(x));
    return this.exponentSign(c);
  }

  private exponentSign(c: number): string | null {
    if (isDigit(c)) return this.to((x) => this.exponentDigits(x));
    return 'in exponent of numeric literal';
  }

  private exponentDigits(c: number): string | null {
    if (isDigit(c)) return null;
    return this.endValue(c);
  }

  /** true, false, null after their first letter. */
  private literal(word: string, index: number): Step {
    return (c) => {
      const expected = word.charCodeAt(index);
      if (c !== expected) return `in literal ${word} (expecting '${word[index] ?? ''}')`;
      return this.to(
        index === word.length - 1 ? (x) => this.endValue(x) : this.literal(word, index + 1),
      );
    };
  }
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a;
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isDigit1to9(c: number): boolean {
  return c >= 0x31 && c <= 0x39;
}
function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
}

/**
 * Go's quoteChar: a byte as '<char>' with strconv.Quote's escapes. A byte >= 0x80 is shown as
 * the Latin-1 character of that value, as Go's string(rune(byte)) does.
 */
export function goQuoteByte(c: number): string {
  if (c === 0x27) return `'\\''`;
  if (c === 0x22) return `'"'`;
  const named: Record<number, string> = {
    0x07: '\\a',
    0x08: '\\b',
    0x0c: '\\f',
    0x0a: '\\n',
    0x0d: '\\r',
    0x09: '\\t',
    0x0b: '\\v',
    0x5c: '\\\\',
  };
  const hex = c.toString(16).padStart(2, '0');
  let body: string;
  if (named[c] !== undefined) body = named[c];
  else if (c < 0x20 || c === 0x7f) body = `\\x${hex}`;
  // C1 controls, NBSP and the soft hyphen are not printable to Go.
  else if ((c >= 0x80 && c <= 0xa0) || c === 0xad) body = `\\u00${hex}`;
  else body = String.fromCharCode(c);
  return `'${body}'`;
}

// ---- insecure-registries and hosts entries ----

export type InsecureRegistryEntry =
  | {
      entry: string;
      kind: 'cidr';
      prefixLength: number;
      loopback: boolean;
      /** A /0: every registry but Docker Hub. */
      everything: boolean;
    }
  | { entry: string; kind: 'host'; host: string; loopback: boolean }
  | { entry: string; kind: 'invalid'; reason: string };

/**
 * One insecure-registries entry as dockerd's loadInsecureRegistries reads it: an http:// or
 * https:// prefix is dropped (with a warning), any other "://" is refused; a CIDR is a network
 * whose registries (by their resolved address) are insecure; anything else is host[:port].
 */
export function classifyInsecureRegistry(entry: string): InsecureRegistryEntry {
  let value = entry;
  if (value.startsWith('-') || value.endsWith('-'))
    return { entry, kind: 'invalid', reason: 'cannot begin or end with a hyphen' };
  const scheme = /^([^:/]*):\/\//.exec(value);
  if (scheme !== null || value.includes('://')) {
    const name = (scheme?.[1] ?? '').toLowerCase();
    if (name !== 'http' && name !== 'https')
      return { entry, kind: 'invalid', reason: "should not contain '://'" };
    value = value.slice((scheme?.[0] ?? '').length);
  }
  const slash = value.indexOf('/');
  if (slash >= 0) {
    const address = value.slice(0, slash);
    const bits = value.slice(slash + 1);
    const family = isIPv4(address) ? 32 : isIPv6(address) ? 128 : 0;
    if (family > 0 && /^\d{1,3}$/.test(bits) && Number(bits) <= family) {
      const prefixLength = Number(bits);
      const loopback =
        family === 32
          ? prefixLength >= 8 && address.split('.')[0] === '127'
          : prefixLength === 128 && isLoopbackHost(`[${address}]`);
      return { entry, kind: 'cidr', prefixLength, loopback, everything: prefixLength === 0 };
    }
    // Not a CIDR, and a host[:port] has no "/": dockerd refuses it.
    return { entry, kind: 'invalid', reason: 'is neither a CIDR nor host[:port]' };
  }
  return { entry, kind: 'host', host: value, loopback: isLoopbackHost(value) };
}

export type DockerListenAddress =
  | {
      entry: string;
      proto: 'tcp';
      /** host:port as dockerd binds it (its defaults filled in). */
      address: string;
      loopback: boolean;
      allInterfaces: boolean;
    }
  | { entry: string; proto: string };

/**
 * One "hosts" entry (-H) as dockerd's parseDockerDaemonHost reads it: no "://" means tcp;
 * "tcp://" alone, or an empty host, means localhost; the port defaults to 2375.
 */
export function parseDockerListenAddress(entry: string): DockerListenAddress {
  const value = entry.trim();
  if (value === '') return { entry, proto: 'unix' };
  const sep = value.indexOf('://');
  const proto = sep < 0 ? 'tcp' : value.slice(0, sep);
  if (proto !== 'tcp') return { entry, proto };
  let rest = sep < 0 ? value : value.slice(sep + 3);
  let host: string;
  let port = '2375';
  if (rest.startsWith('[')) {
    const close = rest.indexOf(']');
    host = close < 0 ? rest.slice(1) : rest.slice(1, close);
    rest = close < 0 ? '' : rest.slice(close + 1);
    const portMatch = /^:(\d*)/.exec(rest);
    if (portMatch?.[1]) port = portMatch[1];
  } else {
    const hostPort = rest.split('/')[0] ?? '';
    const colon = hostPort.lastIndexOf(':');
    host = colon < 0 ? hostPort : hostPort.slice(0, colon);
    if (colon >= 0 && hostPort.slice(colon + 1) !== '') port = hostPort.slice(colon + 1);
  }
  if (host === '') host = 'localhost';
  const bracketed = host.includes(':') ? `[${host}]` : host;
  return {
    entry,
    proto: 'tcp',
    address: `${bracketed}:${port}`,
    loopback: isLoopbackHost(bracketed),
    allInterfaces: host === '0.0.0.0' || host === '::',
  };
}
