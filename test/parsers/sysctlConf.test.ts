import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  normalizeSysctlKey,
  parseSysctlConf,
  sysctlKeyComponents,
  sysctlKeyMatches,
  sysctlProcPath,
} from '../../agent/parsers/sysctlConf.ts';

test('parses the seed file: key=value and key = value, comments, blank lines', () => {
  const parsed = parseSysctlConf(`# seed
net.ipv4.ip_forward=1

; also a comment
fs.inotify.max_user_watches = 1048576
net.ipv4.ip_local_reserved_ports=30000-32767
`);
  assert.deepEqual(
    parsed.assignments.map((a) => [a.key, a.value, a.line]),
    [
      ['net.ipv4.ip_forward', '1', 2],
      ['fs.inotify.max_user_watches', '1048576', 5],
      ['net.ipv4.ip_local_reserved_ports', '30000-32767', 6],
    ],
  );
  assert.deepEqual(parsed.invalid, []);
  assert.equal(parsed.binary, false);
});

test('a leading "-" is accepted on assignments; "-key" alone is a systemd glob exclusion', () => {
  // systemd's own 50-default.conf has both forms
  const parsed = parseSysctlConf(
    '-net.bridge.bridge-nf-call-iptables = 1\nnet.ipv4.conf.*.rp_filter = 2\n-net.ipv4.conf.all.rp_filter\n',
  );
  assert.deepEqual(
    parsed.assignments.map((a) => [a.key, a.value]),
    [
      ['net.bridge.bridge-nf-call-iptables', '1'],
      ['net.ipv4.conf.*.rp_filter', '2'],
    ],
  );
  assert.deepEqual(parsed.exclusions, [{ key: 'net.ipv4.conf.all.rp_filter', line: 3 }]);
  assert.deepEqual(parsed.invalid, [], 'an exclusion is not a broken line');
});

test('keys that would walk out of /proc/sys are not sysctl keys', () => {
  assert.equal(sysctlKeyComponents('kernel/../../../etc/shadow'), undefined);
  assert.equal(sysctlKeyComponents('kernel..panic'), undefined);
  assert.equal(sysctlKeyComponents('.kernel.panic'), undefined);
  assert.throws(() => sysctlProcPath('kernel/../../etc/shadow'), /not a sysctl key/);
  assert.deepEqual(sysctlKeyComponents('net/ipv4/conf/eth0.100/rp_filter'), [
    'net',
    'ipv4',
    'conf',
    'eth0.100',
    'rp_filter',
  ]);
});

test('values keep inner spaces (multi-field sysctls) but lose surrounding ones', () => {
  const [a] = parseSysctlConf('net.ipv4.ip_local_port_range =  32768\t60999  \n').assignments;
  assert.equal(a?.value, '32768\t60999');
});

test('lines sysctl cannot apply are reported with their line number and reason', () => {
  const parsed = parseSysctlConf(
    'fs.inotify.max_user_instances 8192\n= 5\nnet.ipv4 x = 1\nok.key = 1\n',
  );
  assert.deepEqual(
    parsed.invalid.map((i) => [i.line, i.reason]),
    [
      [1, "missing '='"],
      [2, 'empty key'],
      [3, 'key contains whitespace'],
    ],
  );
  assert.deepEqual(
    parsed.assignments.map((a) => a.key),
    ['ok.key'],
  );
});

test('binary content is recognised and nothing in it is applied', () => {
  const parsed = parseSysctlConf('\x7fELF\0\x01a=b\n');
  assert.equal(parsed.binary, true);
  assert.deepEqual(parsed.assignments, []);
});

test('"/" separators: the first separator decides, dots inside a component survive', () => {
  assert.equal(normalizeSysctlKey('net/ipv4/ip_forward'), 'net.ipv4.ip_forward');
  // VLAN interface eth0.100, written with slashes as sysctl.d(5) describes
  assert.equal(
    normalizeSysctlKey('net/ipv4/conf/eth0.100/rp_filter'),
    'net.ipv4.conf.eth0/100.rp_filter',
  );
  assert.equal(
    sysctlProcPath('net/ipv4/conf/eth0.100/rp_filter'),
    '/proc/sys/net/ipv4/conf/eth0.100/rp_filter',
  );
  assert.equal(
    sysctlProcPath('fs.inotify.max_user_watches'),
    '/proc/sys/fs/inotify/max_user_watches',
  );
  assert.equal(normalizeSysctlKey('kernel.panic'), 'kernel.panic');
});

test('systemd glob keys match within one component only', () => {
  assert.equal(sysctlKeyMatches('net.ipv4.conf.*.rp_filter', 'net.ipv4.conf.eth0.rp_filter'), true);
  assert.equal(
    sysctlKeyMatches('net.ipv4.conf.*.rp_filter', 'net.ipv4.conf.eth0.x.rp_filter'),
    false,
  );
  assert.equal(
    sysctlKeyMatches('net.bridge.bridge-nf-call-*', 'net.bridge.bridge-nf-call-iptables'),
    true,
  );
  assert.equal(
    sysctlKeyMatches('net.bridge.bridge-nf-call-ip?tables', 'net.bridge.bridge-nf-call-ip6tables'),
    true,
  );
  assert.equal(sysctlKeyMatches('kernel.panic', 'kernel.panic_on_oops'), false);
});
