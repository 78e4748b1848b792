// The few Kubernetes API calls the agent makes, over node:https: JSON in and out, Status
// bodies turned into KubeApiError, watch streams read line by line. Every failure is counted
// per verb (node_auditor_kube_api_errors_total) by the caller-supplied hook.
import https from 'node:https';
import type { IncomingMessage } from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { AuditorError, ErrorCode, describeError } from '../errors.ts';
import type { Logger } from 'pino';
import { openKubeAccess } from './kubeAccess.ts';
import type { KubeAccess } from './kubeAccess.ts';
import type { KubeSource } from './kubeDiscovery.ts';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

const METHOD: Record<Verb, string> = {
  get: 'GET',
  list: 'GET',
  watch: 'GET',
  create: 'POST',
  update: 'PUT',
  patch: 'PATCH',
  delete: 'DELETE',
};

/** Objects we read are small; a larger body is not what we asked for. */
const MAX_BODY_BYTES = 16 * 1024 * 1024;
/** A watch line is one object; a Node with many images can be large, but not this large. */
const MAX_WATCH_LINE_BYTES = 16 * 1024 * 1024;

/** A Kubernetes Status, as error responses carry it. */
export interface KubeStatus {
  kind?: string;
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: Record<string, unknown>;
}

export class KubeApiError extends AuditorError {
  /** HTTP status, or 0 when the API could not be reached at all. */
  readonly status: number;
  readonly reason: string;
  /** Seconds from a Retry-After header (429, 503). */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    verb: Verb,
    path: string,
    status: number,
    reason: string,
    message: string,
    options?: { cause?: unknown; retryAfterSeconds?: number },
  ) {
    super(
      ErrorCode.KubeApi,
      `${verb} ${path}: ${status === 0 ? '' : `${status} `}${message}`,
      options,
    );
    this.name = 'KubeApiError';
    this.status = status;
    this.reason = reason;
    this.retryAfterSeconds = options?.retryAfterSeconds;
  }

  /** Worth retrying later: the API is unreachable, overloaded or failing, not refusing us. */
  get transient(): boolean {
    return this.status === 0 || this.status === 429 || this.status >= 500;
  }
}

export interface RequestOptions {
  verb: Verb;
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  /** For patch: application/strategic-merge-patch+json, application/merge-patch+json ... */
  contentType?: string;
  /** Until the response headers (default: the client's request timeout). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface WatchOptions extends Omit<RequestOptions, 'verb' | 'body'> {
  /**
   * A stream that sends nothing (not even a BOOKMARK) for this long is dead: a wedged server,
   * a load balancer or a stale connection-tracking entry can keep it open forever without it.
   */
  idleMs: number;
}

export interface WatchEvent<T = Record<string, unknown>> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export class KubeApi {
  readonly access: KubeAccess;
  private readonly agent: https.Agent;
  private readonly onError: (verb: Verb, error: KubeApiError) => void;
  private readonly timeoutMs: number;

  constructor(
    access: KubeAccess,
    options: { onError?: (verb: Verb, error: KubeApiError) => void; timeoutMs?: number } = {},
  ) {
    this.access = access;
    this.onError = options.onError ?? (() => undefined);
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.agent = new https.Agent({
      keepAlive: true,
      maxSockets: 8,
      ...access.tls,
    });
  }

  /** One request; resolves with the parsed JSON body, throws KubeApiError. */
  async request<T = Record<string, unknown>>(options: RequestOptions): Promise<T> {
    const res = await this.send(options);
    const text = await readBody(res).catch((error: unknown) => {
      throw this.fail(
        options.verb,
        options.path,
        0,
        error instanceof BodyTooLarge ? RESPONSE_TOO_LARGE : 'ReadError',
        describeError(error),
        error,
      );
    });
    if ((res.statusCode ?? 0) >= 300) throw this.statusError(options, res, text);
    try {
      return (text === '' ? {} : JSON.parse(text)) as T;
    } catch (error) {
      throw this.fail(
        options.verb,
        options.path,
        res.statusCode ?? 0,
        'BadResponse',
        'response is not JSON',
        error,
      );
    }
  }

