// The rbac check's judgement, a pure function of the cluster's RBAC objects: which bindings give
// unauthenticated clients more than a fresh cluster does, the legacy bindings the seeds fix,
// and ServiceAccounts with cluster-admin power.
//
// Exact on purpose. A subject matches by kind AND name (a Group called system:anonymous is not
// the anonymous user). What anonymous may do in a fresh cluster is allowed by rule content, not
// by binding name: system:public-info-viewer's GET of the health and version URLs, and kubeadm's
// GET of the kube-public/cluster-info ConfigMap (how joining nodes find the cluster). A binding
// with one of those names that grants more is still reported; one granting only that is not
// (kubescape reports system:public-info-viewer; it is not a risk).
import type { FindingDraft, Severity } from '../../findings/finding.ts';

export interface Subject {
  kind?: string;
  apiGroup?: string;
  name?: string;
  namespace?: string;
}

export interface PolicyRule {
  verbs?: string[];
  apiGroups?: string[];
  resources?: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

interface Meta {
  metadata?: { name?: string; namespace?: string; annotations?: Record<string, string> };
}

export interface Binding extends Meta {
  subjects?: Subject[] | null;
  roleRef?: { kind?: string; name?: string; apiGroup?: string };
}

export interface Role extends Meta {
  rules?: PolicyRule[] | null;
}

export interface RbacObjects {
  clusterRoleBindings: Binding[];
  clusterRoles: Role[];
  roleBindings: Binding[];
  roles: Role[];
}

export interface RbacAuditOptions {
  /** Bindings the operator accepts: "<name>" (ClusterRoleBinding) or "<namespace>/<name>". */
  allowedBindings: readonly string[];
}

const PUBLIC_INFO_URLS = new Set(['/healthz', '/livez', '/readyz', '/version', '/version/']);
/** The pre-1.14 default bindings that also named system:unauthenticated. */
const LEGACY_BINDINGS = new Set(['system:basic-user', 'system:discovery']);
const AUTOUPDATE = 'rbac.authorization.kubernetes.io/autoupdate';
const READ_VERBS = new Set(['get', 'list', 'watch']);

function isAnonymousSubject(s: Subject): boolean {
  return (
    (s.kind === 'Group' && s.name === 'system:unauthenticated') ||
    (s.kind === 'User' && s.name === 'system:anonymous')
  );
}

/** A rule anonymous clients have in a fresh cluster. */
function isAllowedForAnonymous(rule: PolicyRule, namespace: string | undefined): boolean {
  const verbs = rule.verbs ?? [];
  const onlyGet = verbs.length > 0 && verbs.every((v) => v === 'get');
  if (!onlyGet) return false;
  const urls = rule.nonResourceURLs ?? [];
  if (urls.length > 0)
    return urls.every((u) => PUBLIC_INFO_URLS.has(u)) && (rule.resources ?? []).length === 0;
  // kubeadm's bootstrap-signer-clusterinfo Role: get of one ConfigMap in kube-public
  return (
    namespace === 'kube-public' &&
    sameSet(rule.apiGroups ?? [], ['']) &&
    sameSet(rule.resources ?? [], ['configmaps']) &&
    sameSet(rule.resourceNames ?? [], ['cluster-info'])
  );
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x));
}

function isWildcardAdmin(rule: PolicyRule): boolean {
  return (
    (rule.apiGroups ?? []).includes('*') &&
    (rule.resources ?? []).includes('*') &&
    (rule.verbs ?? []).includes('*')
  );
}

function describeRule(rule: PolicyRule): string {
  const verbs = (rule.verbs ?? []).join(',');
  if ((rule.nonResourceURLs ?? []).length > 0)
    return `${verbs} ${(rule.nonResourceURLs ?? []).join(',')}`;
  const groups = (rule.apiGroups ?? []).map((g) => (g === '' ? 'core' : g)).join(',');
  const names =
    (rule.resourceNames ?? []).length > 0 ? ` named ${(rule.resourceNames ?? []).join(',')}` : '';
  return `${verbs} ${(rule.resources ?? []).join(',')} (${groups})${names}`;
}

/** A rule that lets anyone change the cluster or read its secrets, or a wildcard. */
function isDangerous(rule: PolicyRule): boolean {
  const verbs = rule.verbs ?? [];
  const resources = rule.resources ?? [];
  return (
    verbs.some((v) => !READ_VERBS.has(v)) ||
    resources.includes('*') ||
    resources.includes('secrets') ||
    (rule.apiGroups ?? []).includes('*') ||
    (rule.nonResourceURLs ?? []).includes('*')
  );
}

