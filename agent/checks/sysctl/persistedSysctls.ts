// What the host's sysctl configuration files set, as the two programs that apply them see it.
//
// Both read *.conf files from the directories below: a name found in an earlier directory hides
// the same name in later ones (/etc beats /run beats /usr/local/lib beats /usr/lib and /lib),
// and the surviving files are applied sorted by file name, whatever their directory. A file
// that is a symlink to /dev/null masks that name. For both, the last explicit assignment of a
// key wins, an explicit key beats any glob whatever the file order, "-key" keeps globs away
// from that key (that name only: a glob after "-" is no pattern), and among globs the last
// wins. Then they differ:
//   - procps `sysctl --system` also reads /etc/sysctl.conf, last, and a "-key" leaves an
//     explicit assignment of the key alone;
//   - systemd-sysctl (what applies them at boot on a systemd host) does not read
//     /etc/sysctl.conf (distributions link it in as /etc/sysctl.d/99-sysctl.conf), and a "-key"
//     after an explicit assignment cancels it (the key is then not set at all).
// test/checks/sysctlPersistenceRealTools.test.ts runs both programs on the same trees.
import { basename } from 'node:path/posix';
import { describeError } from '../../errors.ts';
import { byCodeUnit } from '../../findings/finding.ts';
import type { HostRoot } from '../../host/hostRoot.ts';
import { isSysctlGlob, parseSysctlConf, sysctlKeyMatches } from '../../parsers/sysctlConf.ts';
import type { SysctlConf, SysctlConfLineError } from '../../parsers/sysctlConf.ts';

export const SYSCTL_DIRS = [
  '/etc/sysctl.d',
  '/run/sysctl.d',
  '/usr/local/lib/sysctl.d',
  '/usr/lib/sysctl.d',
  '/lib/sysctl.d',
] as const;
export const SYSCTL_CONF = '/etc/sysctl.conf';
/** Where systemd installs systemd-sysctl; its presence means it applies the files at boot. */
const SYSTEMD_SYSCTL = ['/usr/lib/systemd/systemd-sysctl', '/lib/systemd/systemd-sysctl'];
/** A host with a thousand drop-ins must not hold a thousand files in memory at once. */
const READ_CONCURRENCY = 4;

export type Applier = 'systemd-sysctl' | 'sysctl --system';

export interface PersistedAssignment {
  /** The key as the file writes it (canonical dotted form), possibly a glob. */
  pattern: string;
  value: string;
  /** Host path of the file (as named in its directory, before symlinks). */
  file: string;
  line: number;
}

/** What one applier makes of one key. */
export interface PersistedView {
  applier: Applier;
  /** The assignment that takes effect, if any. */
  winner: PersistedAssignment | undefined;
  /** The "-key" line that leaves the key unset (systemd-sysctl: one after the last explicit assignment). */
  excludedBy?: { key: string; file: string; line: number };
}

export interface SysctlConfigFile {
  path: string;
  /** Where the name actually points, when it is a symlink (e.g. 99-sysctl.conf -> /etc/sysctl.conf). */
  resolved: string;
  /** A link to /dev/null: the name is masked, nothing in it applies. */
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

interface Entry {
  assignment: PersistedAssignment;
  glob: boolean;
  /** Read from /etc/sysctl.conf's own pass at the end (procps only). */
  tail: boolean;
  /** Position in the order the files are read: [file, line]. */
  at: readonly [number, number];
}

/**
 * A "-key" line: no glob sets that key. The key is a name, never a pattern: "-kernel.pan*"
 * excludes only a key named so (none), as procps 4 and systemd-sysctl read it.
 */
interface Exclusion {
  key: string;
  tail: boolean;
  at: readonly [number, number];
}

function after(a: readonly [number, number], b: readonly [number, number]): boolean {
  return a[0] > b[0] || (a[0] === b[0] && a[1] > b[1]);
}

/** One file in the order the appliers read it: its name, and what it says (null when masked). */
interface SourceFile {
  path: string;
  resolved: string;
  masked: boolean;
  conf: SysctlConf | null;
}

export class PersistedSysctls {
  readonly files: SysctlConfigFile[];
  readonly unreadable: UnreadableConfig[];
  readonly invalid: InvalidConfig[];
  /** What applies the files at boot on this host. */
  readonly bootApplier: Applier;
  private readonly sources: readonly SourceFile[];
  private readonly entries: Entry[] = [];
  private readonly exclusions: Exclusion[] = [];

  /** `sources`: the drop-ins in application order, then /etc/sysctl.conf if present. */
  constructor(
    sources: readonly SourceFile[],
    unreadable: UnreadableConfig[],
    bootApplier: Applier,
  ) {
    this.sources = sources;
    this.unreadable = unreadable;
    this.bootApplier = bootApplier;
    this.files = sources.map(({ path, resolved, masked }) => ({ path, resolved, masked }));
    this.invalid = [];
    sources.forEach(({ path, conf }, i) => {
      if (conf === null) return;
      if (conf.binary || conf.invalid.length > 0)
        this.invalid.push({ path, binary: conf.binary, lines: conf.invalid });
      const tail = path === SYSCTL_CONF;
      for (const a of conf.assignments) {
        this.entries.push({
          assignment: { pattern: a.key, value: a.value, file: path, line: a.line },
          glob: isSysctlGlob(a.key),
          tail,
          at: [i, a.line],
        });
      }
      for (const x of conf.exclusions) this.exclusions.push({ key: x.key, tail, at: [i, x.line] });
    });
  }

