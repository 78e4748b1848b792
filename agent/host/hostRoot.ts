// Every read of the host goes through HostRoot, rooted at --host-root ("/" on a host, "/host"
// in the DaemonSet). Checks name host paths as the host sees them ("/etc/sysctl.d/x.conf");
// only this module knows where they really are.
import { constants } from 'node:fs';
import * as fs from './asyncFs.ts';
import path from 'node:path';
import { AuditorError, ErrorCode, errnoCode } from '../errors.ts';
import { byCodeUnit } from '../findings/finding.ts';

/** Files we read are small (config, /proc/sys); anything larger is not what we think it is. */
export const DEFAULT_MAX_BYTES = 1024 * 1024;
/** Linux gives up after 40 symlinks (MAXSYMLINKS); so do we. */
const MAX_SYMLINK_HOPS = 40;
/**
 * O_NONBLOCK: opening a FIFO for reading blocks until a writer appears, which would park one of
 * libuv's four threadpool threads forever. With O_NONBLOCK the open returns at once and fstat
 * then rejects anything that is not a regular file. It has no effect on regular files.
 */
const OPEN_FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY;

const ERRNO_TEXT: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'is a directory',
  ELOOP: 'too many levels of symbolic links',
  EIO: 'input/output error',
  EINVAL: 'invalid argument',
};

/** A host file that exists but cannot be read; the message names the path. */
export class HostReadError extends AuditorError {
  readonly hostPath: string;

  constructor(hostPath: string, reason: string, options?: { cause?: unknown }) {
    super(ErrorCode.HostRead, `cannot read ${hostPath}: ${reason}`, options);
    this.name = 'HostReadError';
    this.hostPath = hostPath;
  }
}

/**
 * The host's /proc (or /proc/sys) is not under the host root: a wrong --host-root, or the host's
 * /proc not mounted there. The checks that read it fail with this instead of reporting a host
 * with no processes or no kernel parameters as healthy.
 */
export class ProcUnavailableError extends AuditorError {
  readonly hostPath: string;

  constructor(host: HostRoot, hostPath: string, what: string, options?: { cause?: unknown }) {
    super(
      ErrorCode.HostRead,
      `${host.local(hostPath)} ${what}: mount the host's /proc at ${host.local('/proc')}, or point --host-root at the host's /`,
      options,
    );
    this.name = 'ProcUnavailableError';
    this.hostPath = hostPath;
  }
}

/** Why a directory under /proc cannot be listed, in words, for ProcUnavailableError. */
export function procDirProblem(error: unknown): string {
  const code = errnoCode(error);
  if (code === 'ENOENT') return 'does not exist';
  if (code === 'ENOTDIR') return 'is not a directory';
  return `cannot be read (${reasonOf(error)})`;
}

/**
 * Throws ProcUnavailableError unless a directory of the host's procfs (/proc/sys) is there with
 * something in it: with none, every file in it would read as missing.
 */
export async function requireProcDir(host: HostRoot, hostPath: string): Promise<void> {
  let names: string[];
  try {
    names = await fs.readdir(host.local(hostPath));
  } catch (error) {
    throw new ProcUnavailableError(host, hostPath, procDirProblem(error), { cause: error });
  }
  if (names.length === 0) throw new ProcUnavailableError(host, hostPath, 'is empty');
}

export interface ReadOptions {
  /** Resolve symbolic links inside the host root (default true; /proc and /sys need not). */
  resolveLinks?: boolean;
  /** The path already came from resolve(): do not walk it again, but still refuse a final link. */
  alreadyResolved?: boolean;
  maxBytes?: number;
}

export interface HostDirEntry {
  name: string;
  isFile: boolean;
  isDirectory: boolean;
  isSymbolicLink: boolean;
}

export class HostRoot {
  /** Absolute path of the host's "/" on this machine. */
  readonly root: string;

  constructor(root: string) {
    this.root = path.resolve(root);
  }

  /** Where a host path is on this machine. No symlink resolution: for /proc and /sys. */
  local(hostPath: string): string {
    return path.join(this.root, path.posix.normalize('/' + hostPath));
  }