interface BoundRole {
  binding: Binding;
  /** "" for a ClusterRoleBinding. */
  namespace: string;
  rules: PolicyRule[];
  /** The role does not exist (the binding grants nothing until it does). */
  missing: boolean;
}

function resolve(objects: RbacObjects, binding: Binding, namespace: string): BoundRole {
  const ref = binding.roleRef ?? {};
  const role =
    ref.kind === 'ClusterRole'
      ? objects.clusterRoles.find((r) => r.metadata?.name === ref.name)
      : objects.roles.find(
          (r) => r.metadata?.name === ref.name && r.metadata?.namespace === namespace,
        );
  return { binding, namespace, rules: role?.rules ?? [], missing: role === undefined };
}

function bindingLabel(b: BoundRole): string {
  const name = b.binding.metadata?.name ?? '?';
  return b.namespace === '' ? `ClusterRoleBinding ${name}` : `RoleBinding ${b.namespace}/${name}`;
}

function bindingKey(b: BoundRole): string {
  const name = b.binding.metadata?.name ?? '?';
  return b.namespace === '' ? name : `${b.namespace}/${name}`;
}

function subjectLabel(s: Subject): string {
  return s.kind === 'ServiceAccount'
    ? `ServiceAccount ${s.namespace ?? '?'}/${s.name ?? '?'}`
    : `${s.kind ?? '?'} ${s.name ?? '?'}`;
}

/**
 * kubectl that removes exactly these subjects: a JSON patch whose "test" ops make it fail
 * rather than remove the wrong subject if the binding changed since (indices from the end, so
 * each removal leaves the earlier ones in place).
 */
function removeSubjectsCommand(b: BoundRole, indices: number[]): string {
  const subjects = b.binding.subjects ?? [];
  const name = b.binding.metadata?.name ?? '';
  const where = b.namespace === '' ? 'clusterrolebinding' : `-n ${b.namespace} rolebinding`;
  if (indices.length === subjects.length) return `kubectl delete ${where} ${name}`;
  const ops = [...indices]
    .sort((x, y) => y - x)
    .flatMap((i) => [
      { op: 'test', path: `/subjects/${i}/name`, value: subjects[i]?.name ?? '' },
      { op: 'remove', path: `/subjects/${i}` },
    ]);
  return `kubectl patch ${where} ${name} --type=json -p '${JSON.stringify(ops)}'`;
}

export function auditRbac(objects: RbacObjects, options: RbacAuditOptions): FindingDraft[] {
  const allowed = new Set(options.allowedBindings);
  const bound: BoundRole[] = [
    ...objects.clusterRoleBindings.map((b) => resolve(objects, b, '')),
    ...objects.roleBindings.map((b) => resolve(objects, b, b.metadata?.namespace ?? '')),
  ].filter((b) => !allowed.has(bindingKey(b)));
  return [...anonymousFindings(bound), ...serviceAccountAdminFindings(objects, bound)];
}

function anonymousFindings(bound: BoundRole[]): FindingDraft[] {
  const findings: FindingDraft[] = [];
  const legacy: { b: BoundRole; extra: PolicyRule[]; indices: number[] }[] = [];
  for (const b of bound) {
    const subjects = b.binding.subjects ?? [];
    const indices = subjects.flatMap((s, i) => (isAnonymousSubject(s) ? [i] : []));
    if (indices.length === 0 || b.missing) continue;
    const extra = b.rules.filter(
      (r) => !isAllowedForAnonymous(r, b.namespace === '' ? undefined : b.namespace),
    );
    if (extra.length === 0) continue;
    const name = b.binding.metadata?.name ?? '';
    if (b.namespace === '' && LEGACY_BINDINGS.has(name)) {
      legacy.push({ b, extra, indices });
      continue;
    }
    const who = indices.map((i) => subjectLabel(subjects[i] ?? {})).join(' and ');
    const severity: Severity = extra.some(isDangerous) ? 'critical' : 'warning';
    findings.push({
      id: `AnonymousBinding:${bindingKey(b)}`,
      problem: 'AnonymousBinding',
      severity,
      title: `${bindingLabel(b)} grants ${who} access`,
      message: `${bindingLabel(b)} binds ${who} to ${b.binding.roleRef?.kind ?? ''} ${b.binding.roleRef?.name ?? ''}: anyone who can reach the API server, with no credentials, may ${extra.map(describeRule).join('; ')}${b.namespace === '' ? '' : ` in namespace ${b.namespace}`}.`,
      evidence: [
        `${bindingLabel(b)}: roleRef ${b.binding.roleRef?.kind ?? ''} ${b.binding.roleRef?.name ?? ''}, subjects ${subjects.map(subjectLabel).join(', ')}`,
        ...extra.map((r) => `grants: ${describeRule(r)}`),
      ],
      remediation: {
        summary: `Remove the anonymous subject(s): ${removeSubjectsCommand(b, indices)}. If this access is intended, list the binding in checks.rbac.allowedBindings ("${bindingKey(b)}").`,
        automatic: false,
      },
    });
  }
  if (legacy.length > 0) findings.push(legacyFinding(legacy));
  return findings;
}

