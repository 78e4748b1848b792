// Which findings call for which remediation action: the sysctl check's key problems for the
// keys an action sets, its br_netfilter problems for kernel-networking, the inotify causes for
// inotify-limits; nothing else.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Finding } from '../../agent/findings/finding.ts';
import { hostActionTriggers } from '../../agent/remediation/triggers.ts';

function finding(check: string, id: string, cause?: string): Finding {
  const problem = id.split(':')[0] as string;
  return {
    check,
    id,
    problem,
    severity: 'warning',
    title: id,
    message: id,
    evidence: [],
    ...(cause === undefined ? {} : { cause }),
    firstSeen: '2026-11-22T03:00:00.000Z',
    lastSeen: '2026-11-22T03:00:00.000Z',
  } as Finding;
}

test('br_netfilter not loaded, or not loaded at boot, calls for kernel-networking (their ids name no key)', () => {
  for (const problem of ['BrNetfilterNotLoaded', 'BrNetfilterNotPersisted']) {
    assert.deepEqual(hostActionTriggers([finding('sysctl', problem)]), [
      { action: 'kernel-networking', findings: [`sysctl/${problem}`], causes: [] },
    ]);
  }
  // the same problem name from another check is not the sysctl check's finding
  assert.deepEqual(hostActionTriggers([finding('logs', 'BrNetfilterNotLoaded')]), []);
});

test('key problems call for the action that sets the key; an inotify cause for inotify-limits', () => {
  const triggers = hostActionTriggers([
    finding('sysctl', 'SysctlOutOfProfile:fs.inotify.max_user_watches'),
    finding('sysctl', 'SysctlNotPersisted:net.ipv4.ip_forward'),
    finding('sysctl', 'SysctlOutOfProfile:vm.overcommit_memory'),
    finding('logs', 'InotifyWatchesExhausted', 'InotifyWatchesExhausted'),
  ]);
  assert.deepEqual(triggers, [
    {
      action: 'inotify-limits',
      findings: [
        'logs/InotifyWatchesExhausted',
        'sysctl/SysctlOutOfProfile:fs.inotify.max_user_watches',
      ],
      causes: ['InotifyWatchesExhausted'],
    },
    {
      action: 'kernel-networking',
      findings: ['sysctl/SysctlNotPersisted:net.ipv4.ip_forward'],
      causes: [],
    },
  ]);
});
