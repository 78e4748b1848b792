// `rbac`: the cluster's bindings, read with the agent's own (read-only) identity and judged by
// rbacAudit.ts. Cluster-wide, so in `run` only the leader reads them; in `check` it always does.
import * as v from 'valibot';
import type { Check } from '../check.ts';
import { noClusterReason } from '../check.ts';
import { auditRbac } from './rbacAudit.ts';
import type { Binding, RbacObjects, Role } from './rbacAudit.ts';

const RBAC = '/apis/rbac.authorization.k8s.io/v1';

const options = {
  /**
   * Bindings whose anonymous or cluster-admin grants are intended: "<name>" for a
   * ClusterRoleBinding, "<namespace>/<name>" for a RoleBinding.
   */
  allowedBindings: v.optional(
    v.array(
      v.pipe(
        v.string(),
        v.regex(/^([a-z0-9][-a-z0-9]*\/)?[^/\s]+$/, 'must be NAME or NAMESPACE/NAME'),
      ),
    ),
    [],
  ),
};

export const rbacCheck: Check<typeof options> = {
  id: 'rbac',
  title: 'RBAC exposure',
  description:
    'Reads the RBAC bindings: anything granting system:unauthenticated / system:anonymous more than a fresh cluster does, the pre-1.14 legacy bindings, and ServiceAccounts with cluster-admin.',
  clusterWide: true,
  defaults: { enabled: true, interval: '10m', timeout: '60s' },
  options,
  async run({ options, services, signal }) {
    const cluster = services.cluster;
    if (cluster === undefined) return { findings: [], skipped: noClusterReason(services) };
    if (!cluster.isLeader())
      return { findings: [], skipped: 'not the leader (the leader audits RBAC)' };
    // a refusal (403) fails the run with the API server's message
    const [clusterRoleBindings, clusterRoles, roleBindings, roles] = await Promise.all([
      cluster.list<Binding>(`${RBAC}/clusterrolebindings`, signal),
      cluster.list<Role>(`${RBAC}/clusterroles`, signal),
      cluster.list<Binding>(`${RBAC}/rolebindings`, signal),
      cluster.list<Role>(`${RBAC}/roles`, signal),
    ]);
    const objects: RbacObjects = { clusterRoleBindings, clusterRoles, roleBindings, roles };
    return { findings: auditRbac(objects, options) };
  },
};
