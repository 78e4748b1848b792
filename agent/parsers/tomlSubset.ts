// A TOML reader for the runtime configuration files the runtime-config check looks into
// (containerd's config.toml and hosts.toml, containers-registries.conf). It covers TOML 1.0 but
// for dates and times: tables, arrays of tables, dotted and quoted keys, all four string forms,
// booleans, numbers, arrays and inline tables, comments. Pure: text in, document out.
//
// Honest about its limits: a date or time value is reported as `unsupported` (it is valid TOML,
// just not read) and parsing goes on. A syntax error is reported as `invalid` and parsing
// stops there: go-toml, which containerd uses, rejects the whole file, so nothing after the
// error (or before it) is in effect, and guessing past it could read a string's contents as
// settings.

import { codePoints } from './textPosition.ts';

export type TomlValue = string | number | boolean | TomlValue[] | TomlTable;
export interface TomlTable {
  [key: string]: TomlValue;
}

/** One key = value, with its full path from the root (array-of-tables elements by index). */
export interface TomlEntry {
  path: string[];
  value: TomlValue;
  /** 1-based line of the key. */
  line: number;
}

/** One [table] or [[array of tables]] header. */
export interface TomlHeader {
  path: string[];
  line: number;
}

export interface TomlProblem {
  line: number;
  column: number;
  reason: string;
  /** invalid: not TOML (the file is rejected as a whole); unsupported: valid TOML this reader skips. */
  kind: 'invalid' | 'unsupported';
}

export interface TomlDocument {
  root: TomlTable;
  entries: TomlEntry[];
  headers: TomlHeader[];
  problems: TomlProblem[];
}

class TomlSyntaxError extends Error {
  readonly at: number;

  constructor(reason: string, at: number) {
    super(reason);
    this.at = at;
  }
}

/** Stands for a value this reader skipped (reported as unsupported); never stored. */
const SKIPPED: TomlTable = Object.freeze(Object.create(null) as TomlTable);

const BARE_KEY = /[A-Za-z0-9_-]/;
const INTEGER = /^[+-]?(?:0|[1-9](?:_?[0-9])*)$/;
const PREFIXED_INTEGER =
  /^(?:0x[0-9A-Fa-f](?:_?[0-9A-Fa-f])*|0o[0-7](?:_?[0-7])*|0b[01](?:_?[01])*)$/;
const FLOAT =
  /^[+-]?(?:0|[1-9](?:_?[0-9])*)(?:\.[0-9](?:_?[0-9])*(?:[eE][+-]?[0-9](?:_?[0-9])*)?|[eE][+-]?[0-9](?:_?[0-9])*)$/;
const SPECIAL_FLOAT = /^[+-]?(?:inf|nan)$/;
const DATE_OR_TIME = /^(?:\d{4}-\d{2}-\d{2}|\d{2}:\d{2})/;

export function parseTomlSubset(text: string): TomlDocument {
  return new Reader(text.startsWith('\uFEFF') ? text.slice(1) : text).read();
}

/** The value at a path of plain keys, or undefined (an array of tables is not walked into). */
export function tomlGet(table: TomlTable, path: readonly string[]): TomlValue | undefined {
  let current: TomlValue | undefined = table;
  for (const key of path) {
    if (!isTomlTable(current) || !Object.hasOwn(current, key)) return undefined;
    current = current[key];
  }
  return current;
}

export function isTomlTable(value: TomlValue | undefined): value is TomlTable {
  return typeof value === 'object' && !Array.isArray(value);
}

class Reader {
  private readonly text: string;
  private pos = 0;
  private readonly lineStarts: number[] = [0];
  private readonly root: TomlTable = newTable();
  private readonly entries: TomlEntry[] = [];
  private readonly headers: TomlHeader[] = [];
  private readonly problems: TomlProblem[] = [];
  /** Tables given their own [header]: a second header for one is an error. */
  private readonly declared = new WeakSet<TomlTable>();
  /** Inline tables and arrays are complete as written: nothing may add keys to them. */
  private readonly sealed = new WeakSet<object>();
  /** Arrays made by [[header]] (as opposed to array values). */
  private readonly tableArrays = new WeakSet<TomlValue[]>();
  private current: TomlTable = this.root;
  private currentPath: string[] = [];

