// `sysctl`: the node profile, at runtime (/proc/sys) and as persisted on disk (sysctl.d), so a
// node is right now and stays right after a reboot.
import * as v from 'valibot';
import { describeError } from '../../errors.ts';
import { draft } from '../../findings/finding.ts';
import type { FindingDraft } from '../../findings/finding.ts';
import { requireProcDir } from '../../host/hostRoot.ts';
import type { HostRoot } from '../../host/hostRoot.ts';
import { sysctlKeyComponents, sysctlProcPath } from '../../parsers/sysctlConf.ts';
import {
  describeExpectation,
  evaluateExpectation,
  parseExpectation,
  parseInteger,
} from '../../parsers/sysctlExpectation.ts';
import type { MetricSample } from '../../sinks/metrics/catalogue.ts';
import type { Check, CheckOutcome } from '../check.ts';
import { MODULES_LOAD_DIRS, bootModuleSource, isBuiltinModule } from './persistedModules.ts';
import { readPersistedSysctls } from './persistedSysctls.ts';
import {
  brNetfilterFinding,
  brNetfilterNotPersistedFinding,
  configFileFindings,
  judgeViews,
  missingKeyFinding,
  outOfProfileFinding,
  persistenceFinding,
} from './sysctlFindings.ts';
import type { KeyState } from './sysctlFindings.ts';
import type { Expectation } from '../../parsers/sysctlExpectation.ts';
import { DEFAULT_SYSCTL_PROFILE, profileEntrySchema } from './sysctlProfile.ts';
import type { ProfileEntry } from './sysctlProfile.ts';

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
    v.record(
      v.pipe(
        v.string(),
        v.check(
          (key) => sysctlKeyComponents(key) !== undefined,
          'not a sysctl key (components separated by "." or "/", no empty, "." or ".." component)',
        ),
      ),
      profileEntrySchema,
    ),
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
    // Without the host's /proc/sys every key would read as missing: one error naming the
    // directory (a wrong --host-root, /proc not mounted), not a finding per key.
    await requireProcDir(host, '/proc/sys');
    const entries = Object.entries(opts.profile).filter(([, entry]) => entry.enabled);
    const [persisted, runtime] = await Promise.all([
      readPersistedSysctls(host),
      Promise.all(entries.map(([key]) => readRuntime(host, key))),
    ]);
    const findings: FindingDraft[] = [];
    const samples: MetricSample[] = [];
    const bridgeMissing: { key: string; entry: ProfileEntry; expectation: Expectation }[] = [];

    const fix = { persistFile: opts.persistFile, files: persisted.files };
    entries.forEach(([key, entry], i) => {
      const expectation = parseExpectation(entry.expect ?? '');
      if (typeof expectation === 'string') return; // the config schema already rejected it
      const runtimeValue = runtime[i] as RuntimeValue;
      const views = judgeViews(persisted, key, entry, expectation);
      const persistsOk = views.every((view) => view.ok);
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
        if (key.startsWith('net.bridge.')) bridgeMissing.push({ key, entry, expectation });
        else findings.push(missingKeyFinding(key, entry, expectation));
        return;
      }

      const value = runtimeValue.value;
      const state: KeyState = {
        key,
        entry,
        expectation,
        value,
        assignments: persisted.assignmentsOf(key),
        views,
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
      const finding = compliant ? persistenceFinding(state, fix) : outOfProfileFinding(state, fix);
      if (finding !== undefined) findings.push(finding);
    });

    const bridgePresent = entries
      .filter(([key], i) => key.startsWith('net.bridge.') && runtime[i]?.kind === 'value')
      .map(([key]) => key);
    if (bridgeMissing.length > 0 && bridgePresent.length === 0)
      findings.push(brNetfilterFinding(bridgeMissing, opts.persistFile));
    // Other bridge keys exist, so br_netfilter is loaded: this kernel's has no such key.
    for (const { key, entry, expectation } of bridgePresent.length > 0 ? bridgeMissing : [])
      findings.push(missingKeyFinding(key, entry, expectation, { brNetfilterKeys: bridgePresent }));
    // The bridge keys that exist now come back after a reboot only if br_netfilter does.
    if (bridgePresent.length > 0 && !(await brNetfilterAtBoot(host))) {
      findings.push(brNetfilterNotPersistedFinding(bridgePresent, MODULES_LOAD_DIRS));
      for (const sample of samples)
        if (
          sample.metric === 'node_auditor_sysctl_persisted' &&
          bridgePresent.includes(sample.labels.key ?? '')
        )
          sample.value = 0;
    }
    findings.push(
      ...configFileFindings(
        persisted,
        entries.map(([key]) => key),
      ),
    );
    return { findings, samples };
  },
};

async function brNetfilterAtBoot(host: HostRoot): Promise<boolean> {
  return (
    (await bootModuleSource(host, 'br_netfilter')) !== undefined ||
    (await isBuiltinModule(host, 'br_netfilter'))
  );
}

async function readRuntime(host: HostRoot, key: string): Promise<RuntimeValue> {
  const procPath = sysctlProcPath(key);
  try {
    const text = await host.readText(procPath, { resolveLinks: false, maxBytes: MAX_VALUE_BYTES });
    return text === null ? { kind: 'missing' } : { kind: 'value', value: text.trim() };
  } catch (error) {
    return { kind: 'unreadable', error: describeError(error) };
  }
}
