// Follow one log file (/var/log/syslog, /var/log/messages, kern.log, any configured path) through
// everything logrotate and people do to it:
// - appends: an inotify watch on the directory wakes the reader (no fixed poll); a slow poll is
//   a backstop, and the only mechanism when no watch can be made (inotify exhausted);
// - rotation by rename: the old file, still open, is read to its end (the writer keeps writing
//   to it until it reopens) before the new one, and closed once it has been quiet for a while;
// - copytruncate: the lines written after our last read and before the truncation are read from
//   the rotated copy (found by its first bytes), so none is skipped;
// - truncation, deletion, creation after start;
// - restarts: a checkpoint (device, inode, position, first bytes) resumes exactly where the last
//   processed line ended, in the rotated file if it was rotated meanwhile.
// Lines longer than maxLineBytes are cut (and counted); bytes are bytes: invalid UTF-8 and binary
// garbage pass through to the matcher, which decodes only candidate lines.
import * as fs from '../host/asyncFs.ts';
import type { Stats } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';
import { errnoCode, describeError } from '../errors.ts';
import type { HostRoot } from '../host/hostRoot.ts';
import { watchDirectory } from './directoryWatcher.ts';
import type { DirectoryWatch } from './directoryWatcher.ts';

const NEWLINE = 0x0a;
const HEAD_BYTES = 64;
const EMPTY: Buffer = Buffer.alloc(0);
const COMPRESSED = /\.(gz|xz|bz2|zst|lz4|z)$/i;

/** Where a follower was: enough to resume without replaying or skipping a line. */
export interface FileCheckpoint {
  dev: number;
  ino: number;
  /** Byte offset just after the last line handed over. */
  position: number;
  /** The file's first bytes (base64): tells a reused inode or a rotated copy apart. */
  head: string;
}

export interface FileSourceState {
  current?: FileCheckpoint;
  /** Rotated or deleted files not yet read to their end. */
  draining: FileCheckpoint[];
}

export type FileEvent = 'rotated' | 'truncated' | 'deleted' | 'created' | 'recovered-from-copy';

export interface FileConsumer {
  /**
   * Whole lines: bytes[start, end) ends just after a newline. catchUp: lines from before
   * start-up. The buffer is reused after the call returns: use it synchronously.
   */
  lines(bytes: Buffer, start: number, end: number, catchUp: boolean): void;
  /** A line longer than maxLineBytes was cut to that length. */
  lineCut(): void;
  event(event: FileEvent, detail: string): void;
}

export interface FileSourceOptions {
  host: HostRoot;
  /** The path as the host sees it (also the source's name in metrics). */
  hostPath: string;
  consumer: FileConsumer;
  log: Logger;
  maxLineBytes: number;
  /** Where to start when there is no checkpoint: at the end, or this many bytes before it. */
  lookbackBytes: number;
  saved?: FileSourceState;
  chunkBytes?: number;
  /** A rotated or deleted file is closed once it has not grown for this long. */
  rotateWaitMs?: number;
  /** Backstop poll while the directory watch works. */
  pollMs?: number;
  /** Poll when no watch can be made. */
  fallbackPollMs?: number;
  /**
   * false: read what is there once (`check`), with no directory watch and no poll: on a node out
   * of inotify watches that would only warn about falling back to polling.
   */
  follow?: boolean;
}

export interface FileSourceHealth {
  state: 'following' | 'waiting' | 'error';
  mode: 'watch' | 'poll';
  detail?: string;
  /** Bytes in the file not read yet (at the last look). */
  unreadBytes: number;
}

interface OpenFile {
  handle: fs.FileHandle;
  name: string;
  dev: number;
  ino: number;
  position: number;
  carry: Buffer;
  /** Discarding the rest of a line that was cut, up to its newline. */
  skipping: boolean;
  head: Buffer;
  lastGrowth: number;
  /** Lines ending before this offset were written before the agent started (lookback). */
  catchUpUntil: number;
  size: number;
}

