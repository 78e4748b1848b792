// Kubernetes Events on the agent's own Node, recorded like the kubelet's recorder:
// - the same (reason, type, message) is the same Event: its count and lastTimestamp go up
//   (a deterministic name per key, so the Event can be patched without reading it: a node
//   identity may not GET events);
// - client-go's spam filter, a token bucket per object (burst 25, one more every 5 min): a new
//   Event without a token is dropped and counted; repeats of a known Event coalesce into its
//   next call, so 10,000 occurrences recorded at once are one call and an exact count;
// - dropped means dropped: an incident whose new Event was dropped (no token, a full queue, a
//   refusal) was never reported, so it gets no "Resolved" and a later report of it may go out;
//   a dropped send is not made after a restart either;
// - while the API is down (or asks us to wait with 429/Retry-After) nothing is sent before the
//   backoff allows; pending sends wait in a bounded FIFO queue (oldest dropped, counted) and go
//   out in order when it returns. The one being sent is held apart: drops never touch it;
// - what was sent, and which incidents were reported, is kept in a state file, so a restart
//   neither replays an Event nor counts an incident twice.
import * as fs from '../../host/asyncFs.ts';
import type { Logger } from 'pino';
import { Backoff } from '../../kubernetes/backoff.ts';
import { KubeApiError, kubeTime } from '../../kubernetes/kubeApi.ts';
import type { KubeApi } from '../../kubernetes/kubeApi.ts';
import { TokenBucket } from './tokenBucket.ts';

export type EventType = 'Normal' | 'Warning';
export type DropReason = 'queue_full' | 'rejected' | 'rate_limited';

export interface EventRecorderOptions {
  api: KubeApi;
  nodeName: string;
  /** The Node's uid once known (the Node watch); until then its name, as the kubelet does. */
  nodeUid: () => string | undefined;
  /** An Event about a Node must live in "default" (the API server refuses others). */
  namespace: string;
  burst: number;
  refillMs: number;
  queueLimit: number;
  /** Where to keep what was sent; undefined: keep nothing across restarts. */
  statePath: string | undefined;
  log: Logger;
  onSent?: (operation: 'create' | 'patch') => void;
  onDropped?: (reason: DropReason) => void;
  retry?: Backoff;
  /** Wall clock for the Events' timestamps. */
  now?: () => Date;
  /** Monotonic milliseconds for the spam filter and the backoff. */
  monotonic?: () => number;
}

interface EventRecord {
  key: string;
  name: string;
  reason: string;
  type: EventType;
  message: string;
  count: number;
  /** The count the API server has. */
  sentCount: number;
  created: boolean;
  firstTimestamp: string;
  lastTimestamp: string;
}

interface StateFile {
  version: 1;
  events: EventRecord[];
  incidents: Record<string, string>;
}

/** Like the kubelet's LRU of 4096 event keys: memory stays bounded whatever happens. */
export const MAX_RECORDS = 4096;
const MAX_MESSAGE = 1024;
/** Events older than this are gone from the API server (--event-ttl is 1 h by default). */
const STATE_TTL_MS = 24 * 3600_000;

export class EventRecorder {
  private readonly options: EventRecorderOptions;
  private readonly records = new Map<string, EventRecord>();
  private readonly incidents = new Map<string, string>();
  /** Keys waiting to be sent, oldest first (the one in flight is not here). */
  private readonly queue = new Set<string>();
  /** Repeats of a sent Event waiting for a token of the spam filter. */
  private readonly deferred = new Set<string>();
  /** An Event not created yet -> the "Resolved" Event recorded after it (withdrawn with it). */
  private readonly resolutions = new Map<string, string>();
  private inFlight: string | undefined;
  private readonly bucket: TokenBucket;
  private readonly retry: Backoff;
  private readonly now: () => Date;
  private readonly monotonic: () => number;
  /** No API call before this (monotonic): the backoff after a failure, or a Retry-After. */
  private notBefore = 0;
  private draining = false;
  private timer: NodeJS.Timeout | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();
  private stopped = false;
  private warnedState = false;

  constructor(options: EventRecorderOptions) {
    this.options = options;
    this.now = options.now ?? (() => new Date());
    this.monotonic = options.monotonic ?? (() => performance.now());
    this.bucket = new TokenBucket(options.burst, options.refillMs, this.monotonic);
    this.retry = options.retry ?? new Backoff({ baseMs: 1000, maxMs: 30_000 });
  }

