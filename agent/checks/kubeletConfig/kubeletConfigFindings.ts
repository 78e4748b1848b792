// The kubelet's effective configuration -> findings. Each names the setting, its value, where the
// value came from (a flag, the config file and key, a drop-in, or the default of the mode) and
// what it overrode, and the CIS Kubernetes Benchmark rule (ids as in kube-bench's
// cfg/cis-1.8/node.yaml; 4.2.x are unchanged up to cis-1.12).
import type { FindingDraft, Severity } from '../../findings/finding.ts';
import { describeSetting, describeSource, show } from './effectiveKubeletConfig.ts';
import type {
  EffectiveKubeletConfig,
  InvalidValue,
  SettingSource,
  SettingValue,
} from './effectiveKubeletConfig.ts';
import type { ConfigFileProblem } from './kubeletConfigFiles.ts';
import { excessBits, octal } from './kubeletFilePermissions.ts';
import type { AuditedFile } from './kubeletFilePermissions.ts';

const RESTART = 'Then restart the kubelet: systemctl daemon-reload && systemctl restart kubelet';
const FLAG_HOME =
  "the kubelet's command line (its systemd unit or drop-in, e.g. KUBELET_EXTRA_ARGS in /etc/default/kubelet or /etc/sysconfig/kubelet)";

/** A dotted key and value as the YAML lines to write. */
function yamlLines(key: string, value: string): string {
  return key
    .split('.')
    .map((part, depth, parts) =>
      depth === parts.length - 1
        ? `${'  '.repeat(depth + 1)}${part}: ${value}`
        : `${'  '.repeat(depth + 1)}${part}:`,
    )
    .join('\n');
}

interface Wanted {
  /** KubeletConfiguration key. */
  key: string;
  /** "--anonymous-auth=false" */
  flag: string;
  /** YAML value to write: "false", "Webhook". */
  yaml: string;
}

/**
 * How to fix it: every layer that holds a bad value, the winning one first (fixing only that
 * one would let the next bad one win), or, for a default, where to set the good value.
 */
function fix(
  setting: SettingValue<unknown>,
  wanted: Wanted,
  isBad: (value: unknown) => boolean,
  effective: EffectiveKubeletConfig,
): string {
  const layers: { value: unknown; source: SettingSource }[] = [
    { value: setting.value, source: setting.source },
    ...setting.overrides,
  ].filter((layer) => isBad(layer.value));
  const steps = layers.map(({ source }) => {
    switch (source.kind) {
      case 'flag':
        return `Change the flag to ${wanted.flag} in ${FLAG_HOME}.`;
      case 'file':
      case 'dropin':
        return `In ${source.path} set:\n${yamlLines(wanted.key, wanted.yaml)}`;
      case 'default':
        return effective.configFile === undefined
          ? `Add the flag ${wanted.flag} to ${FLAG_HOME}; better, run the kubelet with --config and a KubeletConfiguration file, whose defaults are the safe ones.`
          : `Add to ${effective.configFile}:\n${yamlLines(wanted.key, wanted.yaml)}`;
    }
  });
  return [...steps, RESTART].join('\n');
}

function evidence(
  key: string,
  setting: SettingValue<unknown>,
  kubelet: string,
  rule: string,
): string[] {
  return [
    `${key}: ${show(setting.value)}`,
    `from ${describeSetting(setting)}`,
    `kubelet: ${kubelet}`,
    `benchmark: ${rule}`,
  ];
}

function where(setting: SettingValue<unknown>): string {
  return describeSetting(setting);
}

