import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseTomlSubset, tomlGet } from '../../agent/parsers/tomlSubset.ts';

test('reads a containerd 1.x config: quoted dotted headers, comments, multi-line arrays', () => {
  const doc = parseTomlSubset(`version = 2
# the CRI plugin
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "" # none

  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = [
      "https://mirror.example.com", # first
      "https://registry-1.docker.io",
    ]
  [plugins."io.containerd.grpc.v1.cri".registry.configs."10.0.0.5:5000".tls]
    insecure_skip_verify = true
`);
  assert.deepEqual(doc.problems, []);
  assert.equal(tomlGet(doc.root, ['version']), 2);
  const registry = ['plugins', 'io.containerd.grpc.v1.cri', 'registry'];
  assert.deepEqual(tomlGet(doc.root, [...registry, 'mirrors', 'docker.io', 'endpoint']), [
    'https://mirror.example.com',
    'https://registry-1.docker.io',
  ]);
  assert.deepEqual(
    doc.entries.map((e) => [e.path.at(-1), e.line]),
    [
      ['version', 1],
      ['config_path', 4],
      ['endpoint', 7],
      ['insecure_skip_verify', 12],
    ],
  );
  assert.deepEqual(doc.entries[3]?.path, [
    ...registry,
    'configs',
    '10.0.0.5:5000',
    'tls',
    'insecure_skip_verify',
  ]);
  assert.deepEqual(
    doc.headers.map((h) => h.line),
    [3, 6, 11],
  );
});

test("reads containerd 2.x's literal-string (single-quoted) keys", () => {
  const doc = parseTomlSubset(
    "version = 3\n[plugins.'io.containerd.cri.v1.images'.registry]\n  config_path = '/etc/containerd/certs.d'\n",
  );
  assert.deepEqual(doc.problems, []);
  assert.equal(
    tomlGet(doc.root, ['plugins', 'io.containerd.cri.v1.images', 'registry', 'config_path']),
    '/etc/containerd/certs.d',
  );
});

test('reads a hosts.toml: top-level keys, [host."..."] tables and a sub-table of one', () => {
  const doc = parseTomlSubset(`server = "https://registry-1.docker.io"

[host."http://192.168.31.250:5000"]
  capabilities = ["pull", "resolve", "push"]
  skip_verify = true
  [host."http://192.168.31.250:5000".header]
    x-custom-1 = ["a", "b"]
`);
  assert.deepEqual(doc.problems, []);
  assert.equal(tomlGet(doc.root, ['host', 'http://192.168.31.250:5000', 'skip_verify']), true);
  assert.deepEqual(
    doc.headers.map((h) => [h.path, h.line]),
    [
      [['host', 'http://192.168.31.250:5000'], 3],
      [['host', 'http://192.168.31.250:5000', 'header'], 6],
    ],
  );
});

test('arrays of tables: [[registry]] and [[registry.mirror]] of the latest registry', () => {
  const doc = parseTomlSubset(`unqualified-search-registries = ["docker.io"]
[[registry]]
prefix = "a.example"
insecure = true
[[registry]]
location = "b.example:5000"
[[registry.mirror]]
location = "mirror.b.example"
insecure = true
`);
  assert.deepEqual(doc.problems, []);
  const registries = tomlGet(doc.root, ['registry']);
  assert.ok(Array.isArray(registries));
  assert.equal(registries.length, 2);
  const insecure = doc.entries.filter((e) => e.path.at(-1) === 'insecure');
  assert.deepEqual(
    insecure.map((e) => [e.path, e.line]),
    [
      [['registry', '0', 'insecure'], 4],
      [['registry', '1', 'mirror', '0', 'insecure'], 9],
    ],
  );
});

test('inline tables are read, and each key in one gets an entry on its line', () => {
  const doc = parseTomlSubset('host = { "https://r.example" = { skip_verify = true } }\n');
  assert.deepEqual(doc.problems, []);
  assert.deepEqual(
    doc.entries.map((e) => [e.path.join(' > '), e.line]),
    [
      ['host', 1],
      ['host > https://r.example', 1],
      ['host > https://r.example > skip_verify', 1],
    ],
  );
});

