// The dockerd command line (/proc/<pid>/cmdline), for the settings the runtime-config check
// needs that need not be in daemon.json: systemd units often pass them as flags, as the seed's
// DOCKER_OPTS="--insecure-registry docker-registry:5000 ..." does. Parsed as pflag does for
// these flags (--name value, --name=value, -H value, -H=value, -Hvalue; booleans as --name or
// --name=<bool>); every other flag is skipped. Pure: argv in, settings out.
import { parseGoBool } from './commandLine.ts';

export interface DockerdArgs {
  /** --config-file: the daemon.json dockerd reads instead of /etc/docker/daemon.json. */
  configFile?: string;
  insecureRegistries: string[];
  hosts: string[];
  tls?: boolean;
  tlsverify?: boolean;
}

const STRING_FLAGS: Record<string, 'configFile' | 'insecureRegistries' | 'hosts'> = {
  'config-file': 'configFile',
  'insecure-registry': 'insecureRegistries',
  host: 'hosts',
  H: 'hosts',
};

/** argv[0] is the program. */
export function parseDockerdArgs(argv: readonly string[]): DockerdArgs {
  const args: DockerdArgs = { insecureRegistries: [], hosts: [] };
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--') break;
    let name: string;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
    } else if (arg.startsWith('-H') && arg.length >= 2) {
      name = 'H';
      const rest = arg.slice(2);
      inline = rest === '' ? undefined : rest.startsWith('=') ? rest.slice(1) : rest;
    } else continue;
    if (name === 'tls' || name === 'tlsverify') {
      const value = inline === undefined ? true : parseGoBool(inline);
      if (value !== undefined) args[name] = value;
      continue;
    }
    const target = STRING_FLAGS[name];
    if (target === undefined) continue;
    let value = inline;
    if (value === undefined) {
      value = argv[i + 1];
      i++;
    }
    if (value === undefined) break;
    if (target === 'configFile') args.configFile = value;
    else args[target].push(value);
  }
  return args;
}
