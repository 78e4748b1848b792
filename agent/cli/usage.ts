import { checkIds } from '../checks/registry.ts';

export function usage(): string {
  return `Usage: node-auditor <command> [flags]

Commands:
  run                 Run the agent: checks on their schedules, HTTP server
                      (/, /metrics, /healthz, /readyz, /api/v1/findings).
  check               Run every check once, print a report and exit:
                      0 no problem, 1 problems (warning/critical) or a check
                      failed, 2 usage or configuration error.
  config              Print the effective configuration and exit.
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
  --output FORMAT     check, scan-logs: table (default) or json;
                      config: yaml or json
  --only ID[,ID]      check: run only these checks (${checkIds().join(', ')})
  -h, --help          Show this help
  --version           Print the version

Settings come from built-in defaults, then the config file, then
NODE_AUDITOR_* environment variables, then flags. See README.md.
`;
}
