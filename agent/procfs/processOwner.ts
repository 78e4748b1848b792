// Who a process belongs to, in the words of metric labels and findings: the pod (namespace and
// name from the pods-on-this-node watch; the UID when there is no API) and the container (its
// name; the short runtime ID without an API; "POD" for the pod's infra container), or the host.
import type { PodsOnNode } from '../kubernetes/podsOnNode.ts';
import type { ProcessInfo } from './processScanner.ts';

export type PodLookup = Pick<PodsOnNode, 'pod' | 'container'>;

export interface ProcessOwner {
  /** Empty for host processes (as metric labels want them). */
  namespace: string;
  pod: string;
  container: string;
  podUid?: string;
}

const HOST_OWNER: ProcessOwner = { namespace: '', pod: '', container: '' };

/** The infra container's name in labels, as the kubelet and docker called it. */
const INFRA_CONTAINER = 'POD';

/** comm of pod infra processes by default (checks.pause.infraCommands): the pause image's /pause. */
export const DEFAULT_INFRA_COMMANDS: readonly string[] = ['pause'];

export function ownerOf(
  p: ProcessInfo,
  pods: PodLookup | undefined,
  infra: ReadonlySet<string>,
): ProcessOwner {
  const cgroup = p.cgroup;
  if (cgroup === null || cgroup.podUid === undefined) {
    if (cgroup?.containerId !== undefined)
      return { ...HOST_OWNER, container: cgroup.containerId.slice(0, 12) };
    return HOST_OWNER;
  }
  const uid = cgroup.podUid;
  const id = cgroup.containerId;
  const known = id === undefined ? undefined : pods?.container(id);
  const pod = known?.pod ?? pods?.pod(uid);
  const container =
    known?.container.name ??
    (cgroup.conmon === true
      ? ''
      : infra.has(p.comm)
        ? INFRA_CONTAINER
        : id === undefined
          ? ''
          : id.slice(0, 12));
  return {
    namespace: pod?.namespace ?? '',
    pod: pod?.name ?? uid,
    container,
    podUid: uid,
  };
}

/** "pod kube-system/coredns-x container coredns", "pod <uid> container <id>", or "the host". */
export function describeOwner(owner: ProcessOwner): string {
  if (owner.pod === '')
    return owner.container === '' ? 'the host' : `container ${owner.container} (not in a pod)`;
  const pod = owner.namespace === '' ? `pod ${owner.pod}` : `pod ${owner.namespace}/${owner.pod}`;
  return owner.container === '' ? pod : `${pod} container ${owner.container}`;
}

/** "kubelet (pid 812)". */
export function describeProcess(p: ProcessInfo): string {
  return `${p.comm} (pid ${p.pid})`;
}
