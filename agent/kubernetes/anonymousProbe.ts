// One GET with no credentials at all: how the security checks see what an attacker on the network
// sees. No Authorization header, no client certificate, no cookie, a fresh connection each time
// (no keep-alive agent whose TLS session could carry anything over). The answer is bounded in
// time and size: only the status and the start of the body matter (a 403's text, a 200 that
// could be megabytes of pod specs is never read to the end).
import http from 'node:http';
import https from 'node:https';
import { describeError } from '../errors.ts';

export interface AnonymousProbeOptions {
  timeoutMs: number;
  /** Bytes of the body kept; the rest is not read (the connection is closed). */
  maxBodyBytes?: number;
  /** For https: the CA to verify the server with (default: the system's). */
  ca?: string;
  servername?: string;
  /** false only for a target whose certificate cannot be verified and that gets no secret. */
  rejectUnauthorized?: boolean;
  signal?: AbortSignal;
}

export type AnonymousAnswer =
  | { kind: 'answered'; status: number; contentType: string; body: string; truncated: boolean }
  /** No HTTP answer: refused, timed out, reset, TLS failure. `code` is the errno or TLS code. */
  | { kind: 'unreachable'; code: string; detail: string };

const DEFAULT_MAX_BODY = 64 * 1024;

export function anonymousGet(url: URL, options: AnonymousProbeOptions): Promise<AnonymousAnswer> {
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const isHttps = url.protocol === 'https:';
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
    const req = isHttps
      ? https.request(url, requestOptions, onResponse)
      : http.request(url, requestOptions, onResponse);
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
