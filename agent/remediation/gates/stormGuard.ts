// The storm guard: no action while more than a configured share of the cluster's nodes are
// NotReady. Many nodes failing at once points at something no node can fix for itself (the
// API server, the network, a bad rollout), and a remediator acting on all of them makes it
// worse: draino cordoned over 75% of a cluster that way. An API that cannot be read is a
// storm too, as far as we can tell: deny.
//
// "More than" is strict: with the default 0.2, 2 of 10 NotReady nodes are allowed and 3 of 10
// are not. Note that the node being remediated usually counts itself: in a cluster of fewer
// than five nodes one NotReady node is already more than 20%.
import { describeError } from '../../errors.ts';
import { listPages } from '../../kubernetes/kubeApi.ts';
import type { KubeApi } from '../../kubernetes/kubeApi.ts';
import { ALLOWED, cannotDecide } from './blockers.ts';
import type { GateDecision } from './blockers.ts';

export interface StormGuardOptions {
  api: KubeApi;
  /** 0..1: deny when the NotReady share is more than this. The default config is 0.2. */
  maxUnhealthyShare: number;
  /**
   * Nodes per list page. Small on purpose: a Node with many images is tens of kB of JSON, and
   * the agent's memory budget is tight; the guard runs only before an action.
   */
  pageSize?: number;
}

export interface NodeHealthCount {
  total: number;
  /** Names of nodes whose Ready condition is False, Unknown or missing. */
  notReady: string[];
}

interface NodeItem {
  metadata?: { name?: string };
  status?: { conditions?: { type?: string; status?: string }[] };
}

/** At most this many NotReady nodes are named in a reason. */
const NAMED_NODES = 5;

/**
 * Every node, page by page, counted as the pages come (one page in memory at a time); a node
 * without a Ready condition is NotReady (not yet known good). A page that fails, an expired
 * continue token included, fails the count: no decision on part of the cluster.
 */
export async function countNotReadyNodes(api: KubeApi, pageSize = 100): Promise<NodeHealthCount> {
  const count: NodeHealthCount = { total: 0, notReady: [] };
  await listPages<NodeItem>(api, {
    path: '/api/v1/nodes',
    pageSize,
    onPage: (nodes) => {
      for (const node of nodes) {
        count.total++;
        const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
        if (ready?.status !== 'True') count.notReady.push(node.metadata?.name ?? '(unnamed)');
      }
    },
  });
  return count;
}

/** The decision for a count (pure; the boundary is tested here). */
export function stormDecision(count: NodeHealthCount, maxUnhealthyShare: number): GateDecision {
  if (!(maxUnhealthyShare >= 0 && maxUnhealthyShare <= 1))
    return cannotDecide(new Error(`the storm guard's share ${maxUnhealthyShare} is not in 0..1`));
  if (count.total === 0) return cannotDecide(new Error('the API listed no nodes'));
  const n = count.notReady.length;
  // A quotient, not share * total: both n / total and the configured share are correctly
  // rounded, so the boundary is exact (3 of 10 against 0.3 is equal, hence allowed), whereas
  // 0.57 * 100 is 56.99999999999999 and would deny 57 of 100.
  if (n / count.total <= maxUnhealthyShare) return ALLOWED;
  const names = count.notReady.slice(0, NAMED_NODES).join(', ');
  const more = n > NAMED_NODES ? ` and ${n - NAMED_NODES} more` : '';
  return {
    allowed: false,
    reason:
      `${n} of ${count.total} nodes (${percent(n / count.total)}) ${n === 1 ? 'is' : 'are'} NotReady ` +
      `(${names}${more}), over the ${percent(maxUnhealthyShare)} storm guard`,
  };
}

/** The storm guard gate; never throws (a failed list denies). */
export async function checkStormGuard(options: StormGuardOptions): Promise<GateDecision> {
  try {
    const count = await countNotReadyNodes(options.api, options.pageSize);
    return stormDecision(count, options.maxUnhealthyShare);
  } catch (error) {
    return cannotDecide(new Error(`cannot list nodes: ${describeError(error)}`, { cause: error }));
  }
}

function percent(share: number): string {
  return `${Number((share * 100).toFixed(1))}%`;
}
