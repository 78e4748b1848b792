// The node profile: sysctl values a kubelet node needs, from the seeds' /etc/sysctl.d/99-sysctl.conf
// and from the values kubelet's protectKernelDefaults insists on. Operators add keys or override
// any field under checks.sysctl.profile.<key> (per-field merge), or set enabled: false.
import * as v from 'valibot';
import { SEVERITIES } from '../../findings/finding.ts';
import { parseExpectation } from '../../parsers/sysctlExpectation.ts';

/** YAML may give a number where a sysctl value is meant: keep it as text. */
const scalar = v.pipe(v.union([v.string(), v.number()]), v.transform(String));

export const profileEntrySchema = v.pipe(
  v.strictObject({
    enabled: v.optional(v.boolean(), true),
    /** ">= N", "<= N", "= VALUE", "!= VALUE" or "includes PORTS". */
    expect: v.optional(
      v.pipe(
        scalar,
        v.check(
          (text) => typeof parseExpectation(text) !== 'string',
          (issue) => {
            const result = parseExpectation(issue.input);
            return typeof result === 'string' ? result : 'invalid expectation';
          },
        ),
      ),
    ),
    /** The value the fix text writes (default: the least value that meets `expect`). */
    recommended: v.optional(scalar),
    severity: v.optional(v.picklist(SEVERITIES), 'warning'),
    /** Severity when the value is right now but not persisted (info where something else re-applies it). */
    notPersistedSeverity: v.optional(v.picklist(SEVERITIES), 'warning'),
    /** Why the node needs it: shown in every finding about this key. */
    reason: v.optional(v.string(), ''),
    /**
     * The value the key has after boot when nothing sets it. When it meets `expect`, the key not
     * being persisted is fine (e.g. vm.panic_on_oom is 0 by default).
     */
    bootDefault: v.optional(scalar),
  }),
  v.forward(
    v.check(
      (entry) => !entry.enabled || entry.expect !== undefined,
      'an enabled profile entry needs "expect"',
    ),
    ['expect'],
  ),
);

export type ProfileEntry = v.InferOutput<typeof profileEntrySchema>;

const INOTIFY_WATCHES_REASON =
  'kubelet\'s cAdvisor puts an inotify watch on every cgroup; when the per-user limit is used up, kubelet logs "Failed to start cAdvisor ... inotify_add_watch ...: no space left on device", exits, and the node goes NotReady.';
const PROTECT_KERNEL_DEFAULTS_REASON =
  'kubelet expects this value: with protectKernelDefaults: true it refuses to start while the value differs (node NotReady); without it, kubelet overwrites the value at start-up.';
/**
 * kubelet re-applies these at every start unless protectKernelDefaults is true, so a value that is
 * right but not persisted is only a problem on nodes that set it: worth knowing, not paging.
 */
const KUBELET_MANAGED = { severity: 'warning', notPersistedSeverity: 'info' } as const;

/** Default profile. Input form (as an operator would write it in YAML). */
export const DEFAULT_SYSCTL_PROFILE: Record<string, v.InferInput<typeof profileEntrySchema>> = {
  'fs.inotify.max_user_watches': {
    expect: '>= 524288',
    recommended: '1048576',
    severity: 'critical',
    reason: INOTIFY_WATCHES_REASON,
  },
  'fs.inotify.max_user_instances': {
    expect: '>= 8192',
    severity: 'critical',
    reason:
      'Every container, kubelet and the runtime open inotify instances; at the default of 128 per user new ones fail with "too many open files" and log following, config reload and cAdvisor break.',
  },
  'net.ipv4.ip_forward': {
    expect: '= 1',
    severity: 'critical',
    reason:
      'Pod traffic is routed through the node; with forwarding off, pods cannot reach other nodes or Services (kubeadm preflight requires it).',
  },
  'net.bridge.bridge-nf-call-iptables': {
    expect: '= 1',
    severity: 'critical',
    bootDefault: '1',
    reason:
      "Bridged pod traffic must pass through iptables, or kube-proxy's Service rules and NetworkPolicies are bypassed. Needs the br_netfilter module.",
  },
  'net.bridge.bridge-nf-call-ip6tables': {
    expect: '= 1',
    severity: 'critical',
    bootDefault: '1',
    reason:
      'Same as bridge-nf-call-iptables, for IPv6 traffic through ip6tables. Needs the br_netfilter module.',
  },
  'net.bridge.bridge-nf-call-arptables': {
    expect: '= 1',
    severity: 'critical',
    bootDefault: '1',
    reason:
      'Bridged ARP traffic passes through arptables, as the node profile sets it. Needs the br_netfilter module.',
  },
  'net.ipv4.ip_local_reserved_ports': {
    expect: 'includes 30000-32767',
    severity: 'warning',
    reason:
      'Reserves the NodePort range so the kernel never hands those ports out as ephemeral source ports, which would make NodePort Services fail to bind or collide.',
  },
  'vm.overcommit_memory': {
    ...KUBELET_MANAGED,
    expect: '= 1',
    reason: PROTECT_KERNEL_DEFAULTS_REASON,
  },
  'vm.panic_on_oom': {
    ...KUBELET_MANAGED,
    expect: '= 0',
    bootDefault: '0',
    reason: `${PROTECT_KERNEL_DEFAULTS_REASON} The OOM killer must kill a container, not panic the node.`,
  },
  'kernel.panic': {
    ...KUBELET_MANAGED,
    expect: '= 10',
    reason: `${PROTECT_KERNEL_DEFAULTS_REASON} A panicked node reboots after 10 s instead of hanging.`,
  },
  'kernel.panic_on_oops': {
    ...KUBELET_MANAGED,
    expect: '= 1',
    reason: `${PROTECT_KERNEL_DEFAULTS_REASON} An oops panics (then reboots) rather than leaving a half-broken kernel running.`,
  },
};
