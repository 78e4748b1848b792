// One run of a check on a host root, with the context the runner gives it (no live services, as
// in `node-auditor check`): what every check test needs.
import pino from 'pino';
import type * as v from 'valibot';
import type { Check, CheckOutcome } from '../../agent/checks/check.ts';
import { HostRoot } from '../../agent/host/hostRoot.ts';

export function runCheckOn<O extends v.ObjectEntriesAsync>(
  check: Check<O>,
  root: string,
  options: v.InferOutput<v.ObjectSchemaAsync<O, undefined>>,
): Promise<CheckOutcome> {
  return check.run({
    host: new HostRoot(root),
    nodeName: 'k1-node01',
    options,
    signal: new AbortController().signal,
    services: {},
    log: pino({ level: 'silent' }),
  });
}