  /**
   * Resolve symbolic links the way the host's kernel would, but inside the root: an absolute
   * target such as /etc/sysctl.d/99-sysctl.conf -> /etc/sysctl.conf is re-rooted instead of
   * escaping to this container's own /etc. Returns a host path; a missing tail is kept as is.
   */
  async resolve(hostPath: string): Promise<string> {
    const pending = splitPath(hostPath);
    const resolved: string[] = [];
    let hops = 0;
    while (pending.length > 0) {
      const name = pending.shift() as string;
      if (name === '.') continue;
      if (name === '..') {
        resolved.pop();
        continue;
      }
      const candidate = '/' + [...resolved, name].join('/');
      let target: string;
      try {
        const stat = await fs.lstat(this.local(candidate));
        if (!stat.isSymbolicLink()) {
          resolved.push(name);
          continue;
        }
        target = await fs.readlink(this.local(candidate));
      } catch (error) {
        const code = errnoCode(error);
        if (code === 'ENOENT' || code === 'ENOTDIR') {
          return '/' + [...resolved, name, ...pending].join('/');
        }
        throw new HostReadError(candidate, reasonOf(error), { cause: error });
      }
      if (++hops > MAX_SYMLINK_HOPS) throw new HostReadError(hostPath, ERRNO_TEXT.ELOOP ?? 'loop');
      if (target.startsWith('/')) resolved.length = 0;
      pending.unshift(...splitPath(target));
    }
    return '/' + resolved.join('/');
  }

  /**
   * Text of a regular host file, or null when it does not exist. Throws HostReadError when it
   * exists but cannot be read, is not a regular file, or is larger than maxBytes.
   */
  async readText(hostPath: string, options: ReadOptions = {}): Promise<string | null> {
    const buffer = await this.readBytes(hostPath, options);
    return buffer === null ? null : buffer.toString('utf8');
  }

  async readBytes(hostPath: string, options: ReadOptions = {}): Promise<Buffer | null> {
    const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
    const rooted = options.resolveLinks !== false && this.root !== '/';
    const target =
      rooted && options.alreadyResolved !== true ? await this.resolve(hostPath) : hostPath;
    // When links were resolved inside the root, the last component must not be a link any more:
    // refuse to follow one that appeared in between (it could point outside the root).
    const flags = rooted ? OPEN_FLAGS | constants.O_NOFOLLOW : OPEN_FLAGS;
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.local(target), flags);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw new HostReadError(hostPath, reasonOf(error), { cause: error });
    }
    try {
      const stat = await handle.stat();
      if (!stat.isFile()) throw new HostReadError(hostPath, 'not a regular file');
      // /proc and /sys files report size 0 (or 4096): read until EOF, whatever stat says.
      const chunks: Buffer[] = [];
      let total = 0;
      for (;;) {
        const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, maxBytes + 1 - total));
        const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
        if (bytesRead === 0) break;
        chunks.push(chunk.subarray(0, bytesRead));
        total += bytesRead;
        if (total > maxBytes) {
          throw new HostReadError(hostPath, `larger than the ${maxBytes}-byte limit`);
        }
      }
      return Buffer.concat(chunks, total);
    } catch (error) {
      if (error instanceof HostReadError) throw error;
      throw new HostReadError(hostPath, reasonOf(error), { cause: error });
    } finally {
      await handle.close().catch(() => undefined);
    }
  }

  /**
   * Where a host path is on this machine with its links resolved inside the root (with root /,
   * the kernel resolves them itself): for what is not read as a file, such as a socket.
   */
  async localPath(hostPath: string): Promise<string> {
    return this.local(this.root === '/' ? hostPath : await this.resolve(hostPath));
  }

  /** Whether a host path exists (after links, inside the root). */
  async exists(hostPath: string): Promise<boolean> {
    try {
      await fs.stat(await this.localPath(hostPath));
      return true;
    } catch {
      return false;
    }
  }

  /** Entries of a host directory sorted by name, or null when it does not exist. */
  async listDir(hostPath: string): Promise<HostDirEntry[] | null> {
    const target = this.root === '/' ? hostPath : await this.resolve(hostPath);
    try {
      const entries = await fs.readdir(this.local(target), { withFileTypes: true });
      return entries
        .map((entry) => ({
          name: entry.name,
          isFile: entry.isFile(),
          isDirectory: entry.isDirectory(),
          isSymbolicLink: entry.isSymbolicLink(),
        }))
        .sort((a, b) => byCodeUnit(a.name, b.name));
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      throw new HostReadError(hostPath, reasonOf(error), { cause: error });
    }
  }
}

function splitPath(p: string): string[] {
  return p.split('/').filter((part) => part !== '');
}

function reasonOf(error: unknown): string {
  const code = errnoCode(error);
  if (code !== undefined) return ERRNO_TEXT[code] ?? code;
  return error instanceof Error ? error.message : String(error);
}
