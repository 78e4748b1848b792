// NotReady cause attribution: which root causes explain why this node is NotReady now, or will
// be soon. From two kinds of findings that carry a cause:
// - incidents in the logs (the `logs` check): what went wrong, attributed while the node is
//   NotReady or its kubelet unhealthy (an old incident on a Ready node explains nothing);
// - live facts of other checks (inotify usage at the limit, the runtime socket, the kubelet
//   certificate): a critical one means the cause is in effect right now, so it is attributed
//   even while the node still shows Ready (NotReady is imminent: kubelet fails at its next
//   restart, the node lease expires). Warnings about what is coming ("expires in 5 days") are
//   findings, not attributions.
import { CAUSES } from './causes.ts';
import type { Cause } from './causes.ts';
import type { Finding } from './finding.ts';

export interface NodeHealth {
  /** The Node's Ready condition (or kubelet's healthz without an API); undefined: unknown. */
  nodeReady?: boolean;
  /** The local kubelet's healthz; undefined: unknown. */
  kubeletHealthy?: boolean;
}

const LOG_CHECK = 'logs';

export function attributeCauses(active: readonly Finding[], health: NodeHealth): Set<Cause> {
  const unhealthy = health.nodeReady === false || health.kubeletHealthy === false;
  const causes = new Set<Cause>();
  for (const finding of active) {
    if (finding.cause === undefined) continue;
    const liveFact = finding.check !== LOG_CHECK;
    if (unhealthy || (liveFact && finding.severity === 'critical')) causes.add(finding.cause);
  }
  return causes;
}

export const ALL_CAUSES = Object.keys(CAUSES) as Cause[];
