// One run of a check on a host root, with the context the runner gives it (no live services, as
// in `node-auditor check`, unless given): what every check test needs.
import pino from 'pino';
import * as v from 'valibot';
import type { Check, CheckOutcome, CheckServices } from '../../agent/checks/check.ts';
import { inotifyCheck } from '../../agent/checks/inotify/inotifyCheck.ts';
import { pauseCheck } from '../../agent/checks/pause/pauseCheck.ts';
import { zombiesCheck } from '../../agent/checks/zombies/zombiesCheck.ts';
import { HostRoot } from '../../agent/host/hostRoot.ts';
import { ProcessScans } from '../../agent/procfs/processScans.ts';

/** A check's options as the config schema makes them: its defaults with `input` on top. */
export function checkOptions<O extends v.ObjectEntriesAsync>(
  check: Check<O>,
  input: Record<string, unknown> = {},
): v.InferOutput<v.ObjectSchemaAsync<O, undefined>> {
  return v.parse(v.object(check.options as v.ObjectEntries), input) as never;
}

export function runCheckOn<O extends v.ObjectEntriesAsync>(
  check: Check<O>,
  root: string,
  options: v.InferOutput<v.ObjectSchemaAsync<O, undefined>>,
  services: CheckServices = {},
  signal: AbortSignal = new AbortController().signal,
): Promise<CheckOutcome> {
  return check.run({
    host: new HostRoot(root),
    nodeName: 'k1-node01',
    options,
    signal,
    services,
    log: pino({ level: 'silent' }),
  });
}

/**
 * The pause, zombies and inotify checks at once on one shared /proc pass, as the agent runs
 * them; each check's options are its defaults with `overrides[id]` on top.
 */
export async function runProcessChecks(
  root: string,
  overrides: Record<string, Record<string, unknown>> = {},
): Promise<{ pause: CheckOutcome; zombies: CheckOutcome; inotify: CheckOutcome }> {
  const processes = new ProcessScans(new HostRoot(root));
  // as the agent does when it loads its configuration
  const infra = overrides.pause?.infraCommands as string[] | undefined;
  if (infra !== undefined) processes.setInfraCommands(infra);
  const run = <O extends v.ObjectEntriesAsync>(check: Check<O>) =>
    runCheckOn(check, root, checkOptions(check, overrides[check.id] ?? {}), { processes });
  const [pause, zombies, inotify] = await Promise.all([
    run(pauseCheck),
    run(zombiesCheck),
    run(inotifyCheck),
  ]);
  return { pause, zombies, inotify };
}

/** The value of the sample of `metric` whose labels include `labels`. */
export function sampleValue(
  outcome: CheckOutcome,
  metric: string,
  labels: Record<string, string>,
): number | undefined {
  return outcome.samples?.find(
    (s) =>
      s.metric === metric && Object.entries(labels).every(([k, value]) => s.labels[k] === value),
  )?.value;
}