export function settingFindings(
  effective: EffectiveKubeletConfig,
  kubelet: string,
): FindingDraft[] {
  const s = effective.settings;
  const findings: FindingDraft[] = [];
  const anonymous = s.anonymousAuth;
  const authz = s.authorizationMode;
  const anonymousOn = anonymous?.value === true;
  const alwaysAllow = authz?.value === 'AlwaysAllow';
  // Together, anyone who reaches port 10250 may do anything the kubelet API offers: list pods,
  // read logs, exec and run commands in every container (the seeds' CVE-2018-1002105 exposure).
  const wideOpen = anonymousOn && alwaysAllow;
  const openSeverity: Severity = wideOpen ? 'critical' : 'warning';
  const wideOpenWords = (other: string) =>
    `Together with ${other}, anyone who can reach port 10250 can list pods, read logs and exec into every container on this node, without any credential.`;

  if (anonymous !== undefined && anonymousOn) {
    findings.push({
      id: 'KubeletAnonymousAuthEnabled',
      problem: 'KubeletAnonymousAuthEnabled',
      severity: openSeverity,
      title: 'kubelet accepts anonymous requests',
      message: `The kubelet's authentication.anonymous.enabled is true, from ${where(anonymous)}: a request without credentials is served as user system:anonymous instead of refused with 401. ${
        wideOpen
          ? wideOpenWords('authorization mode AlwaysAllow')
          : `Authorization mode ${authz === undefined ? 'is unknown' : `${authz.value} then decides`} what system:anonymous may do; one RBAC binding too many and the node's pods are open.`
      }`,
      evidence: evidence(
        'authentication.anonymous.enabled',
        anonymous,
        kubelet,
        'CIS Kubernetes 1.8 4.2.1 (Ensure that the --anonymous-auth argument is set to false)',
      ),
      remediation: {
        summary: fix(
          anonymous,
          {
            key: 'authentication.anonymous.enabled',
            flag: '--anonymous-auth=false',
            yaml: 'false',
          },
          (v) => v === true,
          effective,
        ),
        automatic: false,
        docs: 'https://kubernetes.io/docs/reference/access-authn-authz/kubelet-authn-authz/',
      },
    });
  }

  if (authz !== undefined && alwaysAllow) {
    findings.push({
      id: 'KubeletAuthorizationAlwaysAllow',
      problem: 'KubeletAuthorizationAlwaysAllow',
      severity: openSeverity,
      title: 'kubelet authorizes every request (AlwaysAllow)',
      message: `The kubelet's authorization.mode is AlwaysAllow, from ${where(authz)}: every request that gets past authentication may do anything, exec into containers included. ${
        wideOpen
          ? wideOpenWords('anonymous authentication')
          : 'Mode Webhook asks the API server (SubjectAccessReview) instead, so RBAC decides.'
      }`,
      evidence: evidence(
        'authorization.mode',
        authz,
        kubelet,
        'CIS Kubernetes 1.8 4.2.2 (Ensure that the --authorization-mode argument is not set to AlwaysAllow)',
      ),
      remediation: {
        summary: fix(
          authz,
          { key: 'authorization.mode', flag: '--authorization-mode=Webhook', yaml: 'Webhook' },
          (v) => v === 'AlwaysAllow',
          effective,
        ),
        automatic: false,
        docs: 'https://kubernetes.io/docs/reference/access-authn-authz/kubelet-authn-authz/',
      },
    });
  }

  const clientCA = s.clientCAFile;
  if (clientCA !== undefined && clientCA.value === '') {
    findings.push({
      id: 'KubeletClientCAFileNotSet',
      problem: 'KubeletClientCAFileNotSet',
      severity: 'warning',
      title: 'kubelet has no client CA file (no client certificate auth)',
      message: `The kubelet's authentication.x509.clientCAFile is not set, from ${where(clientCA)}: it cannot verify client certificates, the API server's own included, so those callers are anonymous (or refused) and "kubectl logs" and "exec" depend on anonymous access.`,
      evidence: evidence(
        'authentication.x509.clientCAFile',
        clientCA,
        kubelet,
        'CIS Kubernetes 1.8 4.2.3 (Ensure that the --client-ca-file argument is set as appropriate)',
      ),
      remediation: {
        summary:
          "Point it at the cluster's CA certificate (kubeadm: /etc/kubernetes/pki/ca.crt).\n" +
          fix(
            clientCA,
            {
              key: 'authentication.x509.clientCAFile',
              flag: '--client-ca-file=/etc/kubernetes/pki/ca.crt',
              yaml: '/etc/kubernetes/pki/ca.crt',
            },
            (v) => v === '',
            effective,
          ),
        automatic: false,
      },
    });
  }

  const readOnlyPort = s.readOnlyPort;
  if (readOnlyPort !== undefined && readOnlyPort.value !== 0) {
    findings.push({
      id: 'KubeletReadOnlyPortOpen',
      problem: 'KubeletReadOnlyPortOpen',
      severity: 'warning',
      title: `kubelet read-only port ${readOnlyPort.value} is open (no authentication)`,
      message: `The kubelet's readOnlyPort is ${readOnlyPort.value}, from ${where(readOnlyPort)}: it serves /pods (every pod spec on the node, environment values included), /spec and /stats over plain HTTP to anyone, with no authentication or authorization at all.`,
      evidence: evidence(
        'readOnlyPort',
        readOnlyPort,
        kubelet,
        'CIS Kubernetes 1.8 4.2.4 (Verify that the --read-only-port argument is set to 0)',
      ),
      remediation: {
        summary: fix(
          readOnlyPort,
          { key: 'readOnlyPort', flag: '--read-only-port=0', yaml: '0' },
          (v) => v !== 0,
          effective,
        ),
        automatic: false,
      },
    });
  }

  const iptables = s.makeIPTablesUtilChains;
  if (iptables !== undefined && !iptables.value) {
    findings.push({
      id: 'KubeletIPTablesUtilChainsOff',
      problem: 'KubeletIPTablesUtilChainsOff',
      severity: 'warning',
      title: 'kubelet does not manage its iptables utility chains',
      message: `The kubelet's makeIPTablesUtilChains is false, from ${where(iptables)}: the kubelet does not create and keep its iptables utility chains (KUBE-FIREWALL and friends), so its packet-drop rules depend on something else setting them up and keeping them in sync.`,
      evidence: evidence(
        'makeIPTablesUtilChains',
        iptables,
        kubelet,
        'CIS Kubernetes 1.8 4.2.6 (Ensure that the --make-iptables-util-chains argument is set to true)',
      ),
      remediation: {
        summary: fix(
          iptables,
          { key: 'makeIPTablesUtilChains', flag: '--make-iptables-util-chains=true', yaml: 'true' },
          (v) => v === false,
          effective,
        ),
        automatic: false,
      },
    });
  }

  const rotate = s.rotateCertificates;
  if (rotate !== undefined && !rotate.value) {
    findings.push({
      id: 'KubeletClientCertRotationOff',
      problem: 'KubeletClientCertRotationOff',
      severity: 'warning',
      title: 'kubelet does not rotate its client certificate',
      message: `The kubelet's rotateCertificates is false, from ${where(rotate)}: it does not renew its client certificate, and when that expires the API server refuses the kubelet (401) and the node goes NotReady. The kubelet's default is false in both modes; kube-bench passes 4.2.10 when the setting is absent, which is wrong.`,
      evidence: evidence(
        'rotateCertificates',
        rotate,
        kubelet,
        'CIS Kubernetes 1.8 4.2.10 (Ensure that the --rotate-certificates argument is not set to false)',
      ),
      remediation: {
        summary: fix(
          rotate,
          { key: 'rotateCertificates', flag: '--rotate-certificates=true', yaml: 'true' },
          (v) => v === false,
          effective,
        ),
        automatic: false,
      },
    });
  }

  const gate = s.rotateKubeletServerCertificate;
  const tlsCert = s.tlsCertFile;
  const bootstrap = s.serverTLSBootstrap;
  if (gate !== undefined && !gate.value) {
    findings.push({
      id: 'KubeletServerCertRotationOff',
      problem: 'KubeletServerCertRotationOff',
      severity: 'warning',
      title: 'kubelet server certificate rotation is disabled (feature gate)',
      message: `The feature gate RotateKubeletServerCertificate is false, from ${where(gate)}: the kubelet cannot request and renew its serving certificate from the cluster's CA, even with serverTLSBootstrap.`,
      evidence: evidence(
        'featureGates.RotateKubeletServerCertificate',
        gate,
        kubelet,
        'CIS Kubernetes 1.8 4.2.11 (Verify that the RotateKubeletServerCertificate argument is set to true)',
      ),
      remediation: {
        summary: fix(
          gate,
          {
            key: 'featureGates.RotateKubeletServerCertificate',
            flag: '--feature-gates=RotateKubeletServerCertificate=true',
            yaml: 'true',
          },
          (v) => v === false,
          effective,
        ),
        automatic: false,
      },
    });
  } else if (
    gate !== undefined &&
    bootstrap !== undefined &&
    !bootstrap.value &&
    tlsCert !== undefined &&
    tlsCert.value === ''
  ) {
    // Not a CIS failure (4.2.11 checks only the gate), but what the gate is for does not happen.
    findings.push({
      id: 'KubeletServerCertSelfSigned',
      problem: 'KubeletServerCertSelfSigned',
      severity: 'info',
      title: 'kubelet serves a self-signed certificate that is never rotated',
      message: `The kubelet's serverTLSBootstrap is false, from ${where(bootstrap)}, and no tlsCertFile is set: it serves port 10250 with a self-signed certificate it made itself (in its --cert-dir), which the API server cannot verify and which is not rotated. With serverTLSBootstrap: true the kubelet asks the cluster's CA for its serving certificate and renews it (its CSRs need approving).`,
      evidence: [
        `serverTLSBootstrap: ${show(bootstrap.value)} from ${describeSetting(bootstrap)}`,
        `tlsCertFile: "" from ${describeSetting(tlsCert)}`,
        `featureGates.RotateKubeletServerCertificate: ${show(gate.value)} from ${describeSetting(gate)}`,
        `kubelet: ${kubelet}`,
        'benchmark: CIS Kubernetes 1.8 4.2.11 passes (the gate is on); serverTLSBootstrap is what uses it',
      ],
      remediation: {
        summary:
          fix(
            bootstrap,
            { key: 'serverTLSBootstrap', flag: '--rotate-server-certificates=true', yaml: 'true' },
            (v) => v === false,
            effective,
          ) +
          '\nApprove the kubelet-serving CSRs ("kubectl get csr", "kubectl certificate approve NAME") or run an approver such as kubelet-csr-approver.',
        automatic: false,
      },
    });
  }

  const protect = s.protectKernelDefaults;
  if (protect !== undefined && !protect.value) {
    // Info, not warning: CIS dropped this rule in 1.7, and turning it on makes the kubelet
    // refuse to start until the kernel settings it checks are made as it wants them.
    findings.push({
      id: 'KubeletProtectKernelDefaultsOff',
      problem: 'KubeletProtectKernelDefaultsOff',
      severity: 'info',
      title: 'kubelet may change kernel settings (protectKernelDefaults off)',
      message: `The kubelet's protectKernelDefaults is false, from ${where(protect)}: the kubelet sets the kernel tunables it needs (vm.overcommit_memory, vm.panic_on_oom, kernel.panic, kernel.panic_on_oops, kernel.keys.root_maxkeys, kernel.keys.root_maxbytes) itself instead of refusing to start when they differ. CIS 1.6 asked for true (4.2.6); CIS 1.7 and later no longer do. Set them in /etc/sysctl.d/ first if you turn it on.`,
      evidence: evidence(
        'protectKernelDefaults',
        protect,
        kubelet,
        'CIS Kubernetes 1.6 4.2.6 (Ensure that the --protect-kernel-defaults argument is set to true; not in CIS 1.7+)',
      ),
      remediation: {
        summary:
          'Persist the kubelet\'s kernel settings first, e.g. /etc/sysctl.d/90-kubelet.conf:\n  vm.overcommit_memory = 1\n  vm.panic_on_oom = 0\n  kernel.panic = 10\n  kernel.panic_on_oops = 1\n  kernel.keys.root_maxkeys = 1000000\n  kernel.keys.root_maxbytes = 25000000\nand run "sysctl --system" (pkg/kubelet/cm: setupKernelTunables checks these). Then:\n' +
          fix(
            protect,
            { key: 'protectKernelDefaults', flag: '--protect-kernel-defaults=true', yaml: 'true' },
            (v) => v === false,
            effective,
          ),
        automatic: false,
      },
    });
  }
  return findings;
}

