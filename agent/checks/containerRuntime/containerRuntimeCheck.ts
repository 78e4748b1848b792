// `container-runtime`: is the runtime kubelet depends on alive? Each known runtime socket that
// exists on the host is probed (runtimeProbe.ts); one that refuses or does not answer is down.
// That is the ContainerRuntimeDown cause as a live fact: kubelet's PLEG stalls and the node goes
// NotReady within minutes. On a kubelet node with no runtime socket at all, the runtime is not
// running (runtimes remove their socket when they stop cleanly).
import * as v from 'valibot';
import { duration, hostPath } from '../../config/configSchema.ts';
import { durationMs } from '../../config/duration.ts';
import { CAUSE_REMEDIATION } from '../../findings/causes.ts';
import type { FindingDraft } from '../../findings/finding.ts';
import type { MetricSample } from '../../sinks/metrics/catalogue.ts';
import type { Check } from '../check.ts';
import { probeRuntime } from './runtimeProbe.ts';
import type { ProbeResult } from './runtimeProbe.ts';

const runtimeSchema = v.strictObject({
  name: v.pipe(v.string(), v.regex(/^[a-z0-9][a-z0-9-]*$/, 'must be a lower-case name')),
  socket: hostPath,
  protocol: v.optional(v.picklist(['grpc', 'http']), 'grpc'),
});

const DEFAULT_RUNTIMES = [
  { name: 'containerd', socket: '/run/containerd/containerd.sock', protocol: 'grpc' },
  { name: 'crio', socket: '/var/run/crio/crio.sock', protocol: 'grpc' },
  { name: 'cri-dockerd', socket: '/var/run/cri-dockerd.sock', protocol: 'grpc' },
  { name: 'docker', socket: '/var/run/docker.sock', protocol: 'http' },
] as const;

const options = {
  /** Runtime sockets (host paths) to probe when they exist. */
  runtimes: v.optional(v.array(runtimeSchema), [...DEFAULT_RUNTIMES]),
  /** How long a runtime has to answer. */
  probeTimeout: v.optional(duration(100), '3s'),
  /** A kubelet node: with none of the sockets present there, the runtime is not running. */
  kubeletDir: v.optional(hostPath, '/var/lib/kubelet'),
};

export const containerRuntimeCheck: Check<typeof options> = {
  id: 'container-runtime',
  title: 'Container runtime',
  description:
    'Probes the container runtime sockets (containerd, CRI-O, cri-dockerd, docker) and reports a runtime that does not answer.',
  defaults: { enabled: true, interval: '30s', timeout: '15s' },
  options,
  async run({ host, options }) {
    const timeoutMs = durationMs(options.probeTimeout);
    const present: {
      name: string;
      socket: string;
      result: Exclude<ProbeResult, { state: 'absent' }>;
    }[] = [];
    await Promise.all(
      options.runtimes.map(async (runtime) => {
        const local = await host.localPath(runtime.socket);
        const result = await probeRuntime(local, runtime.protocol, timeoutMs);
        if (result.state === 'absent') return;
        present.push({ name: runtime.name, socket: runtime.socket, result });
      }),
    );
    present.sort(
      (a, b) =>
        options.runtimes.findIndex((r) => r.name === a.name) -
        options.runtimes.findIndex((r) => r.name === b.name),
    );
    const samples: MetricSample[] = present
      .filter((p) => p.result.state !== 'denied')
      .map((p) => ({
        metric: 'node_auditor_container_runtime_up',
        labels: { runtime: p.name },
        value: p.result.state === 'up' ? 1 : 0,
      }));
    const findings: FindingDraft[] = [];
    const anyUp = present.some((p) => p.result.state === 'up');
    for (const p of present) {
      const r = p.result;
      if (r.state === 'up') continue;
      if (r.state === 'denied') {
        findings.push({
          id: `ContainerRuntimeUnprobed:${p.name}`,
          problem: 'ContainerRuntimeUnprobed',
          severity: 'info',
          title: `cannot probe ${p.name}: permission denied`,
          message: `${p.socket} exists but the agent may not connect to it (${r.detail}); whether ${p.name} is alive is unknown.`,
          evidence: [`${p.socket}: ${r.detail}`],
        });
        continue;
      }
      // Another runtime answering (docker beside containerd, a stale socket of an old one):
      // this one is down, but whether the kubelet's runtime is, is not certain.
      const critical = !anyUp;
      findings.push({
        id: `ContainerRuntimeDown:${p.name}`,
        problem: 'ContainerRuntimeDown',
        ...(critical ? { cause: 'ContainerRuntimeDown' as const } : {}),
        severity: critical ? 'critical' : 'warning',
        title: `${p.name} does not answer on ${p.socket}`,
        message: `${p.name} does not answer on ${p.socket} (${r.detail}). ${
          critical
            ? 'No container runtime answers: kubelet cannot start or watch containers and the node goes NotReady.'
            : `Another runtime answers (${present
                .filter((x) => x.result.state === 'up')
                .map((x) => x.name)
                .join(', ')}); if kubelet uses ${p.name}, its pods are in trouble.`
        }`,
        evidence: [`${p.socket}: ${r.state}: ${r.detail}`],
        remediation: { summary: CAUSE_REMEDIATION.ContainerRuntimeDown, automatic: false },
      });
    }
    if (present.length === 0 && (await host.exists(options.kubeletDir))) {
      findings.push({
        id: 'ContainerRuntimeDown:none',
        problem: 'ContainerRuntimeDown',
        cause: 'ContainerRuntimeDown',
        severity: 'critical',
        title: 'no container runtime socket on this kubelet node',
        message: `This is a kubelet node (${options.kubeletDir} exists) but none of the runtime sockets exists (${options.runtimes.map((r) => r.socket).join(', ')}): the container runtime is not running.`,
        evidence: options.runtimes.map((r) => `${r.socket}: does not exist`),
        remediation: { summary: CAUSE_REMEDIATION.ContainerRuntimeDown, automatic: false },
      });
    }
    return { findings, samples };
  },
};
