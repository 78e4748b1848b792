// Every write the agent makes to the host goes through HostWriter, rooted at --host-root like
// HostRoot's reads: callers name host paths as the host sees them ("/etc/sysctl.d/x.conf",
// "/proc/sys/...") and links are resolved inside the root, never out of it. Only remediation
// loads this module.
//
// Writes are more careful than reads, because a wrong write outlives the agent:
//   - a file is replaced atomically (temp file beside it, fsync, rename over, fsync the
//     directory), so a reader (sysctl --system at boot, another agent) sees the old or the new
//     content, never a half-written file, even across a power cut;
//   - the file named is never written through a symlink and never replaces a directory, FIFO
//     or device: a link there belongs to someone's arrangement (99-sysctl.conf -> ../sysctl.conf);
//   - a sysctl is written only if it exists (O_CREAT never reaches /proc/sys).
import fs, { constants } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { AuditorError, ErrorCode, errnoCode, fileErrorReason } from '../errors.ts';
import type { HostRoot } from '../host/hostRoot.ts';
import { sysctlProcPath } from '../parsers/sysctlConf.ts';

// asyncFs.ts covers what reads need; the write calls are promisified here, only when
// remediation loads this module (node:fs itself is loaded at start-up anyway).
const openFd = promisify(fs.open);
const closeFd = promisify(fs.close);
const writeFd = promisify(fs.write);
const readFd = promisify(fs.read);
const fstat = promisify(fs.fstat);
const fsync = promisify(fs.fsync);
const fchmod = promisify(fs.fchmod);
const rename = promisify(fs.rename);
const unlink = promisify(fs.unlink);
const lstat = promisify(fs.lstat);
const realpath = promisify(fs.realpath);

/** Files the agent rewrites are a few lines; anything larger is not what we think it is. */
const MAX_FILE_BYTES = 1024 * 1024;
/** /proc/sys values are at most a page. */
const MAX_SYSCTL_BYTES = 64 * 1024;
/**
 * O_NOFOLLOW: never read or write through a link in the last component (ELOOP instead).
 * O_NONBLOCK: opening a FIFO must not park a threadpool thread; fstat then rejects it.
 */
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** O_EXCL: the temp file is ours alone, never an existing file or a link planted there. */
const TEMP_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
/** No O_CREAT: a sysctl that does not exist is an error, never a new file in a fixture. */
const SYSCTL_WRITE_FLAGS = constants.O_WRONLY | constants.O_TRUNC | constants.O_NOFOLLOW;

/** A host file or sysctl that could not be written; the message names it. */
export class HostWriteError extends AuditorError {
  readonly hostPath: string;

  constructor(hostPath: string, reason: string, options?: { cause?: unknown }) {
    super(ErrorCode.HostWrite, `cannot write ${hostPath}: ${reason}`, options);
    this.name = 'HostWriteError';
    this.hostPath = hostPath;
  }
}

let tempCounter = 0;

export class HostWriter {
  readonly host: HostRoot;
  private rootReal: string | undefined;

  constructor(host: HostRoot) {
    this.host = host;
  }

  /**
   * Replace a host file with `content`, atomically. Returns the previous content, or null when
   * there was no file. Refuses a target that is a symlink or not a regular file, and a
   * directory that resolves outside the host root or does not exist (none is created).
   */
  async writeFileAtomic(
    hostPath: string,
    content: string,
    options: { mode?: number } = {},
  ): Promise<string | null> {
    const mode = options.mode ?? 0o644;
    const { dir, name } = await this.locate(hostPath);
    const target = path.join(dir, name);
    // A hidden name that does not end in .conf: a temp left by a crash (SIGKILL, power cut)
    // is never picked up by sysctl --system or systemd-modules-load.
    const temp = path.join(dir, `.${name}.${process.pid}-${(tempCounter++).toString(36)}.tmp`);
    let fd: number;
    try {
      fd = await openFd(temp, TEMP_FLAGS, mode);
    } catch (error) {
      throw new HostWriteError(
        hostPath,
        `cannot create a temporary file beside it: ${fileErrorReason(error)}`,
        {
          cause: error,
        },
      );
    }
    let renamed = false;
    try {
      // The umask may have taken bits away from the mode given to open.
      await fchmod(fd, mode);
      await writeAll(fd, Buffer.from(content, 'utf8'));
      await fsync(fd);
      const closing = fd;
      fd = -1;
      await closeFd(closing);
      // Checked after the temp file is written, right before the rename: the shortest window
      // for the target to change. rename() itself never follows a link at the target.
      const previous = await this.readRegular(hostPath, target);
      await rename(temp, target);
      renamed = true;
      // The rename is durable only once the directory entry is on disk.
      await syncDirectory(dir);
      return previous;
    } catch (error) {
      if (error instanceof HostWriteError) throw error;
      throw new HostWriteError(hostPath, fileErrorReason(error), { cause: error });
    } finally {
      if (fd >= 0) await closeFd(fd).catch(() => undefined);
      if (!renamed) await unlink(temp).catch(() => undefined);
    }
  }

