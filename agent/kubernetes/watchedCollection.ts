// List, then watch from the list's resourceVersion, forever (client-go's reflector, small):
// - the server ends a watch at its timeoutSeconds: watch again from the last resourceVersion
//   (BOOKMARK events keep it fresh even when nothing changes);
// - 410 Expired (the resourceVersion was compacted away): list again, as the reflector does: at
//   once and from the cache but no older than what we had seen; if the list's own position is
//   already gone (a stale cache), back off and read etcd itself;
// - a list from etcd is read in pages (limit/continue, client-go's pager): no one response is
//   the whole collection. The lists from the watch cache are not paged (the cache ignores
//   limit for resourceVersion "0", and client-go leaves the others unpaged so that the cache
//   serves them); one that comes back larger than the client takes (16 MiB: a node packed
//   with pods with large annotations) is read from etcd in pages from then on;
// - any failure (API down, 5xx, 429): back off with jitter, then resume.
import type { Logger } from 'pino';
import { Backoff, sleep } from './backoff.ts';
import { KubeApiError, isResponseTooLarge, listPages } from './kubeApi.ts';
import type { KubeApi, KubeStatus } from './kubeApi.ts';

export interface KubeObject {
  metadata?: { name?: string; namespace?: string; uid?: string; resourceVersion?: string };
}

export interface WatchedCollectionOptions<T extends KubeObject> {
  api: KubeApi;
  /** Collection path, e.g. /api/v1/nodes. */
  path: string;
  fieldSelector?: string;
  log: Logger;
  /** The whole collection, after every list. */
  onSync(items: T[]): void;
  onEvent(type: 'ADDED' | 'MODIFIED' | 'DELETED', object: T): void;
  /** true once a list or watch succeeds, false on every failure. */
  onHealth?(healthy: boolean): void;
  signal: AbortSignal;
  backoff?: Backoff;
  /** Server-side watch timeout; spread out so a fleet does not reconnect in step. */
  watchTimeoutSeconds?: () => number;
  /** Silence beyond the server's timeout after which a stream counts as dead. */
  idleGraceMs?: number;
  /** Items per page of a list read from etcd (default client-go's 500). */
  pageSize?: number;
}

/** A watch that ends this soon without delivering anything was not a watch (client-go's rule). */
const SHORT_WATCH_MS = 1000;

