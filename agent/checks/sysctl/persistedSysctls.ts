// What the host's sysctl configuration files set, in the order `sysctl --system` applies them
// (procps; systemd-sysctl uses the same directories and order but skips /etc/sysctl.conf):
//   - *.conf files from the directories below; a name found in an earlier directory hides the
//     same name in later ones (/etc beats /run beats /usr/local/lib beats /usr/lib and /lib);
//   - the surviving files are applied sorted by file name, whatever their directory;
//   - /etc/sysctl.conf is applied last;
//   - within and across files the last assignment wins.
// A file that is a symlink to /dev/null masks that name (systemd's convention).
import { describeError } from '../../errors.ts';
import { byCodeUnit } from '../../findings/finding.ts';
import { HostReadError } from '../../host/hostRoot.ts';
import type { HostRoot } from '../../host/hostRoot.ts';
import { parseSysctlConf, sysctlKeyMatches } from '../../parsers/sysctlConf.ts';
import type { SysctlConfLineError } from '../../parsers/sysctlConf.ts';

export const SYSCTL_DIRS = [
  '/etc/sysctl.d',
  '/run/sysctl.d',
  '/usr/local/lib/sysctl.d',
  '/usr/lib/sysctl.d',
  '/lib/sysctl.d',
] as const;
export const SYSCTL_CONF = '/etc/sysctl.conf';

export interface PersistedAssignment {
  value: string;
  /** Host path of the file (as named in its directory, before symlinks). */
  file: string;
  line: number;
}

export interface SysctlConfigFile {
  path: string;
  /** Where the name actually points, when it is a symlink (e.g. 99-sysctl.conf -> /etc/sysctl.conf). */
  resolved: string;
  /** Applied files in order; masked ones (-> /dev/null) are listed but not applied. */
  masked: boolean;
}

export interface UnreadableConfig {
  path: string;
  error: string;
}

export interface InvalidConfig {
  path: string;
  binary: boolean;
  lines: SysctlConfLineError[];
}

export class PersistedSysctls {
  readonly files: SysctlConfigFile[];
  readonly unreadable: UnreadableConfig[];
  readonly invalid: InvalidConfig[];
  private readonly applied: { key: string; assignment: PersistedAssignment }[];

  constructor(
    files: SysctlConfigFile[],
    applied: { key: string; assignment: PersistedAssignment }[],
    unreadable: UnreadableConfig[],
    invalid: InvalidConfig[],
  ) {
    this.files = files;
    this.applied = applied;
    this.unreadable = unreadable;
    this.invalid = invalid;
  }

  /** Every assignment that applies to a key, in application order (the last one wins). */
  assignmentsOf(key: string): PersistedAssignment[] {
    return this.applied.filter((a) => sysctlKeyMatches(a.key, key)).map((a) => a.assignment);
  }

  /** The value `sysctl --system` would set, and where from; undefined if nothing sets it. */
  effective(key: string): PersistedAssignment | undefined {
    return this.assignmentsOf(key).at(-1);
  }
}

/** The order files are applied in: pure, so precedence is testable on names alone. */
export function applicationOrder(
  dirs: readonly { dir: string; names: readonly string[] }[],
): string[] {
  const byName = new Map<string, string>();
  for (const { dir, names } of dirs) {
    for (const name of names) {
      if (name.endsWith('.conf') && !byName.has(name)) byName.set(name, `${dir}/${name}`);
    }
  }
  // Byte order, like strcmp in procps and systemd (not locale order).
  return [...byName.keys()].sort(byCodeUnit).map((name) => byName.get(name) as string);
}

export async function readPersistedSysctls(host: HostRoot): Promise<PersistedSysctls> {
  const unreadable: UnreadableConfig[] = [];
  const invalid: InvalidConfig[] = [];
  const listings = await Promise.all(
    SYSCTL_DIRS.map(async (dir) => {
      try {
        const entries = await host.listDir(dir);
        return { dir, names: (entries ?? []).filter((e) => !e.isDirectory).map((e) => e.name) };
      } catch (error) {
        unreadable.push({ path: dir, error: describeError(error) });
        return { dir, names: [] };
      }
    }),
  );
  const paths = [...applicationOrder(listings), SYSCTL_CONF];
  const contents = await Promise.all(
    paths.map(async (path) => {
      try {
        const resolved = await host.resolve(path);
        if (resolved === '/dev/null') return { path, resolved, masked: true, text: null };
        // Already resolved inside the root: read the target itself, not the link again.
        return {
          path,
          resolved,
          masked: false,
          text: await host.readText(resolved, { resolveLinks: false }),
        };
      } catch (error) {
        const message = error instanceof HostReadError ? error.message : describeError(error);
        unreadable.push({ path, error: message });
        return { path, resolved: path, masked: false, text: null };
      }
    }),
  );
  const files: SysctlConfigFile[] = [];
  const applied: { key: string; assignment: PersistedAssignment }[] = [];
  for (const { path, resolved, masked, text } of contents) {
    if (masked) {
      files.push({ path, resolved, masked });
      continue;
    }
    if (text === null) continue; // missing (/etc/sysctl.conf often is) or unreadable (recorded)
    files.push({ path, resolved, masked });
    const parsed = parseSysctlConf(text);
    if (parsed.binary || parsed.invalid.length > 0) {
      invalid.push({ path, binary: parsed.binary, lines: parsed.invalid });
    }
    for (const a of parsed.assignments) {
      applied.push({ key: a.key, assignment: { value: a.value, file: path, line: a.line } });
    }
  }
  return new PersistedSysctls(files, applied, unreadable, invalid);
}