const KIND_WORDS: Record<ConfigFileProblem['kind'], string> = {
  file: 'config file',
  dropin: 'config drop-in',
  'dropin-dir': 'drop-in directory',
};

/** Config files the kubelet would refuse, or that cannot be read. */
export function configFileFindings(
  problems: readonly ConfigFileProblem[],
  kubelet: string,
): FindingDraft[] {
  return problems.map((p) => {
    const what = KIND_WORDS[p.kind];
    const unknown =
      'Settings not given by a flag are unknown until it is fixed, and are not checked.';
    if (p.problem === 'invalid') {
      const at =
        p.line === undefined ? '' : `:${p.line}${p.column === undefined ? '' : `:${p.column}`}`;
      return {
        id: `KubeletConfigInvalid:${p.path}`,
        problem: 'KubeletConfigInvalid',
        severity: 'warning',
        title: `kubelet ${what} does not parse`,
        message: `The kubelet's ${what} ${p.path} is not a valid KubeletConfiguration: ${p.reason}. The kubelet refuses to start with it: the running kubelet read an older version, and its next restart fails. ${unknown}`,
        evidence: [
          `${p.path}${at}: ${p.reason}`,
          ...(p.lineText === undefined ? [] : [`line ${p.line ?? ''}: ${p.lineText}`]),
          `kubelet: ${kubelet}`,
        ],
        remediation: {
          summary: `Fix ${p.path}${at} (it must be a YAML mapping with apiVersion: kubelet.config.k8s.io/v1beta1 and kind: KubeletConfiguration); validate it (e.g. yamllint) before the kubelet next restarts.`,
          automatic: false,
        },
      } satisfies FindingDraft;
    }
    return {
      id: `KubeletConfigUnreadable:${p.path}`,
      problem: 'KubeletConfigUnreadable',
      severity: 'warning',
      title: `kubelet ${what} ${p.problem === 'missing' ? 'is missing' : 'cannot be read'}`,
      message:
        p.problem === 'missing'
          ? `The kubelet was started with ${p.kind === 'file' ? '--config' : '--config-dir'} ${p.path}, which does not exist (any more): the kubelet's next restart fails. ${unknown}`
          : `The kubelet's ${what} ${p.path} cannot be read by the agent (${p.reason}). ${unknown}`,
      evidence: [`${p.path}: ${p.reason}`, `kubelet: ${kubelet}`],
      remediation: {
        summary:
          p.problem === 'missing'
            ? `Restore ${p.path} (kubeadm: "kubeadm upgrade node phase kubelet-config" rewrites /var/lib/kubelet/config.yaml), or start the kubelet without the flag.`
            : `Let the agent read ${p.path}: run it as root (the DaemonSet does), with the host's / mounted at --host-root.`,
        automatic: false,
      },
    } satisfies FindingDraft;
  });
}