  /** Restore what an earlier run sent; sends it had not finished go out again. */
  async load(): Promise<void> {
    const file = this.options.statePath;
    if (file === undefined) return;
    let state: StateFile | undefined;
    try {
      state = parseState(JSON.parse(await fs.readFile(file, 'utf8')));
      if (state === undefined) throw new Error('not a node-auditor event state file (version 1)');
    } catch (error) {
      if ((error as { code?: string }).code !== 'ENOENT') {
        this.options.log.warn(
          { err: String(error), path: file },
          'event state file unusable; starting afresh',
        );
      }
      return;
    }
    const oldest = this.now().getTime() - STATE_TTL_MS;
    for (const record of state.events.slice(-MAX_RECORDS)) {
      if (Date.parse(record.lastTimestamp) < oldest) continue;
      this.records.set(record.key, record);
      if (record.count > record.sentCount) this.queue.add(record.key);
    }
    for (const [incident, key] of Object.entries(state.incidents))
      this.incidents.set(incident, key);
    this.schedule(0);
  }

  /**
   * Report an incident (a finding, a log incident): an Event, unless this very incident was
   * already reported with the same reason and message (before a restart, say).
   */
  report(incident: string, reason: string, type: EventType, message: string): void {
    const key = eventKey(reason, type, clip(message));
    if (this.incidents.get(incident) === key) return;
    // reported once its Event is on its way: one the spam filter dropped never reached the
    // cluster (no "Resolved" for it; reported again, it goes out if a token has come back)
    if (this.record(reason, type, message)) this.incidents.set(incident, key);
  }

  /** An incident is over: a Normal "<Reason>Resolved" Event, if it had been reported. */
  resolve(incident: string, message: string): void {
    const key = this.incidents.get(incident);
    if (key === undefined) return;
    this.incidents.delete(incident);
    const reason = `${reasonOfKey(key)}Resolved`;
    if (this.record(reason, 'Normal', message) && this.records.get(key)?.created === false)
      this.resolutions.set(key, eventKey(reason, 'Normal', clip(message)));
  }

  /** Incidents reported so far whose key starts with prefix (to resolve those gone while down). */
  reportedIncidents(prefix: string): string[] {
    return [...this.incidents.keys()].filter((k) => k.startsWith(prefix));
  }

  /** One occurrence. False: dropped (the spam filter, or stopped), it will never be sent. */
  record(reason: string, type: EventType, message: string): boolean {
    if (this.stopped) return false;
    const text = clip(message);
    const key = eventKey(reason, type, text);
    const at = kubeTime(this.now());
    let record = this.records.get(key);
    if (record === undefined) {
      // the spam filter: a new Event needs a token
      if (!this.bucket.take()) {
        this.options.onDropped?.('rate_limited');
        return false;
      }
      this.evictIfFull();
      record = {
        key,
        name: eventName(this.options.nodeName, reason, key),
        reason,
        type,
        message: text,
        count: 1,
        sentCount: 0,
        created: false,
        firstTimestamp: at,
        lastTimestamp: at,
      };
      this.records.set(key, record);
      this.enqueue(key);
    } else {
      record.count += 1;
      record.lastTimestamp = at;
      this.records.delete(key); // most recently used last
      this.records.set(key, record);
      if (this.queue.has(key)) {
        // what happened last goes out last (a "Resolved" must not overtake a later recurrence)
        this.queue.delete(key);
        this.queue.add(key);
      } else if (this.inFlight !== key) {
        this.again(key);
      }
    }
    this.saveSoon();
    this.schedule(0);
    return true;
  }

