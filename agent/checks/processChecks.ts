// What the pause, zombies and inotify checks share: the one /proc pass of the running agent (or
// of `node-auditor check`), or a pass of their own when run alone.
import { ProcessScans } from '../procfs/processScans.ts';
import type { CheckContext } from './check.ts';

export function processScans(
  context: Pick<CheckContext<unknown>, 'services' | 'host'>,
): ProcessScans {
  return context.services.processes ?? new ProcessScans(context.host);
}
