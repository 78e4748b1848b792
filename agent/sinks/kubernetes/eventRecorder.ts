// Kubernetes Events on the agent's own Node, recorded like the kubelet's recorder:
// - the same (reason, type, message) is the same Event: its count and lastTimestamp go up
//   (a deterministic name per key, so the Event can be patched without reading it: a node
//   identity may not GET events);
// - a token bucket per object (burst 25, one more every 5 min, as client-go) limits the calls;
//   repeats while no token is free are coalesced into the next call, so a storm of 10,000
//   identical lines is a couple of calls and an exact count, not 10,000 calls or a lost count;
// - while the API is down, pending sends wait in a bounded FIFO queue (oldest dropped, counted)
//   and go out in order when it returns;
// - what was sent, and which incidents were reported, is kept in a state file, so a restart
//   neither replays an Event nor counts an incident twice.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { Backoff } from '../../kubernetes/backoff.ts';
import { KubeApiError, kubeTime } from '../../kubernetes/kubeApi.ts';
import type { KubeApi } from '../../kubernetes/kubeApi.ts';
import { TokenBucket } from './tokenBucket.ts';

export type EventType = 'Normal' | 'Warning';

export interface EventRecorderOptions {
  api: KubeApi;
  nodeName: string;
  /** The Node's uid once known (the Node watch); Events may go out without it. */
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
  onDropped?: (reason: 'queue_full' | 'rejected') => void;
  retry?: Backoff;
  now?: () => Date;
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
const MAX_RECORDS = 4096;
const MAX_MESSAGE = 1024;
/** Events older than this are gone from the API server (--event-ttl is 1 h by default). */
const STATE_TTL_MS = 24 * 3600_000;

export class EventRecorder {
  private readonly options: EventRecorderOptions;
  private readonly records = new Map<string, EventRecord>();
  private readonly incidents = new Map<string, string>();
  private readonly queue: string[] = [];
  private readonly queued = new Set<string>();
  private readonly bucket: TokenBucket;
  private readonly retry: Backoff;
  private readonly now: () => Date;
  private draining = false;
  private timer: NodeJS.Timeout | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private saving: Promise<void> = Promise.resolve();
  private stopped = false;
  private warnedState = false;

  constructor(options: EventRecorderOptions) {
    this.options = options;
    this.now = options.now ?? (() => new Date());
    this.bucket = new TokenBucket(options.burst, options.refillMs, () => this.now().getTime());
    this.retry = options.retry ?? new Backoff({ baseMs: 1000, maxMs: 30_000 });
  }

  /** Restore what an earlier run sent; pending sends go out again. */
  async load(): Promise<void> {
    if (this.options.statePath === undefined) return;
    let state: StateFile;
    try {
      state = JSON.parse(await fs.readFile(this.options.statePath, 'utf8')) as StateFile;
    } catch (error) {
      if ((error as { code?: string }).code !== 'ENOENT') {
        this.options.log.warn(
          { err: String(error), path: this.options.statePath },
          'event state file unreadable; starting afresh',
        );
      }
      return;
    }
    const oldest = this.now().getTime() - STATE_TTL_MS;
    for (const record of state.events) {
      if (Date.parse(record.lastTimestamp) < oldest) continue;
      this.records.set(record.key, record);
      if (record.count > record.sentCount) this.enqueue(record.key);
    }
    for (const [incident, key] of Object.entries(state.incidents))
      this.incidents.set(incident, key);
    this.kick(0);
  }

  /**
   * Report an incident (a finding, a log incident): an Event, unless this very incident was
   * already reported with the same reason and message (before a restart, say).
   */
  report(incident: string, reason: string, type: EventType, message: string): void {
    const key = eventKey(reason, type, message);
    if (this.incidents.get(incident) === key) return;
    this.incidents.set(incident, key);
    this.record(reason, type, message);
  }

