// Every Kubernetes permission the agent uses, in one place, least privilege. The chart's RBAC
// (chart/templates/rbac.yaml, written by hand) is tested equal to this table
// (test/chart/chart.test.ts), and the tests' API server authorizes the agent's ServiceAccount
// with it, so a call the table does not allow fails in the tests exactly as in a cluster.

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
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
    why: "Watch the agent's own Node (Ready condition, uid for Events).",
  },
  {
    apiGroups: [''],
    resources: ['nodes/status'],
    verbs: ['patch'],
    why: 'Set NodeConditions on its own Node (only when kubernetes.nodeConditions.enabled).',
  },
  {
    apiGroups: [''],
    resources: ['pods'],
    verbs: ['list', 'watch'],
    why: 'Map processes and cgroups on this node to pods (fieldSelector=spec.nodeName=<node>).',
  },
  {
    apiGroups: ['rbac.authorization.k8s.io'],
    resources: ['clusterrolebindings', 'clusterroles', 'rolebindings', 'roles'],
    // read only; the rbac check runs on the leader and reports, it never changes a binding
    verbs: ['list'],
    why: 'The rbac check: who is bound to what (anonymous access, ServiceAccounts with cluster-admin).',
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
    why: 'Report findings as Events on its own Node.',
  },
];

/** Role in the agent's own namespace: the leader Lease and the remediation lock's Leases. */
export const LEASE_RULES: readonly PolicyRule[] = [
  {
    apiGroups: ['coordination.k8s.io'],
    resources: ['leases'],
    verbs: ['get', 'create', 'update'],
    why: 'Elect one agent to run the cluster-scoped audits, and hold the cluster-wide remediation lock (node-auditor-remediation-<n>).',
  },
];

/**
 * Granted only when a remediation action is enabled (the chart adds them then): writing to a
 * Node's metadata is more than a read-only auditor needs.
 */
export const REMEDIATION_RULES: readonly PolicyRule[] = [
  {
    apiGroups: [''],
    resources: ['nodes'],
    verbs: ['patch'],
    why: 'Annotate its own Node with the last remediation (node-auditor/last-remediation).',
  },
];