/** Values the kubelet would refuse (a string where it wants a boolean ...). */
export function invalidValueFindings(
  invalid: readonly InvalidValue[],
  kubelet: string,
): FindingDraft[] {
  return invalid.map((i) => {
    const at =
      i.source.kind === 'flag'
        ? describeSource(i.source, undefined)
        : `${i.source.kind === 'dropin' ? 'drop-in ' : ''}${i.source.path} ${i.key}`;
    const subject =
      i.source.kind === 'flag' ? `--${i.source.flag.name}` : `${i.source.path}#${i.key}`;
    return {
      id: `KubeletConfigInvalid:${subject}`,
      problem: 'KubeletConfigInvalid',
      severity: 'warning',
      title: `invalid kubelet setting ${i.key}`,
      message: `${at}: ${i.problem}. The kubelet refuses to start with it; the setting is not checked until it is fixed.`,
      evidence: [`${at}: ${i.problem}`, `kubelet: ${kubelet}`],
      remediation: {
        summary: `Give ${i.key} a value of the right type (true/false, a number, or a string) and restart the kubelet.`,
        automatic: false,
      },
    } satisfies FindingDraft;
  });
}

/** Files more open than their rule allows, or not owned by root:root. */
export function fileFindings(files: readonly AuditedFile[], kubelet: string): FindingDraft[] {
  const findings: FindingDraft[] = [];
  for (const file of files) {
    const { rule } = file;
    const excess = excessBits(file.mode, rule);
    const seen = `${file.path}: mode ${octal(file.mode)}, owner uid ${file.uid} gid ${file.gid}`;
    if (excess !== 0) {
      findings.push({
        id: `KubeletFilePermissions:${file.path}`,
        problem: 'KubeletFilePermissions',
        severity: 'warning',
        title: `kubelet ${rule.role} is mode ${octal(file.mode)}, CIS asks ${octal(rule.maxMode)}`,
        message: `${file.path} (the kubelet's ${rule.role}) is mode ${octal(file.mode)}: ${describeExcess(excess)}. It should be ${octal(rule.maxMode)} or stricter: ${rule.why}.`,
        evidence: [seen, `kubelet: ${kubelet}`, `benchmark: ${rule.modeRule}`],
        remediation: {
          summary: `chmod ${octal(rule.maxMode).slice(1)} ${file.path}`,
          automatic: false,
        },
      });
    }
    if (file.uid !== 0 || file.gid !== 0) {
      findings.push({
        id: `KubeletFileOwnership:${file.path}`,
        problem: 'KubeletFileOwnership',
        severity: 'warning',
        title: `kubelet ${rule.role} is not owned by root:root`,
        message: `${file.path} (the kubelet's ${rule.role}) is owned by uid ${file.uid}, gid ${file.gid}, not root:root: that user can change its mode and content; ${rule.why}.`,
        evidence: [seen, `kubelet: ${kubelet}`, `benchmark: ${rule.ownerRule}`],
        remediation: { summary: `chown root:root ${file.path}`, automatic: false },
      });
    }
  }
  return findings;
}

function describeExcess(bits: number): string {
  const parts: string[] = [];
  if (bits & 0o070) parts.push(`its group may ${rwx(bits >> 3)}`);
  if (bits & 0o007) parts.push(`everyone may ${rwx(bits)}`);
  if (bits & 0o100) parts.push('it is executable');
  return parts.join(', ');
}

function rwx(bits: number): string {
  const verbs: string[] = [];
  if (bits & 4) verbs.push('read');
  if (bits & 2) verbs.push('write');
  if (bits & 1) verbs.push('execute');
  return verbs.join(' and ') + ' it';
}
