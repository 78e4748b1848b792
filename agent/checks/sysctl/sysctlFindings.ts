// From what the sysctl check read to findings and fix texts. Pure: no I/O.
import path from 'node:path';
import { draft } from '../../findings/finding.ts';
import type { FindingDraft, Severity } from '../../findings/finding.ts';
import { formatPortRanges, parsePortRanges } from '../../parsers/portRanges.ts';
import { isSysctlGlob, sysctlProcPath } from '../../parsers/sysctlConf.ts';
import {
  describeExpectation,
  evaluateExpectation,
  normalizeValue,
  parseExpectation,
  parseInteger,
  valueToWrite,
} from '../../parsers/sysctlExpectation.ts';
import type { Expectation } from '../../parsers/sysctlExpectation.ts';
import { SYSCTL_CONF } from './persistedSysctls.ts';
import type {
  Applier,
  PersistedAssignment,
  PersistedSysctls,
  SysctlConfigFile,
} from './persistedSysctls.ts';
import type { ProfileEntry } from './sysctlProfile.ts';

/** What one applier of the config files makes of a key, judged against the profile. */
export interface ViewState {
  applier: Applier;
  winner: PersistedAssignment | undefined;
  /** The value it leaves (the winner's, else the boot default) meets the profile. */
  ok: boolean;
}

/** One profiled key that exists: its runtime value and what the config files do to it. */
export interface KeyState {
  key: string;
  entry: ProfileEntry;
  expectation: Expectation;
  /** Runtime value from /proc/sys. */
  value: string;
  /** Every assignment of the key, in the order sysctl --system applies them. */
  assignments: PersistedAssignment[];
  /** Boot first (systemd-sysctl on a systemd host), then sysctl --system when it differs. */
  views: ViewState[];
}

export function judgeViews(
  persisted: PersistedSysctls,
  key: string,
  entry: ProfileEntry,
  expectation: Expectation,
): ViewState[] {
  return persisted.views(key).map(({ applier, winner }) => ({
    applier,
    winner,
    ok:
      winner !== undefined
        ? evaluateExpectation(expectation, winner.value).ok
        : entry.bootDefault !== undefined && evaluateExpectation(expectation, entry.bootDefault).ok,
  }));
}

export interface FixContext {
  persistFile: string;
  files: readonly SysctlConfigFile[];
}

export function outOfProfileFinding(s: KeyState, fix: FixContext): FindingDraft {
  const { key, entry, expectation, value } = s;
  const want = describeExpectation(expectation);
  const verdict = evaluateExpectation(expectation, value);
  if (!verdict.ok && verdict.problem !== 'mismatch') return unfitValueFinding(s, verdict.problem);
  const [boot] = s.views;
  const bad = s.views.find((view) => !view.ok);
  const where =
    boot?.winner === undefined
      ? (nothingAtBoot(s) ?? 'No sysctl configuration file sets it.')
      : bad === undefined
        ? `${boot.winner.file} sets ${show(boot.winner.value)}, but that has not been applied since (run sysctl --system).`
        : `${bad.winner?.file ?? boot.winner.file} (line ${bad.winner?.line ?? boot.winner.line}) sets ${show(bad.winner?.value ?? boot.winner.value)}, which is out of profile too.`;
  const remediation =
    bad === undefined
      ? 'Apply the persisted configuration:\n    sysctl --system'
      : writeFix(key, valueToWrite(expectation, value, entry.recommended), bad.winner, fix);
  return draft('SysctlOutOfProfile', key, {
    severity: entry.severity,
    title: `${key} is ${show(value)}, needs ${want}`,
    message: squeeze(
      `${key} is ${show(value)}; the node profile needs ${want}. ${entry.reason} ${where}`,
    ),
    evidence: evidenceOf(s),
    remediation: { summary: remediation, automatic: false },
  });
}

/**
 * The runtime value is not of the form the expectation compares (not an integer for ">=", not a
 * port list for "includes"). The kernel keeps such a key in one form, so writing a value cannot
 * be the fix (sysctl --system would not change what is read): either this is not the kernel's
 * /proc/sys, or `expect` does not fit the key.
 */
function unfitValueFinding(s: KeyState, problem: 'not-integer' | 'not-port-list'): FindingDraft {
  const { key, entry, expectation, value } = s;
  const form = problem === 'not-integer' ? 'an integer' : 'a port list';
  return draft('SysctlOutOfProfile', key, {
    severity: entry.severity,
    title: `${key} is ${show(value)}, needs ${describeExpectation(expectation)}`,
    message: squeeze(
      `${key} is ${show(value)}, not ${form}, so the node profile's "${expectation.text}" cannot be judged. ${entry.reason} A kernel gives ${key} in one form, and writing a value (sysctl --system) cannot change it: either ${sysctlProcPath(key)} under the host root is not the kernel's (a wrong --host-root, or the host's /proc not mounted there), or "${expectation.text}" does not fit ${key}.`,
    ),
    evidence: evidenceOf(s),
    remediation: {
      summary: `Compare with "sysctl ${key}" run on the node. If it shows ${show(value)} too, change checks.sysctl.profile.${key}.expect to fit that form; if not, point --host-root at the host's / and mount the host's /proc at its /proc.`,
      automatic: false,
    },
  });
}

