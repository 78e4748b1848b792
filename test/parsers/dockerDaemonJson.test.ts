import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  classifyInsecureRegistry,
  goJsonSyntaxError,
  goQuoteByte,
  parseDockerDaemonJson,
  parseDockerListenAddress,
} from '../../agent/parsers/dockerDaemonJson.ts';

const utf8 = (text: string) => Buffer.from(text, 'utf8');

test("reads the seed's daemon.json", () => {
  const parsed = parseDockerDaemonJson(
    utf8(
      '{\n    "storage-driver": "overlay2",\n    "insecure-registries": ["docker-registry:5000", "oreo:5000"]\n}\n',
    ),
  );
  assert.deepEqual(parsed, {
    ok: true,
    settings: { insecureRegistries: ['docker-registry:5000', 'oreo:5000'] },
    json: {
      'storage-driver': 'overlay2',
      'insecure-registries': ['docker-registry:5000', 'oreo:5000'],
    },
  });
});

test('reads hosts, tls and tlsverify; null is the same as not set', () => {
  const parsed = parseDockerDaemonJson(
    utf8(
      '{"hosts": ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"], "tls": false, "tlsverify": null}',
    ),
  );
  assert.deepEqual(parsed, {
    ok: true,
    settings: { hosts: ['unix:///var/run/docker.sock', 'tcp://0.0.0.0:2375'], tls: false },
    json: {
      hosts: ['unix:///var/run/docker.sock', 'tcp://0.0.0.0:2375'],
      tls: false,
      tlsverify: null,
    },
  });
});

test("syntax errors: Go's message and the offending character's line and column", () => {
  const cases: [string, string, number, number][] = [
    // The classic: a trailing comma after the last entry.
    [
      '{\n  "insecure-registries": ["oreo:5000"],\n}\n',
      "invalid character '}' looking for beginning of object key string",
      3,
      1,
    ],
    // A missing comma between two keys.
    [
      '{\n  "storage-driver": "overlay2"\n  "insecure-registries": []\n}',
      `invalid character '"' after object key:value pair`,
      3,
      3,
    ],
    ["{'debug': true}", "invalid character '\\'' looking for beginning of object key string", 1, 2],
    ['// comment\n{}', "invalid character '/' looking for beginning of value", 1, 1],
    ['{"debug": tru}', "invalid character '}' in literal true (expecting 'e')", 1, 14],
    ['{"a": [1 2]}', "invalid character '2' after array element", 1, 10],
    ['{"a" 1}', "invalid character '1' after object key", 1, 6],
    ['{"a": 01}', "invalid character '1' after object key:value pair", 1, 8],
    ['{"a": 1.}', "invalid character '}' after decimal point in numeric literal", 1, 9],
    ['{"a": "x\ty"}', "invalid character '\\t' in string literal", 1, 9],
    ['{"a": "\\x"}', "invalid character 'x' in string escape code", 1, 9],
    ['{"a": "\\u12g4"}', "invalid character 'g' in \\u hexadecimal character escape", 1, 12],
    ['{} {}', "invalid character '{' after top-level value", 1, 4],
    ['{"é": 1,, }', "invalid character ',' looking for beginning of object key string", 1, 9],
    // Columns count characters: an emoji (two UTF-16 units, four bytes) is one column.
    ['{"😀": 1,, }', "invalid character ',' looking for beginning of object key string", 1, 9],
  ];
  for (const [text, message, line, column] of cases) {
    assert.deepEqual(goJsonSyntaxError(text), { message, line, column }, text);
  }
});

test('the end of the input inside a value is "unexpected end of JSON input", at the end', () => {
  assert.deepEqual(goJsonSyntaxError('{\n "hosts": ["tcp://0.0.0.0'), {
    message: 'unexpected end of JSON input',
    line: 2,
    column: 26,
  });
  assert.equal(goJsonSyntaxError('1'), undefined);
  assert.equal(goJsonSyntaxError(' {"a": [1e5, -0.5, true, null, {}]} \n'), undefined);
});

test("Go's quoting of the offending byte", () => {
  assert.equal(goQuoteByte(0x0a), "'\\n'");
  assert.equal(goQuoteByte(0x01), "'\\x01'");
  assert.equal(goQuoteByte(0x5c), "'\\\\'");
  // The first byte of a UTF-8 sequence, shown as Go's string(rune(byte)) does.
  assert.equal(goQuoteByte(0xc3), "'Ã'");
  assert.equal(goQuoteByte(0xa0), "'\\u00a0'");
});

test('a non-object document is refused as dockerd refuses it; null and empty are empty', () => {
  assert.deepEqual(parseDockerDaemonJson(utf8('["oreo:5000"]')), {
    ok: false,
    error: {
      message: 'json: cannot unmarshal array into Go value of type map[string]interface {}',
    },
  });
  assert.deepEqual(parseDockerDaemonJson(utf8('null')), { ok: true, settings: {}, json: {} });
  assert.deepEqual(parseDockerDaemonJson(utf8(' \n\t')), { ok: true, settings: {}, json: {} });
});

