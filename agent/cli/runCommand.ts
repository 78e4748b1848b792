// `node-auditor run`: the agent, until SIGTERM/SIGINT. SIGHUP or a change of the config file
// reloads the configuration.
import { Agent } from '../agent.ts';
import { watchConfigFile } from '../config/configWatcher.ts';
import { loadConfig } from '../config/loadConfig.ts';
import type { ConfigInputs } from '../config/loadConfig.ts';
import { describeError } from '../errors.ts';
import { createLogger } from '../logger.ts';
import { VERSION } from '../version.ts';

export async function runCommand(inputs: ConfigInputs): Promise<number> {
  const loaded = await loadConfig(inputs);
  const { config } = loaded;
  const log = createLogger({ level: config.log.level, node: config.nodeName });

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

  await agent.start();
  let reloading = Promise.resolve();
  const reload = (trigger: string) => {
    // One reload at a time, in order: a burst of signals or file events never interleaves, and
    // one that fails never stops the ones after it.
    reloading = reloading
      .then(() => agent.reload(trigger))
      .then(
        () => undefined,
        (error: unknown) => {
          log.error({ event: 'config.reload-failed', trigger, err: error }, 'reload failed');
        },
      );
  };
  process.on('SIGHUP', () => {
    reload('SIGHUP');
  });
  const watcher =
    loaded.file === undefined
      ? undefined
      : watchConfigFile(
          loaded.file,
          loaded.fileText ?? null,
          () => {
            reload('config file changed');
          },
          log,
        );

  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ event: 'agent.stopping', signal }, 'stopping');
      watcher?.close();
      void agent.stop().then(resolve);
    };
    process.once('SIGTERM', () => {
      stop('SIGTERM');
    });
    process.once('SIGINT', () => {
      stop('SIGINT');
    });
  });
  return 0;
}
