// NotReady (and near-NotReady) root causes. Stable identifiers: dashboards, alerts, Events and
// users rely on them. Add causes; never rename one.
export const CAUSES = {
  InotifyWatchesExhausted:
    'fs.inotify.max_user_watches is exhausted; kubelet cannot start cAdvisor',
  InotifyInstancesExhausted: 'fs.inotify.max_user_instances is exhausted',
  KubeletCrashLoop: 'kubelet keeps exiting and being restarted',
  KubeletDown: 'kubelet is not running',
  PLEGUnhealthy: "kubelet's pod lifecycle event generator is not healthy",
  ContainerRuntimeDown: 'the container runtime (containerd, CRI-O, docker) is down',
  NetworkPluginNotReady: 'the CNI network plugin is not ready',
  KubeletClientCertExpired: "kubelet's client certificate has expired",
  APIServerUnreachable: 'kubelet cannot reach the API server',
  NoSpaceOnDevice: 'a filesystem kubelet or the runtime needs is full',
  MemoryPressure: 'the node is out of memory',
} as const;

export type Cause = keyof typeof CAUSES;
