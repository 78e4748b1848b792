// The dockerd command line (/proc/<pid>/cmdline), for what the runtime-config check needs that
// need not be in daemon.json: systemd units often pass settings as flags, as the seed's
// DOCKER_OPTS="--insecure-registry docker-registry:5000 ..." does, and every flag given is one
// daemon.json may not set again (dockerd then refuses the file). Parsed as pflag does (--name
// value, --name=value, -H value, -H=value, -Hvalue, -Dl debug; booleans as --name or
// --name=<bool>), with dockerd's own table of which flags take a value (dockerdOptions.ts); a
// flag that table does not know (a newer dockerd's) takes the next argument when it is not a
// flag itself, since dockerd takes no other arguments. Pure: argv in, settings out.
import { parseGoBool } from './commandLine.ts';
import { dockerdFlagName, isDockerdBoolFlag } from './dockerdOptions.ts';

export interface DockerdArgs {
  /** --config-file: the daemon.json dockerd reads instead of /etc/docker/daemon.json. */
  configFile?: string;
  insecureRegistries: string[];
  hosts: string[];
  tls?: boolean;
  tlsverify?: boolean;
  /** Long names of every flag given, in order, once each (-H counts as host). */
  flags: string[];
}

/** argv[0] is the program. */
export function parseDockerdArgs(argv: readonly string[]): DockerdArgs {
  const args: DockerdArgs = { insecureRegistries: [], hosts: [], flags: [] };
  const take = (name: string, value: string | undefined): void => {
    if (!args.flags.includes(name)) args.flags.push(name);
    if (value === undefined) return;
    if (name === 'tls' || name === 'tlsverify') {
      const on = parseGoBool(value);
      if (on !== undefined) args[name] = on;
    } else if (name === 'config-file') args.configFile = value;
    else if (name === 'insecure-registry') args.insecureRegistries.push(value);
    else if (name === 'host') args.hosts.push(value);
  };
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') break;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const long = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const name = dockerdFlagName(long) ?? long;
      if (eq >= 0) take(name, arg.slice(eq + 1));
      else if (isDockerdBoolFlag(name)) take(name, 'true');
      else if (dockerdFlagName(long) === undefined && (argv[i + 1] ?? '-').startsWith('-'))
        take(name, undefined);
      else {
        take(name, argv[i + 1]);
        i++;
      }
      continue;
    }
    if (!arg.startsWith('-') || arg.length < 2) continue;
    // one-letter flags: booleans may be grouped (-Dl debug); the first that takes a value
    // takes the rest of the argument (-Htcp://..., -H=...) or the next one
    for (let k = 1; k < arg.length; k++) {
      const name = dockerdFlagName(arg[k] ?? '');
      if (name === undefined) break;
      const rest = arg.slice(k + 1);
      if (isDockerdBoolFlag(name)) {
        if (rest.startsWith('=')) {
          take(name, rest.slice(1));
          break;
        }
        take(name, 'true');
        continue;
      }
      if (rest !== '') take(name, rest.startsWith('=') ? rest.slice(1) : rest);
      else {
        take(name, argv[i + 1]);
        i++;
      }
      break;
    }
  }
  return args;
}