export class FileSource {
  readonly hostPath: string;
  private readonly options: Required<Omit<FileSourceOptions, 'saved'>> & {
    saved?: FileSourceState;
  };
  private localPath = '';
  private current: OpenFile | undefined;
  private draining: OpenFile[] = [];
  private watch: DirectoryWatch | undefined;
  private poll: NodeJS.Timeout | undefined;
  private scheduled = false;
  private again = false;
  private running: Promise<void> | undefined;
  private stopped = false;
  /** The checkpoint at stop(). */
  private final: FileSourceState | undefined;
  private firstOpen = true;
  /** The read buffer, allocated at the first read (a file that never appears costs nothing). */
  private buffer: Buffer = EMPTY;
  private status: FileSourceHealth = { state: 'waiting', mode: 'watch', unreadBytes: 0 };
  private lastError: string | undefined;
  /** The directory did not exist when the watch was made: make it once it does. */
  private watchLater = false;

  constructor(options: FileSourceOptions) {
    this.hostPath = options.hostPath;
    this.options = {
      // each chunk's lines are matched in one synchronous stretch: 64 KiB (about 600 lines) keeps
      // that under ~10 ms on the interpreter during a 50,000 lines/s storm; 256 KiB blocked the
      // event loop for 30-55 ms (bench/logStorm.bench.ts)
      chunkBytes: 64 * 1024,
      rotateWaitMs: 5_000,
      pollMs: 2_000,
      fallbackPollMs: 250,
      follow: true,
      ...options,
    };
  }

  async start(): Promise<void> {
    this.localPath = await this.options.host.localPath(this.options.hostPath);
    // A file that appears only after start-up is new: read it from its beginning.
    if ((await statOrUndefined(this.localPath)) === undefined && this.options.saved === undefined) {
      this.firstOpen = false;
    }
    if (this.options.follow) this.watchOrPoll();
    await this.cycleNow();
  }

  health(): FileSourceHealth {
    return { ...this.status };
  }

  /** What to save: positions of the lines handed over so far. */
  checkpoint(): FileSourceState {
    if (this.final !== undefined) return this.final;
    const state: FileSourceState = { draining: this.draining.map(checkpointOf) };
    if (this.current !== undefined) state.current = checkpointOf(this.current);
    return state;
  }

  /** Read now (tests and the pipeline's periodic pass use it; events call it too). */
  wake(): void {
    if (this.stopped) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.cycleNow();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.watch?.close();
    clearInterval(this.poll);
    await this.running;
    // Saved after stop (the agent's shutdown): the positions outlive the open files.
    this.final = this.checkpoint();
    for (const file of [this.current, ...this.draining])
      await file?.handle.close().catch(() => undefined);
    this.current = undefined;
    this.draining = [];
  }

