// Reload the config when its file changes. Watches the directory, not the file: editors and
// Kubernetes ConfigMap volumes replace files by rename (ConfigMaps swap a "..data" symlink),
// which a watch on the old inode would miss. If inotify itself is exhausted (the very problem
// this agent looks for), fall back to polling.
import { promises as fs, watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

const DEBOUNCE_MS = 200;
const POLL_MS = 5_000;

export interface ConfigWatcher {
  close(): void;
}

export function watchConfigFile(file: string, onChange: () => void, log: Logger): ConfigWatcher {
  const absolute = path.resolve(file);
  const dir = path.dirname(absolute);
  const base = path.basename(absolute);
  let last: Buffer | null | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let poller: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  let closed = false;

  const compare = async () => {
    const content = await readOrNull(absolute);
    if (closed || sameContent(content, last)) return;
    last = content;
    onChange();
  };
  const schedule = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void compare(), DEBOUNCE_MS);
    debounce.unref();
  };
  const poll = (why: unknown) => {
    watcher?.close();
    if (poller !== undefined || closed) return;
    log.warn(
      { err: why, file: absolute },
      `cannot watch the config file; checking it every ${POLL_MS / 1000}s instead`,
    );
    poller = setInterval(schedule, POLL_MS);
    poller.unref();
  };

  void readOrNull(absolute).then((content) => {
    if (last === undefined) last = content;
  });
  try {
    watcher = watch(dir, { persistent: false }, (_event, name) => {
      if (name === null || name === base || name === '..data') schedule();
    });
    watcher.on('error', poll);
  } catch (error) {
    poll(error);
  }
  return {
    close() {
      closed = true;
      watcher?.close();
      clearTimeout(debounce);
      clearInterval(poller);
    },
  };
}

/** Config files are small: keep the bytes and compare them (no crypto module needed). */
async function readOrNull(file: string): Promise<Buffer | null> {
  try {
    return await fs.readFile(file);
  } catch {
    return null;
  }
}

function sameContent(a: Buffer | null, b: Buffer | null | undefined): boolean {
  if (b === undefined) return false;
  return a === null || b === null ? a === b : a.equals(b);
}
