// The agent's HTTP surface, and nothing else: /metrics, /healthz, /readyz, /api/v1/findings,
// /api/v1/remediations, /.
import http from 'node:http';
import type { Logger } from 'pino';
import type { Report } from '../../findings/report.ts';
import type { MetricsSink } from '../metrics/metricsSink.ts';
import { renderStatusPage } from './statusPage.ts';
import type { StatusPageMeta } from './statusPage.ts';

export interface HttpSource {
  report(): Report;
  ready(): boolean;
  metrics: MetricsSink;
  pageMeta(): StatusPageMeta;
  /** The recent remediation decisions (agent/remediation/decisions.ts), newest last. */
  remediations(): unknown[];
}

const COMMON_HEADERS = { 'Cache-Control': 'no-store', 'X-Content-Type-Options': 'nosniff' };

export function createHttpServer(source: HttpSource, log: Logger): http.Server {
  const server = http.createServer((req, res) => {
    if (log.isLevelEnabled('debug')) logRequest(log, req, res);
    handle(source, req, res).catch((error: unknown) => {
      log.error({ err: error, path: req.url }, 'HTTP handler failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  });
  // Slow or idle clients must not hold sockets forever.
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  return server;
}

async function handle(
  source: HttpSource,
  req: http.IncomingMessage,
  res: http.ServerResponse,
): Promise<void> {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('Allow', 'GET, HEAD');
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n');
    return;
  }
  const path = (req.url ?? '/').split('?')[0];
  switch (path) {
    case '/metrics':
      send(res, 200, source.metrics.contentType, await source.metrics.render());
      return;
    case '/healthz':
      send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
      return;
    case '/readyz':
      if (source.ready()) send(res, 200, 'text/plain; charset=utf-8', 'ok\n');
      else send(res, 503, 'text/plain; charset=utf-8', 'first pass of checks not finished\n');
      return;
    case '/api/v1/findings':
      send(
        res,
        200,
        'application/json; charset=utf-8',
        JSON.stringify(source.report(), null, 2) + '\n',
      );
      return;
    case '/api/v1/remediations':
      send(
        res,
        200,
        'application/json; charset=utf-8',
        JSON.stringify({ decisions: source.remediations() }, null, 2) + '\n',
      );
      return;
    case '/':
      res.setHeader('Content-Security-Policy', "default-src 'none'; style-src 'unsafe-inline'");
      send(
        res,
        200,
        'text/html; charset=utf-8',
        renderStatusPage(source.report(), source.pageMeta()),
      );
      return;
    default:
      send(
        res,
        404,
        'text/plain; charset=utf-8',
        'not found: try /, /metrics, /healthz, /readyz, /api/v1/findings, /api/v1/remediations\n',
      );
  }
}

/** --log-level debug: each request once answered (the path without its query string). */
function logRequest(log: Logger, req: http.IncomingMessage, res: http.ServerResponse): void {
  const t0 = performance.now();
  res.once('finish', () => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    const ms = Math.round(performance.now() - t0);
    log.debug(
      { event: 'http.request', method: req.method, path, status: res.statusCode, durationMs: ms },
      `${req.method ?? '?'} ${path} ${res.statusCode} in ${ms}ms`,
    );
  });
}

function send(res: http.ServerResponse, status: number, contentType: string, body: string): void {
  res.writeHead(status, {
    ...COMMON_HEADERS,
    'Content-Type': contentType,
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}
