// Reload the config when its file changes. Watches the directory, not the file: editors and
// Kubernetes ConfigMap volumes replace files by rename (ConfigMaps swap a "..data" symlink),
// which a watch on the old inode would miss. A slow poll always runs too: a watch can go deaf
// without an error (a ConfigMap item in a subdirectory: the watched directory is the old
// timestamped one, deleted by the first swap), and inotify itself may be exhausted, the very
// problem this agent looks for.
import { watch } from 'node:fs';
import * as fs from '../host/asyncFs.ts';
import type { FSWatcher } from 'node:fs';
import path from 'node:path';
import type { Logger } from 'pino';

const DEBOUNCE_MS = 200;
const POLL_MS = 30_000;

export interface ConfigWatcher {
  close(): void;
}

/**
 * Call onChange when the file's text differs from the last seen, starting from `loadedText`
 * (what the configuration was loaded from: a change made since start-up is not missed).
 */
export function watchConfigFile(
  file: string,
  loadedText: string | null,
  onChange: () => void,
  log: Logger,
  pollMs = POLL_MS,
): ConfigWatcher {
  const absolute = path.resolve(file);
  const dir = path.dirname(absolute);
  const base = path.basename(absolute);
  let last = loadedText;
  let debounce: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  let closed = false;

  const compare = async () => {
    const text = await readOrNull(absolute);
    if (closed || text === last) return;
    last = text;
    onChange();
  };
  const schedule = () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => void compare(), DEBOUNCE_MS);
    debounce.unref();
  };
  const poller = setInterval(schedule, pollMs);
  poller.unref();

  try {
    watcher = watch(dir, { persistent: false }, (_event, name) => {
      if (name === null || name === base || name === '..data') schedule();
    });
    watcher.on('error', (error) => {
      watcher?.close();
      log.warn(
        { err: error, file: absolute },
        `cannot watch the config file any more; checking it every ${pollMs / 1000}s`,
      );
    });
  } catch (error) {
    log.warn(
      { err: error, file: absolute },
      `cannot watch the config file; checking it every ${pollMs / 1000}s`,
    );
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

async function readOrNull(file: string): Promise<string | null> {
  try {
    // Not readFile: a FIFO put in the file's place would hang every later comparison.
    return await fs.readRegularFile(file);
  } catch {
    return null;
  }
}
