// A check that throws, rejects or hangs is an error run: reported, never fatal.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { Check } from '../../agent/checks/check.ts';
import type { CheckSettings } from '../../agent/config/configSchema.ts';
import { ErrorCode } from '../../agent/errors.ts';
import { draft } from '../../agent/findings/finding.ts';
import { FindingStore } from '../../agent/findings/findingStore.ts';
import { HostRoot } from '../../agent/host/hostRoot.ts';
import { CheckRunner, applyRunToFindings } from '../../agent/runner/runCheck.ts';

const settings: CheckSettings = { enabled: true, interval: '60s', timeout: '200ms' };
const runner = () =>
  new CheckRunner({ host: new HostRoot('/'), nodeName: 'n', log: pino({ level: 'silent' }) });

function check(id: string, run: Check['run']): Check {
  return {
    id,
    title: id,
    description: id,
    defaults: { enabled: true, interval: '60s', timeout: '1s' },
    options: {},
    run,
  };
}

test('a check that throws synchronously is an error run with its message', async () => {
  const run = await runner().run(
    check('throws', () => {
      throw new Error('boom');
    }),
    settings,
  );
  assert.equal(run.result, 'error');
  assert.equal(run.error?.code, ErrorCode.CheckFailed);
  assert.equal(run.error?.message, 'boom');
});

test('a check that hangs times out; its next run is refused while the first still hangs', async () => {
  let seenSignal: AbortSignal | undefined;
  const hangs = check('hangs', ({ signal }) => {
    seenSignal = signal;
    return new Promise(() => undefined);
  });
  const r = runner();
  const started = Date.now();
  const first = await r.run(hangs, settings);
  assert.equal(first.result, 'error');
  assert.equal(first.error?.code, ErrorCode.CheckTimeout);
  assert.equal(first.error?.message, 'did not finish within its 200ms timeout');
  assert.ok(Date.now() - started < 1000);
  assert.equal(seenSignal?.aborted, true, 'the check was asked to stop');
  const second = await r.run(hangs, settings);
  assert.equal(second.error?.code, ErrorCode.CheckStillRunning);
  assert.match(second.error?.message ?? '', /has not finished \(hung\?\); not starting another/);
});

test('a run asked for while the previous one is within its timeout waits for it', async () => {
  const r = runner();
  const spans: [number, number][] = [];
  const slow = check('slow', async () => {
    const start = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 150));
    spans.push([start, Date.now()]);
    return { findings: [] };
  });
  const [first, second] = await Promise.all([r.run(slow, settings), r.run(slow, settings)]);
  assert.deepEqual([first.result, second.result], ['ok', 'ok'], 'not reported as stuck');
  assert.ok(
    (spans[1]?.[0] ?? 0) >= (spans[0]?.[1] ?? Infinity),
    'one after the other, never overlapping',
  );
});

test('a check that rejects late, after its timeout, does not surface anywhere', async () => {
  const r = runner();
  const late = check(
    'late',
    () =>
      new Promise((_, reject) =>
        setTimeout(() => {
          reject(new Error('too late'));
        }, 300),
      ),
  );
  const run = await r.run(late, settings);
  assert.equal(run.error?.code, ErrorCode.CheckTimeout);
  await new Promise((resolve) => setTimeout(resolve, 400)); // an unhandled rejection would fail this test file
  const again = await r.run(
    check('late', () => Promise.resolve({ findings: [] })),
    settings,
  );
  assert.equal(again.result, 'ok', 'once the late run settled, the check runs again');
});

test('problem vs ok depends on warning/critical findings, not info', async () => {
  const r = runner();
  const info = draft('X', undefined, { severity: 'info', title: 't', message: 'm', evidence: [] });
  const warn = draft('Y', undefined, {
    severity: 'warning',
    title: 't',
    message: 'm',
    evidence: [],
  });
  assert.equal(
    (
      await r.run(
        check('a', () => Promise.resolve({ findings: [info] })),
        settings,
      )
    ).result,
    'ok',
  );
  assert.equal(
    (
      await r.run(
        check('b', () => Promise.resolve({ findings: [info, warn] })),
        settings,
      )
    ).result,
    'problem',
  );
});

test('a failed run leaves a CheckFailed finding and keeps what the check saw before', async () => {
  const r = runner();
  const store = new FindingStore();
  const seenBefore = draft('SysctlOutOfProfile', 'kernel.panic', {
    severity: 'warning',
    title: 't',
    message: 'm',
    evidence: [],
  });
  applyRunToFindings(
    store,
    await r.run(
      check('c', () => Promise.resolve({ findings: [seenBefore] })),
      settings,
    ),
  );
  applyRunToFindings(
    store,
    await r.run(
      check('c', () => Promise.reject(new Error('EIO reading /proc'))),
      settings,
    ),
  );
  const findings = store.ofCheck('c');
  assert.deepEqual(findings.map((f) => f.id).sort(), [
    'CheckFailed',
    'SysctlOutOfProfile:kernel.panic',
  ]);
  const failed = findings.find((f) => f.id === 'CheckFailed');
  assert.equal(failed?.title, 'check c failed');
  assert.equal(failed?.evidence[0], 'EIO reading /proc');
});

test('in one pass of check, a timed-out run does not claim earlier findings are kept', async () => {
  const hangs = check('hangs', () => new Promise(() => undefined));
  const once = new FindingStore();
  applyRunToFindings(once, await runner().run(hangs, settings), 'once');
  const [failed] = once.ofCheck('hangs');
  // `check` has no "before": the agent's wording sent the reader looking for it.
  assert.equal(
    failed?.message,
    'The hangs check timed out: did not finish within its 200ms timeout.',
  );
  assert.equal(
    failed.remediation?.summary,
    'Run "node-auditor check --only hangs --log-level debug" to see what it did.',
  );
  const agent = new FindingStore();
  applyRunToFindings(agent, await runner().run(hangs, settings));
  assert.match(agent.ofCheck('hangs')[0]?.message ?? '', /What it reported before is kept/);
});
