// /proc/<pid>/stat and status as the kernel writes them, names with spaces and parentheses
// included, and the signal masks the pause and zombies checks read.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseProcStat } from '../../agent/parsers/procStat.ts';
import {
  SIGNALS,
  hasSignal,
  parseProcStatus,
  signalNames,
} from '../../agent/parsers/procStatus.ts';

// A real line (pid 1, systemd) with the fields after comm as the kernel prints them.
const STAT_TAIL =
  'S 0 1 1 0 -1 4194560 52795 6186551 111 2542 219 198 31290 8107 20 0 1 0 27 175828992 3161 18446744073709551615 1 1 0 0 0 0 671173123 4096 1260 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n';

test('stat: fields are read after the last ")", whatever the name holds', () => {
  const plain = parseProcStat(`1 (systemd) ${STAT_TAIL}`);
  assert.deepEqual(plain, {
    comm: 'systemd',
    state: 'S',
    ppid: 0,
    flags: 4194560,
    threads: 1,
    startTicks: 27,
  });
  // A process may call itself "a) Z 99 (" : only the last ")" ends the name.
  const tricky = parseProcStat(`4242 (a) Z 99 () R 77 ${STAT_TAIL.slice(4)}`);
  assert.equal(tricky?.comm, 'a) Z 99 (');
  assert.equal(tricky.state, 'R');
  assert.equal(tricky.ppid, 77);
  assert.equal(tricky.startTicks, 27);
  assert.equal(parseProcStat(`9 (über worker) ${STAT_TAIL}`)?.comm, 'über worker');
  assert.equal(parseProcStat('no parentheses at all'), undefined);
  assert.equal(parseProcStat('12 (short) S 1 2\n'), undefined);
  const zombie = parseProcStat(`77 (sleep) Z ${STAT_TAIL.slice(2)}`);
  assert.equal(zombie?.state, 'Z');
  const named = parseProcStat(
    `5 (kworker/0:0H-events_highpri) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 0 -20 1 0 12 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n`,
  );
  assert.equal(named?.comm, 'kworker/0:0H-events_highpri');
  assert.equal(((named?.flags ?? 0) & 0x00200000) !== 0, true, 'PF_KTHREAD');
});

const STATUS = [
  'Name:\tpause',
  'Umask:\t0022',
  'State:\tS (sleeping)',
  'Tgid:\t4711',
  'Ngid:\t0',
  'Pid:\t4711',
  'PPid:\t4690',
  'Uid:\t65535\t65534\t65534\t65534',
  'Gid:\t65535\t65535\t65535\t65535',
  'NStgid:\t4711\t1',
  'NSpid:\t4711\t1',
  'SigQ:\t0/96365',
  'SigPnd:\t0000000000000000',
  'ShdPnd:\t0000000000000000',
  'SigBlk:\t0000000000000000',
  'SigIgn:\t0000000000000000',
  'SigCgt:\t0000000000014002',
  '',
].join('\n');

test('status: UIDs (real, effective, ...), NSpid and the masks; the pause masks decode to its three handlers', () => {
  const status = parseProcStatus(STATUS);
  assert.deepEqual(status, {
    uids: [65535, 65534, 65534, 65534],
    nspid: [4711, 1],
    sigCgt: '0000000000014002',
    sigIgn: '0000000000000000',
  });
  // 0x14002: bit 1 (SIGINT 2), bit 14 (SIGTERM 15), bit 16 (SIGCHLD 17).
  assert.deepEqual(signalNames(status.sigCgt), ['SIGINT', 'SIGTERM', 'SIGCHLD']);
  assert.equal(hasSignal('0000000000010000', SIGNALS.SIGCHLD), true);
  assert.equal(hasSignal('0000000000010000', SIGNALS.SIGTERM), false);
  assert.equal(hasSignal('8000000000000000', 64), true);
  assert.equal(hasSignal('8000000000000000', 1), false);
  assert.equal(parseProcStatus('Name:\tx\n'), undefined);
  // Kernels before 4.1 have no NSpid line.
  assert.deepEqual(parseProcStatus('Uid:\t0\t0\t0\t0\n')?.nspid, []);
});
