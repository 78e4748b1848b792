// The D-Bus wire format (agent/remediation/dbus/dbusMarshal.ts) against byte sequences derived
// by hand from the specification ("Message Protocol"), so an alignment or padding mistake shows
// as a byte diff, and against the malformed input a peer could send.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DbusError,
  marshalMessage,
  marshalValues,
  messageLength,
  unmarshalMessage,
  unmarshalValues,
} from '../../agent/remediation/dbus/dbusMarshal.ts';
import type { DbusMessage, DbusValue } from '../../agent/remediation/dbus/dbusMarshal.ts';

/** Bytes from hex with spaces ("6c 01"), and ASCII text in quotes ("'Hello'"). */
function bytes(spec: string): Buffer {
  const parts = spec.match(/'[^']*'|[0-9a-f]{2}/g) ?? [];
  return Buffer.concat(
    parts.map((p) =>
      p.startsWith("'") ? Buffer.from(p.slice(1, -1), 'ascii') : Buffer.from(p, 'hex'),
    ),
  );
}

const helloCall: DbusMessage = {
  type: 1,
  flags: 0,
  serial: 1,
  path: '/org/freedesktop/DBus',
  interface: 'org.freedesktop.DBus',
  member: 'Hello',
  destination: 'org.freedesktop.DBus',
  signature: '',
  body: [],
};

// Fixed header: 'l', METHOD_CALL, no flags, version 1, body length 0, serial 1, then the a(yv)
// header fields (0x6d = 109 bytes), each struct 8-aligned, each string NUL-terminated; the header
// is padded to 8 even with no body: 128 bytes in all.
const helloBytes = bytes(`
  6c 01 00 01  00 00 00 00  01 00 00 00  6d 00 00 00
  01 01 'o' 00  15 00 00 00  '/org/freedesktop/DBus' 00  00 00
  02 01 's' 00  14 00 00 00  'org.freedesktop.DBus' 00  00 00 00
  03 01 's' 00  05 00 00 00  'Hello' 00  00 00
  06 01 's' 00  14 00 00 00  'org.freedesktop.DBus' 00  00 00 00`);

test('dbusMarshal: the Hello call has exactly the bytes the spec gives', () => {
  assert.equal(helloBytes.length, 128);
  assert.deepEqual(marshalMessage(helloCall), helloBytes);
  assert.equal(messageLength(helloBytes.subarray(0, 16)), 128);
  assert.deepEqual(unmarshalMessage(helloBytes), helloCall);
});

test('dbusMarshal: alignment is counted from the start, and arrays pad even when empty', () => {
  const cases: [string, DbusValue[], string][] = [
    // y, then 7 bytes of padding to the 8-aligned t.
    ['yt', [1, 2n], '01 00 00 00 00 00 00 00  02 00 00 00 00 00 00 00'],
    // An empty array of 8-aligned elements: the length 0, then padding to 8 all the same.
    ['at', [[]], '00 00 00 00  00 00 00 00'],
    // The length (9) counts from the first element, after the padding that follows it.
    ['a(y)', [[[1], [2]]], '09 00 00 00 00 00 00 00  01 00 00 00 00 00 00 00  02'],
    // A variant: its signature (g: length byte, text, NUL), then the value aligned for its type.
    [
      'v',
      [{ signature: 'ai', value: [1, 2] }],
      "02 'ai' 00  08 00 00 00  01 00 00 00  02 00 00 00",
    ],
    ['ys', [7, 'kübelet'], "07 00 00 00  08 00 00 00  'k' c3 bc 'belet' 00"],
    ['nq', [-2, 65535], 'fe ff ff ff'],
    ['bi', [true, -1], '01 00 00 00  ff ff ff ff'],
    ['d', [1.5], '00 00 00 00 00 00 f8 3f'],
    ['ox', ['/', -1n], "01 00 00 00 '/' 00 00 00  ff ff ff ff ff ff ff ff"],
  ];
  for (const [signature, values, hex] of cases) {
    const data = marshalValues(signature, values);
    assert.deepEqual(data, bytes(hex), `marshal ${signature}`);
    assert.deepEqual(unmarshalValues(signature, data), values, `unmarshal ${signature}`);
  }
});

test('dbusMarshal: every type round-trips, at its limits', () => {
  const signature = 'ybnqiuxtdsoga{sv}(yv)aay';
  const values: DbusValue[] = [
    255,
    false,
    -32768,
    65535,
    -(2 ** 31),
    2 ** 32 - 1,
    -(2n ** 63n),
    2n ** 64n - 1n,
    -0.25,
    'ünïcode ✓',
    '/org/freedesktop/systemd1/unit/kubelet_2eservice',
    'a{sv}',
    [
      ['ActiveState', { signature: 's', value: 'active' }],
      ['ActiveEnterTimestamp', { signature: 't', value: 1_700_000_000_000_000n }],
      ['nested', { signature: 'v', value: { signature: 'as', value: ['a', 'b'] } }],
    ],
    [3, { signature: '(bd)', value: [true, 2.5] }],
    [[1, 2], [], [3]],
  ];
  assert.deepEqual(unmarshalValues(signature, marshalValues(signature, values)), values);
});

