import assert from 'node:assert/strict';
import { test } from 'node:test';
import { draft } from '../../agent/findings/finding.ts';
import { FindingStore } from '../../agent/findings/findingStore.ts';
import type { Transition } from '../../agent/findings/findingStore.ts';

const t0 = new Date('2026-11-22T10:00:00Z');
const t1 = new Date('2026-11-22T10:01:00Z');
const t2 = new Date('2026-11-22T10:02:00Z');

function watches(value: number) {
  return draft('SysctlOutOfProfile', 'fs.inotify.max_user_watches', {
    severity: 'critical',
    title: `fs.inotify.max_user_watches is ${value}, needs at least 524288`,
    message: 'm',
    evidence: [`/proc/sys/fs/inotify/max_user_watches = ${value}`],
  });
}
const forward = draft('SysctlOutOfProfile', 'net.ipv4.ip_forward', {
  severity: 'critical',
  title: 'ip_forward is 0',
  message: 'm',
  evidence: [],
});

function recording(store: FindingStore): string[] {
  const seen: string[] = [];
  store.onTransition((tr: Transition) => seen.push(`${tr.kind} ${tr.finding.id}`));
  return seen;
}

test('raised with first/last seen, kept while seen, cleared when a run no longer reports it', () => {
  const store = new FindingStore();
  const seen = recording(store);
  store.reconcile('sysctl', [watches(8192), forward], t0);
  store.reconcile('sysctl', [watches(8192)], t1);
  assert.deepEqual(seen, [
    'raised SysctlOutOfProfile:fs.inotify.max_user_watches',
    'raised SysctlOutOfProfile:net.ipv4.ip_forward',
    'cleared SysctlOutOfProfile:net.ipv4.ip_forward',
  ]);
  const [f] = store.active();
  assert.equal(f?.firstSeen, t0.toISOString());
  assert.equal(f?.lastSeen, t1.toISOString());
  assert.equal(f?.check, 'sysctl');
});

test('a changed message is a "changed" transition that keeps firstSeen', () => {
  const store = new FindingStore();
  const seen = recording(store);
  store.reconcile('sysctl', [watches(8192)], t0);
  store.reconcile('sysctl', [watches(8192)], t1); // same: no transition
  store.reconcile('sysctl', [watches(9000)], t2);
  assert.deepEqual(seen, [
    'raised SysctlOutOfProfile:fs.inotify.max_user_watches',
    'changed SysctlOutOfProfile:fs.inotify.max_user_watches',
  ]);
  assert.equal(store.active()[0]?.firstSeen, t0.toISOString());
  assert.match(store.active()[0]?.title ?? '', /9000/);
});

test('a failing run adds its own finding and keeps the others; the next good run clears it', () => {
  const store = new FindingStore();
  store.reconcile('sysctl', [watches(8192)], t0);
  store.upsert(
    'sysctl',
    draft('CheckFailed', undefined, {
      severity: 'warning',
      title: 'check sysctl failed',
      message: 'm',
      evidence: [],
    }),
    t1,
  );
  assert.deepEqual(
    store.ofCheck('sysctl').map((f) => f.id),
    ['SysctlOutOfProfile:fs.inotify.max_user_watches', 'CheckFailed'],
  );
  store.reconcile('sysctl', [watches(8192)], t2);
  assert.deepEqual(
    store.ofCheck('sysctl').map((f) => f.id),
    ['SysctlOutOfProfile:fs.inotify.max_user_watches'],
  );
  assert.equal(store.ofCheck('sysctl')[0]?.firstSeen, t0.toISOString());
});

test('checks are independent, and a disabled check clears with a reason', () => {
  const store = new FindingStore();
  const reasons: string[] = [];
  store.onTransition((tr) => {
    if (tr.kind === 'cleared') reasons.push(`${tr.finding.check}: ${tr.reason}`);
  });
  store.reconcile('sysctl', [watches(8192)], t0);
  store.reconcile('other', [forward], t0);
  store.reconcile('other', [], t1);
  assert.equal(store.ofCheck('sysctl').length, 1);
  store.clearCheck('sysctl', 'disabled in config');
  assert.deepEqual(store.active(), []);
  assert.deepEqual(reasons, ['other: no longer observed', 'sysctl: disabled in config']);
});

test('most severe first, then by check and id (byte order)', () => {
  const store = new FindingStore();
  const info = draft('SysctlPersistedDiffers', 'a', {
    severity: 'info',
    title: 't',
    message: 'm',
    evidence: [],
  });
  const warn = draft('SysctlNotPersisted', 'b', {
    severity: 'warning',
    title: 't',
    message: 'm',
    evidence: [],
  });
  store.reconcile('zeta', [info, warn], t0);
  store.reconcile('alpha', [watches(1)], t0);
  assert.deepEqual(
    store.active().map((f) => `${f.severity}/${f.check}`),
    ['critical/alpha', 'warning/zeta', 'info/zeta'],
  );
});

test('a listener that throws does not stop the others', () => {
  const store = new FindingStore();
  store.onTransition(() => {
    throw new Error('sink down');
  });
  const seen = recording(store);
  store.reconcile('sysctl', [watches(8192)], t0);
  assert.deepEqual(seen, ['raised SysctlOutOfProfile:fs.inotify.max_user_watches']);
});
