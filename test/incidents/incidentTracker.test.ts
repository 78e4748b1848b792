// Incidents, not lines: root cause over symptoms, storms as counts, one line through two sources
// counted once, count windows, and the ways an incident ends.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { IncidentTracker } from '../../agent/incidents/incidentTracker.ts';
import { builtinRules } from '../../agent/rules/catalogue.ts';
import { RuleSet } from '../../agent/rules/ruleSet.ts';
import { recordFromSyslogLine } from '../../agent/sources/logRecord.ts';
import type { LogRecord } from '../../agent/sources/logRecord.ts';

const SEED = path.join(import.meta.dirname, '..', 'fixtures', 'logs', 'seed-notready.log');
const REF = Date.parse('2026-02-21T00:00:00Z');
const MINUTE = 60_000;

function setup() {
  const ruleSet = new RuleSet(builtinRules().map((spec) => ({ spec, origin: 'built-in' })));
  const tracker = new IncidentTracker(ruleSet.rules, { maxEvidence: 10, maxEnded: 100 });
  /** Feed one line on the tracker's clock `now` (default: the line's own time). */
  const feed = (line: string, source = '/var/log/syslog', now?: number): LogRecord => {
    const record = recordFromSyslogLine(line, source, REF);
    tracker.observe(record, ruleSet.evaluate(record), now ?? record.time);
    return record;
  };
  return { ruleSet, tracker, feed };
}

