// `kubelet-config`: the kubelet's *effective* configuration, audited against the CIS Kubernetes
// Benchmark. kube-bench reads guessed config paths and checks the file and the flags apart; a
// kubelet runs with what its command line, its --config file and its --config-dir drop-ins give
// together, and with different defaults with and without --config (effectiveKubeletConfig.ts).
// So: find the running kubelet in /proc, read its command line, read the files it names under
// the host root (the paths are host paths), resolve every setting with where it came from, then
// check the settings and the modes and owners of its config, kubeconfig, client CA and PKI files.
//
// No kubelet process: on a laptop or any host that is not a node there is nothing to say; on a
// kubelet node (its kubelet directory exists) the kubelet is down, or the agent cannot see host
// processes (no hostPID): one info finding says the configuration was not audited.
import type { Logger } from 'pino';
import * as v from 'valibot';
import type { FindingDraft } from '../../findings/finding.ts';
import type { HostRoot } from '../../host/hostRoot.ts';
import { parseKubeletFlags } from '../../parsers/kubeletFlags.ts';
import type { Check } from '../check.ts';
import { configSources, resolveEffectiveConfig } from './effectiveKubeletConfig.ts';
import type { EffectiveKubeletConfig } from './effectiveKubeletConfig.ts';
import { loadKubeletConfig } from './kubeletConfigFiles.ts';
import {
  configFileFindings,
  fileFindings,
  invalidValueFindings,
  settingFindings,
} from './kubeletConfigFindings.ts';
import { FILE_RULES, pkiFiles, statHostFile } from './kubeletFilePermissions.ts';
import type { AuditedFile, FileRule } from './kubeletFilePermissions.ts';
import { processScans } from '../processChecks.ts';
import { findKubelet } from './kubeletProcess.ts';
import type { KubeletSearch } from './kubeletProcess.ts';
import { hostPath } from '../../config/configSchema.ts';

const options = {
  /**
   * Audit this KubeletConfiguration file (host path) as "kubelet --config FILE" when no kubelet
   * process is found: a node image before its kubelet starts, or an agent without hostPID.
   */
  configFile: v.optional(hostPath),
  /** Marks a kubelet node: with no kubelet process seen there, an info finding says so. */
  kubeletDir: v.optional(hostPath, '/var/lib/kubelet'),
};

async function auditFiles(
  host: HostRoot,
  effective: EffectiveKubeletConfig,
  dropins: readonly string[],
  log: Logger,
): Promise<AuditedFile[]> {
  const targets: { path: string; rule: FileRule }[] = [];
  if (effective.configFile !== undefined)
    targets.push({ path: effective.configFile, rule: FILE_RULES.config });
  for (const dropin of dropins) targets.push({ path: dropin, rule: FILE_RULES.dropin });
  if (effective.kubeconfig !== '')
    targets.push({ path: effective.kubeconfig, rule: FILE_RULES.kubeconfig });
  const clientCA = effective.settings.clientCAFile?.value;
  if (clientCA !== undefined && clientCA !== '')
    targets.push({ path: clientCA, rule: FILE_RULES.clientCA });
  targets.push(...(await pkiFiles(host, effective.certDir)));
  const audited: AuditedFile[] = [];
  const seen = new Set<string>();
  for (const target of targets) {
    if (seen.has(target.path)) continue;
    seen.add(target.path);
    const result = await statHostFile(host, target.path);
    // Missing: nothing to audit (a kubeconfig the kubelet has yet to write from its bootstrap).
    if (result === undefined) continue;
    if ('error' in result) {
      log.debug({ path: target.path, error: result.error }, 'cannot stat a kubelet file');
      continue;
    }
    if (!result.stats.isFile()) continue;
    audited.push({
      path: target.path,
      rule: target.rule,
      mode: result.stats.mode,
      uid: result.stats.uid,
      gid: result.stats.gid,
    });
  }
  return audited;
}

function notFound(search: KubeletSearch, kubeletDir: string): FindingDraft {
  const containerized = search.state === 'containerized' ? search.pids : [];
  return {
    id: 'KubeletProcessNotFound',
    problem: 'KubeletProcessNotFound',
    severity: 'info',
    title: 'no host kubelet process: its configuration was not audited',
    message:
      containerized.length > 0
        ? `The only kubelet processes run in a container (pid ${containerized.join(', ')}): their --config paths are inside that container, not on the host, so their configuration is not audited (set checks.kubelet-config.configFile to audit a file).`
        : `${kubeletDir} exists, so this is a kubelet node, but no kubelet process is running in /proc: the kubelet is down, or the agent cannot see the host's processes (the DaemonSet needs hostPID: true). Set checks.kubelet-config.configFile to audit a config file anyway.`,
    evidence: [
      `${kubeletDir}: exists`,
      containerized.length > 0
        ? `kubelet processes in other mount namespaces or container cgroups: ${containerized.join(', ')}`
        : 'no process with comm "kubelet" (or "hyperkube kubelet") in /proc',
    ],
    remediation: {
      summary:
        'If the kubelet is down: "systemctl status kubelet" and "journalctl -u kubelet". If the agent runs in a pod: give it hostPID: true and the host\'s / at --host-root.',
      automatic: false,
    },
  };
}

export const kubeletConfigCheck: Check<typeof options> = {
  id: 'kubelet-config',
  title: "kubelet's effective configuration",
  description:
    "Resolves the running kubelet's effective configuration (flags over --config-dir drop-ins over --config file over the mode's defaults) and checks it and its files against the CIS Kubernetes Benchmark.",
  defaults: { enabled: true, interval: '5m', timeout: '30s' },
  options,
  async run(context) {
    const { host, options, signal, log } = context;
    const search = await findKubelet(host, processScans(context), signal);
    let args: string[];
    if (search.state === 'found') {
      args = search.args;
    } else if (options.configFile !== undefined) {
      args = ['--config', options.configFile];
    } else {
      if (await host.exists(options.kubeletDir))
        return { findings: [notFound(search, options.kubeletDir)] };
      // Not a kubelet node (a laptop, or a kind node's kubelet seen from the machine around it).
      const seen =
        search.state === 'containerized'
          ? `only kubelets in containers (pid ${search.pids.join(', ')})`
          : 'no kubelet process';
      return {
        findings: [],
        skipped: `no kubelet on this host: ${seen} and no ${options.kubeletDir}`,
      };
    }
    const commandLine = parseKubeletFlags(args);
    const { configFile, configDir } = configSources(commandLine);
    // Which kubelet, in every finding's evidence: its pid and the files it was started with.
    let kubelet: string;
    if (search.state === 'found') {
      kubelet = `process ${search.pid}`;
      if (configFile !== undefined) kubelet += ` --config ${configFile}`;
      if (configDir !== undefined) kubelet += ` --config-dir ${configDir}`;
      if (configFile === undefined) kubelet += ' (no --config)';
    } else {
      kubelet = `no process found; auditing checks.kubelet-config.configFile ${options.configFile ?? ''}`;
    }
    const loaded = await loadKubeletConfig(host, configFile, configDir);
    signal.throwIfAborted();
    const effective = resolveEffectiveConfig(commandLine, loaded.layers);
    const audited = await auditFiles(host, effective, loaded.dropins, log);
    return {
      findings: [
        ...configFileFindings(loaded.problems, kubelet),
        ...invalidValueFindings(effective.invalid, kubelet),
        ...settingFindings(effective, kubelet),
        ...fileFindings(audited, kubelet),
      ],
    };
  },
};
