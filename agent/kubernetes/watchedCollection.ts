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
}

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
          query: { fieldSelector: options.fieldSelector },
          signal,
        });
        resourceVersion = list.metadata?.resourceVersion;
        options.onSync(list.items ?? []);
      }
      // set by the event callback below
      const ended: { expired: boolean; error?: KubeStatus } = { expired: false };
      await api.watch<T & KubeStatus>(
        {
          path,
          query: {
            watch: '1',
            fieldSelector: options.fieldSelector,
            resourceVersion,
            allowWatchBookmarks: 'true',
            timeoutSeconds: String(timeoutSeconds()),
          },
          signal,
        },
        (event) => {
          if (event.type === 'ERROR') {
            if (event.object.code === 410) ended.expired = true;
            else ended.error = event.object;
            return;
          }
          const rv = event.object.metadata?.resourceVersion;
          if (rv !== undefined) resourceVersion = rv;
          if (event.type !== 'BOOKMARK') options.onEvent(event.type, event.object);
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
