// The findings the seed's NotReady node gives the remediation engine, as the checks report them.
import type { Finding } from '../../agent/findings/finding.ts';

/** What the logs check reports for the seed's NotReady node (cAdvisor out of inotify watches). */
export const EXHAUSTED: Finding = {
  check: 'logs',
  id: 'InotifyWatchesExhausted',
  problem: 'InotifyWatchesExhausted',
  severity: 'critical',
  title: 'inotify watches exhausted: kubelet cannot start cAdvisor',
  message: 'kubelet failed to start cAdvisor: inotify_add_watch: no space left on device',
  evidence: [
    'Failed to start cAdvisor inotify_add_watch /sys/fs/cgroup/cpu: no space left on device',
  ],
  cause: 'InotifyWatchesExhausted',
  firstSeen: '2026-11-22T03:00:00.000Z',
  lastSeen: '2026-11-22T03:00:00.000Z',
};

/** What the sysctl check reports on the same node: the limit below the profile, no cause. */
export const OUT_OF_PROFILE: Finding = {
  check: 'sysctl',
  id: 'SysctlOutOfProfile:fs.inotify.max_user_watches',
  problem: 'SysctlOutOfProfile',
  severity: 'critical',
  title: 'fs.inotify.max_user_watches is 8192, below the node profile',
  message: 'fs.inotify.max_user_watches is 8192, below the node profile',
  evidence: ['/proc/sys/fs/inotify/max_user_watches: 8192'],
  firstSeen: '2026-11-22T03:00:00.000Z',
  lastSeen: '2026-11-22T03:00:00.000Z',
};