  /**
   * Put a file back as it was: `previous` content (atomically, as writeFileAtomic), or no file
   * at all when previous is null. Removes only a regular file, never a link or directory.
   */
  async restoreFile(
    hostPath: string,
    previous: string | null,
    options: { mode?: number } = {},
  ): Promise<void> {
    if (previous !== null) {
      await this.writeFileAtomic(hostPath, previous, options);
      return;
    }
    const { dir, name } = await this.locate(hostPath);
    const target = path.join(dir, name);
    try {
      const stat = await lstat(target);
      if (stat.isSymbolicLink())
        throw new HostWriteError(hostPath, 'is a symbolic link; refusing to remove it');
      if (!stat.isFile())
        throw new HostWriteError(hostPath, 'not a regular file; refusing to remove it');
      await unlink(target);
      await syncDirectory(dir);
    } catch (error) {
      if (error instanceof HostWriteError) throw error;
      if (errnoCode(error) === 'ENOENT') return;
      throw new HostWriteError(hostPath, fileErrorReason(error), { cause: error });
    }
  }

  /** Content of a host file the way writeFileAtomic sees it (no link followed), or null. */
  async readFile(hostPath: string): Promise<string | null> {
    const { dir, name } = await this.locate(hostPath);
    return this.readRegular(hostPath, path.join(dir, name));
  }

  /**
   * Set a sysctl at runtime: writes `value` to /proc/sys/<key with dots as slashes> in one
   * write. Returns the value it had before. Throws for a key that does not exist (a module not
   * loaded, a typo) and when the kernel refuses the value (EINVAL) or the write (EROFS, EPERM).
   */
  async writeSysctl(key: string, value: string): Promise<string> {
    const procPath = await this.sysctlPath(key);
    const local = this.host.local(procPath);
    const previous = await this.readRegular(procPath, local, MAX_SYSCTL_BYTES);
    if (previous === null) throw new HostWriteError(procPath, `sysctl ${key} does not exist`);
    let fd: number;
    try {
      fd = await openFd(local, SYSCTL_WRITE_FLAGS);
    } catch (error) {
      throw new HostWriteError(procPath, `sysctl ${key}: ${sysctlErrorReason(error)}`, {
        cause: error,
      });
    }
    try {
      // One write() from position 0: the kernel parses each write on its own, and a value
      // split across two writes would be read as two values.
      const bytes = Buffer.from(`${value}\n`, 'utf8');
      const { bytesWritten } = await writeFd(fd, bytes, 0, bytes.length, 0);
      if (bytesWritten !== bytes.length)
        throw new HostWriteError(
          procPath,
          `sysctl ${key}: short write (${bytesWritten} of ${bytes.length} bytes)`,
        );
      return previous.trim();
    } catch (error) {
      if (error instanceof HostWriteError) throw error;
      throw new HostWriteError(procPath, `sysctl ${key} = ${value}: ${sysctlErrorReason(error)}`, {
        cause: error,
      });
    } finally {
      await closeFd(fd).catch(() => undefined);
    }
  }

  /** A sysctl's value as the kernel prints it (trimmed), or undefined when it does not exist. */
  async readSysctl(key: string): Promise<string | undefined> {
    const procPath = await this.sysctlPath(key);
    const text = await this.readRegular(procPath, this.host.local(procPath), MAX_SYSCTL_BYTES);
    return text === null ? undefined : text.trim();
  }

