// Follow the kernel's ring buffer through /dev/kmsg: one record per read(). Opened non-blocking:
// a blocking read would hold one of libuv's four threadpool threads until the kernel next logs
// (and Node cannot wait for a character device's readiness), so it is read until EAGAIN, then
// again after a short pause. When the kernel overwrote records before they were read, read()
// fails with EPIPE once and continues at the oldest record left: the gap in sequence numbers is
// counted, nothing stops. The ring holds the boot's recent history: records older than the
// lookback (or already handled before a restart, by sequence number in the same boot) are
// skipped, the rest followed.
import { constants } from 'node:fs';
import * as fs from '../host/asyncFs.ts';
import type { Logger } from 'pino';
import { describeError, errnoCode } from '../errors.ts';
import type { HostRoot } from '../host/hostRoot.ts';
import { parseKmsgRecord } from '../parsers/kmsgRecord.ts';
import { parseBootTimeMs } from '../parsers/procStat.ts';
import type { LogRecord } from './logRecord.ts';
import type { RecordConsumer } from './journaldSource.ts';

/** Records are at most about 8 KiB (LOG_LINE_MAX plus the dictionary). */
const RECORD_BYTES = 16 * 1024;
/** Records read before giving the event loop back. */
const BATCH = 500;

export interface KmsgCheckpoint {
  bootId: string;
  /** Sequence number of the last record handed over. */
  sequence: number;
}

export interface KmsgSourceOptions {
  host: HostRoot;
  /** Host path of the device (default /dev/kmsg). */
  path: string;
  consumer: RecordConsumer & { lost(records: number): void };
  log: Logger;
  lookbackMs: number;
  saved?: KmsgCheckpoint;
  /** Pause after the ring buffer was read empty. */
  pollMs?: number;
}

export interface KmsgHealth {
  state: 'following' | 'waiting' | 'error';
  detail?: string;
}

export class KmsgSource {
  private readonly options: Required<Omit<KmsgSourceOptions, 'saved'>> & { saved?: KmsgCheckpoint };
  private handle: fs.FileHandle | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private reading: Promise<void> | undefined;
  private readonly buffer = Buffer.allocUnsafe(RECORD_BYTES);
  private bootId = '';
  /** Until the first time the ring is read empty, records are from before start-up. */
  private initialDrain = true;
  private startedAt = Date.now();
  private lastSequence = -1;
  private status: KmsgHealth = { state: 'waiting', detail: 'not started' };
  private lastError: string | undefined;

  constructor(options: KmsgSourceOptions) {
    this.options = { pollMs: 200, ...options };
  }

  async start(): Promise<void> {
    this.startedAt = Date.now();
    const { host } = this.options;
    this.bootId = (
      (await host.readText('/proc/sys/kernel/random/boot_id', { resolveLinks: false })) ?? ''
    ).trim();
    const saved = this.options.saved;
    if (saved !== undefined && saved.bootId === this.bootId) this.lastSequence = saved.sequence;
    await this.open();
    this.schedule(0);
  }

  health(): KmsgHealth {
    return { ...this.status };
  }

  checkpoint(): KmsgCheckpoint | undefined {
    return this.lastSequence < 0 ? undefined : { bootId: this.bootId, sequence: this.lastSequence };
  }

  /** Read what the ring holds now (the poll does this; tests call it). */
  async readNow(): Promise<void> {
    if (this.reading !== undefined) {
      await this.reading;
      return;
    }
    this.reading = this.drain().finally(() => {
      this.reading = undefined;
    });
    await this.reading;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.reading;
    await this.handle?.close().catch(() => undefined);
    this.handle = undefined;
  }