  /**
   * Watch: calls onEvent for every line until the server ends the stream (its timeoutSeconds)
   * or the signal aborts. ERROR events are passed on (the caller decides what 410 means).
   */
  async watch<T = Record<string, unknown>>(
    options: WatchOptions,
    onEvent: (event: WatchEvent<T>) => void,
    onOpen?: () => void,
  ): Promise<void> {
    const res = await this.send({ ...options, verb: 'watch' }, options.idleMs);
    if ((res.statusCode ?? 0) >= 300)
      throw this.statusError(
        { ...options, verb: 'watch' },
        res,
        await readBody(res).catch(() => ''),
      );
    onOpen?.();
    let buffer = '';
    // a character split across two chunks must not turn into two broken ones
    const decoder = new StringDecoder('utf8');
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        buffer += decoder.write(chunk);
        if (buffer.length > MAX_WATCH_LINE_BYTES)
          throw new Error('a watch event is larger than 16 MiB');
        let nl: number;
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (line !== '') onEvent(JSON.parse(line) as WatchEvent<T>);
        }
      }
    } catch (error) {
      if (options.signal?.aborted === true) return;
      throw this.fail('watch', options.path, 0, 'StreamBroken', describeError(error), error);
    }
  }

  close(): void {
    this.agent.destroy();
  }

  /** Sends; timeoutMs bounds the wait for the response, idleMs any silence after (0: none). */
  private async send(options: RequestOptions, idleMs?: number): Promise<IncomingMessage> {
    const url = new URL(options.path, this.access.server);
    for (const [k, v] of Object.entries(options.query ?? {}))
      if (v !== undefined) url.searchParams.set(k, v);
    const headers: Record<string, string> = {
      Accept: 'application/json',
      'User-Agent': 'node-auditor',
    };
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    if (body !== undefined) {
      headers['Content-Type'] = options.contentType ?? 'application/json';
      headers['Content-Length'] = String(Buffer.byteLength(body));
    }
    const auth: { headers: Record<string, string>; cert?: string; key?: string } = { headers };
    try {
      await this.access.authenticate(auth);
    } catch (error) {
      throw this.fail(
        options.verb,
        options.path,
        0,
        'AuthenticationFailed',
        `cannot get credentials: ${describeError(error)}`,
        error,
      );
    }
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const silenceMs = idleMs ?? timeoutMs;
    return new Promise<IncomingMessage>((resolve, reject) => {
      let req: ReturnType<typeof https.request>;
      try {
        req = https.request(
          url,
          {
            method: METHOD[options.verb],
            agent: this.agent,
            headers: auth.headers,
            ...(auth.cert === undefined ? {} : { cert: auth.cert, key: auth.key }),
            ...(options.signal === undefined ? {} : { signal: options.signal }),
          },
          (res) => {
            clearTimeout(noResponse);
            resolve(res);
          },
        );
      } catch (error) {
        // thrown before anything is sent (a header value with a newline: ERR_INVALID_CHAR): a
        // failed call like any other, counted, not an exception no caller expects
        reject(
          this.fail(
            options.verb,
            options.path,
            0,
            'InvalidRequest',
            // node:http names the header, never its value (it may be the token)
            describeError(error).split('\n')[0] ?? 'invalid request',
            error,
          ),
        );
        return;
      }
      const noResponse = setTimeout(() => {
        req.destroy(new Error(`no response within ${timeoutMs}ms`));
      }, timeoutMs);
      if (silenceMs > 0) {
        req.setTimeout(silenceMs, () => {
          req.destroy(new Error(`nothing received for ${silenceMs}ms`));
        });
      }
      req.on('error', (error) => {
        clearTimeout(noResponse);
        reject(
          this.fail(
            options.verb,
            options.path,
            0,
            options.signal?.aborted === true ? 'Aborted' : 'Unreachable',
            describeError(error),
            error,
          ),
        );
      });
      req.end(body);
    });
  }

  private statusError(
    options: Pick<RequestOptions, 'verb' | 'path'>,
    res: IncomingMessage,
    text: string,
  ): KubeApiError {
    let status: KubeStatus = {};
    try {
      status = JSON.parse(text) as KubeStatus;
    } catch {
      // a proxy's HTML page, or "404 page not found"
    }
    const retryAfter = Number(res.headers['retry-after']);
    return this.fail(
      options.verb,
      options.path,
      res.statusCode ?? 0,
      status.reason ?? res.statusMessage ?? 'Unknown',
      status.message ?? (text.slice(0, 200) || (res.statusMessage ?? 'error')),
      undefined,
      Number.isFinite(retryAfter) ? retryAfter : undefined,
    );
  }

  private fail(
    verb: Verb,
    path: string,
    status: number,
    reason: string,
    message: string,
    cause?: unknown,
    retryAfterSeconds?: number,
  ): KubeApiError {
    const error = new KubeApiError(verb, path, status, reason, message, {
      ...(cause === undefined ? {} : { cause }),
      ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
    });
    // Failures only: a 404 or 409 is an answer the callers expect (an expired Event, a lost
    // Lease race), and a call we aborted ourselves (shutdown) did not fail.
    if (status !== 404 && status !== 409 && reason !== 'Aborted') {
      try {
        this.onError(verb, error);
      } catch {
        /* counting must not break the call */
      }
    }
    return error;
  }
}

