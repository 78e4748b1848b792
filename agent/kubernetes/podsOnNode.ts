// The pods on this node (one watch, fieldSelector=spec.nodeName=<node>), reduced to what
// other checks need to name a process: pod UID -> namespace, name, containers and their IDs.
// Only those few strings are kept, never the pod objects: bounded memory with 250 pods.
import type { Logger } from 'pino';
import { isResponseTooLarge, listPages } from './kubeApi.ts';
import type { KubeApi } from './kubeApi.ts';
import { runWatchedCollection } from './watchedCollection.ts';

const PODS_PATH = '/api/v1/pods';

export interface PodContainer {
  name: string;
  /** Runtime ID without the "containerd://" prefix, once the container has started. */
  id?: string;
}

export interface PodInfo {
  uid: string;
  namespace: string;
  name: string;
  containers: PodContainer[];
}

interface PodObject {
  metadata?: { uid?: string; namespace?: string; name?: string };
  spec?: { containers?: { name: string }[]; initContainers?: { name: string }[] };
  status?: {
    containerStatuses?: { name: string; containerID?: string }[];
    initContainerStatuses?: { name: string; containerID?: string }[];
    ephemeralContainerStatuses?: { name: string; containerID?: string }[];
  };
}

export class PodsOnNode {
  private readonly byUid = new Map<string, PodInfo>();
  private readonly byContainerId = new Map<string, { pod: PodInfo; container: PodContainer }>();

  get size(): number {
    return this.byUid.size;
  }

  pod(uid: string): PodInfo | undefined {
    return this.byUid.get(uid);
  }

  /** The pod and container of a runtime container ID (as found in a cgroup path). */
  container(id: string): { pod: PodInfo; container: PodContainer } | undefined {
    return this.byContainerId.get(id);
  }

  run(
    api: KubeApi,
    nodeName: string,
    log: Logger,
    signal: AbortSignal,
    onHealth?: (healthy: boolean) => void,
  ): Promise<void> {
    return runWatchedCollection<PodObject>({
      api,
      path: PODS_PATH,
      fieldSelector: `spec.nodeName=${nodeName}`,
      log,
      signal,
      ...(onHealth === undefined ? {} : { onHealth }),
      onSync: (items) => {
        this.replace(items);
      },
      onEvent: (type, pod) => {
        if (type === 'DELETED') this.remove(pod.metadata?.uid);
        else this.put(pod);
      },
    });
  }

  /** One list, no watch: the pods as they are now, for a one-shot run (`node-auditor check`). */
  async load(api: KubeApi, nodeName: string, signal?: AbortSignal): Promise<void> {
    const fieldSelector = `spec.nodeName=${nodeName}`;
    let items: PodObject[];
    try {
      // from the API server's cache, as the watch's first list
      const list = await api.request<{ items?: PodObject[] }>({
        verb: 'list',
        path: PODS_PATH,
        query: { fieldSelector, resourceVersion: '0' },
        ...(signal === undefined ? {} : { signal }),
      });
      items = list.items ?? [];
    } catch (error) {
      if (!isResponseTooLarge(error)) throw error;
      // too many (or too large) pods for one answer: etcd, in pages, as the watch does then
      const list = await listPages<PodObject>(api, {
        path: PODS_PATH,
        query: { fieldSelector },
        ...(signal === undefined ? {} : { signal }),
      });
      items = list.items;
    }
    this.replace(items);
  }

  private replace(items: readonly PodObject[]): void {
    this.byUid.clear();
    this.byContainerId.clear();
    for (const pod of items) this.put(pod);
  }

  private put(pod: PodObject): void {
    const uid = pod.metadata?.uid;
    if (uid === undefined) return;
    this.remove(uid);
    const statuses = [
      ...(pod.status?.initContainerStatuses ?? []),
      ...(pod.status?.containerStatuses ?? []),
      ...(pod.status?.ephemeralContainerStatuses ?? []),
    ];
    const names = new Set(
      [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])].map((c) => c.name),
    );
    for (const s of statuses) names.add(s.name);
    const containers: PodContainer[] = [...names].map((name) => {
      const raw = statuses.find((s) => s.name === name)?.containerID;
      const id = raw === undefined || raw === '' ? undefined : raw.replace(/^[a-z0-9-]+:\/\//, '');
      return id === undefined ? { name } : { name, id };
    });
    const info: PodInfo = {
      uid,
      namespace: pod.metadata?.namespace ?? '',
      name: pod.metadata?.name ?? '',
      containers,
    };
    this.byUid.set(uid, info);
    for (const container of containers)
      if (container.id !== undefined)
        this.byContainerId.set(container.id, { pod: info, container });
  }

  private remove(uid: string | undefined): void {
    if (uid === undefined) return;
    const old = this.byUid.get(uid);
    if (old === undefined) return;
    this.byUid.delete(uid);
    for (const c of old.containers) if (c.id !== undefined) this.byContainerId.delete(c.id);
  }
}
