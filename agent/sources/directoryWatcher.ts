// One inotify watch per directory, shared by every file followed in it (/var/log holds syslog,
// messages and kern.log): events for a child name wake that child's follower. A directory watch,
// not a file watch, because rotation replaces the file: the directory sees the rename, the new
// file and every write to either.
import { watch } from 'node:fs';
import type { FSWatcher } from 'node:fs';

type Listener = (name: string | null) => void;
type ErrorListener = (error: Error) => void;

interface Shared {
  watcher: FSWatcher;
  listeners: Set<Listener>;
  errorListeners: Set<ErrorListener>;
}

const shared = new Map<string, Shared>();

export interface DirectoryWatch {
  close(): void;
}

/**
 * Watch `dir` (a local path). Throws when the watch cannot be made (ENOENT, ENOSPC when inotify
 * watches are exhausted, EMFILE for instances): the caller falls back to polling.
 */
export function watchDirectory(
  dir: string,
  onEvent: Listener,
  onError: ErrorListener,
): DirectoryWatch {
  let entry = shared.get(dir);
  if (entry === undefined) {
    const listeners = new Set<Listener>();
    const errorListeners = new Set<ErrorListener>();
    const watcher = watch(dir, { persistent: false }, (_event, name) => {
      for (const listener of listeners) listener(name);
    });
    watcher.on('error', (error) => {
      // The watch is dead (the directory went away, the watch was removed): everyone falls back.
      shared.delete(dir);
      watcher.close();
      for (const listener of errorListeners) listener(error);
    });
    entry = { watcher, listeners, errorListeners };
    shared.set(dir, entry);
  }
  const current = entry;
  current.listeners.add(onEvent);
  current.errorListeners.add(onError);
  return {
    close() {
      current.listeners.delete(onEvent);
      current.errorListeners.delete(onError);
      if (current.listeners.size === 0 && shared.get(dir) === current) {
        shared.delete(dir);
        current.watcher.close();
      }
    },
  };
}
