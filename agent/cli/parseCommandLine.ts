// The command line, parsed strictly: an unknown command or flag is a usage error (exit 2).
import { parseArgs } from 'node:util';
import { checkIds } from '../checks/registry.ts';
import { CONFIG_FLAGS } from '../config/loadConfig.ts';
import type { ConfigFlag, ConfigInputs } from '../config/loadConfig.ts';
import { AuditorError, ErrorCode } from '../errors.ts';

export const COMMANDS = ['run', 'check', 'config', 'scan-logs'] as const;
export type Command = (typeof COMMANDS)[number];

export type CommandLine =
  /** --help or `help`; with a command (`help check`, `check --help`), that command's help. */
  | { kind: 'help'; command?: Command }
  | { kind: 'version' }
  | {
      kind: 'command';
      command: Command;
      inputs: ConfigInputs;
      output?: string;
      only?: string[];
      /** scan-logs: the files and journal directories to read. */
      files?: string[];
    };

// Every value flag is collected as a list, so that a repeated one is seen: --only adds up
// (--only sysctl --only inotify runs both), any other given twice is a usage error rather than
// the last one silently winning.
const OPTIONS = {
  config: { type: 'string', multiple: true },
  'host-root': { type: 'string', multiple: true },
  listen: { type: 'string', multiple: true },
  'node-name': { type: 'string', multiple: true },
  kubeconfig: { type: 'string', multiple: true },
  'log-level': { type: 'string', multiple: true },
  'state-dir': { type: 'string', multiple: true },
  output: { type: 'string', multiple: true },
  only: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const;

type ValueFlag = Exclude<keyof typeof OPTIONS, 'help' | 'version'>;

const OUTPUTS: Record<Command, readonly string[]> = {
  run: [],
  check: ['table', 'json'],
  config: ['yaml', 'json'],
  'scan-logs': ['table', 'json'],
};

export function parseCommandLine(argv: readonly string[], env: NodeJS.ProcessEnv): CommandLine {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw new AuditorError(ErrorCode.Usage, usageMessage(error));
  }
  const { values: lists, positionals } = parsed;
  if (lists.help === true) {
    const [first] = positionals;
    return isCommand(first) ? { kind: 'help', command: first } : { kind: 'help' };
  }
  if (lists.version === true) return { kind: 'version' };
  const values: Partial<Record<ValueFlag, string>> = {};
  for (const flag of Object.keys(OPTIONS) as (keyof typeof OPTIONS)[]) {
    if (flag === 'help' || flag === 'version' || flag === 'only') continue;
    const given = lists[flag];
    if (given === undefined) continue;
    if (given.length > 1) {
      throw new AuditorError(
        ErrorCode.Usage,
        `--${flag} given ${given.length} times ("${given.join('", "')}"); give it once`,
      );
    }
    values[flag] = given[0];
  }
  const [command, ...extra] = positionals;
  if (command === undefined) throw new AuditorError(ErrorCode.Usage, 'no command given');
  // `help` and `version` as the commands people type first, the same as the flags; `help
  // check` as `check --help`.
  if (command === 'help') {
    const [topic, ...more] = extra;
    if (topic === undefined) return { kind: 'help' };
    if (!isCommand(topic)) {
      throw new AuditorError(
        ErrorCode.Usage,
        `help: unknown command "${topic}" (commands: ${COMMANDS.join(', ')})`,
      );
    }
    if (more.length > 0)
      throw new AuditorError(ErrorCode.Usage, `help takes one command, not "${extra.join(' ')}"`);
    return { kind: 'help', command: topic };
  }
  if (command === 'version') {
    if (extra.length > 0)
      throw new AuditorError(ErrorCode.Usage, `version takes no argument ("${extra.join(' ')}")`);
    return { kind: 'version' };
  }
  if (!isCommand(command)) {
    throw new AuditorError(
      ErrorCode.Usage,
      `unknown command "${command}" (commands: ${COMMANDS.join(', ')}, help, version)`,
    );
  }
  const cmd = command;
  if (extra.length > 0 && cmd !== 'scan-logs')
    throw new AuditorError(ErrorCode.Usage, `unexpected argument "${extra[0] ?? ''}"`);
  if (cmd === 'scan-logs' && extra.length === 0)
    throw new AuditorError(
      ErrorCode.Usage,
      'scan-logs needs at least one FILE (or journal directory)',
    );

  if (values.output !== undefined && !OUTPUTS[cmd].includes(values.output)) {
    const allowed = OUTPUTS[cmd];
    throw new AuditorError(
      ErrorCode.Usage,
      allowed.length === 0
        ? `--output is not a flag of ${cmd}`
        : `--output must be ${allowed.join(' or ')} for ${cmd}, not "${values.output}"`,
    );
  }
  let only: string[] | undefined;
  if (lists.only !== undefined) {
    if (cmd !== 'check')
      throw new AuditorError(ErrorCode.Usage, `--only is a flag of check, not of ${cmd}`);
    only = [
      ...new Set(
        lists.only
          .flatMap((list) => list.split(','))
          .map((id) => id.trim())
          .filter((id) => id !== ''),
      ),
    ];
    const known = checkIds();
    const unknown = only.filter((id) => !known.includes(id));
    if (unknown.length > 0 || only.length === 0) {
      throw new AuditorError(
        ErrorCode.Usage,
        `--only: ${unknown.length > 0 ? `unknown check "${unknown.join('", "')}"` : 'no check given'} (checks: ${known.join(', ')})`,
      );
    }
  }
  const flags: Partial<Record<ConfigFlag, string>> = {};
  for (const flag of Object.keys(CONFIG_FLAGS) as ConfigFlag[]) {
    const value = values[flag];
    if (value !== undefined) flags[flag] = value;
  }
  return {
    kind: 'command',
    command: cmd,
    inputs: { file: values.config, env, flags },
    ...(values.output === undefined ? {} : { output: values.output }),
    ...(only === undefined ? {} : { only }),
    ...(cmd === 'scan-logs' ? { files: extra } : {}),
  };
}

function isCommand(word: string | undefined): word is Command {
  return (COMMANDS as readonly (string | undefined)[]).includes(word);
}

/** parseArgs' messages, shortened to what an operator needs ("unknown flag --foo"). */
function usageMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const unknown = /^Unknown option '([^']+)'/.exec(message);
  if (unknown !== null) return `unknown flag ${unknown[1] ?? ''}`;
  const missing = /^Option '(?:-\w, )?(--[\w-]+) <value>' argument missing/.exec(message);
  if (missing !== null) return `flag ${missing[1] ?? ''} needs a value`;
  return message;
}
