// Local servers that answer unauthenticated requests the way a kubelet does in each of its
// authentication/authorization modes, from its source (pkg/kubelet/server/server.go and auth.go):
//
// - its authentication filter refuses a request it cannot authenticate with go-restful's
//   WriteErrorString(401, "Unauthorized"): body "Unauthorized" (no newline), no Content-Type of
//   its own, so Go sniffs "text/plain; charset=utf-8";
// - its authorization filter refuses with WriteErrorString(403, "Forbidden (user=..., verb=...,
//   resource=nodes, subresource=...)") before v1.32, and since v1.32 (KEP-2862) with
//   "subresource(s)=[...]" listing every subresource it tried, with a trailing newline;
// - allowed, each path serves its data (a PodList, "ok", Prometheus text, the stats summary,
//   {"kubeletconfig": ...});
// - the read-only port (10255) is plain HTTP with no filter at all.
//
// The TLS server asks for a client certificate (as a kubelet with a clientCAFile does), so a
// client that offered one would be seen. Every request is recorded with its headers, whether a
// client certificate came with it, and which connection carried it.
import http from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { TLSSocket } from 'node:tls';
import { selfSignedCertificate } from '../tls/selfSigned.ts';

export type KubeletMode =
  /** authentication.anonymous.enabled: false (the kubelet's default with a config file). */
  | 'anonymous-off'
  /** Anonymous on, authorization.mode: Webhook, the API server denying system:anonymous. */
  | 'webhook-deny'
  /** Anonymous on, authorization.mode: AlwaysAllow (the defaults with no config file). */
  | 'always-allow';

export interface FakeKubeletOptions {
  mode: KubeletMode;
  /** The 403 text: 'single' before v1.32, 'list' since (fine-grained authorization on). */
  forbiddenForm?: 'single' | 'list';
  /** In webhook-deny: paths the webhook allows system:anonymous anyway (a bad binding). */
  allow?: string[];
  /** Stream a /pods body of this many bytes (a node with very many pods). */
  podsBodyBytes?: number;
  /** Complete TLS and read the request, then never answer. */
  silent?: boolean;
  nodeName?: string;
}

export interface RecordedKubeletRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  /** Whether the client presented a certificate. */
  clientCertificate: boolean;
  /** Which connection (1, 2, ...) carried it. */
  connection: number;
}

export interface FakeKubelet {
  /** https://127.0.0.1:PORT (http:// for the read-only port). */
  url: string;
  requests: RecordedKubeletRequest[];
  /** Bytes of /pods bodies written to sockets so far. */
  podsBytesSent(): number;
  close(): Promise<void>;
}

let certificate: Promise<{ key: string; cert: string }> | undefined;

/** A self-signed certificate as a kubelet makes one itself, CN=<hostname>@<unix time> (once per run). */
function kubeletCertificate(): Promise<{ key: string; cert: string }> {
  certificate ??= selfSignedCertificate({
    subject: `/CN=k1-node01@${Math.floor(Date.now() / 1000)}`,
    subjectAltName: 'IP:127.0.0.1,DNS:k1-node01',
  });
  return certificate;
}

function isSubpath(requestPath: string, prefix: string): boolean {
  return requestPath === prefix || requestPath.startsWith(`${prefix}/`);
}

/** The subresources the kubelet authorizes a path as (auth.go GetRequestAttributes). */
function subresourcesFor(requestPath: string, fineGrained: boolean): string[] {
  const subresources: string[] = [];
  if (fineGrained) {
    if (isSubpath(requestPath, '/pods') || isSubpath(requestPath, '/runningpods')) {
      subresources.push('pods');
    } else if (isSubpath(requestPath, '/healthz')) subresources.push('healthz');
    else if (isSubpath(requestPath, '/configz')) subresources.push('configz');
  }
  if (isSubpath(requestPath, '/stats')) subresources.push('stats');
  else if (isSubpath(requestPath, '/metrics')) subresources.push('metrics');
  else if (isSubpath(requestPath, '/logs')) subresources.push('log');
  else subresources.push('proxy');
  return subresources;
}

/** go-restful's WriteErrorString: status, then the text; Go sniffs the Content-Type. */
function writeErrorString(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    Date: new Date().toUTCString(),
  });
  res.end(text);
}

