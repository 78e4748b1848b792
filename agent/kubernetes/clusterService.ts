// The ClusterService the security checks use (checks/check.ts), over one KubeApi: authenticated
// reads as the agent's identity, the API server's address and CA for the anonymous probes,
// leadership, and this node's Node object.
import type { ClusterService } from '../checks/check.ts';
import { listPages } from './kubeApi.ts';
import type { KubeApi } from './kubeApi.ts';

export interface ClusterServiceOptions {
  /** `run`: holds the leader Lease (or election is off); `check`: always true. */
  isLeader: () => boolean;
  nodeName: string;
  /** The Node as a watch keeps it; when absent (or undefined), one list call fetches it. */
  watchedNode?: () => Record<string, unknown> | undefined;
}

export function clusterService(api: KubeApi, options: ClusterServiceOptions): ClusterService {
  const { access } = api;
  return {
    get: <T>(path: string, signal?: AbortSignal) =>
      api.request<T>({ verb: 'get', path, ...(signal === undefined ? {} : { signal }) }),
    async list<T>(path: string, signal?: AbortSignal) {
      // pages of a large cluster's objects, as kubectl reads them
      const list = await listPages<T>(api, {
        path,
        ...(signal === undefined ? {} : { signal }),
      });
      return list.items;
    },
    server: {
      url: access.server,
      ...(access.tls.ca === undefined ? {} : { ca: access.tls.ca }),
      ...(access.tls.servername === undefined ? {} : { servername: access.tls.servername }),
      rejectUnauthorized: access.tls.rejectUnauthorized,
    },
    isLeader: options.isLeader,
    async node(signal) {
      const watched = options.watchedNode?.();
      if (watched !== undefined) return watched;
      // list, not get: the agent's ClusterRole has list/watch on nodes (for its watch), not get
      const list = await api.request<{ items?: Record<string, unknown>[] }>({
        verb: 'list',
        path: '/api/v1/nodes',
        query: { fieldSelector: `metadata.name=${options.nodeName}` },
        ...(signal === undefined ? {} : { signal }),
      });
      return list.items?.[0];
    },
  };
}
