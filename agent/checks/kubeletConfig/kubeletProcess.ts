// Which process is this node's kubelet, and what was it started with? The agent's one /proc
// pass (ProcessScans, shared with the process checks) gives every process's comm; then the
// cmdline of the kubelet alone is read. comm is "kubelet" for a kubelet started as kubelet (and "hyperkube" for
// "hyperkube kubelet"); argv[0] then settles it.
//
// A kubelet in another mount namespace is not this host's: a kind or minikube node on a laptop
// runs its kubelet in a container, visible in the laptop's /proc, whose --config paths are inside
// that container, not on the host. It is recognised by its mount namespace (when the agent may
// read /proc/<pid>/ns/mnt, which needs root) or else by its cgroup naming a container.
import type { HostRoot } from '../../host/hostRoot.ts';
import { ProcReader } from '../../procfs/procReader.ts';
import type { ProcessScans } from '../../procfs/processScans.ts';
import { splitCmdline } from '../../parsers/commandLine.ts';
import { kubeletArguments } from '../../parsers/kubeletFlags.ts';

const KUBELET_COMMS = new Set(['kubelet', 'hyperkube']);
/** A container's cgroup, as the runtimes name it (systemd scopes and cgroupfs directories). */
const CONTAINER_CGROUP =
  /\/(?:(?:docker|libpod|cri-containerd|crio)-[0-9a-f]{64}\.scope|(?:docker|libpod|crio)\/[0-9a-f]{64})(?:\/|$)/;

export type KubeletSearch =
  | { state: 'found'; pid: number; args: string[] }
  /** Kubelets run only in containers (kind, minikube): not this host's. */
  | { state: 'containerized'; pids: number[] }
  | { state: 'none' };

const proc = new ProcReader();

function mountNamespace(host: HostRoot, pid: number): string | undefined {
  return proc.link(host.local(`/proc/${pid}/ns/mnt`));
}

/** The processes whose comm names a kubelet, lowest pid first. */
async function candidates(
  processes: ProcessScans,
  signal?: AbortSignal,
): Promise<{ pid: number; comm: string }[]> {
  const scan = await processes.get(signal);
  return scan.processes
    .filter((p) => KUBELET_COMMS.has(p.comm))
    .map((p) => ({ pid: p.pid, comm: p.comm }))
    .sort((a, b) => a.pid - b.pid);
}

async function commandLine(host: HostRoot, pid: number): Promise<string[] | undefined> {
  try {
    // Through the threadpool: reading cmdline takes the target's mmap lock and can wait.
    const bytes = await host.readBytes(`/proc/${pid}/cmdline`, { resolveLinks: false });
    return bytes === null ? undefined : splitCmdline(bytes);
  } catch {
    return undefined;
  }
}

function inContainer(host: HostRoot, pid: number, hostMountNs: string | undefined): boolean {
  const own = mountNamespace(host, pid);
  if (hostMountNs !== undefined && own !== undefined) return own !== hostMountNs;
  const cgroup = proc.text(host.local(`/proc/${pid}/cgroup`));
  return cgroup !== undefined && CONTAINER_CGROUP.test(cgroup);
}

/** The host's kubelet: its pid and arguments (without the program name). */
export async function findKubelet(
  host: HostRoot,
  processes: ProcessScans,
  signal?: AbortSignal,
): Promise<KubeletSearch> {
  const containerized: number[] = [];
  const hostMountNs = mountNamespace(host, 1);
  for (const { pid, comm } of await candidates(processes, signal)) {
    const argv = await commandLine(host, pid);
    // A zombie has an empty cmdline; "hyperkube apiserver" is not a kubelet. A kubelet binary
    // started under another argv[0] (a wrapper's "exec -a") still has comm "kubelet".
    if (argv === undefined || argv.length === 0) continue;
    const args = kubeletArguments(argv) ?? (comm === 'kubelet' ? argv.slice(1) : undefined);
    if (args === undefined) continue;
    if (inContainer(host, pid, hostMountNs)) {
      containerized.push(pid);
      continue;
    }
    return { state: 'found', pid, args };
  }
  return containerized.length > 0
    ? { state: 'containerized', pids: containerized }
    : { state: 'none' };
}
