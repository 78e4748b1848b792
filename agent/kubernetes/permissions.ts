// Every Kubernetes permission the agent uses, in one place, least privilege, each rule with the
// features that need it: a rule is granted only while one of them is on (featuresOf says which
// are, from the agent's own configuration). The chart's RBAC (chart/templates/rbac.yaml, written
// by hand) is tested equal to these tables for every combination of those settings
// (test/chart/chart.test.ts), and the tests' API server authorizes the agent's ServiceAccount
// with them, so a call the tables do not allow fails in the tests exactly as in a cluster.
import type { Config } from '../config/configSchema.ts';
import { REMEDIATION_ACTIONS } from '../config/remediationSchema.ts';

/** What the agent does with the cluster, each behind its own setting. */
export const FEATURES = {
  /** The own Node's watch and the pods on this node: whenever there is a cluster. */
  always: 'always',
  events: 'kubernetes.events.enabled',
  nodeConditions: 'kubernetes.nodeConditions.enabled',
  leaderElection: 'kubernetes.leaderElection.enabled',
  rbacCheck: 'checks.rbac.enabled',
  /** Any remediation action enabled, in dryRun too: the decision is a Node annotation. */
  remediation: 'remediation.actions.<action>.enabled',
  /** An action enabled in mode enforce: only an action that acts takes the cluster lock. */
  remediationLock: 'remediation.mode enforce with an action enabled',
} as const;
export type Feature = keyof typeof FEATURES;

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  /** Granted while any of these is on. */
  neededBy: readonly Feature[];
  /** Why the agent needs it (the chart's rbac.yaml says it in a comment). */
  why: string;
}

/** ClusterRole: cluster-scoped objects, and pods in every namespace (they run on this node). */
export const CLUSTER_RULES: readonly PolicyRule[] = [
  {
    apiGroups: [''],
    resources: ['nodes'],
    // a watch needs list and watch even with fieldSelector=metadata.name=<own node>
    verbs: ['list', 'watch'],
    neededBy: ['always'],
    why: "Watch the agent's own Node (Ready condition, uid for Events).",
  },
  {
    apiGroups: [''],
    resources: ['nodes/status'],
    verbs: ['patch'],
    // RBAC cannot name the own Node: this is every Node's status (chart/README.md, "RBAC")
    neededBy: ['nodeConditions'],
    why: 'Set NodeConditions on its own Node.',
  },
  {
    apiGroups: [''],
    resources: ['pods'],
    verbs: ['list', 'watch'],
    neededBy: ['always'],
    why: 'Map processes and cgroups on this node to pods (fieldSelector=spec.nodeName=<node>).',
  },
  {
    apiGroups: ['rbac.authorization.k8s.io'],
    resources: ['clusterrolebindings', 'clusterroles', 'rolebindings', 'roles'],
    // read only; the rbac check runs on the leader and reports, it never changes a binding
    verbs: ['list'],
    neededBy: ['rbacCheck'],
    why: 'The rbac check: who is bound to what (anonymous access, ServiceAccounts with cluster-admin).',
  },
  {
    apiGroups: [''],
    resources: ['nodes'],
    // more than a read-only auditor needs, and more than the annotation: RBAC cannot name the
    // own Node nor a field, so this is every Node's whole object, taints and unschedulable
    // included (chart/README.md, "RBAC", has an admission policy that narrows it)
    verbs: ['patch'],
    neededBy: ['remediation'],
    why: 'Annotate its own Node with the last remediation (node-auditor/last-remediation).',
  },
];

/**
 * Role in namespace "default": an Event about a Node (a cluster-scoped object) must be created
 * in "default"; the API server refuses it in any other namespace (422).
 */
export const EVENT_NAMESPACE = 'default';
export const EVENT_RULES: readonly PolicyRule[] = [
  {
    apiGroups: [''],
    resources: ['events'],
    // no get: the agent keeps the names of the Events it created and patches them
    verbs: ['create', 'patch'],
    neededBy: ['events'],
    why: 'Report findings as Events on its own Node.',
  },
];

/** Role in the agent's own namespace: the leader Lease and the remediation lock's Leases. */
export const LEASE_RULES: readonly PolicyRule[] = [
  {
    apiGroups: ['coordination.k8s.io'],
    resources: ['leases'],
    verbs: ['get', 'create', 'update'],
    neededBy: ['leaderElection', 'remediationLock'],
    why: 'Elect one agent to run the cluster-scoped audits, and hold the cluster-wide remediation lock (node-auditor-remediation-<n>).',
  },
];

/** The features a configuration turns on. */
export function featuresOf(
  config: Pick<Config, 'kubernetes' | 'checks' | 'remediation'>,
): Set<Feature> {
  const features = new Set<Feature>(['always']);
  const { kubernetes, remediation } = config;
  if (kubernetes.events.enabled) features.add('events');
  if (kubernetes.nodeConditions.enabled) features.add('nodeConditions');
  if (kubernetes.leaderElection.enabled) features.add('leaderElection');
  if (config.checks.rbac?.enabled === true) features.add('rbacCheck');
  if (REMEDIATION_ACTIONS.some((action) => remediation.actions[action].enabled)) {
    features.add('remediation');
    if (remediation.mode === 'enforce') features.add('remediationLock');
  }
  return features;
}

/** The rules of a table that these features need. */
export function grantedRules(
  table: readonly PolicyRule[],
  features: ReadonlySet<Feature>,
): PolicyRule[] {
  return table.filter((rule) => rule.neededBy.some((feature) => features.has(feature)));
}
