// /proc/<pid>/cgroup -> the pod and container a process belongs to. One line per hierarchy,
// "ID:controllers:path" (cgroup v1) or "0::path" (v2). The kubelet names pod cgroups and the
// runtime names container cgroups; the forms differ by cgroup driver and runtime:
//
//   systemd driver   /kubepods.slice/kubepods-burstable.slice/
//                      kubepods-burstable-pod<uid, "-" as "_">.slice/<runtime>-<id>.scope
//                    where <runtime> is cri-containerd, crio (crio-conmon for CRI-O's
//                    monitor) or docker; a kubelet with --cgroup-root /kubelet prefixes the
//                    slices with "kubelet-" (kind)
//   cgroupfs driver  /kubepods/burstable/pod<uid>/<id>        (containerd, Docker)
//                    /kubepods/burstable/pod<uid>/crio-<id>   (CRI-O)
//
// Guaranteed pods have no QoS level. Read from inside a cgroup namespace, paths are relative to
// the reader's own cgroup and start with "/..": the kubepods segments are searched for anywhere.

export type ContainerRuntime = 'containerd' | 'cri-o' | 'docker';

export interface CgroupIdentity {
  /** The cgroup path the pod and container were read from. */
  path: string;
  /** The pod's UID with dashes, as in metadata.uid (static pods: the 32-digit config hash). */
  podUid?: string;
  /** Full container ID (64 hex digits), as in the pod status's containerID after "://". */
  containerId?: string;
  /** Only when the path says (systemd scopes, CRI-O's "crio-"); cgroupfs IDs do not. */
  runtime?: ContainerRuntime;
  /** CRI-O's conmon, which monitors a container from the pod's cgroup but is not in it. */
  conmon?: boolean;
  driver?: 'systemd' | 'cgroupfs';
  /** Path of the pod's own cgroup in the hierarchy of `path`. */
  podPath?: string;
  /** Host directory of the pod's cgroup holding pids.current and pids.max, when known. */
  podPidsDir?: string;
}

const SYSTEMD_POD = /^(?:[\w]+-)*pod([0-9a-f][0-9a-f_]{31,35})\.slice$/;
const CGROUPFS_POD = /^pod([0-9a-f][0-9a-f-]{31,35})$/;
const SCOPE = /^(cri-containerd|crio-conmon|crio|docker)-([0-9a-f]{64})\.scope$/;
const CGROUPFS_CONTAINER = /^(crio-conmon-|crio-)?([0-9a-f]{64})$/;

const RUNTIME_OF_PREFIX: Record<string, ContainerRuntime> = {
  'cri-containerd': 'containerd',
  crio: 'cri-o',
  'crio-conmon': 'cri-o',
  docker: 'docker',
  'crio-': 'cri-o',
  'crio-conmon-': 'cri-o',
};

interface Line {
  controllers: string[];
  path: string;
}

function lines(text: string): Line[] {
  const out: Line[] = [];
  for (const raw of text.split('\n')) {
    const first = raw.indexOf(':');
    const second = raw.indexOf(':', first + 1);
    if (first < 0 || second < 0) continue;
    out.push({ controllers: raw.slice(first + 1, second).split(','), path: raw.slice(second + 1) });
  }
  return out;
}

/** Pod and container of one path, or undefined when the path names neither. */
function identifyCgroupPath(path: string): Omit<CgroupIdentity, 'path' | 'podPidsDir'> | undefined {
  const segments = path.split('/');
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i] as string;
    const systemd = SYSTEMD_POD.exec(segment);
    const cgroupfs = systemd === null ? CGROUPFS_POD.exec(segment) : null;
    const pod = systemd ?? cgroupfs;
    if (pod === null) continue;
    const driver = systemd === null ? 'cgroupfs' : 'systemd';
    const podUid = (pod[1] as string).replaceAll('_', '-');
    const podPath = segments
      .slice(0, i + 1)
      .filter((s) => s !== '..')
      .join('/');
    const identity: Omit<CgroupIdentity, 'path' | 'podPidsDir'> = { podUid, driver, podPath };
    for (const inner of segments.slice(i + 1)) {
      const match = driver === 'systemd' ? SCOPE.exec(inner) : CGROUPFS_CONTAINER.exec(inner);
      if (match === null) continue;
      identity.containerId = match[2];
      const runtime = RUNTIME_OF_PREFIX[match[1] ?? ''];
      if (runtime !== undefined) identity.runtime = runtime;
      if ((match[1] ?? '').startsWith('crio-conmon')) identity.conmon = true;
      break;
    }
    return identity;
  }
  // Not in a pod: a container the runtime started by itself (docker run), if it says so.
  const last = segments.at(-1) ?? '';
  const scope = SCOPE.exec(last);
  if (scope !== null && scope[1] === 'docker')
    return { containerId: scope[2] as string, runtime: 'docker', driver: 'systemd' };
  if (segments.at(-2) === 'docker' && /^[0-9a-f]{64}$/.test(last))
    return { containerId: last, runtime: 'docker', driver: 'cgroupfs' };
  return undefined;
}

/**
 * The pod and container of a process from its /proc/<pid>/cgroup text: the v1 pids hierarchy
 * first (where pids.max is), then v2, then any line that names a pod or container.
 */
export function parseCgroup(text: string): CgroupIdentity | undefined {
  const all = lines(text);
  const pids = all.find((l) => l.controllers.includes('pids'));
  const unified = all.find((l) => l.controllers.length === 1 && l.controllers[0] === '');
  for (const line of [pids, unified, ...all]) {
    if (line === undefined) continue;
    const identity = identifyCgroupPath(line.path);
    if (identity === undefined) continue;
    const found: CgroupIdentity = { path: line.path, ...identity };
    delete found.podPath;
    // pids.max lives in the pids hierarchy (v1) or the unified one (v2), nowhere else.
    if (line === pids || (line === unified && pids === undefined)) {
      if (identity.podPath !== undefined) {
        const mount = line === pids ? '/sys/fs/cgroup/pids' : '/sys/fs/cgroup';
        found.podPidsDir = mount + identity.podPath;
      }
    }
    return found;
  }
  return undefined;
}