test('dbusMarshal: a big-endian message (from a big-endian host) is read', () => {
  // 'B', METHOD_RETURN, serial 7, REPLY_SERIAL 3, SIGNATURE "u", body u 42.
  const frame = bytes(`
    42 02 00 01  00 00 00 04  00 00 00 07  00 00 00 0f
    05 01 'u' 00  00 00 00 03  08 01 'g' 00  01 'u' 00  00
    00 00 00 2a`);
  assert.deepEqual(unmarshalMessage(frame), {
    type: 2,
    flags: 0,
    serial: 7,
    replySerial: 3,
    signature: 'u',
    body: [42],
  });
});

test('dbusMarshal: unknown header fields are ignored, unknown message types skipped', () => {
  const withField = Buffer.from(marshalMessage(helloCall));
  // Re-label the DESTINATION field (code 6, the last) as an unknown code 0x63.
  withField[96] = 0x63;
  const { destination, ...rest } = helloCall;
  assert.equal(destination, 'org.freedesktop.DBus');
  assert.deepEqual(unmarshalMessage(withField), rest);
  const unknownType = Buffer.from(helloBytes);
  unknownType[1] = 9;
  assert.equal(unmarshalMessage(unknownType), undefined);
});

test('dbusMarshal: malformed input is refused with a protocol error, never a crash', () => {
  const patched = (at: number, value: number): Buffer => {
    const copy = Buffer.from(helloBytes);
    copy[at] = value;
    return copy;
  };
  const bad: [string, () => unknown, RegExp][] = [
    ['non-zero padding', () => unmarshalMessage(patched(46, 1)), /non-zero padding at byte 46/],
    ['string without NUL', () => unmarshalMessage(patched(93, 0x21)), /not NUL-terminated/],
    ['byte order', () => messageLength(patched(0, 0x78)), /byte-order mark 0x78/],
    ['version', () => messageLength(patched(3, 2)), /protocol version 2/],
    ['serial 0', () => unmarshalMessage(patched(8, 0)), /serial 0/],
    [
      'truncated',
      () => unmarshalMessage(helloBytes.subarray(0, 100)),
      /100 bytes, header says 128/,
    ],
    ['header field type', () => unmarshalMessage(patched(18, 0x73)), /field 1 has type "s"/],
    ['boolean 2', () => unmarshalValues('b', bytes('02 00 00 00')), /boolean with value 2/],
    ['invalid UTF-8', () => unmarshalValues('s', bytes('01 00 00 00 ff 00')), /not UTF-8/],
    ['array past the end', () => unmarshalValues('ay', bytes('10 00 00 00 01')), /runs past/],
    ['array over 64 MiB', () => unmarshalValues('ay', bytes('01 00 00 04')), /limit 67108864/],
    ['elements overrun', () => unmarshalValues('au', bytes('02 00 00 00 01 00 00 00')), /overrun/],
    [
      'message over 128 MiB',
      () => messageLength(bytes('6c 01 00 01 00 00 00 08 01 00 00 00 00 00 00 00')),
      /limit 134217728/,
    ],
    ['bad object path', () => unmarshalValues('o', bytes("03 00 00 00 '/a/' 00")), /object path/],
    [
      'deep variants',
      () =>
        unmarshalValues(
          'v',
          Buffer.concat([
            ...Array.from({ length: 70 }, () => bytes("01 'v' 00")),
            bytes("01 'y' 00 01"),
          ]),
        ),
      /nested deeper than 64/,
    ],
    ['signature', () => marshalValues('a{vs}', [[]]), /dict key must be a basic type/],
    ['struct', () => marshalValues('()', [[]]), /empty struct/],
    ['u out of range', () => marshalValues('u', [-1]), /integer in 0..4294967295, got -1/],
    ['t needs bigint', () => marshalValues('t', [5]), /bigint/],
    ['NUL in string', () => marshalValues('s', ['a\0b']), /without NUL/],
    ['struct arity', () => marshalValues('(ss)', [['a']]), /needs 2 fields, got 1/],
    [
      'member name',
      () => marshalMessage({ ...helloCall, member: 'Hel-lo' }),
      /member name "Hel-lo"/,
    ],
    ['bus name', () => marshalMessage({ ...helloCall, destination: 'nodots' }), /bus name/],
    ['required field', () => marshalMessage({ ...helloCall, path: undefined }), /lacks its path/],
  ];
  for (const [what, run, message] of bad) {
    assert.throws(run, (error: unknown) => {
      assert.ok(error instanceof DbusError, `${what}: ${String(error)}`);
      assert.equal(error.failure, 'protocol', what);
      assert.match(error.message, message, what);
      return true;
    });
  }
});