export async function runWatchedCollection<T extends KubeObject>(
  options: WatchedCollectionOptions<T>,
): Promise<void> {
  const { api, path, log, signal } = options;
  const backoff = options.backoff ?? new Backoff({ baseMs: 1000, maxMs: 30_000 });
  const timeoutSeconds =
    options.watchTimeoutSeconds ?? (() => 300 + Math.floor(Math.random() * 300));
  const health = (healthy: boolean) => options.onHealth?.(healthy);
  let resourceVersion: string | undefined;
  // What the next list asks for (client-go's relistResourceVersion):
  // - "0": whatever the API server's cache holds, not a read of etcd, so a fleet of agents
  //   starting or relisting at once does not load etcd;
  // - the last resourceVersion seen, after a watch expired: still from the cache, but never
  //   older than what we had (a "0" list could be, and its position expire again at once);
  // - undefined (no parameter, client-go's ""): a consistent read from etcd, when the cache
  //   could not give a position to watch from.
  let listFrom: string | undefined = '0';
  // a watch from the last list's position delivered or lasted: a later 410 is ordinary expiry
  let followed = false;
  let failing = false;
  // a list from the cache came back too large to read: from now on, etcd in pages
  let paged = false;

  while (!signal.aborted) {
    try {
      if (resourceVersion === undefined) {
        if (paged) listFrom = undefined;
        const list: { items: T[]; resourceVersion: string | undefined } =
          listFrom === undefined
            ? await listPages<T>(api, {
                path,
                query: { fieldSelector: options.fieldSelector },
                signal,
                ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
              })
            : await api
                .request<{ metadata?: { resourceVersion?: string }; items?: T[] }>({
                  verb: 'list',
                  path,
                  query: { fieldSelector: options.fieldSelector, resourceVersion: listFrom },
                  signal,
                })
                .then((l) => ({
                  items: l.items ?? [],
                  resourceVersion: l.metadata?.resourceVersion,
                }));
        resourceVersion = list.resourceVersion;
        listFrom = '0';
        followed = false;
        options.onSync(list.items);
      }
      // set by the event callback below
      const ended: { expired: boolean; error?: KubeStatus; delivered: number } = {
        expired: false,
        delivered: 0,
      };
      const seconds = timeoutSeconds();
      // from the stream's opening, not the request's: a slow connect (TLS, an exec credential
      // plugin) is not a stream that lasted
      let opened = performance.now();
      await api.watch<T & KubeStatus>(
        {
          path,
          query: {
            watch: '1',
            fieldSelector: options.fieldSelector,
            resourceVersion,
            allowWatchBookmarks: 'true',
            timeoutSeconds: String(seconds),
          },
          signal,
          idleMs: seconds * 1000 + (options.idleGraceMs ?? 30_000),
        },
        (event) => {
          if (event.type === 'ERROR') {
            if (event.object.code === 410) ended.expired = true;
            else ended.error = event.object;
            return;
          }
          ended.delivered++;
          followed = true; // the server streams from the listed position: a real one
          if (event.type !== 'BOOKMARK') {
            try {
              options.onEvent(event.type, event.object);
            } catch (error) {
              // our bug, not the API's: say so, keep the watch and its position
              log.error(
                { event: 'kube.watch.handler-failed', path, err: String(error) },
                'handling a watch event failed',
              );
            }
          }
          const rv = event.object.metadata?.resourceVersion;
          if (rv !== undefined) resourceVersion = rv;
        },
        () => {
          opened = performance.now();
          // healthy once the stream is open, not merely because a retry is under way
          health(true);
          if (failing) log.info({ event: 'kube.watch.recovered', path }, `watching ${path} again`);
          failing = false;
        },
      );
      const short = ended.delivered === 0 && performance.now() - opened < SHORT_WATCH_MS;
      if (!short) followed = true;
      if (ended.expired) {
        const last: string | undefined = resourceVersion;
        resourceVersion = undefined;
        if (followed) {
          log.info(
            { event: 'kube.watch.expired', path },
            `watch of ${path} expired; listing again`,
          );
          if (!short) backoff.reset(); // a healthy stream, ended as at its timeout
          listFrom = last;
          continue;
        }
        // the position the list gave was gone before anything came: its cache is stale, and
        // listing from it again would loop. Read etcd, after a pause that grows if it repeats.
        log.info(
          { event: 'kube.watch.expired', path },
          `watch of ${path} expired at once; listing again from etcd`,
        );
        listFrom = undefined;
        await sleep(backoff.next(), signal);
        continue;
      }
      if (ended.error !== undefined)
        throw new Error(`watch error: ${ended.error.message ?? 'unknown'}`);
      if (short) {
        // something between us and the API ends streams at once: without this, a tight loop
        throw new Error('the watch ended at once without an event');
      }
      backoff.reset(); // the server ended the stream at its timeout: watch again at once
    } catch (error) {
      if (aborted(signal)) return; // stopping, not failing
      if (error instanceof KubeApiError && error.status === 410) {
        // that position is gone: list from etcd, as client-go falls back to ""
        resourceVersion = undefined;
        listFrom = undefined;
      } else if (
        resourceVersion === undefined &&
        error instanceof KubeApiError &&
        tooLarge(error)
      ) {
        // the cache did not catch up with the version the list asked for: etcd has it
        listFrom = undefined;
      } else if (resourceVersion === undefined && isResponseTooLarge(error)) {
        // the whole collection in one answer is more than we read: page it from etcd
        paged = true;
      }
      health(false);
      const delay = backoff.next(
        (error instanceof KubeApiError ? (error.retryAfterSeconds ?? 0) : 0) * 1000,
      );
      // one warning per outage, not one per retry
      if (!failing)
        log.warn(
          { event: 'kube.watch.failing', path, err: String(error) },
          `watching ${path} failed; retrying with backoff`,
        );
      failing = true;
      await sleep(delay, signal);
    }
  }
}

/** Read afresh: the signal may abort while a request is awaited. */
function aborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

/** 504 "Too large resource version: X, current: Y" (client-go's isTooLargeResourceVersionError). */
function tooLarge(error: KubeApiError): boolean {
  return error.status === 504 && /too large resource version/i.test(error.message);
}
