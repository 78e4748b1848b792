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
  SwapEnabled: 'swap is on and kubelet refuses to run with it',
  CgroupDriverMismatch: "kubelet's cgroup driver differs from the container runtime's",
} as const;

export type Cause = keyof typeof CAUSES;

/** What an operator does about each cause: the commands, as the seeds do it by hand. */
export const CAUSE_REMEDIATION: Record<Cause, string> = {
  InotifyWatchesExhausted:
    'Raise the limit (the seeds use 1048576): write "fs.inotify.max_user_watches=1048576" to /etc/sysctl.d/99-kubernetes.conf, run "sysctl --system", then "systemctl restart kubelet". The inotify check names the processes holding the watches.',
  InotifyInstancesExhausted:
    'Raise the limit: write "fs.inotify.max_user_instances=8192" to /etc/sysctl.d/99-kubernetes.conf, run "sysctl --system", then "systemctl restart kubelet". The inotify check names the processes holding the instances.',
  KubeletCrashLoop:
    'Read why kubelet exits: "journalctl -u kubelet -b --no-pager | tail -50" (the evidence shows the lines node-auditor recognised); fix that, then "systemctl restart kubelet".',
  KubeletDown:
    'Check "systemctl status kubelet" and "journalctl -u kubelet -b --no-pager | tail -50"; fix what it reports, then "systemctl restart kubelet".',
  PLEGUnhealthy:
    'PLEG stalls when the container runtime answers slowly or not at all: check "crictl ps" (does it answer quickly?), "journalctl -u containerd" (or crio, docker), disk I/O latency and the number of containers; restarting the runtime, then kubelet, usually recovers it.',
  ContainerRuntimeDown:
    'Check "systemctl status containerd" (or crio, docker) and "journalctl -u containerd -n 100 --no-pager"; restart it with "systemctl restart containerd" and confirm with "crictl info".',
  NetworkPluginNotReady:
    'The CNI plugin has not written its configuration to /etc/cni/net.d or its pod is not running on this node: check the CNI DaemonSet pod for this node and the files in /etc/cni/net.d.',
  KubeletClientCertExpired:
    'Check "openssl x509 -enddate -noout -in /var/lib/kubelet/pki/kubelet-client-current.pem". Once it has expired the kubelet cannot renew it itself: re-bootstrap the kubelet (kubeadm: generate a new kubelet.conf for system:node:<node> on a control-plane node, or join the node again), restart kubelet, and keep rotateCertificates: true so it renews before expiry.',
  APIServerUnreachable:
    'Check the path from this node to the API server: "curl -k https://<api-server>:6443/healthz", DNS, routes, firewall and load balancer, and the control plane itself.',
  NoSpaceOnDevice:
    'Free space where kubelet and the runtime write ("df -h /var/lib/kubelet /var/lib/containerd /var/log"): remove unused images ("crictl rmi --prune"), old logs and core dumps; check the image garbage collection thresholds.',
  MemoryPressure:
    'Find the largest consumers ("ps aux --sort=-rss | head"), give pods memory limits, and reserve memory for the system (kubelet systemReserved, evictionHard) so the kernel OOM killer does not reach system daemons.',
  SwapEnabled:
    'Turn swap off ("swapoff -a" and remove the swap entries from /etc/fstab), or configure kubelet for swap (failSwapOn: false with the NodeSwap feature), then "systemctl restart kubelet".',
  CgroupDriverMismatch:
    "Use one cgroup driver in both: cgroupDriver in /var/lib/kubelet/config.yaml and the runtime's (containerd: SystemdCgroup = true in /etc/containerd/config.toml; docker: exec-opts native.cgroupdriver), then restart the runtime and kubelet.",
};
