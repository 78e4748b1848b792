// Synchronous reads of /proc files. /proc is generated in memory by the kernel: a read never
// waits on a disk, so the scan reads synchronously in short slices (processScanner.ts yields
// between them) instead of paying a threadpool round trip per file, which for 5,000 processes
// costs more CPU than the reads themselves. Files that can block in the kernel (cmdline and
// environ take the target's mmap lock) are not read here. A read that fails returns undefined:
// the process (or its fd) went away between listing and reading, which is normal.
import fs from 'node:fs';
import { errnoCode } from '../errors.ts';

/** The read was refused (not root): the scan counts these, it does not skip them silently. */
export function isDenied(error: unknown): boolean {
  const code = errnoCode(error);
  return code === 'EACCES' || code === 'EPERM';
}

const INOTIFY_WD = Buffer.from('inotify wd:');

export class ProcReader {
  /** For streaming fdinfo; allocated at the first inotify fd. */
  private buffer = Buffer.alloc(0);

  private ensure(size: number): Buffer {
    if (this.buffer.length < size) this.buffer = Buffer.allocUnsafe(size);
    return this.buffer;
  }

  /**
   * The text of a small file, or undefined. readFileSync's UTF-8 path is one call into the
   * runtime (open, read to the end, close), the cheapest way to read a /proc file from JS.
   */
  text(path: string): string | undefined {
    try {
      return fs.readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
  }

  /** Target of a symbolic link such as /proc/<pid>/fd/3, or undefined. */
  link(path: string): string | undefined {
    try {
      return fs.readlinkSync(path);
    } catch {
      return undefined;
    }
  }

  /**
   * Watches of an inotify fd: the "inotify wd:" lines of its fdinfo, counted while streaming
   * (an instance with 100,000 watches has a 10 MB fdinfo), and a fingerprint of the whole text
   * to recognise the same instance inherited by a child. undefined when the fd is gone.
   */
  inotifyWatches(path: string): { watches: number; fingerprint: number } | undefined {
    let fd: number;
    try {
      fd = fs.openSync(path, 'r');
    } catch {
      return undefined;
    }
    try {
      const buffer = this.ensure(16 * 1024);
      const keep = INOTIFY_WD.length - 1;
      let watches = 0;
      let hash = 0x811c9dc5;
      let carried = 0;
      let first = true;
      for (;;) {
        const n = fs.readSync(fd, buffer, carried, buffer.length - carried, null);
        if (n === 0) break;
        const end = carried + n;
        // The first read is fingerprint enough: with the count, it tells instances apart.
        if (first)
          for (let i = 0; i < end; i++) hash = Math.imul(hash ^ (buffer[i] as number), 0x01000193);
        first = false;
        let at = buffer.indexOf(INOTIFY_WD, 0);
        while (at >= 0 && at + INOTIFY_WD.length <= end) {
          watches++;
          at = buffer.indexOf(INOTIFY_WD, at + INOTIFY_WD.length);
        }
        // A match may straddle two reads: keep the tail, too short to hold a whole match.
        carried = Math.min(keep, end);
        buffer.copy(buffer, 0, end - carried, end);
      }
      return { watches, fingerprint: hash >>> 0 };
    } catch {
      return undefined;
    } finally {
      fs.closeSync(fd);
    }
  }
}
