// The sysctl check on this machine's real kernel (/proc/sys), against procps' own `sysctl`.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { test } from 'node:test';
import { sysctlCheck } from '../../agent/checks/sysctl/sysctlCheck.ts';
import { formatPortRanges, parsePortRanges } from '../../agent/parsers/portRanges.ts';
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

test('port lists: the parser accepts exactly what the kernel accepts in ip_local_reserved_ports', async (t) => {
  if (!requireRoot(t, 'writing /proc/sys in a network namespace of its own')) return;
  const unshare = requireTool(t, 'unshare');
  if (unshare === undefined) return;
  // The key belongs to the network namespace: each value is written in a new one, so the host's
  // reserved ports are never touched. Restored anyway, should a kernel share it.
  const file = '/proc/sys/net/ipv4/ip_local_reserved_ports';
  const original = await fs.readFile(file, 'utf8');
  const candidates = [
    '30000-32767',
    '8080,30000-32767',
    '',
    '8080,',
    '30000 - 32767',
    '30000 -32767',
    '30000-32767, 8080',
    '30000-32767 ,8080',
    ',8080',
    '1-2,,3',
    '5-3',
    '70000',
    '1-65535',
    '010',
    '0x7530-0x7fff',
    '08',
    '+8080',
    '1-',
  ];
  // One namespace per value: "ok <what the kernel prints>" or "rejected".
  const script =
    'for v in "$@"; do unshare -n sh -c \'printf "%s" "$1" > ' +
    file +
    ' 2>/dev/null && echo "ok $(cat ' +
    file +
    ')" || echo rejected\' sh "$v"; done';
  let kernel: string[];
  try {
    kernel = execFileSync('sh', ['-c', script, 'sh', ...candidates], { encoding: 'utf8' })
      .trimEnd()
      .split('\n');
  } finally {
    if ((await fs.readFile(file, 'utf8')) !== original) await fs.writeFile(file, original);
  }
  assert.equal(kernel.length, candidates.length, kernel.join('\n'));
  const ours = candidates.map((text) => {
    const ranges = parsePortRanges(text);
    return ranges === undefined ? 'rejected' : `ok ${formatPortRanges(ranges)}`.trimEnd();
  });
  assert.deepEqual(
    candidates.map((text, i) => `${JSON.stringify(text)}: ${ours[i]}`),
    candidates.map((text, i) => `${JSON.stringify(text)}: ${kernel[i]?.trimEnd()}`),
  );
  assert.ok(kernel.includes('rejected') && kernel.includes('ok 30000-32767'), 'both kinds seen');
});
