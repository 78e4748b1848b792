// `node-auditor run`: the agent, until SIGTERM/SIGINT. SIGHUP or a change of the config file
// reloads the configuration.
import v8 from 'node:v8';
import { Agent } from '../agent.ts';
import { watchConfigFile } from '../config/configWatcher.ts';
import type { ConfigWatcher } from '../config/configWatcher.ts';
import { loadConfig, logLoaded } from '../config/loadConfig.ts';
import type { ConfigInputs } from '../config/loadConfig.ts';
import { describeError } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { VERSION } from '../version.ts';

/** The signals `run` handles: Node's default for each is to end the process at once. */
const SIGNALS = ['SIGHUP', 'SIGTERM', 'SIGINT'] as const;

export async function runCommand(inputs: ConfigInputs): Promise<number> {
  interpretOnly();
  // Signals are ours from the start, not only once the agent runs: start-up (the config, the
  // listen, the Kubernetes client, saved log state) takes a while, and a SIGHUP in it (a
  // ConfigMap update, `kill -HUP` in a loop) must not kill the agent. What comes before the
  // agent exists is acted on once it does.
  const early: string[] = [];
  const keep = (signal: string) => {
    early.push(signal);
  };
  for (const signal of SIGNALS) process.on(signal, keep);
  const loaded = await loadConfig(inputs);
  const { config } = loaded;
  const log = createLogger({ level: config.log.level, node: config.nodeName });
  logLoaded(log, loaded);
  for (const signal of SIGNALS) process.off(signal, keep);
  const stopSignal = early.find((signal) => signal !== 'SIGHUP');
  if (stopSignal !== undefined) {
    log.info({ event: 'agent.stopping', signal: stopSignal }, 'stopping before start-up');
    return 0;
  }

  const agent = new Agent({ loaded, inputs, log, version: VERSION, summaryTo: process.stderr });

  // Nothing a check or a library does may take the agent down: it is logged and counted
  // (node_auditor_internal_errors_total) and the agent carries on.
  process.on('unhandledRejection', (reason) => {
    agent.metrics.recordInternalError('unhandled_rejection');
    log.error(
      { event: 'process.unhandled-rejection', error: describeError(reason) },
      'unhandled promise rejection',
    );
  });
  process.on('uncaughtException', (error) => {
    agent.metrics.recordInternalError('uncaught_exception');
    log.error({ event: 'process.uncaught-exception', err: error }, 'uncaught exception');
  });

  const startup = agent.start();
  const started = startup.then(
    () => true,
    () => false,
  );
  // set by a signal handler, so not narrowed to false where it is read
  let stopping = false as boolean;
  let watcher: ConfigWatcher | undefined;
  // One reload at a time, in order, and none before start-up is done (the agent's parts do not
  // exist yet): a burst of signals or file events never interleaves, and one that fails never
  // stops the ones after it.
  let reloading: Promise<unknown> = started;
  const reload = (trigger: string) => {
    reloading = reloading
      .then(async () => {
        if (!stopping && (await started)) await agent.reload(trigger);
      })
      .catch((error: unknown) => {
        log.error({ event: 'config.reload-failed', trigger, err: error }, 'reload failed');
      });
  };
  const stopped = new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      stopping = true;
      log.info({ event: 'agent.stopping', signal }, 'stopping');
      watcher?.close();
      // During start-up, once it is done: parts still starting would be left running.
      void started.then(async (ok) => {
        if (ok) await agent.stop();
        resolve();
      });
    };
    process.once('SIGTERM', () => {
      stop('SIGTERM');
    });
    process.once('SIGINT', () => {
      stop('SIGINT');
    });
  });
  process.on('SIGHUP', () => {
    reload('SIGHUP');
  });
  for (const signal of early) reload(signal);

  await startup;
  if (!stopping && loaded.file !== undefined) {
    watcher = watchConfigFile(
      loaded.file,
      loaded.fileText ?? null,
      () => {
        reload('config file changed');
      },
      log,
    );
  }
  await stopped;
  return 0;
}

/**
 * The agent runs on V8's interpreter alone: no Sparkplug, Maglev or TurboFan code, and V8 sized
 * for memory (--optimize-for-size). The optimizing compilers run on V8's worker threads, whose
 * malloc arenas keep what they used: the first pass alone (the rule parser compiling the
 * catalogue) left RSS at 66-76 MiB instead of 59 (bench/RESULTS.md). --single-threaded keeps
 * the garbage collector's work on the main thread too, for the same reason, and
 * --semi-space-growth-factor=1 keeps the young generation at its start size instead of letting
 * the first pass's burst of allocation grow it for good (about 0.7 MiB). The agent's hot paths
 * keep their budgets on the interpreter: the benchmarks measure the 50,000 lines/s storm, the
 * append-to-metric latency and the scrape in this mode. `check` and `scan-logs` are
 * short-lived and keep the JIT. NODE_AUDITOR_JIT=1 keeps it for `run` too.
 */
export const INTERPRETER_FLAGS = [
  '--no-turbofan',
  '--no-maglev',
  '--no-sparkplug',
  '--optimize-for-size',
  '--single-threaded',
  '--semi-space-growth-factor=1',
] as const;

function interpretOnly(): void {
  if (process.env.NODE_AUDITOR_JIT === '1') return;
  for (const flag of INTERPRETER_FLAGS) v8.setFlagsFromString(flag);
}