const POD = {
  metadata: {
    name: 'kube-proxy-7xk2p',
    generateName: 'kube-proxy-',
    namespace: 'kube-system',
    uid: '0b7c6a2e-54b1-4f6e-9a53-3c1f6f0b8d21',
    labels: { 'k8s-app': 'kube-proxy', 'pod-template-generation': '1' },
    annotations: { 'kubernetes.io/config.seen': '2026-11-22T01:02:03.000000000Z' },
  },
  spec: {
    containers: [
      {
        name: 'kube-proxy',
        image: 'registry.k8s.io/kube-proxy:v1.31.2',
        command: ['/usr/local/bin/kube-proxy', '--config=/var/lib/kube-proxy/config.conf'],
        env: [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
        securityContext: { privileged: true },
      },
    ],
    nodeName: 'k1-node01',
    hostNetwork: true,
    serviceAccountName: 'kube-proxy',
  },
  status: { phase: 'Running', hostIP: '10.0.0.11', podIP: '10.0.0.11' },
};

function podList(): string {
  // runtime.Encode of a v1.PodList: TypeMeta first
  return JSON.stringify({ kind: 'PodList', apiVersion: 'v1', metadata: {}, items: [POD] });
}

const METRICS_TEXT = [
  '# HELP kubelet_running_pods [ALPHA] Number of pods that have a running pod sandbox',
  '# TYPE kubelet_running_pods gauge',
  'kubelet_running_pods 7',
  '# HELP kubelet_running_containers [ALPHA] Number of containers currently running',
  '# TYPE kubelet_running_containers gauge',
  'kubelet_running_containers{container_state="running"} 9',
  '',
].join('\n');

function statsSummary(nodeName: string): string {
  // go-restful WriteAsJson pretty-prints
  return JSON.stringify(
    {
      node: {
        nodeName,
        startTime: '2026-11-22T00:00:00Z',
        cpu: { time: '2026-11-22T07:00:00Z', usageNanoCores: 183_000_000 },
        memory: { time: '2026-11-22T07:00:00Z', workingSetBytes: 1_203_000_000 },
      },
      pods: [],
    },
    null,
    1,
  );
}

function configz(): string {
  return JSON.stringify({
    kubeletconfig: {
      enableServer: true,
      port: 10250,
      readOnlyPort: 10255,
      authentication: {
        x509: {},
        webhook: { enabled: false, cacheTTL: '2m0s' },
        anonymous: { enabled: true },
      },
      authorization: { mode: 'AlwaysAllow' },
    },
  });
}

/** A PodList of about `bytes` bytes, written as fast as the client reads (backpressure kept). */
function streamPods(res: ServerResponse, bytes: number, sent: { bytes: number }): void {
  const item = JSON.stringify(POD);
  const head = '{"kind":"PodList","apiVersion":"v1","metadata":{},"items":[';
  res.writeHead(200, { 'Content-Type': 'application/json', Date: new Date().toUTCString() });
  let written = 0;
  const write = (text: string): boolean => {
    written += text.length;
    sent.bytes += text.length;
    return res.write(text);
  };
  write(head);
  let first = true;
  const pump = (): void => {
    while (written < bytes) {
      if (res.destroyed) return;
      const more = write(first ? item : `,${item}`);
      first = false;
      if (!more) {
        res.once('drain', pump);
        return;
      }
    }
    res.end(']}');
  };
  pump();
}

function serveData(
  req: IncomingMessage,
  res: ServerResponse,
  options: FakeKubeletOptions,
  sent: { bytes: number },
  readOnly: boolean,
): void {
  const requestPath = new URL(req.url ?? '/', 'http://kubelet').pathname;
  const nodeName = options.nodeName ?? 'k1-node01';
  if (requestPath === '/pods') {
    if (options.podsBodyBytes !== undefined) {
      streamPods(res, options.podsBodyBytes, sent);
      return;
    }
    const body = podList();
    sent.bytes += body.length;
    res.writeHead(200, { 'Content-Type': 'application/json', Date: new Date().toUTCString() });
    res.end(body);
    return;
  }
  if (requestPath === '/healthz') {
    res.writeHead(200, {
      'Content-Type': 'text/plain; charset=utf-8',
      'X-Content-Type-Options': 'nosniff',
    });
    res.end('ok');
    return;
  }
  if (requestPath === '/metrics') {
    res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(METRICS_TEXT);
    return;
  }
  if (requestPath === '/stats/summary') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(statsSummary(nodeName));
    return;
  }
  // The read-only server has no /configz (it is installed only with debugging handlers).
  if (requestPath === '/configz' && !readOnly) {
    res.writeHead(200, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' });
    res.end(configz());
    return;
  }
  // Go's http.NotFound
  res.writeHead(404, {
    'Content-Type': 'text/plain; charset=utf-8',
    'X-Content-Type-Options': 'nosniff',
  });
  res.end('404 page not found\n');
}

function handler(
  options: FakeKubeletOptions,
  requests: RecordedKubeletRequest[],
  connections: WeakMap<Socket, number>,
  sent: { bytes: number },
  readOnly: boolean,
) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const socket = req.socket;
    const peer = socket instanceof TLSSocket ? socket.getPeerCertificate() : {};
    const requestPath = new URL(req.url ?? '/', 'http://kubelet').pathname;
    requests.push({
      method: req.method ?? '',
      path: requestPath,
      headers: { ...req.headers },
      clientCertificate: Object.keys(peer).length > 0,
      connection: connections.get(req.socket) ?? 0,
    });
    req.resume();
    if (options.silent === true) return;
    if (readOnly) {
      serveData(req, res, options, sent, true);
      return;
    }
    // Authentication: no client certificate and no bearer token, so only anonymous could pass.
    if (options.mode === 'anonymous-off') {
      writeErrorString(res, 401, 'Unauthorized');
      return;
    }
    // Authorization of system:anonymous.
    const allowed = options.mode === 'always-allow' || (options.allow ?? []).includes(requestPath);
    if (!allowed) {
      const form = options.forbiddenForm ?? 'single';
      const subresources = subresourcesFor(requestPath, form === 'list');
      const text =
        form === 'list'
          ? `Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource(s)=[${subresources.join(' ')}])\n`
          : `Forbidden (user=system:anonymous, verb=get, resource=nodes, subresource=${subresources[0] ?? 'proxy'})`;
      writeErrorString(res, 403, text);
      return;
    }
    serveData(req, res, options, sent, false);
  };
}