describe('incident tracker', () => {
  it("turns the seed's NotReady lines into one InotifyWatchesExhausted incident with every line as evidence", () => {
    const { tracker, feed } = setup();
    const lines = readFileSync(SEED, 'utf8').trim().split('\n');
    for (const line of lines) feed(line);
    const incidents = tracker.open();
    assert.equal(incidents.length, 1);
    const [incident] = incidents;
    assert.equal(incident?.cause, 'InotifyWatchesExhausted');
    assert.equal(incident?.rule, 'kubelet-inotify-watches-exhausted');
    assert.equal(incident?.severity, 'critical');
    assert.equal(incident?.count, lines.length);
    assert.deepEqual(incident?.evidence, lines);
    assert.deepEqual(incident?.rules.sort(), [
      'kubelet-cadvisor-failed',
      'kubelet-exited',
      'kubelet-inotify-watches-exhausted',
    ]);
  });

  it('names the root cause even when the symptom comes first', () => {
    const { tracker, feed } = setup();
    feed(
      'Feb 20 12:14:49 n1 systemd[1]: kubelet.service: Main process exited, code=exited, status=1/FAILURE',
    );
    assert.equal(tracker.open()[0]?.cause, 'KubeletDown');
    feed(
      'Feb 20 12:14:50 n1 kubelet[9]: E0220 12:14:50.1 9 kubelet.go:1] "Failed to start cAdvisor" err="inotify_init: too many open files"',
    );
    assert.equal(tracker.open().length, 1);
    assert.equal(tracker.open()[0]?.cause, 'InotifyInstancesExhausted');
  });

  it('makes a storm of 10,000 identical lines one incident with a count and one line of evidence', () => {
    const { tracker, feed } = setup();
    for (let i = 0; i < 10_000; i++) {
      const s = String(i % 60).padStart(2, '0');
      feed(
        `Feb 20 12:15:${s} n1 kubelet[31100]: E0220 12:15:${s}.000001   31100 kubelet.go:2055] "Skipping pod synchronization" err="PLEG is not healthy: pleg was last seen active 3m${i % 60}.5s ago; threshold is 3m0s"`,
      );
    }
    const [incident, ...rest] = tracker.open();
    assert.equal(rest.length, 0);
    assert.equal(incident?.cause, 'PLEGUnhealthy');
    assert.equal(incident?.count, 10_000);
    assert.equal(incident?.evidence.length, 1);
    assert.equal(incident?.omitted, 9_999);
  });

  it('counts a kernel line once when it arrives through kmsg and kern.log', () => {
    const { tracker, ruleSet } = setup();
    const message = 'INFO: task jbd2/sda1-8:123 blocked for more than 120 seconds.';
    const time = Date.parse('2026-02-20T12:00:00Z');
    const kmsg: LogRecord = {
      source: 'kmsg',
      kind: 'kmsg',
      identifier: 'kernel',
      message,
      line: message,
      time,
      timeKnown: true,
    };
    const file = { ...kmsg, source: '/var/log/kern.log', kind: 'file' as const, time: time + 700 };
    for (const record of [kmsg, file, kmsg, file]) {
      tracker.observe(record, ruleSet.evaluate(record), record.time);
    }
    assert.equal(tracker.open()[0]?.count, 2, 'two occurrences, each seen twice');
    assert.deepEqual(tracker.open()[0]?.sources, ['kmsg']);
  });

  it('opens a count-window incident only at the threshold, with the earlier lines as evidence', () => {
    const { tracker, feed } = setup();
    const restart = (minute: number, n: number) =>
      feed(
        `Feb 20 12:${String(minute).padStart(2, '0')}:00 n1 systemd[1]: kubelet.service: Scheduled restart job, restart counter is at ${n}.`,
      );
    for (let n = 1; n <= 4; n++) restart(n * 4, n);
    assert.equal(tracker.open().length, 0, '4 restarts in 16 minutes are not a crash loop yet');
    restart(19, 5);
    const [incident] = tracker.open();
    assert.equal(incident?.cause, 'KubeletCrashLoop');
    assert.equal(incident?.count, 5);
  });

  it('forgets window lines older than the window', () => {
    const { tracker, feed } = setup();
    for (let n = 1; n <= 5; n++) {
      feed(
        `Feb 20 ${String(10 + n).padStart(2, '0')}:00:00 n1 systemd[1]: kubelet.service: Scheduled restart job, restart counter is at ${n}.`,
      );
    }
    assert.equal(tracker.open().length, 0, 'one restart an hour is not a crash loop');
  });

  it('ends an incident after its quiet period, but not while the node is NotReady', () => {
    const { tracker, feed } = setup();
    const start = Date.parse('2026-02-20T12:00:00Z');
    feed(
      'Feb 20 12:00:00 n1 kubelet[9]: E0220 12:00:00.1 9 raw.go:146] Failed to watch directory "/sys/fs/cgroup/x": inotify_add_watch /sys/fs/cgroup/x: no space left on device',
      '/var/log/syslog',
      start,
    );
    assert.equal(tracker.expire(start + 11 * MINUTE, { nodeReady: false }), 'none');
    assert.equal(tracker.open().length, 1, 'quiet, but the node is still NotReady');
    assert.equal(tracker.expire(start + 12 * MINUTE, { nodeReady: true }), 'major');
    assert.equal(tracker.open().length, 0);
    assert.match(
      tracker.all()[0]?.endReason ?? '',
      /no matching line for 10m and the node is Ready/,
    );
  });

  it('keeps kernel states such as a read-only remount until the host reboots', () => {
    const { tracker, feed } = setup();
    const at = Date.parse('2026-02-20T12:00:00Z');
    feed(
      'Feb 20 12:00:00 n1 kernel: [1.2] EXT4-fs (dm-4): Remounting filesystem read-only',
      'kmsg',
      at,
    );
    tracker.expire(at + 7 * 24 * 60 * MINUTE, { nodeReady: true, bootTime: at - MINUTE });
    assert.equal(tracker.open()[0]?.problem, 'ReadonlyFilesystem', 'a week later, same boot');
    tracker.expire(at + 7 * 24 * 60 * MINUTE, { nodeReady: true, bootTime: at + MINUTE });
    assert.equal(tracker.open().length, 0);
    assert.equal(tracker.all()[0]?.endReason, 'the host rebooted since');
  });

  it('scanning saved logs, finds two episodes hours apart as two incidents', () => {
    const { tracker, feed } = setup();
    const inotify = (time: string) =>
      feed(
        `Feb 20 ${time} n1 kubelet[9]: F0220 ${time}.1 9 kubelet.go:1369] Failed to start cAdvisor inotify_add_watch /sys/fs/cgroup/x: no space left on device`,
      );
    inotify('01:00:00');
    inotify('01:00:30');
    inotify('04:10:00');
    const all = tracker.all();
    assert.equal(all.length, 2);
    assert.deepEqual(
      all.map((i) => i.count),
      [2, 1],
    );
    assert.ok(all[0]?.endedAt !== undefined && all[1]?.endedAt === undefined);
  });

  it('survives a restart: a snapshot restores open incidents and count windows', () => {
    const first = setup();
    first.feed(
      'Feb 20 12:00:00 n1 systemd[1]: kubelet.service: Scheduled restart job, restart counter is at 1.',
    );
    first.feed(
      'Feb 20 12:01:00 n1 systemd[1]: kubelet.service: Scheduled restart job, restart counter is at 2.',
    );
    first.feed(
      'Feb 20 12:01:30 n1 kernel: [1.2] INFO: task jbd2/sda1-8:123 blocked for more than 120 seconds.',
    );
    const snapshot = JSON.parse(JSON.stringify(first.tracker.snapshot())) as ReturnType<
      IncidentTracker['snapshot']
    >;
    const second = setup();
    second.tracker.restore(snapshot);
    assert.deepEqual(
      second.tracker.open().map((i) => i.problem),
      ['TaskHung'],
    );
    for (const [n, t] of [
      [3, '12:02:00'],
      [4, '12:03:00'],
      [5, '12:04:00'],
    ] as const) {
      second.feed(
        `Feb 20 ${t} n1 systemd[1]: kubelet.service: Scheduled restart job, restart counter is at ${n}.`,
      );
    }
    assert.ok(
      second.tracker.open().some((i) => i.cause === 'KubeletCrashLoop'),
      'two restarts before the restart and three after make five',
    );
  });
});
