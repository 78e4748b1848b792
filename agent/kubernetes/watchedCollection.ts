// List, then watch from the list's resourceVersion, forever (client-go's reflector, small):
// - the server ends a watch at its timeoutSeconds: watch again from the last resourceVersion
//   (BOOKMARK events keep it fresh even when nothing changes);
// - 410 Expired (the resourceVersion was compacted away): list again;
// - any failure (API down, 5xx, 429): back off with jitter, then resume.
import type { Logger } from 'pino';
import { Backoff, sleep } from './backoff.ts';
import { KubeApiError } from './kubeApi.ts';
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
  let failing = false;

  while (!signal.aborted) {
    try {
      if (resourceVersion === undefined) {
        const list = await api.request<{ metadata?: { resourceVersion?: string }; items?: T[] }>({
          verb: 'list',
          path,
          // "0": served from the API server's cache, not a full read of etcd, so a fleet of
          // agents starting or relisting at once does not load etcd (as the reflector lists)
          query: { fieldSelector: options.fieldSelector, resourceVersion: '0' },
          signal,
        });
        resourceVersion = list.metadata?.resourceVersion;
        options.onSync(list.items ?? []);
      }
      // set by the event callback below
      const ended: { expired: boolean; error?: KubeStatus; delivered: number } = {
        expired: false,
        delivered: 0,
      };
      const seconds = timeoutSeconds();
      const opened = performance.now();
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
          // healthy once the stream is open, not merely because a retry is under way
          health(true);
          if (failing) log.info({ event: 'kube.watch.recovered', path }, `watching ${path} again`);
          failing = false;
        },
      );
      if (ended.expired) {
        log.info({ event: 'kube.watch.expired', path }, `watch of ${path} expired; listing again`);
        resourceVersion = undefined;
        continue;
      }
      if (ended.error !== undefined)
        throw new Error(`watch error: ${ended.error.message ?? 'unknown'}`);
      if (ended.delivered === 0 && performance.now() - opened < SHORT_WATCH_MS) {
        // something between us and the API ends streams at once: without this, a tight loop
        throw new Error('the watch ended at once without an event');
      }
      backoff.reset(); // the server ended the stream at its timeout: watch again at once
    } catch (error) {
      if (aborted(signal)) return; // stopping, not failing
      if (error instanceof KubeApiError && error.status === 410) resourceVersion = undefined;
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
