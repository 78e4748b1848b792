// One GET with no credentials at all: how the security checks see what an attacker on the network
// sees. No Authorization header, no client certificate, no cookie, a fresh connection each time
// (no keep-alive agent whose TLS session could carry anything over). The answer is bounded in
// time and size: only the status and the start of the body matter (a 403's text, a 200 that
// could be megabytes of pod specs is never read to the end).
import http from 'node:http';
import type https from 'node:https';
import net from 'node:net';
import { describeError } from '../errors.ts';

/** How to verify an https target. */
export interface ProbeTls {
  /** The CA to verify the server with (default: the system's). */
  ca?: string;
  servername?: string;
  /** false only for a target whose certificate cannot be verified and that gets no secret. */
  rejectUnauthorized?: boolean;
}

export interface AnonymousProbeOptions extends ProbeTls {
  timeoutMs: number;
  /** Bytes of the body kept; the rest is not read (the connection is closed). */
  maxBodyBytes?: number;
  signal?: AbortSignal;
}

export type AnonymousAnswer =
  | { kind: 'answered'; status: number; contentType: string; body: string; truncated: boolean }
  /** No HTTP answer: refused, timed out, reset, TLS failure. `code` is the errno or TLS code. */
  | { kind: 'unreachable'; code: string; detail: string };

const DEFAULT_MAX_BODY = 64 * 1024;

/**
 * `path` under `base`, keeping the base's own path: an API server behind a proxy lives at
 * https://rancher.example/k8s/clusters/c-1, and new URL('/version', base) would drop that.
 */
export function probeUrl(base: URL, path: string): URL {
  const url = new URL(base.href);
  url.pathname = `${base.pathname.replace(/\/+$/, '')}${path}`;
  url.search = '';
  return url;
}

/** Why there was no HTTP answer, in words for evidence. */
export function unreachableReason(answer: { code: string; detail: string }): string {
  const { code, detail } = answer;
  if (code === 'ECONNREFUSED') return 'connection refused (nothing listens there)';
  if (code === 'ETIMEDOUT') return detail;
  if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return `no route to host (${code})`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `host name not resolved (${code})`;
  if (code === 'ECONNRESET') return 'connection reset by the server (ECONNRESET)';
  if (code === 'ABORT_ERR') return 'stopped (the check was cancelled)';
  // OpenSSL's verification results (DEPTH_ZERO_SELF_SIGNED_CERT, CERT_HAS_EXPIRED, ...)
  if (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)/.test(code))
    return `the server's certificate is not trusted (${code})`;
  // OpenSSL's messages are long and opaque; its code says what failed (wrong version number:
  // a plain-HTTP server behind an https:// URL)
  if (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_') || code === 'EPROTO') {
    return `TLS handshake failed (${code})`;
  }
  return `${detail} (${code})`;
}

export async function anonymousGet(
  url: URL,
  options: AnonymousProbeOptions,
): Promise<AnonymousAnswer> {
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const isHttps = url.protocol === 'https:';
  // node:https (TLS, OpenSSL's context) only once a probe needs it: a few MiB of RSS that a
  // node without a kubelet or a cluster would otherwise pay
  const secure = isHttps ? (await import('node:https')).default : undefined;
  return new Promise((resolve) => {
    let settled = false;
    const finish = (answer: AnonymousAnswer) => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      req.destroy();
      resolve(answer);
    };
    const requestOptions: https.RequestOptions = {
      method: 'GET',
      agent: false,
      headers: { Accept: 'application/json, */*', 'User-Agent': 'node-auditor' },
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    };
    if (isHttps) {
      if (options.ca !== undefined) requestOptions.ca = options.ca;
      if (options.servername !== undefined) requestOptions.servername = options.servername;
      requestOptions.rejectUnauthorized = options.rejectUnauthorized ?? true;
    }
    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      let truncated = false;
      const done = () => {
        finish({
          kind: 'answered',
          status: res.statusCode ?? 0,
          contentType: res.headers['content-type'] ?? '',
          body: Buffer.concat(chunks).toString('utf8'),
          truncated,
        });
      };
      res.on('data', (chunk: Buffer) => {
        const room = maxBody - kept;
        if (chunk.length >= room) {
          chunks.push(chunk.subarray(0, room));
          kept = maxBody;
          truncated = true;
          done();
          return;
        }
        chunks.push(chunk);
        kept += chunk.length;
      });
      res.on('end', done);
      // the status is known: a body cut short by the server still answers the question
      res.on('error', done);
      res.on('aborted', done);
    };
    const req =
      secure === undefined
        ? http.request(url, requestOptions, onResponse)
        : secure.request(url, requestOptions, onResponse);
    const deadline = setTimeout(() => {
      finish({
        kind: 'unreachable',
        code: 'ETIMEDOUT',
        detail: `no answer within ${options.timeoutMs}ms`,
      });
    }, options.timeoutMs);
    req.on('error', (error: NodeJS.ErrnoException) => {
      finish({ kind: 'unreachable', code: error.code ?? 'ERROR', detail: describeError(error) });
    });
    req.end();
  });
}

/**
 * Whether a TCP connection to the URL's host and port is refused: the cheap first look before a
 * TLS probe, so a host where nothing listens never loads the TLS stack. Anything but a refusal
 * (accepted, timed out, unreachable) is false: let the real probe say what it is.
 */
export function connectionRefused(url: URL, timeoutMs: number): Promise<boolean> {
  const port = Number(url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : url.port);
  const host = url.hostname.replace(/^\[|\]$/g, '');
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (refused: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(refused);
    };
    const timer = setTimeout(() => {
      done(false);
    }, timeoutMs);
    socket.once('connect', () => {
      done(false);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      done(error.code === 'ECONNREFUSED');
    });
  });
}
