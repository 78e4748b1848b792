// Which process is this node's kubelet, and what was it started with? A pass over
// <host-root>/proc reading only each process's comm (a few bytes, in memory), then the cmdline of
// the kubelet alone. comm is "kubelet" for a kubelet started as kubelet (and "hyperkube" for
// "hyperkube kubelet"); argv[0] then settles it.
//
// A kubelet in another mount namespace is not this host's: a kind or minikube node on a laptop
// runs its kubelet in a container, visible in the laptop's /proc, whose --config paths are inside
// that container, not on the host. It is recognised by its mount namespace (when the agent may
// read /proc/<pid>/ns/mnt, which needs root) or else by its cgroup naming a container.
import fs from 'node:fs';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { HostRoot } from '../../host/hostRoot.ts';
import type { ProcessScans } from '../../procfs/processScans.ts';
import { kubeletArguments, splitCmdline } from '../../parsers/kubeletFlags.ts';

/** Longest stretch of synchronous /proc reads before the event loop gets a turn. */
const SLICE_MS = 8;
const KUBELET_COMMS = new Set(['kubelet', 'hyperkube']);
/** A container's cgroup, as the runtimes name it (systemd scopes and cgroupfs directories). */
const CONTAINER_CGROUP =
  /\/(?:(?:docker|libpod|cri-containerd|crio)-[0-9a-f]{64}\.scope|(?:docker|libpod|crio)\/[0-9a-f]{64})(?:\/|$)/;

export type KubeletSearch =
  | { state: 'found'; pid: number; args: string[] }
  /** Kubelets run only in containers (kind, minikube): not this host's. */
  | { state: 'containerized'; pids: number[] }
  | { state: 'none' };

function readSmall(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    // Gone between listing and reading, or not ours to read: either way, not a candidate.
    return undefined;
  }
}

function mountNamespace(host: HostRoot, pid: number): string | undefined {
  try {
    return fs.readlinkSync(host.local(`/proc/${pid}/ns/mnt`));
  } catch {
    return undefined;
  }
}

/**
 * The processes whose comm names a kubelet, lowest pid first: from the agent's shared /proc pass
 * when there is one (its comm comes from /proc/<pid>/stat, the same 15 bytes), else a pass of
 * its own over /proc/<pid>/comm.
 */
async function candidates(
  host: HostRoot,
  signal?: AbortSignal,
  processes?: ProcessScans,
): Promise<{ pid: number; comm: string }[]> {
  if (processes !== undefined) {
    const scan = await processes.get(signal);
    if (scan.available)
      return scan.processes
        .filter((p) => KUBELET_COMMS.has(p.comm))
        .map((p) => ({ pid: p.pid, comm: p.comm }))
        .sort((a, b) => a.pid - b.pid);
  }
  let entries;
  try {
    entries = await host.listDir('/proc');
  } catch {
    // No /proc to list (not Linux, or not readable): no kubelet to be found.
    return [];
  }
  if (entries === null) return [];
  const found: { pid: number; comm: string }[] = [];
  let sliceStart = performance.now();
  for (const entry of entries) {
    if (!/^\d+$/.test(entry.name)) continue;
    if (performance.now() - sliceStart > SLICE_MS) {
      await nextTurn();
      signal?.throwIfAborted();
      sliceStart = performance.now();
    }
    const comm = readSmall(host.local(`/proc/${entry.name}/comm`))?.trimEnd();
    if (comm !== undefined && KUBELET_COMMS.has(comm))
      found.push({ pid: Number(entry.name), comm });
  }
  return found.sort((a, b) => a.pid - b.pid);
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
  const cgroup = readSmall(host.local(`/proc/${pid}/cgroup`));
  return cgroup !== undefined && CONTAINER_CGROUP.test(cgroup);
}

/** The host's kubelet: its pid and arguments (without the program name). */
export async function findKubelet(
  host: HostRoot,
  signal?: AbortSignal,
  processes?: ProcessScans,
): Promise<KubeletSearch> {
  const containerized: number[] = [];
  const hostMountNs = mountNamespace(host, 1);
  for (const { pid, comm } of await candidates(host, signal, processes)) {
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