  private async open(): Promise<void> {
    const local = this.options.host.local(this.options.path);
    try {
      this.handle = await fs.open(local, constants.O_RDONLY | constants.O_NONBLOCK);
      this.status = { state: 'following' };
      if (this.lastError !== undefined) {
        this.options.log.info(
          { event: 'logs.kmsg.recovered' },
          `reading ${this.options.path} again`,
        );
      }
      this.lastError = undefined;
    } catch (error) {
      const code = errnoCode(error);
      const detail =
        code === 'ENOENT'
          ? `${this.options.path} does not exist (mount it into the container)`
          : code === 'EACCES' || code === 'EPERM'
            ? `cannot read ${this.options.path}: permission denied (it needs root or CAP_SYSLOG when kernel.dmesg_restrict is 1)`
            : `cannot open ${this.options.path}: ${describeError(error)}`;
      this.status = { state: code === 'ENOENT' ? 'waiting' : 'error', detail };
      if (detail !== this.lastError) {
        // Not mounted is a state (node_auditor_log_source_state), not an error worth a warning.
        const level = code === 'ENOENT' ? 'info' : 'warn';
        this.options.log[level](
          { event: 'logs.kmsg.error', detail },
          `kernel log source: ${detail}`,
        );
      }
      this.lastError = detail;
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.readNow().then(() => {
        this.schedule(this.options.pollMs);
      });
    }, ms);
    this.timer.unref();
  }

  private async drain(): Promise<void> {
    if (this.handle === undefined) await this.open();
    const handle = this.handle;
    if (handle === undefined) return;
    for (let n = 0; !this.stopped; n++) {
      if (n > 0 && n % BATCH === 0) await new Promise((resolve) => setImmediate(resolve));
      let bytesRead: number;
      try {
        ({ bytesRead } = await handle.read(this.buffer, 0, this.buffer.length, null));
      } catch (error) {
        const code = errnoCode(error);
        if (code === 'EAGAIN') {
          this.initialDrain = false; // read it all
          return;
        }
        if (code === 'EPIPE') continue; // overwritten: the next read starts at the oldest left
        this.status = {
          state: 'error',
          detail: `reading ${this.options.path}: ${describeError(error)}`,
        };
        await handle.close().catch(() => undefined);
        this.handle = undefined;
        return;
      }
      if (bytesRead === 0) return;
      this.handleRecord(this.buffer.toString('utf8', 0, bytesRead));
    }
  }

  private handleRecord(text: string): void {
    const record = parseKmsgRecord(text);
    if (record === undefined) return;
    if (this.lastSequence >= 0) {
      if (record.sequence <= this.lastSequence) return; // handled before a restart
      const gap = record.sequence - this.lastSequence - 1;
      if (gap > 0) this.options.consumer.lost(gap);
    }
    this.lastSequence = record.sequence;
    // The kernel stamps records with CLOCK_MONOTONIC, which a container shares with its host:
    // the record's age is exact, where boot time plus the stamp drifts (a VM paused, suspend).
    const ageMs = Number(process.hrtime.bigint() / 1000n - BigInt(record.monotonicMicros)) / 1000;
    const time = Math.round(Date.now() - Math.max(0, ageMs));
    if (this.initialDrain && time < this.startedAt - this.options.lookbackMs) return;
    const seconds = (record.monotonicMicros / 1e6).toFixed(6);
    const out: LogRecord = {
      source: 'kmsg',
      kind: 'kmsg',
      // Userspace can write to /dev/kmsg too; as for node-problem-detector, it all counts as
      // the kernel's log.
      identifier: 'kernel',
      message: record.message,
      line: `${new Date(time).toISOString()} kernel: [${seconds.padStart(12)}] ${record.message}`,
      time,
      timeKnown: true,
    };
    this.options.consumer.record(out, this.initialDrain);
  }
}

/** Boot time from /proc/stat's btime (seconds since the epoch), in ms; 0 when unknown. */
export async function readBootTime(host: HostRoot): Promise<number> {
  try {
    const stat = await host.readText('/proc/stat', { resolveLinks: false });
    return parseBootTimeMs(stat ?? '') ?? 0;
  } catch {
    return 0;
  }
}