/** The runtime value meets the profile: will it still after a reboot or sysctl --system? */
export function persistenceFinding(s: KeyState, fix: FixContext): FindingDraft | undefined {
  const { key, entry, expectation, value } = s;
  const want = describeExpectation(expectation);
  const bad = s.views.find((view) => !view.ok);
  // Persist what the node runs now: it meets the profile, and may be tuned above the minimum.
  const persistNow = () => writeFix(key, value, bad?.winner, fix);
  if (bad === undefined) {
    const differs = s.views.find(
      (view) => view.winner !== undefined && !sameValue(expectation, view.winner.value, value),
    );
    if (differs?.winner === undefined) return undefined;
    return draft('SysctlPersistedDiffers', key, {
      severity: 'info',
      title: `${key} is ${show(value)}, ${path.basename(differs.winner.file)} sets ${show(differs.winner.value)}`,
      message: `${key} is ${show(value)} at runtime but ${differs.winner.file} sets ${show(differs.winner.value)}; both meet the profile (${want}), ${when(s, differs)} changes it.`,
      evidence: evidenceOf(s),
      remediation: {
        summary: `Make the runtime and persisted values agree: either run sysctl --system, or set ${key} = ${value} in ${differs.winner.file}.`,
        automatic: false,
      },
    });
  }
  if (bad.winner === undefined) {
    const nobody =
      s.views.length > 1
        ? `systemd-sysctl sets nothing for it at boot: it reverts at the next reboot. ${nothingAtBoot(s) ?? ''}`
        : 'no sysctl configuration file sets it: it reverts at the next reboot.';
    return draft('SysctlNotPersisted', key, {
      severity: entry.notPersistedSeverity,
      title: `${key} = ${show(value)} is not persisted`,
      message: squeeze(
        `${key} meets the profile now (${show(value)}), but ${nobody} ${entry.reason}`,
      ),
      evidence: [
        ...evidenceOf(s),
        ...(s.assignments.length === 0 ? ['not set in any sysctl.d file or /etc/sysctl.conf'] : []),
      ],
      remediation: { summary: persistNow(), automatic: false },
    });
  }
  return draft('SysctlPersistedDiffers', key, {
    severity: 'warning',
    title: `${key} is ${show(value)}, ${path.basename(bad.winner.file)} sets ${show(bad.winner.value)}`,
    message: squeeze(
      `${key} is ${show(value)} at runtime but ${bad.winner.file} (line ${bad.winner.line}) sets ${show(bad.winner.value)}${s.views.length > 1 ? ` for ${bad.applier}` : ''}, which does not meet the profile (${want}): ${when(s, bad)} breaks it. ${entry.reason}`,
    ),
    evidence: evidenceOf(s),
    remediation: { summary: persistNow(), automatic: false },
  });
}

export function missingKeyFinding(
  key: string,
  entry: ProfileEntry,
  expectation: Expectation,
  /** The net.bridge.* keys that do exist: br_netfilter is loaded, and has no such key. */
  loaded?: { brNetfilterKeys: string[] },
): FindingDraft {
  const need = `The profile needs ${describeExpectation(expectation)}. ${entry.reason}`;
  if (loaded !== undefined) {
    const { brNetfilterKeys: keys } = loaded;
    return draft('SysctlKeyMissing', key, {
      severity: entry.severity,
      title: `${key} does not exist on this kernel`,
      message: squeeze(
        `${sysctlProcPath(key)} is absent, though br_netfilter is loaded (${keys.join(', ')} ${keys.length === 1 ? 'exists' : 'exist'}): this kernel's br_netfilter has no ${key}. ${need}`,
      ),
      evidence: [
        `${sysctlProcPath(key)}: absent`,
        ...keys.map((k) => `${sysctlProcPath(k)}: present`),
      ],
      remediation: {
        summary: `Check the spelling of ${key} in checks.sysctl.profile. If it is right, this kernel does not offer it: run a kernel that does, or set checks.sysctl.profile.${key}.enabled: false if this node does not need it.`,
        automatic: false,
      },
    });
  }
  return draft('SysctlKeyMissing', key, {
    severity: entry.severity,
    title: `${key} does not exist on this kernel`,
    message: squeeze(
      `${sysctlProcPath(key)} is absent: the kernel module that provides ${key} is not loaded, or this kernel does not have it. ${need}`,
    ),
    evidence: [`${sysctlProcPath(key)}: absent`],
    remediation: {
      summary: `Load the module that provides ${key} (and list it in /etc/modules-load.d/ so it loads at boot), then run sysctl --system.`,
      automatic: false,
    },
  });
}