  private watchOrPoll(): void {
    const dir = path.dirname(this.localPath);
    const base = path.basename(this.localPath);
    try {
      this.watch = watchDirectory(
        dir,
        (name) => {
          // Any change in the directory may be ours: a write, a rename, a new file. Other
          // files' writes cost one cheap stat.
          if (name === null || name === base || name.startsWith(base)) this.wake();
        },
        (error) => {
          this.watch = undefined;
          this.usePolling(`the directory watch failed: ${describeError(error)}`);
        },
      );
      this.status.mode = 'watch';
      this.poll = setInterval(() => {
        this.wake();
      }, this.options.pollMs);
      this.poll.unref();
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') {
        // No directory (yet): nothing to follow; look for it on the slow poll, quietly.
        this.poll = setInterval(() => {
          this.wake();
        }, this.options.pollMs);
        this.poll.unref();
        this.watchLater = true;
        return;
      }
      this.usePolling(`cannot watch ${path.dirname(this.hostPath)}: ${describeError(error)}`);
    }
  }

  private usePolling(why: string): void {
    if (this.stopped) return;
    clearInterval(this.poll);
    this.status.mode = 'poll';
    this.options.log.warn(
      { event: 'logs.file.polling', source: this.hostPath, reason: why },
      `following ${this.hostPath} by polling every ${this.options.fallbackPollMs}ms: ${why}`,
    );
    this.poll = setInterval(() => {
      this.wake();
    }, this.options.fallbackPollMs);
    this.poll.unref();
  }

  private async cycleNow(): Promise<void> {
    if (this.running !== undefined) {
      this.again = true;
      await this.running;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.step();
          if (this.lastError !== undefined) {
            this.options.log.info(
              { event: 'logs.file.recovered', source: this.hostPath },
              `reading ${this.hostPath} again`,
            );
            this.lastError = undefined;
          }
        } catch (error) {
          const message = describeError(error);
          this.status = { ...this.status, state: 'error', detail: message };
          if (message !== this.lastError) {
            this.options.log.warn(
              { event: 'logs.file.error', source: this.hostPath, error: message },
              `cannot read ${this.hostPath}: ${message}`,
            );
          }
          this.lastError = message;
        }
      } while (this.repeatCycle());
    })();
    try {
      await this.running;
    } finally {
      this.running = undefined;
    }
  }

  /** Events arrived while a cycle ran: run it again. (A method: the flag changes across awaits.) */
  private repeatCycle(): boolean {
    return this.again && !this.stopped;
  }

  private async step(): Promise<void> {
    if (this.watchLater && (await statOrUndefined(path.dirname(this.localPath))) !== undefined) {
      this.watchLater = false;
      clearInterval(this.poll);
      this.watchOrPoll();
    }
    const atPath = await statOrUndefined(this.localPath);
    let current = this.current;
    if (current !== undefined) {
      if (atPath !== undefined && (atPath.ino !== current.ino || atPath.dev !== current.dev)) {
        // Renamed away (or deleted and created again): finish the old one first.
        this.draining.push(current);
        this.current = current = undefined;
        this.options.consumer.event('rotated', `${this.hostPath} was replaced by a new file`);
      } else {
        // Shorter than what was read, or other first bytes (truncated, then written past our
        // position before we looked): truncated either way.
        const size = (await current.handle.stat()).size;
        const head = await readHead(current.handle);
        if (size < current.position || !startsWith(head, current.head)) {
          await this.truncated(current, size);
        }
      }
    }
    // Opened before the older files are drained (opening may add files rotated while the agent
    // was stopped), read after them: older lines first.
    if (current === undefined && atPath?.isFile() === true) {
      current = this.current = await this.openAtPath(atPath);
      // Following from now on: said before its lines are handed over, not after the pass.
      this.publishStatus();
    }
    for (const old of [...this.draining]) {
      if (this.stopped) return;
      const grew = await this.readToEnd(old, true);
      if (!grew && performance.now() - old.lastGrowth > this.options.rotateWaitMs) {
        this.finish(old);
        this.draining = this.draining.filter((f) => f !== old);
        await old.handle.close().catch(() => undefined);
      }
    }
    if (current !== undefined && !this.stopped) {
      await this.readToEnd(current, false);
      if (atPath === undefined) {
        // Deleted: what is left is read like a rotated file; a new file may appear later.
        this.draining.push(current);
        this.current = undefined;
        this.options.consumer.event('deleted', `${this.hostPath} was deleted`);
      }
    }
    this.publishStatus();
  }

  private publishStatus(): void {
    const followed = this.current;
    this.status = {
      state: followed === undefined ? 'waiting' : 'following',
      mode: this.status.mode,
      unreadBytes: followed === undefined ? 0 : Math.max(0, followed.size - followed.position),
      ...(followed === undefined ? { detail: `${this.hostPath} does not exist (yet)` } : {}),
    };
  }

  /** The file at the path, positioned from the checkpoint, the lookback, or (after start) 0. */
  private async openAtPath(stat: Stats): Promise<OpenFile | undefined> {
    const file = await this.openFile(this.localPath, stat);
    if (file === undefined) return undefined;
    if (!this.firstOpen) {
      this.options.consumer.event('created', `${this.hostPath} was created`);
      return file;
    }
    this.firstOpen = false;
    const saved = this.options.saved;
    if (saved === undefined) {
      // No checkpoint: the recent past only (the lookback), then what comes.
      const start = Math.max(0, stat.size - this.options.lookbackBytes);
      file.position = start;
      // Unless it starts right after a newline, the first line read would be partial: skip it.
      file.skipping = start > 0 && !(await endsLine(file.handle, start));
      file.catchUpUntil = stat.size;
      return file;
    }
    // Files rotated while the agent was away: their rest first.
    for (const checkpoint of [
      ...saved.draining,
      ...(saved.current === undefined ? [] : [saved.current]),
    ]) {
      if (checkpoint.ino === file.ino && checkpoint.dev === file.dev) continue;
      const rotated = await this.findSibling(
        (s) => s.ino === checkpoint.ino && s.dev === checkpoint.dev,
      );
      if (rotated === undefined) continue;
      const old = await this.openFile(rotated.local, rotated.stat);
      if (old === undefined) continue;
      if (startsWith(old.head, Buffer.from(checkpoint.head, 'base64'))) {
        old.position = Math.min(checkpoint.position, rotated.stat.size);
        this.draining.push(old);
      } else {
        await old.handle.close();
      }
    }
    const mine = saved.current;
    if (mine !== undefined && mine.ino === file.ino && mine.dev === file.dev) {
      const savedHead = Buffer.from(mine.head, 'base64');
      file.position = mine.position;
      if (stat.size < mine.position || !startsWith(file.head, savedHead)) {
        // Truncated while the agent was away (or the inode now belongs to another file).
        file.head = savedHead;
        await this.truncated(file, stat.size);
      }
    }
    return file;
  }

  private async openFile(local: string, stat: Stats): Promise<OpenFile | undefined> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(local, 'r');
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return undefined;
      throw error;
    }
    const head = await readHead(handle);
    return {
      handle,
      name: local,
      dev: stat.dev,
      ino: stat.ino,
      position: 0,
      carry: EMPTY,
      skipping: false,
      head,
      lastGrowth: performance.now(),
      catchUpUntil: 0,
      size: stat.size,
    };
  }

  /**
   * The file is shorter than what was read: truncated. With copytruncate the rotated copy holds
   * what was written between our last read and the truncation: read it from there.
   */
  private async truncated(file: OpenFile, size: number): Promise<void> {
    const copy = await this.findSibling(
      (s, head) => s.size >= file.position && s.ino !== file.ino && startsWith(head, file.head),
    );
    if (copy !== undefined) {
      const from = await this.openFile(copy.local, copy.stat);
      if (from !== undefined) {
        from.position = file.position;
        from.carry = file.carry;
        from.skipping = file.skipping;
        await this.readToEnd(from, true);
        this.finish(from);
        await from.handle.close();
        this.options.consumer.event(
          'recovered-from-copy',
          `${this.hostPath} was truncated; read the lines written before that from ${path.basename(copy.local)}`,
        );
      }
    } else {
      this.options.consumer.event(
        'truncated',
        `${this.hostPath} was truncated and no rotated copy holds what was written since the last read`,
      );
    }
    file.position = 0;
    file.carry = EMPTY;
    file.skipping = false;
    file.size = size;
    file.head = await readHead(file.handle);
  }

  /** A file beside ours (syslog.1, syslog-20261122, not compressed ones) that passes `test`. */
  private async findSibling(
    test: (stat: Stats, head: Buffer) => boolean,
  ): Promise<{ local: string; stat: Stats } | undefined> {
    const dir = path.dirname(this.localPath);
    const base = path.basename(this.localPath);
    let names: string[];
    try {
      names = await fs.readdir(dir);
    } catch {
      return undefined;
    }
    for (const name of names.filter(
      (n) => n !== base && n.startsWith(base) && !COMPRESSED.test(n),
    )) {
      const local = path.join(dir, name);
      const stat = await statOrUndefined(local);
      if (stat?.isFile() !== true) continue;
      let head: Buffer;
      try {
        const handle = await fs.open(local, 'r');
        try {
          head = await readHead(handle);
        } finally {
          await handle.close();
        }
      } catch {
        continue;
      }
      if (test(stat, head)) return { local, stat };
    }
    return undefined;
  }

  /** Read to the current end; true when anything was read. */
  private async readToEnd(file: OpenFile, draining: boolean): Promise<boolean> {
    let grew = false;
    if (this.buffer.length === 0) this.buffer = Buffer.allocUnsafe(this.options.chunkBytes);
    for (;;) {
      if (this.stopped) return grew;
      const { bytesRead } = await file.handle.read(
        this.buffer,
        0,
        this.buffer.length,
        file.position,
      );
      if (bytesRead === 0) break;
      const chunkStart = file.position;
      file.position += bytesRead;
      file.size = Math.max(file.size, file.position);
      file.lastGrowth = performance.now();
      grew = true;
      this.consume(file, this.buffer.subarray(0, bytesRead), chunkStart);
      if (file.head.length < HEAD_BYTES) file.head = await readHead(file.handle);
      // One chunk at a time: let everything else in the agent run in between.
      if (bytesRead === this.buffer.length) await new Promise((resolve) => setImmediate(resolve));
    }
    if (!draining) {
      const size = (await file.handle.stat()).size;
      file.size = size;
    }
    return grew;
  }

  /** Hand over the whole lines of a chunk; keep the partial last line; cut over-long lines. */
  private consume(file: OpenFile, chunk: Buffer, chunkStart: number): void {
    let data = chunk;
    if (file.skipping) {
      const nl = data.indexOf(NEWLINE);
      if (nl < 0) return;
      data = data.subarray(nl + 1);
      file.skipping = false;
    }
    if (file.carry.length > 0) data = Buffer.concat([file.carry, data]);
    file.carry = EMPTY;
    const last = data.lastIndexOf(NEWLINE);
    const catchUp = chunkStart + chunk.length <= file.catchUpUntil;
    if (last >= 0) this.emit(data, last + 1, catchUp);
    const rest = data.subarray(last + 1);
    if (rest.length > this.options.maxLineBytes) {
      this.emitCut(rest, catchUp);
      file.skipping = true;
    } else if (rest.length > 0) {
      file.carry = Buffer.from(rest); // the chunk buffer is reused
    }
  }

  /** Lines [0, end) of data, cutting any longer than maxLineBytes. */
  private emit(data: Buffer, end: number, catchUp: boolean): void {
    const max = this.options.maxLineBytes;
    if (end <= max + 1) {
      this.options.consumer.lines(data, 0, end, catchUp);
      return;
    }
    let segment = 0;
    let lineStart = 0;
    while (lineStart < end) {
      const nl = data.indexOf(NEWLINE, lineStart);
      if (nl - lineStart > max) {
        if (lineStart > segment) this.options.consumer.lines(data, segment, lineStart, catchUp);
        this.emitCut(data.subarray(lineStart, nl), catchUp);
        segment = nl + 1;
      }
      lineStart = nl + 1;
    }
    if (segment < end) this.options.consumer.lines(data, segment, end, catchUp);
  }

  private emitCut(line: Buffer, catchUp: boolean): void {
    const max = this.options.maxLineBytes;
    const cut = Buffer.allocUnsafe(max + 1);
    line.copy(cut, 0, 0, max);
    cut[max] = NEWLINE;
    this.options.consumer.lines(cut, 0, max + 1, catchUp);
    this.options.consumer.lineCut();
  }

  /** A file read for the last time: a final line without a newline is still a line. */
  private finish(file: OpenFile): void {
    if (file.carry.length > 0 && !file.skipping) {
      const line = Buffer.concat([file.carry, Buffer.from('\n')]);
      this.options.consumer.lines(line, 0, line.length, false);
    }
    file.carry = EMPTY;
  }
}

/** Whether `bytes` begins with `prefix` (as far as `bytes` goes: a short file may grow). */
function startsWith(bytes: Buffer, prefix: Buffer): boolean {
  const n = Math.min(bytes.length, prefix.length);
  return bytes.subarray(0, n).equals(prefix.subarray(0, n));
}

function checkpointOf(file: OpenFile): FileCheckpoint {
  return {
    dev: file.dev,
    ino: file.ino,
    position: file.position - file.carry.length,
    head: file.head.toString('base64'),
  };
}

async function endsLine(handle: fs.FileHandle, offset: number): Promise<boolean> {
  const byte = Buffer.alloc(1);
  const { bytesRead } = await handle.read(byte, 0, 1, offset - 1);
  return bytesRead === 1 && byte[0] === NEWLINE;
}

async function readHead(handle: fs.FileHandle): Promise<Buffer> {
  const head = Buffer.alloc(HEAD_BYTES);
  const { bytesRead } = await handle.read(head, 0, HEAD_BYTES, 0);
  return head.subarray(0, bytesRead);
}

async function statOrUndefined(local: string): Promise<Stats | undefined> {
  try {
    return await fs.stat(local);
  } catch (error) {
    const code = errnoCode(error);
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}
