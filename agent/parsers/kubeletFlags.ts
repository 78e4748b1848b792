// The kubelet's command line -> its flags, by the rules of the flag library it uses (spf13/pflag
// with cliflag.WordSepNormalizeFunc):
// - "--name=value" and "--name value"; a boolean flag takes no separate value: "--name" is true,
//   "--name=false" is false, and in "--name false" the "false" is a stray argument (the kubelet
//   refuses to start with one);
// - "_" and "-" in a name are the same ("--anonymous_auth" is "--anonymous-auth");
// - a flag given twice: the later one wins (pflag calls Set again), except --feature-gates,
//   whose occurrences add up (cliflag.MapStringBool merges each "A=true,B=false" into one map);
// - "--" ends the flags.
// Booleans are Go's strconv.ParseBool, integers strconv.ParseInt(s, 0, 32) (so "0x2817" is a
// port too). The kubelet would not start with a value these reject; such a value is reported as
// unparseable, never guessed.
import path from 'node:path';
import { parseGoBool } from './commandLine.ts';

/** Kubelet flags that are booleans: they never take the next argument as their value. */
const BOOLEAN_FLAGS = new Set([
  'add-dir-header',
  'alsologtostderr',
  'anonymous-auth',
  'authentication-token-webhook',
  'cgroups-per-qos',
  'cpu-cfs-quota',
  'enable-controller-attach-detach',
  'enable-debugging-handlers',
  'enable-load-reader',
  'enable-server',
  'exit-on-lock-contention',
  'experimental-allocatable-ignore-eviction',
  'experimental-check-node-capabilities-before-mount',
  'fail-cgroupv1',
  'fail-swap-on',
  'help',
  'kernel-memcg-notification',
  'keep-terminated-pod-volumes',
  'local-storage-capacity-isolation',
  'log-json-split-stream',
  'logtostderr',
  'make-iptables-util-chains',
  'one-output',
  'protect-kernel-defaults',
  'register-node',
  'register-schedulable',
  'rotate-certificates',
  'rotate-server-certificates',
  'seccomp-default',
  'serialize-image-pulls',
  'skip-headers',
  'skip-log-headers',
  'version',
  'windows-service',
]);

export interface KubeletFlag {
  /** Name without dashes, "_" as "-". */
  name: string;
  /** The value as given; "true" for a bare boolean flag. */
  value: string;
  /** Given without a value ("--anonymous-auth"). */
  bare: boolean;
}

export interface KubeletCommandLine {
  /** Every flag in order. */
  flags: KubeletFlag[];
  /** The occurrence of each flag that counts: the last one. */
  last: Map<string, KubeletFlag>;
  /** Arguments that are not flags. */
  positional: string[];
}

/**
 * The kubelet's own arguments (without the program name) when argv is a kubelet's command line:
 * "kubelet ..." under any path, or hyperkube's "hyperkube kubelet ..."; otherwise undefined.
 */
export function kubeletArguments(argv: readonly string[]): string[] | undefined {
  const program = argv[0];
  if (program === undefined) return undefined;
  const name = path.posix.basename(program);
  if (name === 'kubelet') return argv.slice(1);
  if (name === 'hyperkube' && argv[1] === 'kubelet') return argv.slice(2);
  return undefined;
}

function normalizeName(name: string): string {
  return name.replaceAll('_', '-');
}

export function parseKubeletFlags(args: readonly string[]): KubeletCommandLine {
  const flags: KubeletFlag[] = [];
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    if (arg === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (arg.startsWith('--') && arg.length > 2) {
      const body = arg.slice(2);
      const eq = body.indexOf('=');
      if (eq >= 0) {
        flags.push({
          name: normalizeName(body.slice(0, eq)),
          value: body.slice(eq + 1),
          bare: false,
        });
        continue;
      }
      const name = normalizeName(body);
      const next = args[i + 1];
      // A flag not known to be boolean takes the next argument, unless that is a flag itself
      // (pflag would take even that, for a non-boolean flag; such a command line is a typo).
      if (!BOOLEAN_FLAGS.has(name) && next !== undefined && !next.startsWith('-')) {
        flags.push({ name, value: next, bare: false });
        i++;
      } else {
        flags.push({ name, value: 'true', bare: true });
      }
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // Shorthands: the kubelet has "-v" (log level, takes a value) and "-h".
      const letter = arg[1] as string;
      const rest = arg.slice(2);
      if (letter === 'v') {
        const value = rest.startsWith('=') ? rest.slice(1) : rest !== '' ? rest : args[++i];
        flags.push({ name: 'v', value: value ?? '', bare: false });
      } else {
        flags.push({ name: letter, value: 'true', bare: true });
      }
      continue;
    }
    positional.push(arg);
  }
  const last = new Map<string, KubeletFlag>();
  for (const flag of flags) last.set(flag.name, flag);
  return { flags, last, positional };
}

/** A flag as the kubelet saw it, written one way: "--name=value" ("--name" when bare). */
export function flagText(flag: KubeletFlag): string {
  return flag.bare ? `--${flag.name}` : `--${flag.name}=${flag.value}`;
}

/** Go's strconv.ParseInt(text, 0, 32): decimal, 0x hex, 0o / leading-0 octal, 0b binary. */
export function parseGoInt32(text: string): number | undefined {
  const match = /^([+-]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)$/.exec(
    text,
  );
  if (match === null) return undefined;
  const digits = match[2] as string;
  let magnitude: number;
  if (/^0[xX]/.test(digits)) magnitude = Number.parseInt(digits.slice(2), 16);
  else if (/^0[oO]/.test(digits)) magnitude = Number.parseInt(digits.slice(2), 8);
  else if (/^0[bB]/.test(digits)) magnitude = Number.parseInt(digits.slice(2), 2);
  else if (digits.length > 1 && digits.startsWith('0'))
    magnitude = Number.parseInt(digits.slice(1), 8);
  else magnitude = Number.parseInt(digits, 10);
  const value = match[1] === '-' ? -magnitude : magnitude;
  return value >= -(2 ** 31) && value < 2 ** 31 ? value : undefined;
}

/**
 * "A=true,B=false" (one --feature-gates value) -> gate -> enabled, or undefined when a pair is
 * not NAME=BOOL (the kubelet refuses such a value).
 */
export function parseFeatureGates(text: string): Map<string, boolean> | undefined {
  const gates = new Map<string, boolean>();
  for (const pair of text.split(',')) {
    const trimmed = pair.trim();
    if (trimmed === '') continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) return undefined;
    const enabled = parseGoBool(trimmed.slice(eq + 1).trim());
    if (enabled === undefined) return undefined;
    gates.set(trimmed.slice(0, eq).trim(), enabled);
  }
  return gates;
}
