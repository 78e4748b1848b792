// What the pause, zombies and inotify checks share: the one /proc pass of the running agent (or
// of `node-auditor check`), or a pass of their own when run alone.
import type { HostRoot } from '../host/hostRoot.ts';
import type { Config } from '../config/configSchema.ts';
import { DEFAULT_INFRA_COMMANDS } from '../procfs/processOwner.ts';
import { ProcessScans } from '../procfs/processScans.ts';
import type { CheckContext } from './check.ts';

/** The checks that read the shared pass and name the pods of the processes they report. */
export const PROCESS_CHECK_IDS: ReadonlySet<string> = new Set(['pause', 'zombies', 'inotify']);

export function processScans(
  context: Pick<CheckContext<unknown>, 'services' | 'host'>,
  /** The pod infra commands for a pass of its own (the shared one has them from the config). */
  infraCommands?: readonly string[],
): ProcessScans {
  if (context.services.processes !== undefined) return context.services.processes;
  const own = new ProcessScans(context.host);
  if (infraCommands !== undefined) own.setInfraCommands(infraCommands);
  return own;
}

/** checks.pause.infraCommands of a loaded configuration (the schema gives it its default). */
export function configuredInfraCommands(config: Readonly<Config>): readonly string[] {
  return (
    (config.checks.pause?.infraCommands as readonly string[] | undefined) ?? DEFAULT_INFRA_COMMANDS
  );
}

/**
 * A one-number kernel file (/proc/sys/kernel/pid_max, a cgroup's pids.max): the number, "max"
 * (no limit), or undefined when the file does not exist or holds something else. A file that
 * exists but cannot be read throws (HostReadError).
 */
export async function readKernelNumber(
  host: HostRoot,
  path: string,
): Promise<number | 'max' | undefined> {
  const value = (await host.readText(path, { resolveLinks: false }))?.trim();
  if (value === 'max') return 'max';
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}