  constructor(text: string) {
    this.text = text;
    for (let i = 0; i < text.length; i++) if (text[i] === '\n') this.lineStarts.push(i + 1);
  }

  read(): TomlDocument {
    try {
      for (;;) {
        this.skipBlankLinesAndComments();
        if (this.pos >= this.text.length) break;
        if (this.peek() === '[') this.header();
        else this.keyValue(this.current, this.currentPath);
        this.endOfLine();
      }
    } catch (error) {
      if (!(error instanceof TomlSyntaxError)) throw error;
      this.problem(error.at, 'invalid', error.message);
    }
    return {
      root: this.root,
      entries: this.entries,
      headers: this.headers,
      problems: this.problems,
    };
  }

  private problem(at: number, kind: TomlProblem['kind'], reason: string): void {
    const { line, column } = this.position(at);
    this.problems.push({ line, column, reason, kind });
  }

  private position(at: number): { line: number; column: number } {
    let low = 0;
    let high = this.lineStarts.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >> 1;
      if ((this.lineStarts[mid] ?? 0) <= at) low = mid;
      else high = mid - 1;
    }
    const start = this.lineStarts[low] ?? 0;
    return { line: low + 1, column: codePoints(this.text, start, at) + 1 };
  }

  private lineOf(at: number): number {
    return this.position(at).line;
  }

  private peek(offset = 0): string {
    return this.text[this.pos + offset] ?? '';
  }

  private fail(reason: string, at = this.pos): never {
    throw new TomlSyntaxError(reason, at);
  }

  private skipSpaces(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }

  /** After a comment's "#": control characters other than tab are not allowed in it. */
  private skipComment(): void {
    while (this.pos < this.text.length && this.peek() !== '\n') {
      if (this.peek() === '\r' && this.peek(1) === '\n') break;
      if (isControl(this.peek())) this.fail('control character in a comment');
      this.pos++;
    }
  }

  private newline(): boolean {
    if (this.peek() === '\n') {
      this.pos++;
      return true;
    }
    if (this.peek() === '\r' && this.peek(1) === '\n') {
      this.pos += 2;
      return true;
    }
    return false;
  }

  private skipBlankLinesAndComments(): void {
    for (;;) {
      this.skipSpaces();
      if (this.peek() === '#') this.skipComment();
      if (!this.newline()) return;
    }
  }

  private endOfLine(): void {
    this.skipSpaces();
    if (this.peek() === '#') this.skipComment();
    if (this.pos < this.text.length && !this.newline())
      this.fail(`expected the end of the line, found ${describe(this.peek())}`);
  }

  private header(): void {
    const at = this.pos;
    const isArray = this.peek(1) === '[';
    this.pos += isArray ? 2 : 1;
    this.skipSpaces();
    const path = this.key();
    this.skipSpaces();
    if (isArray ? this.text.slice(this.pos, this.pos + 2) !== ']]' : this.peek() !== ']')
      this.fail(`expected "${isArray ? ']]' : ']'}" to close the table header`);
    this.pos += isArray ? 2 : 1;
    const { table, fullPath } = isArray ? this.appendTable(path, at) : this.declareTable(path, at);
    this.current = table;
    this.currentPath = fullPath;
    this.headers.push({ path: fullPath, line: this.lineOf(at) });
  }

  /** Walk to (creating) the table holding a header's last key; arrays of tables by their last element. */
  private walk(path: string[], at: number): { parent: TomlTable; parentPath: string[] } {
    let table = this.root;
    const fullPath: string[] = [];
    for (const key of path.slice(0, -1)) {
      let next = Object.hasOwn(table, key) ? table[key] : undefined;
      if (next === undefined) {
        next = newTable();
        table[key] = next;
      }
      fullPath.push(key);
      if (Array.isArray(next) && this.tableArrays.has(next)) {
        fullPath.push(String(next.length - 1));
        next = next[next.length - 1];
      }
      if (!isTomlTable(next) || this.sealed.has(next))
        this.fail(`"${fullPath.join('.')}" is already a value, not a table`, at);
      table = next;
    }
    return { parent: table, parentPath: fullPath };
  }

  private declareTable(path: string[], at: number): { table: TomlTable; fullPath: string[] } {
    const { parent, parentPath } = this.walk(path, at);
    const key = path[path.length - 1] ?? '';
    const fullPath = [...parentPath, key];
    const existing = Object.hasOwn(parent, key) ? parent[key] : undefined;
    if (existing === undefined) {
      const table = newTable();
      parent[key] = table;
      this.declared.add(table);
      return { table, fullPath };
    }
    if (!isTomlTable(existing) || this.sealed.has(existing))
      this.fail(`"${fullPath.join('.')}" is already a value, not a table`, at);
    if (this.declared.has(existing)) this.fail(`table [${fullPath.join('.')}] defined twice`, at);
    this.declared.add(existing);
    return { table: existing, fullPath };
  }

  private appendTable(path: string[], at: number): { table: TomlTable; fullPath: string[] } {
    const { parent, parentPath } = this.walk(path, at);
    const key = path[path.length - 1] ?? '';
    let array = Object.hasOwn(parent, key) ? parent[key] : undefined;
    if (array === undefined) {
      array = [];
      this.tableArrays.add(array);
      parent[key] = array;
    }
    if (!Array.isArray(array) || !this.tableArrays.has(array))
      this.fail(
        `"${[...parentPath, key].join('.')}" is already a value, not an array of tables`,
        at,
      );
    const table = newTable();
    array.push(table);
    return { table, fullPath: [...parentPath, key, String(array.length - 1)] };
  }

  private keyValue(table: TomlTable, tablePath: string[]): void {
    const at = this.pos;
    const path = this.key();
    this.skipSpaces();
    if (this.peek() !== '=')
      this.fail(`expected "=" after the key, found ${describe(this.peek())}`);
    this.pos++;
    this.skipSpaces();
    const value = this.value();
    this.assign(table, tablePath, path, value, at);
  }

  private assign(
    table: TomlTable,
    tablePath: string[],
    path: string[],
    value: TomlValue,
    at: number,
  ): void {
    let target = table;
    for (const key of path.slice(0, -1)) {
      let next = Object.hasOwn(target, key) ? target[key] : undefined;
      if (next === undefined) {
        next = newTable();
        target[key] = next;
      }
      if (!isTomlTable(next) || this.sealed.has(next) || this.declared.has(next))
        this.fail(`"${key}" is already defined`, at);
      target = next;
    }
    const last = path[path.length - 1] ?? '';
    if (Object.hasOwn(target, last)) this.fail(`duplicate key "${[...path].join('.')}"`, at);
    if (value === SKIPPED) return;
    target[last] = value;
    this.record([...tablePath, ...path], value, this.lineOf(at));
  }

  /** Entries for a value and, for an inline table, for each key inside it (same line). */
  private record(path: string[], value: TomlValue, line: number): void {
    this.entries.push({ path, value, line });
    if (isTomlTable(value))
      for (const [key, inner] of Object.entries(value)) this.record([...path, key], inner, line);
  }

  /** A dotted key: simple keys joined by ".", with optional spaces around the dots. */
  private key(): string[] {
    const parts = [this.simpleKey()];
    for (;;) {
      this.skipSpaces();
      if (this.peek() !== '.') return parts;
      this.pos++;
      this.skipSpaces();
      parts.push(this.simpleKey());
    }
  }

  private simpleKey(): string {
    const c = this.peek();
    if (c === '"') {
      if (this.peek(1) === '"' && this.peek(2) === '"')
        this.fail('a key cannot be a multi-line string');
      return this.basicString();
    }
    if (c === "'") {
      if (this.peek(1) === "'" && this.peek(2) === "'")
        this.fail('a key cannot be a multi-line string');
      return this.literalString();
    }
    const start = this.pos;
    while (BARE_KEY.test(this.peek())) this.pos++;
    if (this.pos === start) this.fail(`expected a key, found ${describe(c)}`);
    return this.text.slice(start, this.pos);
  }

  private value(): TomlValue {
    const c = this.peek();
    if (c === '"')
      return this.peek(1) === '"' && this.peek(2) === '"'
        ? this.multiLineBasicString()
        : this.basicString();
    if (c === "'")
      return this.peek(1) === "'" && this.peek(2) === "'"
        ? this.multiLineLiteralString()
        : this.literalString();
    if (c === '[') return this.array();
    if (c === '{') return this.inlineTable();
    return this.scalar();
  }

  private scalar(): TomlValue {
    const start = this.pos;
    while (this.pos < this.text.length && /[0-9A-Za-z_+\-.:]/.test(this.peek())) this.pos++;
    let token = this.text.slice(start, this.pos);
    if (token === '') this.fail(`expected a value, found ${describe(this.peek())}`, start);
    if (token === 'true') return true;
    if (token === 'false') return false;
    if (DATE_OR_TIME.test(token)) {
      // A date-time may have a space between date and time: "1979-05-27 07:32:00Z".
      if (
        /^\d{4}-\d{2}-\d{2}$/.test(token) &&
        this.peek() === ' ' &&
        /^\d{2}:/.test(this.text.slice(this.pos + 1, this.pos + 4))
      ) {
        this.pos++;
        while (this.pos < this.text.length && /[0-9A-Za-z_+\-.:]/.test(this.peek())) this.pos++;
        token = this.text.slice(start, this.pos);
      }
      this.problem(start, 'unsupported', `date/time value ${token} is not read`);
      return SKIPPED;
    }
    const plain = token.replaceAll('_', '');
    // Number() reads 0x/0o/0b prefixes itself; TOML allows no sign on them.
    if (INTEGER.test(token) || FLOAT.test(token) || PREFIXED_INTEGER.test(token))
      return Number(plain);
    if (SPECIAL_FLOAT.test(token)) {
      const magnitude = token.endsWith('inf') ? Infinity : NaN;
      return token.startsWith('-') ? -magnitude : magnitude;
    }
    this.fail(`invalid value ${JSON.stringify(token)}`, start);
  }

  private array(): TomlValue[] {
    this.pos++; // [
    const values: TomlValue[] = [];
    for (;;) {
      this.skipBlankLinesAndComments();
      if (this.peek() === ']') break;
      const value = this.value();
      if (value !== SKIPPED) values.push(value);
      this.skipBlankLinesAndComments();
      if (this.peek() === ',') {
        this.pos++;
        continue;
      }
      if (this.peek() !== ']')
        this.fail(`expected "," or "]" in an array, found ${describe(this.peek())}`);
      break;
    }
    this.pos++; // ]
    this.sealed.add(values);
    return values;
  }

  private inlineTable(): TomlTable {
    const open = this.pos;
    this.pos++; // {
    const table = newTable();
    this.skipSpaces();
    if (this.peek() === '}') {
      this.pos++;
      this.sealed.add(table);
      return table;
    }
    for (;;) {
      this.skipSpaces();
      if (this.peek() === '\n' || this.peek() === '\r')
        this.fail('an inline table must be on one line');
      const at = this.pos;
      const path = this.key();
      this.skipSpaces();
      if (this.peek() !== '=')
        this.fail(`expected "=" after the key, found ${describe(this.peek())}`);
      this.pos++;
      this.skipSpaces();
      const value = this.value();
      // Keys inside an inline table are recorded with it (record() walks into it), not here.
      if (value !== SKIPPED)
        setInline(table, path, value, () =>
          this.fail(`duplicate key "${path.join('.')}" in an inline table`, at),
        );
      this.skipSpaces();
      if (this.peek() === ',') {
        this.pos++;
        continue;
      }
      if (this.peek() === '}') break;
      this.fail(
        this.peek() === '\n' || this.peek() === '\r'
          ? 'an inline table must be on one line'
          : `expected "," or "}" in an inline table, found ${describe(this.peek())}`,
        this.pos === this.text.length ? open : this.pos,
      );
    }
    this.pos++; // }
    this.sealed.add(table);
    return table;
  }

  private basicString(): string {
    const open = this.pos;
    this.pos++; // "
    let out = '';
    for (;;) {
      const c = this.peek();
      if (c === '' || c === '\n' || (c === '\r' && this.peek(1) === '\n'))
        this.fail('unterminated string', open);
      if (c === '"') {
        this.pos++;
        return out;
      }
      if (c === '\\') {
        out += this.escape();
        continue;
      }
      if (isControl(c)) this.fail('control character in a string');
      out += c;
      this.pos++;
    }
  }

  private multiLineBasicString(): string {
    const open = this.pos;
    this.pos += 3;
    this.newline(); // a newline right after the opening quotes is trimmed
    let out = '';
    for (;;) {
      if (this.pos >= this.text.length) this.fail('unterminated multi-line string', open);
      if (this.text.startsWith('"""', this.pos)) {
        // Up to two quotes may sit right before the closing three.
        let quotes = 3;
        while (quotes < 5 && this.peek(quotes) === '"') quotes++;
        out += '"'.repeat(quotes - 3);
        this.pos += quotes;
        return out;
      }
      const c = this.peek();
      if (c === '\\') {
        // A "line ending backslash" swallows the newline and the whitespace after it.
        let look = this.pos + 1;
        while (this.text[look] === ' ' || this.text[look] === '\t') look++;
        if (
          this.text[look] === '\n' ||
          (this.text[look] === '\r' && this.text[look + 1] === '\n')
        ) {
          this.pos = look;
          while (/[ \t\r\n]/.test(this.peek())) this.pos++;
          continue;
        }
        out += this.escape();
        continue;
      }
      if (this.newline()) {
        out += '\n';
        continue;
      }
      if (isControl(c)) this.fail('control character in a string');
      out += c;
      this.pos++;
    }
  }

  private literalString(): string {
    const open = this.pos;
    this.pos++; // '
    const start = this.pos;
    for (;;) {
      const c = this.peek();
      if (c === '' || c === '\n' || (c === '\r' && this.peek(1) === '\n'))
        this.fail('unterminated string', open);
      if (c === "'") break;
      if (isControl(c)) this.fail('control character in a string');
      this.pos++;
    }
    const value = this.text.slice(start, this.pos);
    this.pos++;
    return value;
  }

  private multiLineLiteralString(): string {
    const open = this.pos;
    this.pos += 3;
    this.newline();
    let out = '';
    for (;;) {
      if (this.pos >= this.text.length) this.fail('unterminated multi-line string', open);
      if (this.text.startsWith("'''", this.pos)) {
        let quotes = 3;
        while (quotes < 5 && this.peek(quotes) === "'") quotes++;
        out += "'".repeat(quotes - 3);
        this.pos += quotes;
        return out;
      }
      if (this.newline()) {
        out += '\n';
        continue;
      }
      const c = this.peek();
      if (isControl(c)) this.fail('control character in a string');
      out += c;
      this.pos++;
    }
  }

  /** At a backslash inside a basic string: the escaped character(s). TOML 1.0's set only. */
  private escape(): string {
    const at = this.pos;
    const c = this.peek(1);
    const simple: Record<string, string> = {
      b: '\b',
      t: '\t',
      n: '\n',
      f: '\f',
      r: '\r',
      '"': '"',
      '\\': '\\',
    };
    if (Object.hasOwn(simple, c)) {
      this.pos += 2;
      return simple[c] ?? '';
    }
    if (c === 'u' || c === 'U') {
      const length = c === 'u' ? 4 : 8;
      const hex = this.text.slice(this.pos + 2, this.pos + 2 + length);
      if (!new RegExp(`^[0-9A-Fa-f]{${length}}$`).test(hex)) this.fail(`invalid \\${c} escape`, at);
      const code = parseInt(hex, 16);
      if (code > 0x10ffff || (code >= 0xd800 && code <= 0xdfff))
        this.fail(`\\${c}${hex} is not a Unicode scalar value`, at);
      this.pos += 2 + length;
      return String.fromCodePoint(code);
    }
    this.fail(`invalid escape ${describe('\\' + c)}`, at);
  }
}

function setInline(
  table: TomlTable,
  path: string[],
  value: TomlValue,
  duplicate: () => never,
): void {
  let target = table;
  for (const key of path.slice(0, -1)) {
    let next = Object.hasOwn(target, key) ? target[key] : undefined;
    if (next === undefined) {
      next = newTable();
      target[key] = next;
    }
    if (!isTomlTable(next)) duplicate();
    target = next;
  }
  const last = path[path.length - 1] ?? '';
  if (Object.hasOwn(target, last)) duplicate();
  target[last] = value;
}

/** A table with no prototype: keys such as "constructor" or "__proto__" are plain keys. */
function newTable(): TomlTable {
  return Object.create(null) as TomlTable;
}

function isControl(c: string): boolean {
  const code = c.charCodeAt(0);
  return (code < 0x20 && c !== '\t') || code === 0x7f;
}

function describe(c: string): string {
  if (c === '') return 'the end of the file';
  if (c === '\n' || c === '\r') return 'the end of the line';
  return JSON.stringify(c);
}