/** A rule that serves API discovery (the resource map): what CVE-2018-1002105 needed. */
function isDiscovery(rule: PolicyRule): boolean {
  return (rule.nonResourceURLs ?? []).some(
    (u) =>
      u === '*' || u === '/api' || u === '/apis' || u.startsWith('/api/') || u.startsWith('/apis/'),
  );
}

/** system:basic-user's grant: create SelfSubjectAccessReviews / SelfSubjectRulesReviews. */
function isSelfReview(rule: PolicyRule): boolean {
  const resources = rule.resources ?? [];
  return (
    (rule.nonResourceURLs ?? []).length === 0 &&
    sameSet(rule.verbs ?? [], ['create']) &&
    resources.length > 0 &&
    resources.every((r) => /^selfsubject[a-z]*reviews$/.test(r))
  );
}

/**
 * system:unauthenticated in system:basic-user / system:discovery: one finding, one fix.
 * Critical, with the CVE-2018-1002105 story, only when what the group keeps includes discovery
 * (system:discovery's /api, /apis); system:basic-user alone lets anonymous clients create
 * SelfSubject*Reviews, which tell them what they may do and read nothing else: a warning.
 */
function legacyFinding(
  legacy: { b: BoundRole; extra: PolicyRule[]; indices: number[] }[],
): FindingDraft {
  const names = legacy.map((l) => l.b.binding.metadata?.name ?? '');
  const steps = legacy.flatMap((l) => {
    const name = l.b.binding.metadata?.name ?? '';
    return [
      `kubectl annotate clusterrolebinding ${name} ${AUTOUPDATE}=false --overwrite`,
      removeSubjectsCommand(l.b, l.indices),
    ];
  });
  const granted = [...new Set(legacy.flatMap((l) => l.extra.map(describeRule)))];
  const extra = legacy.flatMap((l) => l.extra);
  const discovery = extra.some(isDiscovery);
  const selfReviewsOnly = extra.every(isSelfReview);
  const impact = discovery
    ? ' That discovery access is what CVE-2018-1002105 used.'
    : selfReviewsOnly
      ? ' That only tells an anonymous client what it may do itself; it reads nothing of the cluster, but it is more than a fresh cluster gives.'
      : '';
  return {
    id: 'AnonymousLegacyDiscovery',
    problem: 'AnonymousLegacyDiscovery',
    // creating a review of one's own access writes nothing
    severity:
      discovery || extra.some((r) => isDangerous(r) && !isSelfReview(r)) ? 'critical' : 'warning',
    title: `system:unauthenticated is bound to ${names.join(' and ')}`,
    message: `The ClusterRoleBinding(s) ${names.join(', ')} still bind group system:unauthenticated, as clusters created before Kubernetes 1.14 did: anyone without credentials may ${granted.join('; ')}.${impact} The API server's start-up reconciliation only adds default subjects, it never removes one, so upgrading does not fix it.`,
    evidence: legacy.map(
      (l) =>
        `ClusterRoleBinding ${l.b.binding.metadata?.name ?? ''}: subjects ${(l.b.binding.subjects ?? []).map(subjectLabel).join(', ')}; ${AUTOUPDATE}: ${JSON.stringify(l.b.binding.metadata?.annotations?.[AUTOUPDATE] ?? null)}`,
    ),
    remediation: {
      summary: `First mark the bindings as yours (${AUTOUPDATE}="false", so an API server that still has the old defaults does not add the group back at its next start), then remove the subject: ${steps.join(' ; ')}. Or run every kube-apiserver with --anonymous-auth=false.`,
      automatic: false,
    },
  };
}

