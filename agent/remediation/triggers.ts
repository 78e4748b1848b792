// Which remediation actions the current findings call for, and which findings call for them.
// Pure: the engine asks this after every run of a check that can trigger an action.
import type { RemediationActionId } from '../config/remediationSchema.ts';
import type { Finding } from '../findings/finding.ts';

/** The actions that change the host (restart-kubelet follows one of them). */
export const HOST_ACTIONS = ['inotify-limits', 'kernel-networking'] as const;

/** The sysctl keys each host action sets (and persists). */
export const ACTION_KEYS = {
  'inotify-limits': ['fs.inotify.max_user_watches', 'fs.inotify.max_user_instances'],
  'kernel-networking': [
    'net.ipv4.ip_forward',
    'net.bridge.bridge-nf-call-iptables',
    'net.bridge.bridge-nf-call-ip6tables',
  ],
} as const;

/** Problems of the sysctl check an action fixes: a value out of profile, missing or not persisted. */
const SYSCTL_PROBLEMS = new Set(['SysctlOutOfProfile', 'SysctlKeyMissing', 'SysctlNotPersisted']);

/** Sysctl-check problems about a module rather than a key (their ids name no key). */
const MODULE_PROBLEMS: Record<'inotify-limits' | 'kernel-networking', readonly string[]> = {
  'inotify-limits': [],
  // br_netfilter not loaded (the bridge keys are missing), or loaded but not at boot
  'kernel-networking': ['BrNetfilterNotLoaded', 'BrNetfilterNotPersisted'],
};

/** Causes an action removes; the kubelet must then be restarted to recover from them. */
export const CAUSES_FIXED_BY: Record<'inotify-limits' | 'kernel-networking', readonly string[]> = {
  'inotify-limits': ['InotifyWatchesExhausted', 'InotifyInstancesExhausted'],
  'kernel-networking': [],
};

export interface Trigger {
  action: RemediationActionId;
  /** "<check>/<finding id>" of each finding that calls for the action. */
  findings: string[];
  /** Causes among them that a kubelet restart recovers from once the action fixed them. */
  causes: string[];
}

export function hostActionTriggers(active: readonly Finding[]): Trigger[] {
  const triggers: Trigger[] = [];
  for (const action of HOST_ACTIONS) {
    const keys: readonly string[] = ACTION_KEYS[action];
    const fixes = CAUSES_FIXED_BY[action];
    const matched = active.filter((finding) => {
      if (finding.cause !== undefined && fixes.includes(finding.cause)) return true;
      if (finding.check !== 'sysctl') return false;
      if (MODULE_PROBLEMS[action].includes(finding.problem)) return true;
      if (!SYSCTL_PROBLEMS.has(finding.problem)) return false;
      const key = finding.id.slice(finding.id.indexOf(':') + 1);
      return keys.includes(key);
    });
    if (matched.length === 0) continue;
    triggers.push({
      action,
      findings: matched.map((f) => `${f.check}/${f.id}`).sort(),
      causes: causesFixedBy(matched, action).causes,
    });
  }
  return triggers;
}

/**
 * The active findings carrying a cause `action` removes ("<check>/<id>"), and those causes:
 * what a kubelet restart after that action would recover from.
 */
export function causesFixedBy(
  active: readonly Finding[],
  action: (typeof HOST_ACTIONS)[number],
): { findings: string[]; causes: string[] } {
  const fixes = CAUSES_FIXED_BY[action];
  const carrying = active.filter((f) => f.cause !== undefined && fixes.includes(f.cause));
  return {
    findings: carrying.map((f) => `${f.check}/${f.id}`).sort(),
    causes: [...new Set(carrying.map((f) => f.cause ?? ''))].sort(),
  };
}