  /** Pending sends (queued, in flight or waiting for a token). */
  get pending(): number {
    return this.queue.size + this.deferred.size + (this.inFlight === undefined ? 0 : 1);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.saveTimer);
    await this.save();
  }

  /** A sent Event has more to tell: it goes again when the spam filter allows. */
  private again(key: string): void {
    if (this.bucket.take()) this.enqueue(key);
    else this.deferred.add(key);
  }

  private enqueue(key: string): void {
    this.deferred.delete(key);
    if (this.queue.size >= this.options.queueLimit) {
      const oldest = this.queue.values().next().value as string;
      this.queue.delete(oldest);
      this.discard(oldest);
      this.options.onDropped?.('queue_full');
    }
    this.queue.add(key);
  }

  /**
   * A queued send given up: what it carried is dropped for good, in memory and in the state
   * file (load() sends again only what is still owed, count > sentCount). As in client-go,
   * whose full queue drops an Event before its correlator counts it, a later occurrence counts
   * on from what the API server has.
   */
  private discard(key: string): void {
    const record = this.records.get(key);
    if (record === undefined) return;
    if (record.created) {
      record.count = record.sentCount;
      return;
    }
    // the cluster never saw it: as if never recorded
    this.records.delete(key);
    this.unreport(key);
  }

  /**
   * Incidents whose Event never reached the cluster are not reported: no "Resolved" for them,
   * neither one still to be recorded nor one already waiting behind it.
   */
  private unreport(key: string): void {
    for (const [incident, reported] of this.incidents)
      if (reported === key) this.incidents.delete(incident);
    const resolution = this.resolutions.get(key);
    this.resolutions.delete(key);
    const waiting = resolution === undefined ? undefined : this.records.get(resolution);
    if (resolution === undefined || waiting === undefined || waiting.created) return;
    if (this.inFlight === resolution) return;
    // one occurrence of it is this incident's; others (the same words) stay
    if (waiting.count - waiting.sentCount > 1) {
      waiting.count -= 1;
      return;
    }
    this.queue.delete(resolution);
    this.deferred.delete(resolution);
    this.records.delete(resolution);
  }

  private evictIfFull(): void {
    if (this.records.size < MAX_RECORDS) return;
    for (const key of this.records.keys()) {
      if (!this.queue.has(key) && !this.deferred.has(key) && this.inFlight !== key) {
        this.records.delete(key);
        return;
      }
    }
  }

  /** Run the drain after delayMs, never before the backoff allows. */
  private schedule(delayMs: number): void {
    if (this.stopped || this.draining) return;
    const wait = Math.max(delayMs, this.notBefore - this.monotonic());
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.drain(), Math.max(0, Math.ceil(wait)));
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    if (this.draining || this.stopped) return;
    this.draining = true;
    let next: number | undefined;
    try {
      // repeats that were waiting for the spam filter
      for (const key of [...this.deferred]) {
        if (!this.bucket.take()) break;
        this.enqueue(key);
      }
      if (this.deferred.size > 0) next = this.bucket.msUntilToken();
      while (this.queue.size > 0 && !this.isStopped()) {
        if (this.monotonic() < this.notBefore) break;
        const key = this.queue.values().next().value as string;
        this.queue.delete(key);
        const record = this.records.get(key);
        if (record === undefined) continue;
        this.inFlight = key;
        try {
          await this.send(record);
          this.retry.reset();
        } catch (error) {
          if (error instanceof KubeApiError && error.transient) {
            // the API is down or overloaded: back to the front, nothing goes out before the backoff
            this.requeueFront(key);
            this.notBefore =
              this.monotonic() + this.retry.next((error.retryAfterSeconds ?? 0) * 1000);
            break;
          }
          this.options.log.error(
            { event: 'kube.event.rejected', reason: record.reason, err: String(error) },
            'the API server refused an Event; dropping it',
          );
          this.options.onDropped?.('rejected');
          this.records.delete(key);
          if (!record.created) this.unreport(key);
        } finally {
          this.inFlight = undefined;
        }
        // more arrived while it was being sent
        if (this.records.get(key) === record && record.count > record.sentCount) this.again(key);
        this.saveSoon();
      }
    } finally {
      this.draining = false;
    }
    if (this.queue.size > 0) this.schedule(Math.max(0, this.notBefore - this.monotonic()));
    else if (next !== undefined) this.schedule(next);
  }

  private requeueFront(key: string): void {
    const rest = [...this.queue];
    this.queue.clear();
    this.queue.add(key);
    for (const k of rest) this.queue.add(k);
  }

  private isStopped(): boolean {
    return this.stopped;
  }

  private async send(record: EventRecord): Promise<void> {
    const count = record.count;
    const lastTimestamp = record.lastTimestamp;
    if (record.created) {
      try {
        await this.patch(record, count, lastTimestamp);
      } catch (error) {
        // gone (the API server's event TTL): create it again
        if (!(error instanceof KubeApiError && error.status === 404)) throw error;
        record.created = false;
        await this.create(record, count, lastTimestamp);
      }
    } else {
      try {
        await this.create(record, count, lastTimestamp);
      } catch (error) {
        // it exists (a state file was lost): it is ours by its name, patch it
        if (!(error instanceof KubeApiError && error.status === 409)) throw error;
        await this.patch(record, count, lastTimestamp);
      }
    }
    record.created = true;
    record.sentCount = count;
    this.resolutions.delete(record.key);
  }

  private async create(record: EventRecord, count: number, lastTimestamp: string): Promise<void> {
    await this.options.api.request({
      verb: 'create',
      path: `/api/v1/namespaces/${this.options.namespace}/events`,
      body: {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: record.name, namespace: this.options.namespace },
        involvedObject: {
          kind: 'Node',
          name: this.options.nodeName,
          uid: this.options.nodeUid() ?? this.options.nodeName,
        },
        reason: record.reason,
        message: record.message,
        type: record.type,
        count,
        firstTimestamp: record.firstTimestamp,
        lastTimestamp,
        source: { component: 'node-auditor', host: this.options.nodeName },
      },
    });
    this.options.onSent?.('create');
  }

  private async patch(record: EventRecord, count: number, lastTimestamp: string): Promise<void> {
    await this.options.api.request({
      verb: 'patch',
      path: `/api/v1/namespaces/${this.options.namespace}/events/${record.name}`,
      contentType: 'application/strategic-merge-patch+json',
      body: { count, lastTimestamp },
    });
    this.options.onSent?.('patch');
  }

  private saveSoon(): void {
    if (this.options.statePath === undefined || this.stopped) return;
    clearTimeout(this.saveTimer);
    this.saveTimer = setTimeout(() => void this.save(), 500);
    this.saveTimer.unref();
  }

  private async save(): Promise<void> {
    const file = this.options.statePath;
    if (file === undefined) return;
    const state: StateFile = {
      version: 1,
      events: [...this.records.values()],
      incidents: Object.fromEntries(this.incidents),
    };
    // one write at a time; each writes a temporary file and renames it (never a torn file)
    this.saving = this.saving.then(async () => {
      try {
        await fs.writeFileAtomic(file, JSON.stringify(state));
      } catch (error) {
        if (!this.warnedState)
          this.options.log.warn(
            { err: String(error), path: file },
            'cannot save the event state file; a restart may repeat Events',
          );
        this.warnedState = true;
      }
    });
    await this.saving;
  }
}

