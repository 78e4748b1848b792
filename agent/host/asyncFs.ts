// The promise-returning file system calls the agent makes, over Node's callback API, with the
// same names and results as node:fs/promises for the part the agent uses.
//
// Why not node:fs/promises itself: on Node 24, loading it also loads readline and the REPL's
// history modules (for FileHandle.readLines), which cost about 0.85 MiB of RSS on every node
// and are never used (bench/RESULTS.md, "what the agent's memory is"). eslint.config.js keeps
// agent/ from importing it again. Tests and benchmarks may use it.
import fs from 'node:fs';
import type { Stats } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

export const readFile = promisify(fs.readFile);
export const writeFile = promisify(fs.writeFile);
export const readdir = promisify(fs.readdir);
export const readlink = promisify(fs.readlink);
export const stat = promisify(fs.stat);
export const lstat = promisify(fs.lstat);
export const access = promisify(fs.access);
export const mkdir = promisify(fs.mkdir);
export const rename = promisify(fs.rename);
export const unlink = promisify(fs.unlink);
export const fsync = promisify(fs.fsync);

const openFd = promisify(fs.open);
const closeFd = promisify(fs.close);
const fstat = promisify(fs.fstat);
const readFd = promisify(fs.read);

/** An open file, as FileHandle of node:fs/promises for the calls the agent makes. */
export class FileHandle {
  #fd: number;

  constructor(fd: number) {
    this.#fd = fd;
  }

  get fd(): number {
    return this.#fd;
  }

  /** Reads at `position`, or from the current file position when it is null. */
  async read(
    buffer: Buffer,
    offset: number,
    length: number,
    position: number | null,
  ): Promise<{ bytesRead: number; buffer: Buffer }> {
    return readFd(this.open(), buffer, offset, length, position);
  }

  /** The descriptor, handed over: this handle no longer closes it (its new owner does). */
  detach(): number {
    const fd = this.open();
    this.#fd = -1;
    return fd;
  }

  async stat(): Promise<Stats> {
    return fstat(this.open());
  }

  async readFile(encoding: 'utf8'): Promise<string> {
    return readFile(this.open(), encoding);
  }

  /**
   * Closes the descriptor once; closing again does nothing (never closes a number the kernel
   * has since given to another file).
   */
  async close(): Promise<void> {
    const fd = this.#fd;
    if (fd < 0) return;
    this.#fd = -1;
    await closeFd(fd);
  }

  private open(): number {
    if (this.#fd < 0) throw Object.assign(new Error('file already closed'), { code: 'EBADF' });
    return this.#fd;
  }
}

export async function open(path: string, flags: string | number): Promise<FileHandle> {
  return new FileHandle(await openFd(path, flags));
}

/**
 * Replaces a small state file (a local path) so that after a crash or power cut it holds the
 * old text or the new, never a torn mix: a temporary file beside it, fsync, rename, fsync of
 * the directory. The directory is created if missing; the temporary file is removed on failure.
 */
export async function writeFileAtomic(file: string, text: string): Promise<void> {
  const dir = path.dirname(file);
  const tmp = `${file}.${String(process.pid)}.tmp`;
  try {
    await mkdir(dir, { recursive: true });
    const handle = await open(tmp, 'w');
    try {
      await writeFile(handle.fd, text);
      await fsync(handle.fd);
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
    const directory = await open(dir, 'r');
    try {
      await fsync(directory.fd);
    } finally {
      await directory.close();
    }
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
}

/** /dev/null's device number (major 1, minor 3): read as an empty file, the usual "no file". */
const DEV_NULL = (1 << 8) | 3;

/** How a pipe is read where one is allowed: at most this long and this much. */
export interface PipeLimits {
  timeoutMs: number;
  maxBytes: number;
}

/**
 * The text of a file that must be a regular file (the config file, the kubeconfig and the
 * files it names, token files). Anything else is refused with code E_NOT_REGULAR, a directory
 * with EISDIR: a FIFO read with readFile blocks until a writer comes, which hangs the command
 * (and parks one of libuv's four threadpool threads for good). O_NONBLOCK makes the open of a
 * FIFO return at once so fstat can tell; it has no effect on a regular file. /dev/null is let
 * through as an empty file.
 *
 * With `pipe`, a pipe or FIFO is read too (`--config <(...)` of a one-shot command), through
 * the event loop rather than the threadpool, until its writer closes it, within the limits;
 * beyond them it is refused with code E_PIPE.
 */
export async function readRegularFile(
  file: string,
  options: { pipe?: PipeLimits } = {},
): Promise<string> {
  const handle = await open(
    file,
    fs.constants.O_RDONLY | fs.constants.O_NONBLOCK | fs.constants.O_NOCTTY,
  );
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw Object.assign(new Error('is a directory'), { code: 'EISDIR' });
    if (stat.isCharacterDevice() && stat.rdev === DEV_NULL) return '';
    if (stat.isFIFO() && options.pipe !== undefined)
      return await readPipe(handle.detach(), options.pipe);
    if (!stat.isFile()) {
      const kind = stat.isFIFO()
        ? 'a FIFO'
        : stat.isSocket()
          ? 'a socket'
          : stat.isCharacterDevice() || stat.isBlockDevice()
            ? 'a device'
            : 'of another kind';
      throw Object.assign(new Error(`not a regular file (it is ${kind})`), {
        code: 'E_NOT_REGULAR',
        kind,
      });
    }
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/** A pipe's text, to its end; the descriptor (non-blocking) is the socket's, closed with it. */
function readPipe(fd: number, limits: PipeLimits): Promise<string> {
  const socket = new net.Socket({ fd, readable: true, writable: false });
  const chunks: Buffer[] = [];
  let size = 0;
  return new Promise<string>((resolve, reject) => {
    const fail = (message: string) => {
      settle(Object.assign(new Error(message), { code: 'E_PIPE' }));
    };
    const timer = setTimeout(() => {
      fail(`a pipe whose writer did not finish within ${limits.timeoutMs / 1000} s`);
    }, limits.timeoutMs);
    const settle = (error?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (error === undefined) resolve(Buffer.concat(chunks).toString('utf8'));
      else reject(error);
    };
    socket.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limits.maxBytes) fail(`a pipe that gave more than ${limits.maxBytes} bytes`);
      else chunks.push(chunk);
    });
    socket.once('end', () => {
      settle();
    });
    socket.once('error', settle);
  });
}