test('strings: escapes, literal strings, and multi-line strings whose lines are not keys', () => {
  const doc = parseTomlSubset(`a = "tab\\tquote\\" \\u00e9 \\U0001F600"
b = 'C:\\path\\no escapes'
c = """
skip_verify = true
line two \\
    continued"""
d = '''
[not.a.table]'''
e = true
`);
  assert.deepEqual(doc.problems, []);
  assert.equal(tomlGet(doc.root, ['a']), 'tab\tquote" é 😀');
  assert.equal(tomlGet(doc.root, ['b']), 'C:\\path\\no escapes');
  assert.equal(tomlGet(doc.root, ['c']), 'skip_verify = true\nline two continued');
  assert.equal(tomlGet(doc.root, ['d']), '[not.a.table]');
  assert.deepEqual(
    doc.entries.map((e) => [e.path[0], e.line]),
    [
      ['a', 1],
      ['b', 2],
      ['c', 3],
      ['d', 7],
      ['e', 9],
    ],
  );
  assert.equal(doc.headers.length, 0);
});

test('numbers and booleans', () => {
  const doc = parseTomlSubset(
    'a = 1_000\nb = -3\nc = 0x1F\nd = 0o17\ne = 0b101\nf = 6.5e-1\ng = -inf\nh = false\n',
  );
  assert.deepEqual(doc.problems, []);
  assert.deepEqual(
    ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'].map((k) => tomlGet(doc.root, [k])),
    [1000, -3, 31, 15, 5, 0.65, -Infinity, false],
  );
});

test('CRLF line endings', () => {
  const doc = parseTomlSubset('[a]\r\nb = "x"\r\n# c\r\nd = true\r\n');
  assert.deepEqual(doc.problems, []);
  assert.equal(tomlGet(doc.root, ['a', 'b']), 'x');
  assert.equal(tomlGet(doc.root, ['a', 'd']), true);
  assert.deepEqual(
    doc.entries.map((e) => e.line),
    [2, 4],
  );
});

test('keys named like Object.prototype members are plain keys', () => {
  const doc = parseTomlSubset('constructor = 1\n[__proto__]\ntoString = "x"\n');
  assert.deepEqual(doc.problems, []);
  assert.equal(tomlGet(doc.root, ['constructor']), 1);
  assert.equal(tomlGet(doc.root, ['__proto__', 'toString']), 'x');
  assert.equal(tomlGet(doc.root, ['hasOwnProperty']), undefined);
});

test('a date or time is reported as unsupported, and reading goes on after it', () => {
  const doc = parseTomlSubset('a = 1979-05-27 07:32:00Z\nb = [07:32:00, "x"]\nc = true\n');
  assert.deepEqual(doc.problems, [
    {
      line: 1,
      column: 5,
      reason: 'date/time value 1979-05-27 07:32:00Z is not read',
      kind: 'unsupported',
    },
    { line: 2, column: 6, reason: 'date/time value 07:32:00 is not read', kind: 'unsupported' },
  ]);
  assert.equal(tomlGet(doc.root, ['a']), undefined);
  assert.deepEqual(tomlGet(doc.root, ['b']), ['x']);
  assert.equal(tomlGet(doc.root, ['c']), true);
});

test('a syntax error is invalid, with its line and column, and nothing after it is read', () => {
  const cases: [string, number, number, RegExp][] = [
    ['a = 1\nb = "open\nc = true\n', 2, 5, /unterminated string/],
    ['a = 1\nb true\n', 2, 3, /expected "="/],
    ['a = 1\na = 2\n', 2, 1, /duplicate key "a"/],
    ['[t]\nx = 1\n[t]\ny = 2\n', 3, 1, /table \[t\] defined twice/],
    ['a = 1 b = 2\n', 1, 7, /expected the end of the line/],
    ['a = [1, 2\nb = 3\n', 2, 1, /expected "," or "]"/],
    ['a = "\\q"\n', 1, 6, /invalid escape/],
    ['a = yes\n', 1, 5, /invalid value "yes"/],
    ['x = { a = 1,\n b = 2 }\n', 1, 13, /inline table must be on one line/],
    ['a = 1\n[a.b]\n', 2, 1, /"a" is already a value/],
    ['é = 1\n', 1, 1, /expected a key/],
  ];
  for (const [text, line, column, reason] of cases) {
    const doc = parseTomlSubset(text);
    assert.equal(doc.problems.length, 1, text);
    const [problem] = doc.problems;
    assert.equal(problem?.kind, 'invalid', text);
    assert.match(problem?.reason ?? '', reason, text);
    assert.deepEqual([problem?.line, problem?.column], [line, column], text);
  }
  // Nothing after the error: "c = true" in the first case is not read.
  assert.equal(tomlGet(parseTomlSubset('a = 1\nb = "open\nc = true\n').root, ['c']), undefined);
});

test('columns count characters, not UTF-16 units', () => {
  const doc = parseTomlSubset('a = "😀" b\n');
  assert.deepEqual([doc.problems[0]?.line, doc.problems[0]?.column], [1, 9]);
});
