// The sysctl check on this machine's real kernel (/proc/sys), against procps' own `sysctl`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { test } from 'node:test';
import { sysctlCheck } from '../../agent/checks/sysctl/sysctlCheck.ts';
import { requireRoot, requireTool } from '../helpers.ts';
import { checkOptions, runCheckOn } from './runCheckOn.ts';

const options = checkOptions(sysctlCheck, {});

function run() {
  return runCheckOn(sysctlCheck, '/', options);
}

test('values read from the real /proc/sys are the ones procps sysctl reports', async (t) => {
  const sysctl = requireTool(t, 'sysctl');
  if (sysctl === undefined) return;
  const outcome = await run();
  let compared = 0;
  for (const key of Object.keys(options.profile)) {
    let expected: string;
    try {
      expected = execFileSync(sysctl, ['-n', key], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      }).trim();
    } catch {
      // the key does not exist on this kernel (br_netfilter not loaded): the check must say so
      assert.equal(
        outcome.samples?.find(
          (s) => s.metric === 'node_auditor_sysctl_compliant' && s.labels.key === key,
        )?.value,
        0,
        key,
      );
      continue;
    }
    const value = outcome.samples?.find(
      (s) => s.metric === 'node_auditor_sysctl' && s.labels.key === key,
    )?.value;
    if (/^-?\d+$/.test(expected)) {
      assert.equal(value, Number(expected), key);
      compared++;
    }
  }
  assert.ok(compared >= 5, `compared ${compared} numeric keys with sysctl -n`);
});

test('changing a real sysctl raises the finding, restoring it clears it', async (t) => {
  if (!requireRoot(t, 'writing /proc/sys')) return;
  const file = '/proc/sys/kernel/panic';
  const original = (await fs.readFile(file, 'utf8')).trim();
  // kernel.panic only matters when the kernel panics; flipping it for a moment is harmless
  const wrong = original === '10' ? '9' : original;
  try {
    await fs.writeFile(file, wrong);
    const raised = await run();
    const finding = raised.findings.find((f) => f.id === 'SysctlOutOfProfile:kernel.panic');
    assert.ok(finding, 'raised while kernel.panic is not 10');
    assert.equal(finding.title, `kernel.panic is ${wrong}, needs 10`);

    await fs.writeFile(file, '10');
    const cleared = await run();
    assert.equal(
      cleared.findings.find((f) => f.id === 'SysctlOutOfProfile:kernel.panic'),
      undefined,
      'cleared once kernel.panic is 10',
    );
    assert.equal(
      cleared.samples?.find(
        (s) => s.metric === 'node_auditor_sysctl_compliant' && s.labels.key === 'kernel.panic',
      )?.value,
      1,
    );
  } finally {
    await fs.writeFile(file, original);
  }
  assert.equal((await fs.readFile(file, 'utf8')).trim(), original, 'restored');
});