test('byte-order marks: UTF-8 and UTF-16 files read as dockerd reads them', () => {
  const json = '{"insecure-registries": ["oreo:5000"]}';
  const expected = {
    ok: true,
    settings: { insecureRegistries: ['oreo:5000'] },
    json: { 'insecure-registries': ['oreo:5000'] },
  };
  assert.deepEqual(
    parseDockerDaemonJson(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8(json)])),
    expected,
  );
  const le = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(json, 'utf16le')]);
  assert.deepEqual(parseDockerDaemonJson(le), expected);
  const be = Buffer.concat([Buffer.from([0xfe, 0xff]), Buffer.from(json, 'utf16le').swap16()]);
  assert.deepEqual(parseDockerDaemonJson(be), expected);
});

test('invalid UTF-8 is refused with its offset', () => {
  const parsed = parseDockerDaemonJson(Buffer.from([0x7b, 0x0a, 0x22, 0xff, 0x22, 0x7d]));
  assert.deepEqual(parsed, {
    ok: false,
    error: {
      message: 'failed to decode configuration JSON at offset 3: not valid UTF-8',
      line: 2,
      column: 2,
    },
  });
});

test('a wrong type for a key read here is an error (dockerd cannot decode it either)', () => {
  const parsed = parseDockerDaemonJson(
    utf8('{"insecure-registries": "oreo:5000", "tlsverify": "yes"}'),
  );
  assert.deepEqual(parsed, {
    ok: false,
    error: {
      message:
        '"insecure-registries" must be a list of strings, not the string "oreo:5000"; "tlsverify" must be true or false, not the string "yes"',
    },
  });
});

test('insecure-registries entries: CIDRs, host[:port], loopback, everything, refused', () => {
  const kinds = (entry: string) => {
    const c = classifyInsecureRegistry(entry);
    if (c.kind === 'cidr')
      return `cidr/${c.prefixLength} loopback=${c.loopback} all=${c.everything}`;
    if (c.kind === 'host') return `host ${c.host} loopback=${c.loopback}`;
    return `invalid: ${c.reason}`;
  };
  assert.deepEqual(
    [
      '127.0.0.0/8',
      '127.0.0.1/32',
      '::1/128',
      '10.0.0.0/8',
      '0.0.0.0/0',
      '::/0',
      '127.0.0.0/7',
      'localhost:5000',
      'LOCALHOST',
      '127.0.0.1:5000',
      '[::1]:5000',
      'docker-registry:5000',
      'http://oreo:5000',
      'ftp://oreo:5000',
      '10.0.0.0/33',
      '-oreo',
    ].map(kinds),
    [
      'cidr/8 loopback=true all=false',
      'cidr/32 loopback=true all=false',
      'cidr/128 loopback=true all=false',
      'cidr/8 loopback=false all=false',
      'cidr/0 loopback=false all=true',
      'cidr/0 loopback=false all=true',
      'cidr/7 loopback=false all=false',
      'host localhost:5000 loopback=true',
      'host LOCALHOST loopback=true',
      'host 127.0.0.1:5000 loopback=true',
      'host [::1]:5000 loopback=true',
      'host docker-registry:5000 loopback=false',
      'host oreo:5000 loopback=false',
      "invalid: should not contain '://'",
      'invalid: is neither a CIDR nor host[:port]',
      'invalid: cannot begin or end with a hyphen',
    ],
  );
});

test('hosts entries as dockerd reads them', () => {
  const read = (entry: string) => {
    const a = parseDockerListenAddress(entry);
    return 'address' in a
      ? `${a.proto} ${a.address} loopback=${a.loopback} all=${a.allInterfaces}`
      : a.proto;
  };
  assert.deepEqual(
    [
      'unix:///var/run/docker.sock',
      'fd://',
      'tcp://0.0.0.0:2375',
      '0.0.0.0:2376',
      'tcp://',
      'tcp://:2375',
      'tcp://127.0.0.1',
      'tcp://[::]:2375',
      'tcp://[::1]:2375',
      'tcp://10.1.2.3:2376/path',
    ].map(read),
    [
      'unix',
      'fd',
      'tcp 0.0.0.0:2375 loopback=false all=true',
      'tcp 0.0.0.0:2376 loopback=false all=true',
      'tcp localhost:2375 loopback=true all=false',
      'tcp localhost:2375 loopback=true all=false',
      'tcp 127.0.0.1:2375 loopback=true all=false',
      'tcp [::]:2375 loopback=false all=true',
      'tcp [::1]:2375 loopback=true all=false',
      'tcp 10.1.2.3:2376 loopback=false all=false',
    ],
  );
});