export function brNetfilterFinding(
  missing: { key: string; entry: ProfileEntry }[],
  persistFile: string,
): FindingDraft {
  const severity: Severity = missing.some(({ entry }) => entry.severity === 'critical')
    ? 'critical'
    : missing.some(({ entry }) => entry.severity === 'warning')
      ? 'warning'
      : 'info';
  const lines = missing.map(({ key, entry }) => {
    const expectation = parseExpectation(entry.expect ?? '');
    const value =
      typeof expectation === 'string'
        ? undefined
        : valueToWrite(expectation, undefined, entry.recommended);
    return `    ${key} = ${value ?? '1'}`;
  });
  return draft('BrNetfilterNotLoaded', undefined, {
    severity,
    title: 'br_netfilter module not loaded',
    message: `${missing.map((m) => m.key).join(', ')} ${missing.length === 1 ? 'does' : 'do'} not exist: the br_netfilter kernel module is not loaded, so bridged pod traffic bypasses iptables (kube-proxy Services and NetworkPolicies).`,
    evidence: missing.map(({ key }) => `${sysctlProcPath(key)}: absent`),
    remediation: {
      summary: [
        'Load br_netfilter now and at every boot:',
        '    modprobe br_netfilter',
        '    echo br_netfilter > /etc/modules-load.d/br_netfilter.conf',
        `then persist the bridge settings in ${persistFile}:`,
        ...lines,
        'and apply them: sysctl --system',
      ].join('\n'),
      automatic: false,
    },
  });
}

/**
 * br_netfilter is loaded (the net.bridge.* keys exist) but nothing loads it at boot: after a
 * reboot the keys are gone, and bridged pod traffic bypasses iptables, until something loads it.
 */
export function brNetfilterNotPersistedFinding(
  keys: string[],
  dirs: readonly string[],
): FindingDraft {
  return draft('BrNetfilterNotPersisted', undefined, {
    severity: 'warning',
    title: 'br_netfilter is loaded now but not at boot',
    message: `br_netfilter is loaded (${keys.join(', ')} exist), but no modules-load.d file or /etc/modules loads it at boot and the kernel does not have it built in: after a reboot ${keys.length === 1 ? 'that key is' : 'those keys are'} gone and bridged pod traffic bypasses iptables (kube-proxy Services, NetworkPolicies) until something loads it again (dockerd does when it starts; containerd and CRI-O do not).`,
    evidence: [
      `br_netfilter listed in none of ${dirs.join(', ')}, /etc/modules`,
      'not built into the running kernel (not in its modules.builtin; /sys/module/br_netfilter/initstate exists, or sysfs cannot be read)',
    ],
    remediation: {
      summary: [
        'Load br_netfilter at every boot:',
        '    echo br_netfilter > /etc/modules-load.d/br_netfilter.conf',
      ].join('\n'),
      automatic: false,
    },
  });
}

export function configFileFindings(
  persisted: PersistedSysctls,
  profiledKeys: string[],
): FindingDraft[] {
  const findings: FindingDraft[] = [];
  for (const { path: file, error } of persisted.unreadable) {
    findings.push(
      draft('HostFileUnreadable', file, {
        severity: 'warning',
        title: `cannot read ${file}`,
        message: `${error}. The sysctl settings it holds are unknown, so what is persisted may be reported wrongly.`,
        evidence: [error],
      }),
    );
  }
  for (const { path: file, binary, lines } of persisted.invalid) {
    // A broken line that was meant to set a profiled key is a real risk (the operator believes
    // it is persisted); other broken lines are worth knowing, not worth paging.
    const touchesProfile =
      binary || lines.some((l) => profiledKeys.some((k) => l.text.includes(k)));
    findings.push(
      draft('SysctlConfigInvalid', file, {
        severity: touchesProfile ? 'warning' : 'info',
        title: binary ? `${file} is not a text file` : `${file} has lines sysctl cannot apply`,
        message: binary
          ? `${file} contains binary data (NUL bytes); sysctl --system cannot apply it.`
          : `${lines.length} line${lines.length === 1 ? '' : 's'} of ${file} cannot be applied by sysctl --system.`,
        evidence: binary
          ? [`${file}: binary content`]
          : lines.slice(0, 10).map((l) => `${file}:${l.line}: ${l.reason}: ${l.text}`),
        remediation: {
          summary: `Fix or remove the lines listed in ${file}, then run sysctl --system.`,
          automatic: false,
        },
      }),
    );
  }
  return findings;
}

