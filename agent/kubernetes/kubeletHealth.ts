// Without an API, node readiness comes from the local kubelet's healthz (DESIGN.md): 200 "ok"
// means healthy. Plain HTTP on loopback, bounded time.
import http from 'node:http';

export async function probeKubeletHealth(url: string, timeoutMs = 2000): Promise<boolean> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        if (body.length < 1024) body += chunk;
      });
      res.on('end', () => {
        resolve(res.statusCode === 200 && body.trim() === 'ok');
      });
      res.on('error', () => {
        resolve(false);
      });
    });
    req.on('timeout', () => {
      req.destroy(new Error('timeout'));
    });
    req.on('error', () => {
      resolve(false);
    });
  });
}

/**
 * Node readiness from the kubelet's healthz while the Node watch has been failing for a while
 * (an API outage): without it node_auditor_node_ready would freeze at its last value, exactly
 * when it matters. It does not probe: it is fed the results of the agent's one healthz probe
 * (kubernetesIntegration.ts, every 10 s), and passes them on only while it is active.
 */
export class KubeletFallback {
  private readonly report: (ready: boolean) => void;
  private readonly afterMs: number;
  private since: number | undefined;

  constructor(report: (ready: boolean) => void, timing: { afterMs?: number } = {}) {
    this.report = report;
    this.afterMs = timing.afterMs ?? 30_000;
  }

  /** The Node watch failed: after afterMs of that, the kubelet's health is the readiness. */
  start(): void {
    this.since ??= performance.now();
  }

  /** The Node watch works again: it is the source once more. */
  stop(): void {
    this.since = undefined;
  }

  /** A result of the healthz probe. */
  observe(healthy: boolean): void {
    if (this.since !== undefined && performance.now() - this.since >= this.afterMs)
      this.report(healthy);
  }
}
