import { checkIds } from '../checks/registry.ts';
import { wrap } from '../sinks/report/textWrap.ts';
import { COMMANDS } from './parseCommandLine.ts';

const WIDTH = 80;
/** Where a flag's or command's description starts. */
const DESCRIPTION = ' '.repeat(22);

/** --help: every command and flag, in 80 columns. */
export function usage(): string {
  const only = wrap(
    `check: run only these checks; may be repeated (${checkIds().join(', ')})`,
    WIDTH,
    DESCRIPTION,
  )
    .join('\n')
    .slice(DESCRIPTION.length);
  return `Usage: node-auditor <command> [flags]

Commands:
  run                 Run the agent: checks on their schedules, HTTP server
                      (/, /metrics, /healthz, /readyz, /api/v1/findings).
  check               Run every check once, print a report and exit:
                      0 no problem, 1 problems (warning/critical) or a check
                      failed, 2 usage or configuration error.
  config              Print the effective configuration and exit.
  help, version       Print this help, or the version (as --help, --version).
  scan-logs FILE...   Classify saved logs offline (syslog, messages, kern.log,
                      dmesg, journalctl text/json/export output, journal files
                      and directories, .gz, a directory of logs as /var/log):
                      print each incident with its cause, first/last seen,
                      count and evidence. Exit 0 none, 1 some (warning or
                      critical), 2 usage error or an input that cannot be read.

Flags:
  --config FILE       YAML or JSON configuration file ($NODE_AUDITOR_CONFIG)
  --host-root DIR     Where the host's / is (default /; /host in a container)
  --listen HOST:PORT  HTTP address of run (default 0.0.0.0:9746)
  --node-name NAME    This node's name (default $NODE_NAME, else host name)
  --kubeconfig FILE   Kubernetes API credentials (default in-cluster, else
                      $KUBECONFIG)
  --log-level LEVEL   fatal, error, warn, info, debug, trace or silent
  --state-dir DIR     Where run keeps its state across restarts (default
                      /var/lib/node-auditor, created if missing)
  --output FORMAT     check, scan-logs: table (default) or json;
                      config: yaml or json
  --only ID[,ID]      ${only}
  -h, --help          Show this help
  --version           Print the version

Settings come from built-in defaults, then the config file, then
NODE_AUDITOR_* environment variables, then flags. See README.md.
`;
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