/**
 * Exact lines to write, in a file that will actually win for both appliers, without hiding
 * another file's settings:
 * - the winning line is in /etc (the administrator's): change it, or for a glob line add an
 *   explicit one right after it (the glob still serves every other match);
 * - it is in a file outside /etc applied after the persist file: shadow that file with a copy
 *   of the same name in /etc/sysctl.d and edit the copy;
 * - otherwise add the line to the persist file, unless a file of that very name exists outside
 *   /etc: creating ours would hide all of its settings, so copy it first.
 */
export function writeFix(
  key: string,
  value: string | undefined,
  winner: PersistedAssignment | undefined,
  fix: FixContext,
): string {
  const line = `    ${key} = ${value ?? '<value>'}`;
  const apply = 'then apply it: sysctl --system';
  const persistName = path.basename(fix.persistFile);
  if (winner !== undefined) {
    const glob = isSysctlGlob(winner.pattern);
    const edit = glob
      ? `add this line right after line ${winner.line} (which sets ${winner.pattern})`
      : `change line ${winner.line} to`;
    if (winner.file.startsWith('/etc/')) return `In ${winner.file}, ${edit}:\n${line}\n${apply}`;
    const winnerName = path.basename(winner.file);
    if (winnerName >= persistName) {
      return `${winner.file} (not under /etc) sets it and is applied after ${fix.persistFile}. Copy it to /etc/sysctl.d/${winnerName}, which takes its place, and in the copy ${edit}:\n${line}\n${apply}`;
    }
  }
  const sameName = fix.files.find(
    (f) => !f.masked && !f.path.startsWith('/etc/') && path.basename(f.path) === persistName,
  );
  if (sameName !== undefined) {
    return `${sameName.path} has the same name as ${fix.persistFile}, which would hide it. Copy it to ${fix.persistFile} first, then add this line to the copy:\n${line}\n${apply}`;
  }
  return `Add this line to ${fix.persistFile}:\n${line}\n${apply}`;
}

function evidenceOf({ key, value, assignments, views }: KeyState): string[] {
  const lines = [
    `${sysctlProcPath(key)} = ${show(value)}`,
    ...assignments.map((a) => `${a.file}:${a.line}: ${a.pattern} = ${show(a.value)}`),
  ];
  // On a systemd host the two appliers can disagree: say what each does.
  if (views.length > 1) {
    for (const { applier, winner } of views) {
      lines.push(
        `${applier} applies ${winner === undefined ? 'nothing' : `${show(winner.value)} (${winner.file}:${winner.line})`}`,
      );
    }
  }
  return lines;
}

/** "the next reboot", "sysctl --system", or both when one program does both. */
function when(s: KeyState, view: ViewState): string {
  if (s.views.length === 1) return 'the next reboot or sysctl --system';
  return view.applier === 'systemd-sysctl' ? 'the next reboot' : 'the next sysctl --system';
}

/**
 * Why systemd-sysctl sets nothing when `sysctl --system` does: the two traps of a systemd host.
 * /etc/sysctl.conf is read only by procps (unless linked into /etc/sysctl.d), and for
 * systemd-sysctl a "-key" line cancels an assignment of the key made before it.
 */
function nothingAtBoot(s: KeyState): string | undefined {
  const [boot, procps] = s.views;
  if (
    boot?.applier !== 'systemd-sysctl' ||
    boot.winner !== undefined ||
    procps?.winner === undefined
  )
    return undefined;
  const { file, pattern } = procps.winner;
  if (file === SYSCTL_CONF) {
    return `Only ${file} sets it, and systemd-sysctl does not read that file (nothing links it into /etc/sysctl.d).`;
  }
  return `${file} sets ${pattern}, but for systemd-sysctl a later "-${s.key}" line cancels that (sysctl --system keeps it).`;
}

function sameValue(expectation: Expectation, a: string, b: string): boolean {
  if (expectation.op === 'includes') {
    // The kernel prints reserved ports sorted and merged; a file may list them in any order.
    const x = parsePortRanges(a);
    const y = parsePortRanges(b);
    if (x !== undefined && y !== undefined) return formatPortRanges(x) === formatPortRanges(y);
  }
  const x = parseInteger(a);
  const y = parseInteger(b);
  return x !== undefined && y !== undefined ? x === y : normalizeValue(a) === normalizeValue(b);
}

/**
 * A value as findings show it: an empty one (ip_local_reserved_ports often is) must read as
 * empty, not as a typo, and a huge one must not fill a title.
 */
export function show(value: string): string {
  if (value === '') return '(empty)';
  return value.length > 120 ? `${value.slice(0, 117)}...` : value;
}

function squeeze(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
