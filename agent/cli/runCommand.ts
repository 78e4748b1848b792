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
import type { Logger } from 'pino';
import { VERSION } from '../version.ts';

/**
 * A stop (SIGTERM, SIGINT) while start-up is not done waits this long for it, then the process
 * exits without it. Nothing start-up awaits can be called off (a file read in libuv's
 * threadpool, on a hung disk or a FIFO, goes on until it returns), and Kubernetes sends one
 * SIGTERM and then waits out the grace period (30 s) before SIGKILL: a pod that is deleted or
 * rolled while its agent hangs in start-up must go in seconds, with nothing lost (the agent
 * has not run a check yet; a Lease it may already hold expires on its own).
 */
export const START_UP_STOP_DEADLINE_MS = 5_000;

export async function runCommand(inputs: ConfigInputs): Promise<number> {
  interpretOnly();
  // Signals are ours from the start, not only once the agent runs: start-up (the config, the
  // listen, the Kubernetes client, saved log state) takes a while, and a SIGHUP in it (a
  // ConfigMap update, `kill -HUP` in a loop) must not kill the agent. A SIGHUP that comes
  // before the agent exists is acted on once it does.
  let log: Logger | undefined;
  const hangups: string[] = [];
  let onHangup = (signal: string) => {
    hangups.push(signal);
  };
  process.on('SIGHUP', () => {
    onHangup('SIGHUP');
  });
  // The first SIGTERM or SIGINT stops the agent (exit 0, a stop that was asked for); during
  // start-up, within START_UP_STOP_DEADLINE_MS. A second one exits at once: whoever sends it
  // does not want to wait.
  let stopSignal: string | undefined;
  // set by a signal handler: read through this, so no check of it is narrowed away
  const stopRequested = () => stopSignal !== undefined;
  let startingUp = true;
  let onStop = () => {
    /* before the agent exists: run() sees stopSignal once the configuration is loaded */
  };
  let deadline: NodeJS.Timeout | undefined;
  let exitZero = () => {
    /* replaced below */
  };
  const forced = new Promise<number>((resolve) => {
    exitZero = () => {
      resolve(0);
    };
  });
  const exitNow = (signal: string) => {
    endWithout(signal as NodeJS.Signals, exitZero);
  };
  const say = (level: 'info' | 'warn', signal: string, event: string, message: string) => {
    if (log !== undefined) log[level]({ event, signal }, message);
    // before the configuration (and so the log level) is loaded
    else process.stderr.write(`node-auditor: ${message}\n`);
  };
  const stop = (signal: string) => {
    if (stopSignal !== undefined) {
      say('warn', signal, 'agent.stopping', `${signal} after ${stopSignal}: exiting now`);
      exitNow(signal);
      return;
    }
    stopSignal = signal;
    if (startingUp) {
      if (log !== undefined) say('info', signal, 'agent.stopping', 'stopping during start-up');
      deadline = setTimeout(() => {
        say(
          'warn',
          signal,
          'agent.stop-deadline',
          `start-up did not finish within ${START_UP_STOP_DEADLINE_MS / 1000} s of ${signal}: exiting without it`,
        );
        exitNow(signal);
      }, START_UP_STOP_DEADLINE_MS);
    } else {
      say('info', signal, 'agent.stopping', 'stopping');
    }
    onStop();
  };
  process.on('SIGTERM', () => {
    stop('SIGTERM');
  });
  process.on('SIGINT', () => {
    stop('SIGINT');
  });

  const run = async (): Promise<number> => {
    const loaded = await loadConfig(inputs);
    const { config } = loaded;
    log = createLogger({ level: config.log.level, node: config.nodeName });
    logLoaded(log, loaded);
    if (stopSignal !== undefined) {
      log.info({ event: 'agent.stopping', signal: stopSignal }, 'stopping before start-up');
      return 0;
    }
    const agentLog = log;
    const agent = new Agent({ loaded, inputs, log, version: VERSION, summaryTo: process.stderr });

    // Nothing a check or a library does may take the agent down: it is logged and counted
    // (node_auditor_internal_errors_total) and the agent carries on.
    process.on('unhandledRejection', (reason) => {
      agent.metrics.recordInternalError('unhandled_rejection');
      agentLog.error(
        { event: 'process.unhandled-rejection', error: describeError(reason) },
        'unhandled promise rejection',
      );
    });
    process.on('uncaughtException', (error) => {
      agent.metrics.recordInternalError('uncaught_exception');
      agentLog.error({ event: 'process.uncaught-exception', err: error }, 'uncaught exception');
    });

    const startup = agent.start();
    const started = startup.then(
      () => true,
      () => false,
    );
    let watcher: ConfigWatcher | undefined;
    // One reload at a time, in order, and none before start-up is done (the agent's parts do
    // not exist yet): a burst of signals or file events never interleaves, and one that fails
    // never stops the ones after it.
    let reloading: Promise<unknown> = started;
    const reload = (trigger: string) => {
      reloading = reloading
        .then(async () => {
          if (!stopRequested() && (await started)) await agent.reload(trigger);
        })
        .catch((error: unknown) => {
          agentLog.error({ event: 'config.reload-failed', trigger, err: error }, 'reload failed');
        });
    };
    const stopped = new Promise<void>((resolve) => {
      onStop = () => {
        watcher?.close();
        // Once start-up is done (parts still starting would be left running), if that is
        // before the deadline.
        void started.then(async (ok) => {
          if (ok) await agent.stop();
          resolve();
        });
      };
    });
    onHangup = reload;
    for (const signal of hangups) reload(signal);

    await startup;
    startingUp = false;
    if (!stopRequested() && loaded.file !== undefined) {
      watcher = watchConfigFile(
        loaded.file,
        loaded.fileText ?? null,
        () => {
          reload('config file changed');
        },
        agentLog,
      );
    }
    await stopped;
    return 0;
  };
  return Promise.race([run(), forced]).finally(() => {
    clearTimeout(deadline);
  });
}

/** What libuv's threadpool runs that can wait in the kernel for good: file system calls, DNS. */
const THREADPOOL_WAITS = new Set([
  'FSReqCallback',
  'FSReqPromise',
  'GetAddrInfoReqWrap',
  'GetNameInfoReqWrap',
]);

/**
 * End the process without waiting for what is still going on: exit status 0 (`exitZero`) when
 * it can. Node's exit joins libuv's threadpool threads, so one stuck in the kernel (an open or
 * read on a hung disk or NFS mount, what held start-up) would hold process.exit itself for
 * good. With such a call pending the process ends as `signal`'s default action ends it (exit
 * status 128+n: 143 for SIGTERM, 130 for SIGINT), which waits for no thread. Not as PID 1 of a
 * PID namespace (the chart's pod shares the host's), where the kernel ignores that.
 */
function endWithout(signal: NodeJS.Signals, exitZero: () => void): void {
  const stuck = process.getActiveResourcesInfo().some((kind) => THREADPOOL_WAITS.has(kind));
  if (!stuck || process.pid === 1) {
    exitZero();
    return;
  }
  process.removeAllListeners(signal); // back to the default action
  process.kill(process.pid, signal);
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