export function eventKey(reason: string, type: EventType, message: string): string {
  return `${reason}\u0000${type}\u0000${message}`;
}

function reasonOfKey(key: string): string {
  return key.slice(0, key.indexOf('\u0000'));
}

function clip(message: string): string {
  return message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message;
}

/** A state file as written by save(), or undefined for anything else (a torn or foreign file). */
function parseState(doc: unknown): StateFile | undefined {
  if (typeof doc !== 'object' || doc === null) return undefined;
  const { version, events, incidents } = doc as Record<string, unknown>;
  if (
    version !== 1 ||
    !Array.isArray(events) ||
    typeof incidents !== 'object' ||
    incidents === null
  )
    return undefined;
  const valid = events.every((e: unknown) => {
    if (typeof e !== 'object' || e === null) return false;
    const r = e as Record<string, unknown>;
    return (
      ['key', 'name', 'reason', 'message', 'firstTimestamp', 'lastTimestamp'].every(
        (f) => typeof r[f] === 'string',
      ) &&
      (r.type === 'Normal' || r.type === 'Warning') &&
      Number.isInteger(r.count) &&
      Number.isInteger(r.sentCount) &&
      typeof r.created === 'boolean'
    );
  });
  if (!valid || !Object.values(incidents).every((v) => typeof v === 'string')) return undefined;
  return doc as StateFile;
}

/** <node>.<reason in kebab case>.<hash of the key>: readable in `kubectl get events`, unique per key. */
function eventName(node: string, reason: string, key: string): string {
  const kebab = reason
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-');
  const suffix = `.${kebab}.${fnv1a(key)}`;
  return node.slice(0, 253 - suffix.length) + suffix;
}

/** 32-bit FNV-1a as 8 hex digits: a name suffix, not a secret (no crypto module needed). */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, '0');
}