async function listen(
  server: http.Server,
  scheme: 'http' | 'https',
  requests: RecordedKubeletRequest[],
  connections: WeakMap<Socket, number>,
  sent: { bytes: number },
): Promise<FakeKubelet> {
  let count = 0;
  server.on(scheme === 'https' ? 'secureConnection' : 'connection', (socket: Socket) => {
    connections.set(socket, ++count);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    requests,
    podsBytesSent: () => sent.bytes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** The kubelet's API (port 10250) in one of its modes, on 127.0.0.1 with a self-signed cert. */
export async function startFakeKubelet(options: FakeKubeletOptions): Promise<FakeKubelet> {
  const { key, cert } = await kubeletCertificate();
  const requests: RecordedKubeletRequest[] = [];
  const connections = new WeakMap<Socket, number>();
  const sent = { bytes: 0 };
  const server = https.createServer(
    // a kubelet with authentication.x509.clientCAFile asks every client for a certificate
    { key, cert, requestCert: true, rejectUnauthorized: false },
    handler(options, requests, connections, sent, false),
  );
  return listen(server, 'https', requests, connections, sent);
}

/** The kubelet's read-only port (10255): plain HTTP, no authentication, no authorization. */
export async function startFakeReadOnlyPort(
  options: Pick<FakeKubeletOptions, 'silent' | 'podsBodyBytes'> = {},
): Promise<FakeKubelet> {
  const requests: RecordedKubeletRequest[] = [];
  const connections = new WeakMap<Socket, number>();
  const sent = { bytes: 0 };
  const server = http.createServer(
    handler({ mode: 'always-allow', ...options }, requests, connections, sent, true),
  );
  return listen(server, 'http', requests, connections, sent);
}

/** A URL on 127.0.0.1 where nothing listens (connection refused). */
export async function refusedUrl(scheme: 'http' | 'https'): Promise<string> {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => {
    server.close(() => {
      resolve();
    });
  });
  return `${scheme}://127.0.0.1:${port}`;
}
