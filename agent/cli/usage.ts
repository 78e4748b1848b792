import { checkIds } from '../checks/registry.ts';
import { wrap } from '../sinks/report/textWrap.ts';
import { COMMANDS } from './parseCommandLine.ts';
import type { Command } from './parseCommandLine.ts';

const WIDTH = 80;
/** Where a flag's or command's description starts. */
const DESCRIPTION = ' '.repeat(22);

/** What each command does, as --help and `help <command>` say it. */
const COMMAND_HELP: Record<Command, { synopsis: string; text: string; flags: readonly Flag[] }> = {
  run: {
    synopsis: 'run',
    text: 'Run the agent: checks on their schedules, HTTP server (/, /metrics, /healthz, /readyz, /api/v1/findings).',
    flags: ['config', 'host-root', 'listen', 'node-name', 'kubeconfig', 'log-level', 'state-dir'],
  },
  check: {
    synopsis: 'check',
    text: 'Run every check once, print a report and exit: 0 no problem, 1 problems (warning/critical) or a check failed, 2 usage or configuration error.',
    flags: ['config', 'host-root', 'node-name', 'kubeconfig', 'log-level', 'output', 'only'],
  },
  config: {
    synopsis: 'config',
    text: 'Print the effective configuration and exit.',
    flags: [
      'config',
      'host-root',
      'listen',
      'node-name',
      'kubeconfig',
      'log-level',
      'state-dir',
      'output',
    ],
  },
  'scan-logs': {
    synopsis: 'scan-logs FILE...',
    text: 'Classify saved logs offline (syslog, messages, kern.log, dmesg, journalctl text/json/export output, journal files and directories, .gz, a directory of logs as /var/log): print each incident with its cause, first/last seen, count and evidence. Exit 0 none, 1 some (warning or critical), 2 usage error or an input that cannot be read.',
    flags: ['config', 'output'],
  },
};

type Flag =
  | 'config'
  | 'host-root'
  | 'listen'
  | 'node-name'
  | 'kubeconfig'
  | 'log-level'
  | 'state-dir'
  | 'output'
  | 'only';

function flagHelp(command?: Command): Record<Flag, [string, string]> {
  const output: Record<Command, string> = {
    run: '',
    check: 'table (default) or json',
    config: 'yaml or json',
    'scan-logs': 'table (default) or json',
  };
  return {
    config: ['--config FILE', 'YAML or JSON configuration file ($NODE_AUDITOR_CONFIG)'],
    'host-root': ['--host-root DIR', "Where the host's / is (default /; /host in a container)"],
    listen: ['--listen HOST:PORT', 'HTTP address of run (default 0.0.0.0:9746)'],
    'node-name': ['--node-name NAME', "This node's name (default $NODE_NAME, else host name)"],
    kubeconfig: [
      '--kubeconfig FILE',
      'Kubernetes API credentials (default in-cluster, else $KUBECONFIG)',
    ],
    'log-level': ['--log-level LEVEL', 'fatal, error, warn, info, debug, trace or silent'],
    'state-dir': [
      '--state-dir DIR',
      'Where run keeps its state across restarts (default /var/lib/node-auditor, created if missing)',
    ],
    output: [
      '--output FORMAT',
      command === undefined
        ? 'check, scan-logs: table (default) or json;\nconfig: yaml or json'
        : output[command],
    ],
    only: [
      '--only ID[,ID]',
      `${command === undefined ? 'check: run' : 'Run'} only these checks; may be repeated (${checkIds().join(', ')})`,
    ],
  };
}

/** "  --config FILE       YAML or ...": the name, then its text wrapped under DESCRIPTION. */
function entry(name: string, text: string): string {
  const lines = wrap(text, WIDTH, DESCRIPTION).join('\n').slice(DESCRIPTION.length);
  return `  ${name.padEnd(DESCRIPTION.length - 3)} ${lines}`;
}

const FOOTER = `Settings come from built-in defaults, then the config file, then
NODE_AUDITOR_* environment variables, then flags. See README.md.
`;

/** --help: every command and flag, in 80 columns. */
export function usage(): string {
  const flags = flagHelp();
  const commands = (['run', 'check', 'config'] as const).map((c) =>
    entry(COMMAND_HELP[c].synopsis, COMMAND_HELP[c].text),
  );
  commands.push(
    entry('help, version', 'Print this help, or the version (as --help, --version).'),
    entry('help COMMAND', "Print a command's help (as COMMAND --help)."),
    entry(COMMAND_HELP['scan-logs'].synopsis, COMMAND_HELP['scan-logs'].text),
  );
  return `Usage: node-auditor <command> [flags]

Commands:
${commands.join('\n')}

Flags:
${Object.values(flags)
  .map(([name, text]) => entry(name, text))
  .join('\n')}
${entry('-h, --help', 'Show this help')}
${entry('--version', 'Print the version')}

${FOOTER}`;
}

/** `help check`, `check --help`: what the command does and the flags it takes. */
export function commandUsage(command: Command): string {
  const help = COMMAND_HELP[command];
  const flags = flagHelp(command);
  return `Usage: node-auditor ${help.synopsis} [flags]

${wrap(help.text, WIDTH).join('\n')}

Flags:
${help.flags.map((flag) => entry(...flags[flag])).join('\n')}

${FOOTER}`;
}

/**
 * After a usage error: the error, then this, short enough that the error stays on the screen
 * (the whole usage is 30 lines).
 */
export function shortUsage(): string {
  return `Usage: node-auditor <command> [flags]
Commands: ${COMMANDS.map((c) => (c === 'scan-logs' ? 'scan-logs FILE...' : c)).join(', ')}
Run node-auditor --help for what each does and every flag.
`;
}
