// The agent's own Node, kept current by a watch (fieldSelector=metadata.name=<node>): its
// Ready condition, its uid (for Events) and its conditions (for NodeConditions).
import type { Logger } from 'pino';
import type { KubeApi } from './kubeApi.ts';
import { runWatchedCollection } from './watchedCollection.ts';
import type { WatchedCollectionOptions } from './watchedCollection.ts';

export interface NodeCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastHeartbeatTime?: string | null;
  lastTransitionTime?: string | null;
}

export interface NodeObject {
  metadata?: {
    name?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
  };
  status?: { conditions?: NodeCondition[] };
}

export class OwnNode {
  private current: NodeObject | undefined;
  private readonly listeners: ((node: NodeObject | undefined) => void)[] = [];

  get node(): NodeObject | undefined {
    return this.current;
  }

  get uid(): string | undefined {
    return this.current?.metadata?.uid;
  }

  /** true/false from the Ready condition; undefined when the Node is not known (yet). */
  get ready(): boolean | undefined {
    const ready = this.current?.status?.conditions?.find((c) => c.type === 'Ready');
    return ready === undefined ? undefined : ready.status === 'True';
  }

  condition(type: string): NodeCondition | undefined {
    return this.current?.status?.conditions?.find((c) => c.type === type);
  }

  onChange(listener: (node: NodeObject | undefined) => void): void {
    this.listeners.push(listener);
  }

  /** Watch until the signal aborts. */
  run(
    api: KubeApi,
    nodeName: string,
    log: Logger,
    signal: AbortSignal,
    onHealth?: (healthy: boolean) => void,
    timing?: Pick<WatchedCollectionOptions<NodeObject>, 'watchTimeoutSeconds' | 'idleGraceMs'>,
  ): Promise<void> {
    return runWatchedCollection<NodeObject>({
      ...timing,
      api,
      path: '/api/v1/nodes',
      fieldSelector: `metadata.name=${nodeName}`,
      log,
      signal,
      ...(onHealth === undefined ? {} : { onHealth }),
      onSync: (items) => {
        this.set(items.find((n) => n.metadata?.name === nodeName));
      },
      onEvent: (type, node) => {
        this.set(type === 'DELETED' ? undefined : node);
      },
    });
  }

  private set(node: NodeObject | undefined): void {
    this.current = node;
    for (const listener of this.listeners) listener(node);
  }
}