/** The reason of a KubeApiError for a body over MAX_BODY_BYTES. */
const RESPONSE_TOO_LARGE = 'ResponseTooLarge';

class BodyTooLarge extends Error {}

/** A response refused for its size: a list too large to read in one piece. */
export function isResponseTooLarge(error: unknown): boolean {
  return error instanceof KubeApiError && error.reason === RESPONSE_TOO_LARGE;
}

async function readBody(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    total += chunk.length;
    if (total > MAX_BODY_BYTES) {
      res.destroy();
      throw new BodyTooLarge('response larger than 16 MiB');
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** client-go's pager's page size. */
export const LIST_PAGE_SIZE = 500;
/** 5000 nodes or 150,000 pods (the documented cluster limits) at 500 a page is 300 pages. */
const MAX_PAGES = 1000;

/**
 * A whole list read page by page (limit and continue), so that no one response is larger than
 * a page: how a list from etcd (no resourceVersion) should be read. Not for resourceVersion
 * "0": the API server's watch cache ignores limit then and answers everything at once. The
 * resourceVersion is the first page's, the snapshot all pages come from. With `onPage`, each
 * page's items are handed to it as they come and none is kept (items is then empty): a caller
 * that only counts holds one page at a time. A continue token that expired (410 Expired: the
 * pages took longer than etcd keeps the first one's revision, 5 minutes by default) fails the
 * list, as kubectl's does: the pages read so far are no consistent list.
 */
export async function listPages<T = Record<string, unknown>>(
  api: KubeApi,
  options: Omit<RequestOptions, 'verb' | 'body' | 'contentType'> & {
    pageSize?: number;
    onPage?: (items: readonly T[]) => void;
  },
): Promise<{ items: T[]; resourceVersion: string | undefined }> {
  const { pageSize = LIST_PAGE_SIZE, onPage, ...request } = options;
  const items: T[] = [];
  let resourceVersion: string | undefined;
  let token: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const list = await api.request<{
      items?: T[];
      metadata?: { continue?: string; resourceVersion?: string };
    }>({
      ...request,
      verb: 'list',
      query: { ...request.query, limit: String(pageSize), continue: token },
    });
    if (page === 0) resourceVersion = list.metadata?.resourceVersion;
    if (onPage === undefined) for (const item of list.items ?? []) items.push(item);
    else onPage(list.items ?? []);
    token = list.metadata?.continue;
    if (token === undefined || token === '') return { items, resourceVersion };
  }
  throw new Error(`the list of ${options.path} did not end after ${MAX_PAGES} pages`);
}

/**
 * MicroTime (Lease acquireTime/renewTime, Event eventTime): exactly six fractional digits.
 * Date.toISOString() gives three, which the API server rejects with 400.
 */
export function microTime(date: Date): string {
  return date.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** metav1.Time (condition times, Event first/lastTimestamp): whole seconds, as the server stores them. */
export function kubeTime(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The client `run` and `check` use: the credentials discovery found, the configured request
 * timeout (also the credential plugin's), one log line saying where the API is. Throws
 * AuditorError for a kubeconfig that cannot be used (a configuration error).
 */
export async function openKubeApi(
  source: KubeSource,
  options: { timeoutMs: number; log: Logger; onError?: (verb: Verb, error: KubeApiError) => void },
): Promise<KubeApi> {
  const access = await openKubeAccess(source, {
    credentialTimeoutMs: options.timeoutMs,
    log: options.log,
  });
  const api = new KubeApi(access, {
    timeoutMs: options.timeoutMs,
    ...(options.onError === undefined ? {} : { onError: options.onError }),
  });
  options.log.info(
    { event: 'kube.on', server: access.server.origin, source: access.source },
    `Kubernetes API ${access.server.origin} (${access.source})`,
  );
  if (access.unusable !== undefined)
    options.log.warn(
      { event: 'kube.auth.unsupported', source: access.source },
      `kubeconfig ${access.source}: ${access.unusable}`,
    );
  return api;
}