  /**
   * The configuration as it would be with `text` written at `path`, a file of /etc/sysctl.d
   * (the first directory, so its name hides the same name anywhere else): what remediation
   * checks before it writes its own file, with the same precedence rules as the check.
   */
  withFile(path: string, text: string): PersistedSysctls {
    const name = basename(path);
    const dropIns = this.sources.filter((f) => f.path !== SYSCTL_CONF && basename(f.path) !== name);
    const at = dropIns.findIndex((f) => byCodeUnit(basename(f.path), name) > 0);
    const ours: SourceFile = { path, resolved: path, masked: false, conf: parseSysctlConf(text) };
    dropIns.splice(at === -1 ? dropIns.length : at, 0, ours);
    const conf = this.sources.filter((f) => f.path === SYSCTL_CONF);
    return new PersistedSysctls([...dropIns, ...conf], this.unreadable, this.bootApplier);
  }

  /** Every assignment that applies to a key, in the order `sysctl --system` applies them. */
  assignmentsOf(key: string): PersistedAssignment[] {
    return this.entries
      .filter((e) => sysctlKeyMatches(e.assignment.pattern, key))
      .map((e) => e.assignment);
  }

  /**
   * What `sysctl --system` (procps 4) sets. It collects every setting, /etc/sysctl.conf's last,
   * then writes them in that order, except that a glob skips each key another line names,
   * explicitly or as "-key", before or after it. (procps before 4.0 does not expand globs: it
   * sets nothing for a key only a glob covers.)
   */
  procps(key: string): PersistedView {
    const candidates = this.entries.filter((e) => sysctlKeyMatches(e.assignment.pattern, key));
    const explicit = candidates.filter((e) => !e.glob).at(-1);
    const excluded = this.exclusions.some((x) => x.key === key);
    return {
      applier: 'sysctl --system',
      winner: explicit?.assignment ?? (excluded ? undefined : candidates.at(-1)?.assignment),
    };
  }

  /**
   * What systemd-sysctl sets: one setting per key, a later line for it replacing the earlier
   * ("-key" too, which leaves it unset); globs skip keys set or excluded; no tail pass.
   */
  systemd(key: string): PersistedView {
    const candidates = this.entries.filter(
      (e) => !e.tail && sysctlKeyMatches(e.assignment.pattern, key),
    );
    const explicit = candidates.filter((e) => !e.glob).at(-1);
    const exclusion = this.exclusions.filter((x) => !x.tail && x.key === key).at(-1);
    const winner =
      explicit !== undefined && (exclusion === undefined || after(explicit.at, exclusion.at))
        ? explicit.assignment
        : exclusion !== undefined
          ? undefined
          : candidates.at(-1)?.assignment;
    const file = exclusion === undefined ? undefined : this.sources[exclusion.at[0]]?.path;
    if (winner !== undefined || exclusion === undefined || file === undefined)
      return { applier: 'systemd-sysctl', winner };
    return {
      applier: 'systemd-sysctl',
      winner,
      excludedBy: { key: exclusion.key, file, line: exclusion.at[1] },
    };
  }

  /** The views that decide whether a value persists: boot first, then `sysctl --system` if it differs. */
  views(key: string): PersistedView[] {
    return this.bootApplier === 'systemd-sysctl'
      ? [this.systemd(key), this.procps(key)]
      : [this.procps(key)];
  }
}

/** The order files are applied in (names only: the precedence rules, without I/O). */
function applicationOrder(dirs: readonly { dir: string; names: readonly string[] }[]): string[] {
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
  const dropIns = applicationOrder(listings);
  const paths = [...dropIns, SYSCTL_CONF];
  const contents = await mapLimit(paths, READ_CONCURRENCY, async (path) => {
    try {
      const resolved = await host.resolve(path);
      if (resolved === '/dev/null') return { path, resolved, masked: true, text: null };
      return {
        path,
        resolved,
        masked: false,
        text: await host.readText(resolved, { alreadyResolved: true }),
      };
    } catch (error) {
      unreadable.push({ path, error: describeError(error) });
      return { path, resolved: path, masked: false, text: null };
    }
  });
  const sources: SourceFile[] = [];
  for (const { path, resolved, masked, text } of contents) {
    // missing (/etc/sysctl.conf often is) or unreadable (recorded): not a file that applies
    if (text === null && !masked) continue;
    sources.push({ path, resolved, masked, conf: text === null ? null : parseSysctlConf(text) });
  }
  const bootApplier = (await anyExists(host, SYSTEMD_SYSCTL))
    ? 'systemd-sysctl'
    : 'sysctl --system';
  return new PersistedSysctls(sources, unreadable, bootApplier);
}

async function anyExists(host: HostRoot, paths: readonly string[]): Promise<boolean> {
  for (const path of paths) {
    if (await host.exists(path)) return true;
  }
  return false;
}

/** Like Promise.all(items.map(fn)), at most `limit` at a time, results in order. */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
