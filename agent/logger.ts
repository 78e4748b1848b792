// pino, JSON lines. Secrets never reach a log line: anything that looks like one is redacted
// wherever it appears in the logged object.
import pino from 'pino';
import type { Logger } from 'pino';
import type { LogLevel } from './config/configSchema.ts';

export function createLogger(options: { level: LogLevel; node: string; fd?: 1 | 2 }): Logger {
  return pino(
    {
      name: 'node-auditor',
      level: options.level,
      base: { pid: process.pid, node: options.node },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      redact: {
        paths: [
          '*.token',
          '*.password',
          '*.authorization',
          '*.Authorization',
          '*.bearerToken',
          '*.clientKey',
          'headers.*',
        ],
        censor: '[redacted]',
      },
    },
    pino.destination({ dest: options.fd ?? 1, sync: true }),
  );
}