  /** An incident is over: a Normal Event says so, if it had been reported. */
  resolve(incident: string, reason: string, message: string): void {
    if (!this.incidents.delete(incident)) return;
    this.record(reason, 'Normal', message);
  }

  /** Incidents reported so far whose key starts with prefix (to resolve those gone while down). */
  reportedIncidents(prefix: string): string[] {
    return [...this.incidents.keys()].filter((k) => k.startsWith(prefix));
  }

  /** One occurrence. */
  record(reason: string, type: EventType, message: string): void {
    const text = message.length > MAX_MESSAGE ? `${message.slice(0, MAX_MESSAGE - 3)}...` : message;
    const key = eventKey(reason, type, text);
    const at = kubeTime(this.now());
    let record = this.records.get(key);
    if (record === undefined) {
      this.evictIfFull();
      record = {
        key,
        name: eventName(this.options.nodeName, reason, key),
        reason,
        type,
        message: text,
        count: 0,
        sentCount: 0,
        created: false,
        firstTimestamp: at,
        lastTimestamp: at,
      };
    } else {
      this.records.delete(key); // re-insert: most recently used last
    }
    record.count += 1;
    record.lastTimestamp = at;
    this.records.set(key, record);
    this.enqueue(key);
    this.kick(0);
  }

  /** Pending sends (for tests and the status of an outage). */
  get pending(): number {
    return this.queue.length;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.saveTimer);
    await this.save();
  }

  private enqueue(key: string): void {
    if (this.queued.has(key)) return; // coalesced: it goes out with its latest count
    if (this.queue.length >= this.options.queueLimit) {
      const dropped = this.queue.shift() as string;
      this.queued.delete(dropped);
      this.options.onDropped?.('queue_full');
    }
    this.queue.push(key);
    this.queued.add(key);
    this.saveSoon();
  }

  private evictIfFull(): void {
    if (this.records.size < MAX_RECORDS) return;
    for (const key of this.records.keys()) {
      if (!this.queued.has(key)) {
        this.records.delete(key);
        return;
      }
    }
  }

  private kick(delayMs: number): void {
    if (this.stopped || this.draining) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.drain(), delayMs);
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    if (this.draining || this.stopped) return;
    this.draining = true;
    let next: number | undefined;
    try {
      // stop() may be called while a send is awaited
      while (this.queue.length > 0 && !this.isStopped()) {
        if (!this.bucket.take()) {
          next = this.bucket.msUntilToken();
          break;
        }
        const key = this.queue[0] as string;
        const record = this.records.get(key);
        if (record === undefined) {
          this.dequeue();
          continue;
        }
        try {
          await this.send(record);
          this.retry.reset();
        } catch (error) {
          if (error instanceof KubeApiError && error.transient) {
            // the API is down or overloaded: keep the queue, try again later
            this.bucket.refund();
            next = this.retry.next((error.retryAfterSeconds ?? 0) * 1000);
            break;
          }
          this.options.log.error(
            { event: 'kube.event.rejected', reason: record.reason, err: String(error) },
            'the API server refused an Event; dropping it',
          );
          this.options.onDropped?.('rejected');
          this.records.delete(key);
        }
        this.dequeue();
        // more arrived while sending (and it was not dropped): it goes again
        if (this.records.get(key) === record && record.count > record.sentCount) this.enqueue(key);
        this.saveSoon();
      }
    } finally {
      this.draining = false;
    }
    if (next !== undefined) this.kick(next);
  }

  private isStopped(): boolean {
    return this.stopped;
  }

  private dequeue(): void {
    const key = this.queue.shift();
    if (key !== undefined) this.queued.delete(key);
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
  }

  private async create(record: EventRecord, count: number, lastTimestamp: string): Promise<void> {
    const uid = this.options.nodeUid();
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
          ...(uid === undefined ? {} : { uid }),
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
        await fs.mkdir(path.dirname(file), { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        await fs.writeFile(tmp, JSON.stringify(state));
        await fs.rename(tmp, file);
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
