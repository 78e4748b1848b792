// `sysctl`: the node profile, at runtime (/proc/sys) and as persisted on disk (sysctl.d), so a
// node is right now and stays right after a reboot.
import path from 'node:path';
import * as v from 'valibot';
import { describeError } from '../../errors.ts';
import { draft } from '../../findings/finding.ts';
import type { FindingDraft, Severity } from '../../findings/finding.ts';
import type { HostRoot } from '../../host/hostRoot.ts';
import { sysctlProcPath } from '../../parsers/sysctlConf.ts';
import {
  describeExpectation,
  evaluateExpectation,
  normalizeValue,
  parseExpectation,
  parseInteger,
  valueToWrite,
} from '../../parsers/sysctlExpectation.ts';
import type { Expectation } from '../../parsers/sysctlExpectation.ts';
import type { MetricSample } from '../../sinks/metrics/catalogue.ts';
import type { Check, CheckOutcome } from '../check.ts';
import { readPersistedSysctls } from './persistedSysctls.ts';
import type { PersistedAssignment, PersistedSysctls } from './persistedSysctls.ts';
import { DEFAULT_SYSCTL_PROFILE, profileEntrySchema } from './sysctlProfile.ts';
import type { ProfileEntry } from './sysctlProfile.ts';

const SYSCTL_KEY = /^[A-Za-z0-9_][A-Za-z0-9_./:-]*$/;
/** /proc/sys values are at most a page; a bigger "value" is not a sysctl. */
const MAX_VALUE_BYTES = 64 * 1024;

const options = {
  /** The file fixes tell you to write (and, in remediation mode, the one the agent owns). */
  persistFile: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\/etc\/sysctl\.d\/[^/]+\.conf$/, 'must be a /etc/sysctl.d/*.conf path'),
    ),
    '/etc/sysctl.d/99-kubernetes.conf',
  ),
  profile: v.optional(
    v.record(v.pipe(v.string(), v.regex(SYSCTL_KEY, 'not a sysctl key')), profileEntrySchema),
    DEFAULT_SYSCTL_PROFILE,
  ),
};

export type SysctlOptions = v.InferOutput<v.ObjectSchema<typeof options, undefined>>;

type RuntimeValue =
  { kind: 'value'; value: string } | { kind: 'missing' } | { kind: 'unreadable'; error: string };

export const sysctlCheck: Check<typeof options> = {
  id: 'sysctl',
  title: 'Kernel parameters (sysctl)',
  description:
    'Compares /proc/sys with the node profile a kubelet node needs, and checks each value is persisted in sysctl.d so it survives a reboot.',
  defaults: { enabled: true, interval: '60s', timeout: '10s' },
  options,
  async run({ host, options: opts }): Promise<CheckOutcome> {
    const entries = Object.entries(opts.profile).filter(([, entry]) => entry.enabled);
    const [persisted, runtime] = await Promise.all([
      readPersistedSysctls(host),
      Promise.all(entries.map(([key]) => readRuntime(host, key))),
    ]);
    const findings: FindingDraft[] = [];
    const samples: MetricSample[] = [];
    const bridgeMissing: { key: string; entry: ProfileEntry }[] = [];

    entries.forEach(([key, entry], i) => {
      const expectation = parseExpectation(entry.expect ?? '');
      if (typeof expectation === 'string') return; // the config schema already rejected it
      const runtimeValue = runtime[i] as RuntimeValue;
      // What the config files say about this key, worked out once for every use below.
      const assignments = persisted.assignmentsOf(key);
      const effective = assignments.at(-1);
      const persistsOk =
        effective !== undefined
          ? evaluateExpectation(expectation, effective.value).ok
          : entry.bootDefault !== undefined &&
            evaluateExpectation(expectation, entry.bootDefault).ok;
      const persistedValueOk = effective !== undefined && persistsOk;
      samples.push({
        metric: 'node_auditor_sysctl_persisted',
        labels: { key },
        value: persistsOk ? 1 : 0,
      });

      if (runtimeValue.kind === 'unreadable') {
        findings.push(
          draft('SysctlUnreadable', key, {
            severity: 'warning',
            title: `${key} cannot be read`,
            message: `${runtimeValue.error}. Its value cannot be checked against the node profile (${describeExpectation(expectation)}).`,
            evidence: [runtimeValue.error],
          }),
        );
        return;
      }
      if (runtimeValue.kind === 'missing') {
        samples.push({ metric: 'node_auditor_sysctl_compliant', labels: { key }, value: 0 });
        if (key.startsWith('net.bridge.')) bridgeMissing.push({ key, entry });
        else findings.push(missingKeyFinding(key, entry, expectation));
        return;
      }

      const value = runtimeValue.value;
      const state: KeyState = {
        key,
        entry,
        expectation,
        value,
        assignments,
        effective,
        persistsOk,
        persistedValueOk,
      };
      const compliant = evaluateExpectation(expectation, value).ok;
      const numeric = parseInteger(value);
      if (numeric !== undefined) {
        samples.push({ metric: 'node_auditor_sysctl', labels: { key }, value: Number(numeric) });
      }
      samples.push({
        metric: 'node_auditor_sysctl_compliant',
        labels: { key },
        value: compliant ? 1 : 0,
      });
      const finding = compliant
        ? persistenceFinding(state, opts.persistFile)
        : outOfProfileFinding(state, opts.persistFile);
      if (finding !== undefined) findings.push(finding);
    });

    if (bridgeMissing.length > 0)
      findings.push(brNetfilterFinding(bridgeMissing, opts.persistFile));
    findings.push(
      ...configFileFindings(
        persisted,
        entries.map(([key]) => key),
      ),
    );
    return { findings, samples };
  },
};

