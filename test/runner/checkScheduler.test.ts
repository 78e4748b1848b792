// Schedules for real: interval (from the end of the previous run), cron (node-cron, loaded on
// first use), and a reload that reschedules only what changed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { Check } from '../../agent/checks/check.ts';
import type { CheckSettings } from '../../agent/config/configSchema.ts';
import { HostRoot } from '../../agent/host/hostRoot.ts';
import { CheckScheduler } from '../../agent/runner/checkScheduler.ts';
import { CheckRunner } from '../../agent/runner/runCheck.ts';
import type { CheckRun } from '../../agent/runner/runCheck.ts';
import { sleep } from '../helpers.ts';

function counting(id: string): { check: Check; runs: number[] } {
  const runs: number[] = [];
  return {
    runs,
    check: {
      id,
      title: id,
      description: id,
      defaults: { enabled: true, interval: '1s', timeout: '1s' },
      options: {},
      run: () => {
        runs.push(Date.now());
        return Promise.resolve({ findings: [] });
      },
    },
  };
}

function scheduler(checks: Check[], seen: CheckRun[], disabled: string[]): CheckScheduler {
  const log = pino({ level: 'silent' });
  const runner = new CheckRunner({ host: new HostRoot('/'), nodeName: 'n', log });
  return new CheckScheduler(
    checks,
    runner,
    { onRun: (r) => seen.push(r), onDisabled: (id) => disabled.push(id) },
    log,
  );
}

const every = (interval: string, extra: Partial<CheckSettings> = {}): CheckSettings => ({
  enabled: true,
  interval,
  timeout: '1s',
  ...extra,
});

test('interval and cron schedules both run their checks, first at once', async (t) => {
  const byInterval = counting('by-interval');
  const byCron = counting('by-cron');
  const seen: CheckRun[] = [];
  const s = scheduler([byInterval.check, byCron.check], seen, []);
  t.after(() => {
    s.stop();
  });
  const started = Date.now();
  await s.apply({ 'by-interval': every('1s'), 'by-cron': every('1h', { cron: '* * * * * *' }) })
    .firstRuns; // every second
  assert.equal(byInterval.runs.length, 1, 'first run happens during apply');
  assert.equal(byCron.runs.length, 1);
  await sleep(2600);
  assert.ok(byInterval.runs.length >= 3, `interval runs: ${byInterval.runs.length}`);
  assert.ok(
    byCron.runs.length >= 3,
    `cron runs: ${byCron.runs.length} (an hourly interval would give 1)`,
  );
  assert.ok(
    (byInterval.runs[1] ?? 0) - started >= 950,
    'the interval is measured from the end of the previous run',
  );
  assert.ok(seen.every((r) => r.result === 'ok'));
});

test('a reload reschedules changed checks at once, leaves unchanged ones, stops disabled ones', async (t) => {
  const a = counting('a');
  const b = counting('b');
  const disabled: string[] = [];
  const s = scheduler([a.check, b.check], [], disabled);
  t.after(() => {
    s.stop();
  });
  await s.apply({ a: every('1h'), b: every('1h') }).firstRuns;
  const reload = s.apply({ a: every('1h'), b: every('2h') });
  assert.deepEqual(reload.changed, ['b']);
  await reload.firstRuns;
  assert.equal(a.runs.length, 1, 'unchanged: not run again');
  assert.equal(b.runs.length, 2, 'changed: run at once with the new settings');
  assert.deepEqual(s.apply({ a: every('1h'), b: { ...every('2h'), enabled: false } }).changed, [
    'b',
  ]);
  assert.deepEqual(disabled, ['b']);
  s.stop();
  const before = a.runs.length + b.runs.length;
  await sleep(1200);
  assert.equal(a.runs.length + b.runs.length, before, 'nothing runs after stop');
});

test("a reload or a disable while a check runs: no false 'stuck', no stale result", async (t) => {
  let runs = 0;
  const slow: Check = {
    id: 'slow',
    title: 'slow',
    description: 'slow',
    defaults: { enabled: true, interval: '1h', timeout: '2s' },
    options: {},
    run: async () => {
      runs++;
      await sleep(300);
      return { findings: [] };
    },
  };
  const seen: CheckRun[] = [];
  const disabled: string[] = [];
  const s = scheduler([slow], seen, disabled);
  t.after(() => {
    s.stop();
  });

  // settings change while the first run is going: the new job waits for it, then runs
  const first = s.apply({ slow: every('1h') });
  await sleep(50);
  await s.apply({ slow: every('2h') }).firstRuns;
  await first.firstRuns;
  assert.equal(runs, 2);
  assert.deepEqual(
    seen.map((r) => r.result),
    ['ok'],
    "only the new job's run is recorded, and it is not an error",
  );

  // disabled while running: the in-flight result is dropped, not recorded after the clear
  seen.length = 0;
  const again = s.apply({ slow: every('3h') });
  await sleep(50);
  s.apply({ slow: { ...every('3h'), enabled: false } });
  await again.firstRuns;
  assert.deepEqual(disabled, ['slow']);
  assert.deepEqual(seen, []);
});
