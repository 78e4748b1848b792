#!/usr/bin/env node
// node-auditor's command line. Exit status: 0 fine, 1 problems found (check) or a runtime
// failure, 2 a usage or configuration error.
// Stack traces (CheckFailed evidence, logs) point at the TypeScript source, not the bundle.
process.setSourceMapsEnabled(true);

import { describeError, isUsageOrConfigError } from '../errors.ts';
import { ErrorCode } from '../errors.ts';
import { VERSION } from '../version.ts';
import { checkCommand } from './checkCommand.ts';
import { configCommand } from './configCommand.ts';
import { parseCommandLine } from './parseCommandLine.ts';
import { runCommand } from './runCommand.ts';
import { wrapHanging } from '../sinks/report/textWrap.ts';
import { commandUsage, shortUsage, usage } from './usage.ts';

async function main(argv: readonly string[]): Promise<number> {
  const line = parseCommandLine(argv, process.env);
  switch (line.kind) {
    case 'help':
      process.stdout.write(line.command === undefined ? usage() : commandUsage(line.command));
      return 0;
    case 'version':
      process.stdout.write(`node-auditor ${VERSION} (node ${process.version})\n`);
      return 0;
    case 'command': {
      // All but run read the configuration once: their config file may be a pipe.
      const once = { ...line.inputs, once: true };
      switch (line.command) {
        case 'run':
          return runCommand(line.inputs);
        case 'check':
          return checkCommand(
            once,
            {
              ...(line.output === undefined ? {} : { output: line.output }),
              ...(line.only === undefined ? {} : { only: line.only }),
            },
            process.stdout,
          );
        case 'config':
          return configCommand(once, line.output, process.stdout);
        case 'scan-logs': {
          // Loaded when used: the agent (`run`) does not carry scan-logs' readers (zlib).
          const { scanLogsCommand } = await import('./scanLogsCommand.ts');
          return scanLogsCommand(
            once,
            line.files ?? [],
            line.output,
            process.stdout,
            process.stderr,
          );
        }
      }
    }
  }
}

function exit(code: number): void {
  // Exit once stdout is flushed: a hung check must not keep `check` alive after its report.
  process.stdout.write('', () => process.exit(code));
}

main(process.argv.slice(2)).then(exit, (error: unknown) => {
  if (isUsageOrConfigError(error)) {
    if (error.code === ErrorCode.Usage) {
      // In 80 columns, and followed by a short usage, not the whole: the error stays in view.
      process.stderr.write(`${wrapHanging('node-auditor: ', error.message, 80).join('\n')}\n`);
      process.stderr.write(`\n${shortUsage()}`);
    } else {
      process.stderr.write(`node-auditor: ${error.message}\n`);
    }
    exit(2);
  } else {
    process.stderr.write(`node-auditor: ${describeError(error)}\n`);
    exit(1);
  }
});