async function readRuntime(host: HostRoot, key: string): Promise<RuntimeValue> {
  const procPath = sysctlProcPath(key);
  try {
    const text = await host.readText(procPath, { resolveLinks: false, maxBytes: MAX_VALUE_BYTES });
    return text === null ? { kind: 'missing' } : { kind: 'value', value: text.trim() };
  } catch (error) {
    return { kind: 'unreadable', error: describeError(error) };
  }
}

/** One profiled key that exists: its runtime value and what the config files set. */
interface KeyState {
  key: string;
  entry: ProfileEntry;
  expectation: Expectation;
  /** Runtime value from /proc/sys. */
  value: string;
  /** Every assignment of the key in the config files, in the order sysctl --system applies them. */
  assignments: PersistedAssignment[];
  /** The one that wins (the last), if any. */
  effective: PersistedAssignment | undefined;
  /** The key meets the profile after a reboot or sysctl --system (persisted, or boot default). */
  persistsOk: boolean;
  /** A config file sets it, to a value that meets the profile. */
  persistedValueOk: boolean;
}

function outOfProfileFinding(s: KeyState, persistFile: string): FindingDraft {
  const { key, entry, expectation, value, effective } = s;
  const want = describeExpectation(expectation);
  const where =
    effective === undefined
      ? 'No sysctl configuration file sets it.'
      : s.persistedValueOk
        ? `${effective.file} sets ${effective.value}, but that has not been applied since (run sysctl --system).`
        : `${effective.file} (line ${effective.line}) sets ${effective.value}, which is out of profile too.`;
  const remediation = s.persistedValueOk
    ? `Apply the persisted configuration:\n    sysctl --system`
    : writeFix(key, valueToWrite(expectation, value, entry.recommended), effective, persistFile);
  return draft('SysctlOutOfProfile', key, {
    severity: entry.severity,
    title: `${key} is ${show(value)}, needs ${want}`,
    message: `${key} is ${show(value)}; the node profile needs ${want}. ${entry.reason} ${where}`
      .replace(/\s+/g, ' ')
      .trim(),
    evidence: evidenceOf(s),
    remediation: { summary: remediation, automatic: false },
  });
}