  /** The /proc/sys path of a key; a key that is not a sysctl name never becomes a path. */
  private async sysctlPath(key: string): Promise<string> {
    let procPath: string;
    try {
      procPath = sysctlProcPath(key);
    } catch (error) {
      throw new HostWriteError(`sysctl ${JSON.stringify(key)}`, 'not a sysctl key', {
        cause: error,
      });
    }
    // /proc/sys holds no links; one in a host root would be a planted redirection.
    if (this.host.root !== '/' && (await this.host.resolve(procPath)) !== procPath)
      throw new HostWriteError(procPath, 'a symbolic link is on the way; refusing to follow it');
    return procPath;
  }

  /**
   * The real directory of a host path (links resolved inside the root, then checked against
   * the root once more with realpath, in case one changed in between) and the file's name.
   */
  private async locate(hostPath: string): Promise<{ dir: string; name: string }> {
    const normalized = path.posix.normalize(hostPath);
    const name = path.posix.basename(normalized);
    if (!normalized.startsWith('/') || name === '' || name === '.' || name === '..')
      throw new HostWriteError(hostPath, 'not an absolute path to a file');
    const hostDir = path.posix.dirname(normalized);
    const resolvedDir = this.host.root === '/' ? hostDir : await this.host.resolve(hostDir);
    let dir: string;
    try {
      dir = await realpath(this.host.local(resolvedDir));
    } catch (error) {
      const reason =
        errnoCode(error) === 'ENOENT'
          ? `directory ${hostDir} does not exist`
          : fileErrorReason(error);
      throw new HostWriteError(hostPath, reason, { cause: error });
    }
    const root = await this.realRoot();
    if (root !== '/' && dir !== root && !dir.startsWith(root + path.sep))
      throw new HostWriteError(hostPath, 'its directory resolves outside the host root');
    return { dir, name };
  }

  /** The root as realpath gives it, to compare realpath results with. */
  private async realRoot(): Promise<string> {
    this.rootReal ??= await realpath(this.host.root);
    return this.rootReal;
  }

  /** A regular file's text, null when there is none; a link or anything else is refused. */
  private async readRegular(
    hostPath: string,
    local: string,
    maxBytes = MAX_FILE_BYTES,
  ): Promise<string | null> {
    let fd: number;
    try {
      fd = await openFd(local, READ_FLAGS);
    } catch (error) {
      const code = errnoCode(error);
      if (code === 'ENOENT' || code === 'ENOTDIR') return null;
      if (code === 'ELOOP')
        throw new HostWriteError(hostPath, 'is a symbolic link; refusing to follow it', {
          cause: error,
        });
      throw new HostWriteError(hostPath, fileErrorReason(error), { cause: error });
    }
    try {
      const stat = await fstat(fd);
      if (!stat.isFile()) throw new HostWriteError(hostPath, 'not a regular file');
      // /proc/sys files report size 0: read until EOF.
      const chunks: Buffer[] = [];
      let total = 0;
      for (;;) {
        const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, maxBytes + 1 - total));
        const { bytesRead } = await readFd(fd, chunk, 0, chunk.length, null);
        if (bytesRead === 0) break;
        chunks.push(chunk.subarray(0, bytesRead));
        total += bytesRead;
        if (total > maxBytes)
          throw new HostWriteError(hostPath, `larger than the ${maxBytes}-byte limit`);
      }
      return Buffer.concat(chunks, total).toString('utf8');
    } catch (error) {
      if (error instanceof HostWriteError) throw error;
      throw new HostWriteError(hostPath, fileErrorReason(error), { cause: error });
    } finally {
      await closeFd(fd).catch(() => undefined);
    }
  }
}

async function writeAll(fd: number, bytes: Buffer): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await writeFd(fd, bytes, offset, bytes.length - offset, offset);
    offset += bytesWritten;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const fd = await openFd(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fsync(fd);
  } finally {
    await closeFd(fd).catch(() => undefined);
  }
}

/** Why the kernel refused a sysctl write, in words an operator acts on. */
function sysctlErrorReason(error: unknown): string {
  switch (errnoCode(error)) {
    case 'EINVAL':
      return 'the kernel rejected the value (invalid argument)';
    case 'EROFS':
      return '/proc/sys is mounted read-only here (the container needs it read-write: privileged)';
    case 'EPERM':
    case 'EACCES':
      // root in a container without privileges, or net.* from another user namespace
      return 'not permitted (the agent needs root in a privileged container)';
    case 'ELOOP':
      return 'is a symbolic link; refusing to follow it';
    default:
      return fileErrorReason(error);
  }
}
