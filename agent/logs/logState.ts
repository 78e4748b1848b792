// What the log pipeline keeps across restarts, in one file under stateDir: every source's
// position and the incidents with their count windows, written together (atomically: a
// temporary file renamed into place), so positions and incidents always agree. After a crash the
// lines since the last save are read again and counted once, against the incidents as saved.
import * as fs from '../host/asyncFs.ts';
import path from 'node:path';
import type { TrackerSnapshot } from '../incidents/incidentTracker.ts';
import type { FileSourceState } from '../sources/fileSource.ts';
import type { KmsgCheckpoint } from '../sources/kmsgSource.ts';

export interface LogState {
  version: 1;
  /** The host root the positions and incidents are of: another root's state is not ours. */
  hostRoot?: string;
  files: Record<string, FileSourceState>;
  journalCursor?: string;
  kmsg?: KmsgCheckpoint;
  tracker?: TrackerSnapshot;
}

const LOG_STATE_FILE = 'logs.json';

/** The saved state, or undefined when there is none (or it is unreadable: start afresh). */
export async function loadLogState(stateDir: string): Promise<LogState | undefined> {
  try {
    const doc = JSON.parse(
      await fs.readFile(path.join(stateDir, LOG_STATE_FILE), 'utf8'),
    ) as Partial<LogState>;
    if (doc.version !== 1 || typeof doc.files !== 'object') return undefined;
    return doc as LogState;
  } catch {
    return undefined;
  }
}

export async function saveLogState(stateDir: string, state: LogState): Promise<void> {
  await fs.writeFileAtomic(path.join(stateDir, LOG_STATE_FILE), JSON.stringify(state));
}