function persistenceFinding(s: KeyState, persistFile: string): FindingDraft | undefined {
  const { key, entry, expectation, value, effective } = s;
  const fix = () =>
    writeFix(
      key,
      valueToWrite(expectation, value, entry.recommended) ?? value,
      effective,
      persistFile,
    );
  if (effective === undefined) {
    if (s.persistsOk) return undefined; // the boot default already meets the profile
    return draft('SysctlNotPersisted', key, {
      severity: entry.notPersistedSeverity,
      title: `${key} = ${value} is not persisted`,
      message:
        `${key} meets the profile now (${value}), but no sysctl configuration file sets it: it reverts at the next reboot. ${entry.reason}`.trim(),
      evidence: [...evidenceOf(s), 'not set in any sysctl.d file or /etc/sysctl.conf'],
      remediation: { summary: fix(), automatic: false },
    });
  }
  if (sameValue(effective.value, value)) return undefined;
  return draft('SysctlPersistedDiffers', key, {
    severity: s.persistedValueOk ? 'info' : 'warning',
    title: `${key} is ${value}, ${path.basename(effective.file)} sets ${effective.value}`,
    message: s.persistedValueOk
      ? `${key} is ${value} at runtime but ${effective.file} sets ${effective.value}; both meet the profile (${describeExpectation(expectation)}), the next reboot or sysctl --system changes it.`
      : `${key} is ${value} at runtime but ${effective.file} (line ${effective.line}) sets ${effective.value}, which does not meet the profile (${describeExpectation(expectation)}): the next reboot or sysctl --system breaks it. ${entry.reason}`.trim(),
    evidence: evidenceOf(s),
    remediation: {
      summary: s.persistedValueOk
        ? `Make the runtime and persisted values agree: either run sysctl --system, or set ${key} = ${value} in ${effective.file}.`
        : fix(),
      automatic: false,
    },
  });
}

function evidenceOf({ key, value, assignments }: KeyState): string[] {
  return [
    `${sysctlProcPath(key)} = ${show(value)}`,
    ...assignments.map((a) => `${a.file}:${a.line}: ${key} = ${show(a.value)}`),
  ];
}

function missingKeyFinding(
  key: string,
  entry: ProfileEntry,
  expectation: Expectation,
): FindingDraft {
  return draft('SysctlKeyMissing', key, {
    severity: entry.severity,
    title: `${key} does not exist on this kernel`,
    message:
      `${sysctlProcPath(key)} is absent: the kernel module that provides ${key} is not loaded, or this kernel does not have it. The profile needs ${describeExpectation(expectation)}. ${entry.reason}`.trim(),
    evidence: [`${sysctlProcPath(key)}: absent`],
    remediation: {
      summary: `Load the module that provides ${key} (and list it in /etc/modules-load.d/ so it loads at boot), then run sysctl --system.`,
      automatic: false,
    },
  });
}

function brNetfilterFinding(
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

function configFileFindings(persisted: PersistedSysctls, profiledKeys: string[]): FindingDraft[] {
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

/** An empty value (ip_local_reserved_ports often is) must read as empty, not as a typo. */
function show(value: string): string {
  return value === '' ? '(empty)' : value;
}

/**
 * Exact lines to write, in a file that will actually win: the persist file, unless a file that
 * is applied after it already sets the key (then that file must change, or be overridden).
 */
function writeFix(
  key: string,
  value: string | undefined,
  winner: PersistedAssignment | undefined,
  persistFile: string,
): string {
  const line = `    ${key} = ${value ?? '<value>'}`;
  const apply = 'then apply it: sysctl --system';
  if (winner !== undefined) {
    // /etc is the administrator's (including /etc/sysctl.conf, applied last): edit the line.
    if (winner.file.startsWith('/etc/')) {
      return `Change line ${winner.line} of ${winner.file} to:\n${line}\n${apply}`;
    }
    // A package's or generated file applied after ours: shadow it with the same name in /etc.
    const winnerName = path.basename(winner.file);
    if (winnerName > path.basename(persistFile)) {
      return `${winner.file} (not under /etc) sets it and is applied after ${persistFile}. Copy it to /etc/sysctl.d/${winnerName}, which takes its place, and change line ${winner.line} to:\n${line}\n${apply}`;
    }
  }
  return `Add this line to ${persistFile}:\n${line}\n${apply}`;
}

function sameValue(a: string, b: string): boolean {
  const x = parseInteger(a);
  const y = parseInteger(b);
  return x !== undefined && y !== undefined ? x === y : normalizeValue(a) === normalizeValue(b);
}