/**
 * ServiceAccounts (or groups of them) bound to cluster-admin or a role with * on *. A
 * ClusterRoleBinding gives the whole cluster. A RoleBinding gives its namespace only (to a
 * ClusterRole, or to a Role of that namespace), which is still every Secret there: critical in
 * kube-system, whose Secrets and ServiceAccounts are the control plane's, and for the
 * dashboard; a warning in any other namespace.
 */
function serviceAccountAdminFindings(objects: RbacObjects, bound: BoundRole[]): FindingDraft[] {
  const adminClusterRoles = new Set(
    objects.clusterRoles
      .filter((r) => r.metadata?.name === 'cluster-admin' || (r.rules ?? []).some(isWildcardAdmin))
      .map((r) => r.metadata?.name ?? ''),
  );
  const findings: FindingDraft[] = [];
  for (const b of bound) {
    const ref = b.binding.roleRef;
    const admin =
      ref?.kind === 'ClusterRole'
        ? adminClusterRoles.has(ref.name ?? '')
        : ref?.kind === 'Role' && b.namespace !== '' && b.rules.some(isWildcardAdmin);
    if (!admin) continue;
    const subjects = b.binding.subjects ?? [];
    const scope = b.namespace === '' ? 'the whole cluster' : `namespace ${b.namespace}`;
    subjects.forEach((s, i) => {
      const allAccounts =
        s.kind === 'Group' &&
        (s.name === 'system:serviceaccounts' ||
          (s.name ?? '').startsWith('system:serviceaccounts:'));
      if (s.kind !== 'ServiceAccount' && !allAccounts) return;
      const dashboard =
        s.kind === 'ServiceAccount' &&
        ((s.name ?? '').includes('kubernetes-dashboard') || s.namespace === 'kubernetes-dashboard');
      const who = subjectLabel(s);
      const roleName = ref?.name ?? '';
      const role = `${ref?.kind ?? ''} ${roleName}${roleName === 'cluster-admin' ? '' : ` (* on *${ref?.kind === 'ClusterRole' && b.namespace === '' ? ' in every API group' : ''})`}`;
      const severity: Severity =
        b.namespace === ''
          ? dashboard || allAccounts
            ? 'critical'
            : 'warning'
          : dashboard || b.namespace === 'kube-system'
            ? 'critical'
            : 'warning';
      const accounts = allAccounts
        ? `every ServiceAccount in ${s.name === 'system:serviceaccounts' ? 'the cluster' : `namespace ${(s.name ?? '').slice('system:serviceaccounts:'.length)}`}`
        : undefined;
      const power =
        b.namespace === ''
          ? 'controls the whole cluster'
          : b.namespace === 'kube-system'
            ? "controls kube-system: every Secret there (the control plane's ServiceAccount tokens, bootstrap tokens) and the system pods, which is the whole cluster"
            : `controls namespace ${b.namespace}: every object there, its Secrets included`;
      const title =
        b.namespace === ''
          ? `${who} has cluster-admin (${b.binding.metadata?.name ?? ''})`
          : `${who} is admin of ${b.namespace} (${b.binding.metadata?.name ?? ''})`;
      findings.push({
        id: `ServiceAccountClusterAdmin:${bindingKey(b)}:${s.kind === 'ServiceAccount' ? `${s.namespace ?? ''}/${s.name ?? ''}` : (s.name ?? '')}`,
        problem: 'ServiceAccountClusterAdmin',
        severity,
        title,
        message: dashboard
          ? `${bindingLabel(b)} gives the Kubernetes Dashboard's ${who} ${role} in ${scope}: whoever reaches the dashboard (its login page offers "skip" and then acts as this account) ${power}.`
          : accounts !== undefined
            ? `${bindingLabel(b)} gives ${accounts} ${role} in ${scope}: any pod there ${power}.`
            : `${bindingLabel(b)} gives ${who} ${role} in ${scope}: any pod running as it, or anyone holding its token, ${power}.`,
        evidence: [
          `${bindingLabel(b)}: roleRef ${ref?.kind ?? ''} ${roleName}, subjects ${subjects.map(subjectLabel).join(', ')}`,
        ],
        remediation: {
          summary: `Bind the account to a role with only what it needs and remove this: ${removeSubjectsCommand(b, [i])}.${dashboard ? ' For the dashboard, log in with a token of a least-privilege account (kubectl -n <namespace> create token <account>) instead of granting its own account admin.' : ''} If intended, list the binding in checks.rbac.allowedBindings ("${bindingKey(b)}").`,
          automatic: false,
        },
      });
    });
  }
  return findings;
}
