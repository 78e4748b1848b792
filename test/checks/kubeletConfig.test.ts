// The kubelet-config check on host roots with a kubelet process in /proc (comm and a
// NUL-separated cmdline written by the test) and its files: kubeadm's config.yaml, drop-ins, a
// flag-only kubelet, broken and missing files, and file modes set with a real chmod.
import assert from 'node:assert/strict';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { CheckOutcome } from '../../agent/checks/check.ts';
import { kubeletConfigCheck } from '../../agent/checks/kubeletConfig/kubeletConfigCheck.ts';
import type { FindingDraft } from '../../agent/findings/finding.ts';
import { copyFixtureHost, rootForPart, tempDir, writeFiles } from '../helpers.ts';
import { writeProcTree } from '../procfs/procTree.ts';
import { checkOptions, runCheckOn } from './runCheckOn.ts';

const KUBELET_PID = 4242;
const HEADER = 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n';

/** kubeadm's kubelet command line (10-kubeadm.conf with its env files expanded). */
const KUBEADM_ARGV = [
  '/usr/bin/kubelet',
  '--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf',
  '--kubeconfig=/etc/kubernetes/kubelet.conf',
  '--config=/var/lib/kubelet/config.yaml',
  '--container-runtime-endpoint=unix:///var/run/containerd/containerd.sock',
  '--pod-infra-container-image=registry.k8s.io/pause:3.10',
];

interface HostSetup {
  /** A fixture under test/fixtures/hosts to start from (copied); else an empty root. */
  fixture?: string;
  /** The kubelet's argv; none: no kubelet process. */
  argv?: string[];
  comm?: string;
  cgroup?: string;
  files?: Record<string, string>;
}

/** Modes kubeadm gives the files (git keeps none): so a clean node is clean. */
const KUBEADM_MODES: Record<string, number> = {
  'var/lib/kubelet/config.yaml': 0o600,
  'etc/kubernetes/kubelet.conf': 0o600,
  'etc/kubernetes/pki/ca.crt': 0o644,
  'var/lib/kubelet/pki/kubelet.crt': 0o644,
  'var/lib/kubelet/pki/kubelet.key': 0o600,
  'var/lib/kubelet/pki/kubelet-client-2025-01-10-08-00-00.pem': 0o600,
};

async function host(t: TestContext, setup: HostSetup): Promise<string> {
  const root =
    setup.fixture === undefined ? await tempDir(t) : await copyFixtureHost(t, setup.fixture);
  if (setup.fixture !== undefined) {
    // every fixture has these files: a missing one is a broken fixture, not something to skip
    for (const [file, mode] of Object.entries(KUBEADM_MODES)) {
      await fs.chmod(path.join(root, file), mode);
    }
    const dropins = path.join(root, 'etc/kubernetes/kubelet.conf.d');
    for (const dir of existsSync(dropins) ? [dropins] : []) {
      for (const file of await fs.readdir(dir, { recursive: true })) {
        const full = path.join(dir, file);
        if ((await fs.stat(full)).isFile()) await fs.chmod(full, 0o600);
      }
    }
  }
  // A host's /proc: init, containerd, and the kubelet (when there is one).
  await writeProcTree(root, {
    processes: [
      { pid: 1, ppid: 0, comm: 'systemd', cmdline: ['/sbin/init', 'splash'] },
      {
        pid: 812,
        ppid: 1,
        comm: 'containerd',
        cmdline: ['/usr/bin/containerd'],
        cgroup: '0::/system.slice/containerd.service\n',
      },
      ...(setup.argv === undefined
        ? []
        : [
            {
              pid: KUBELET_PID,
              ppid: 1,
              comm: setup.comm ?? 'kubelet',
              cmdline: setup.argv,
              cgroup: setup.cgroup ?? '0::/system.slice/kubelet.service\n',
            },
          ]),
    ],
  });
  await writeFiles(root, setup.files ?? {});
  return root;
}

function run(root: string, options: Record<string, unknown> = {}): Promise<CheckOutcome> {
  return runCheckOn(kubeletConfigCheck, root, checkOptions(kubeletConfigCheck, options));
}

function byProblem(outcome: CheckOutcome, problem: string): FindingDraft {
  const found = outcome.findings.find((f) => f.problem === problem);
  assert.ok(found, `no ${problem} finding; found: ${outcome.findings.map((f) => f.id).join(', ')}`);
  return found;
}

function problems(outcome: CheckOutcome): string[] {
  return [...new Set(outcome.findings.map((f) => f.problem))].sort();
}

/** The setting findings (not the file-mode ones, which depend on who runs the tests). */
function settingProblems(outcome: CheckOutcome): string[] {
  return problems(outcome).filter((p) => !p.startsWith('KubeletFile'));
}

describe('kubelet-config check', () => {
  it('finds nothing to fix on a kubeadm node (only the two explanations)', async (t) => {
    const root = await host(t, { fixture: 'kubelet-config-kubeadm', argv: KUBEADM_ARGV });
    const outcome = await run(root);
    const expected = ['KubeletProtectKernelDefaultsOff', 'KubeletServerCertSelfSigned'];
    // files a non-root test run writes are its own, not root's: their ownership findings aside
    assert.deepEqual(
      rootForPart(t, 'file ownership') ? problems(outcome) : settingProblems(outcome),
      expected,
    );
    assert.ok(outcome.findings.every((f) => f.severity === 'info'));
  });

  it('flag-only kubelet: the flag defaults open it (anonymous, AlwaysAllow, 10255)', async (t) => {
    const root = await host(t, {
      argv: ['/usr/local/bin/kubelet', '--kubeconfig', '/etc/kubernetes/kubelet.conf', '--v=2'],
    });
    const outcome = await run(root);
    assert.deepEqual(settingProblems(outcome), [
      'KubeletAnonymousAuthEnabled',
      'KubeletAuthorizationAlwaysAllow',
      'KubeletClientCAFileNotSet',
      'KubeletClientCertRotationOff',
      'KubeletProtectKernelDefaultsOff',
      'KubeletReadOnlyPortOpen',
      'KubeletServerCertSelfSigned',
    ]);
    const anonymous = byProblem(outcome, 'KubeletAnonymousAuthEnabled');
    // Both at once: anyone may exec into every container.
    assert.equal(anonymous.severity, 'critical');
    assert.ok(
      anonymous.evidence.includes('from default (no --config)'),
      anonymous.evidence.join('\n'),
    );
    assert.ok(anonymous.evidence.some((line) => line.includes('CIS Kubernetes 1.8 4.2.1')));
    assert.match(anonymous.remediation?.summary ?? '', /Add the flag --anonymous-auth=false/);
    assert.equal(byProblem(outcome, 'KubeletAuthorizationAlwaysAllow').severity, 'critical');
    const readOnly = byProblem(outcome, 'KubeletReadOnlyPortOpen');
    assert.equal(readOnly.severity, 'warning');
    assert.match(readOnly.title, /10255/);
    assert.deepEqual(readOnly.evidence.slice(0, 2), [
      'readOnlyPort: 10255',
      'from default (no --config)',
    ]);
  });

  it('flag-only kubelet with the safe flags is left alone', async (t) => {
    const root = await host(t, {
      argv: [
        'kubelet',
        '--anonymous-auth=false',
        '--authorization-mode',
        'Webhook',
        '--read-only-port=0',
        '--client-ca-file=/etc/kubernetes/pki/ca.crt',
        '--rotate-certificates',
        '--tls-cert-file=/etc/kubernetes/pki/kubelet.crt',
        '--protect-kernel-defaults=true',
      ],
    });
    assert.deepEqual(settingProblems(await run(root)), []);
  });

  it('file-only kubelet: the v1beta1 defaults are safe where the file says nothing', async (t) => {
    const root = await host(t, {
      argv: ['/usr/bin/kubelet', '--config=/var/lib/kubelet/config.yaml'],
      files: { 'var/lib/kubelet/config.yaml': HEADER },
    });
    await fs.chmod(path.join(root, 'var/lib/kubelet/config.yaml'), 0o600);
    const outcome = await run(root);
    // No anonymous, AlwaysAllow or read-only port finding: off, Webhook and 0 by default.
    assert.deepEqual(settingProblems(outcome), [
      'KubeletClientCAFileNotSet',
      'KubeletClientCertRotationOff',
      'KubeletProtectKernelDefaultsOff',
      'KubeletServerCertSelfSigned',
    ]);
    const rotation = byProblem(outcome, 'KubeletClientCertRotationOff');
    assert.ok(
      rotation.evidence.includes(
        'from default (--config /var/lib/kubelet/config.yaml does not set rotateCertificates)',
      ),
      rotation.evidence.join('\n'),
    );
    assert.ok(
      rotation.remediation?.summary.startsWith(
        'Add to /var/lib/kubelet/config.yaml:\n  rotateCertificates: true\n',
      ),
      rotation.remediation?.summary,
    );
  });

  it('a flag overrides the file, and the finding says so', async (t) => {
    const root = await host(t, {
      fixture: 'kubelet-config-kubeadm',
      argv: [...KUBEADM_ARGV, '--anonymous-auth=true'],
    });
    const outcome = await run(root);
    assert.deepEqual(settingProblems(outcome), [
      'KubeletAnonymousAuthEnabled',
      'KubeletProtectKernelDefaultsOff',
      'KubeletServerCertSelfSigned',
    ]);
    const anonymous = byProblem(outcome, 'KubeletAnonymousAuthEnabled');
    // Webhook still decides what system:anonymous may do: a warning, not critical.
    assert.equal(anonymous.severity, 'warning');
    assert.ok(
      anonymous.evidence.includes(
        'from flag --anonymous-auth=true overrides /var/lib/kubelet/config.yaml authentication.anonymous.enabled: false',
      ),
      anonymous.evidence.join('\n'),
    );
    assert.match(anonymous.message, /flag --anonymous-auth=true overrides/);
    assert.match(anonymous.remediation?.summary ?? '', /Change the flag to --anonymous-auth=false/);
  });

  it('a flag turning a feature gate off wins over the file', async (t) => {
    const root = await host(t, {
      argv: [
        ...KUBEADM_ARGV,
        '--feature-gates=KubeletTracing=true',
        '--feature-gates=RotateKubeletServerCertificate=false',
      ],
      files: {
        'var/lib/kubelet/config.yaml': `${HEADER}featureGates:\n  RotateKubeletServerCertificate: true\n`,
      },
    });
    const gate = byProblem(await run(root), 'KubeletServerCertRotationOff');
    assert.ok(
      gate.evidence.includes(
        'from flag --feature-gates=RotateKubeletServerCertificate=false overrides /var/lib/kubelet/config.yaml featureGates.RotateKubeletServerCertificate: true',
      ),
      gate.evidence.join('\n'),
    );
    assert.ok(gate.evidence.some((line) => line.includes('4.2.11')));
  });

  it("merges --config-dir drop-ins over the file in the kubelet's order", async (t) => {
    const root = await host(t, {
      fixture: 'kubelet-config-dropins',
      argv: [...KUBEADM_ARGV, '--config-dir=/etc/kubernetes/kubelet.conf.d'],
    });
    const outcome = await run(root);
    // 90-readonly-off.conf wins over 20-readonly.conf; 99-ignored.yaml is never read.
    assert.deepEqual(settingProblems(outcome), [
      'KubeletAnonymousAuthEnabled',
      'KubeletAuthorizationAlwaysAllow',
      'KubeletProtectKernelDefaultsOff',
      'KubeletServerCertSelfSigned',
    ]);
    const anonymous = byProblem(outcome, 'KubeletAnonymousAuthEnabled');
    assert.equal(anonymous.severity, 'critical');
    assert.ok(
      anonymous.evidence.includes(
        'from drop-in /etc/kubernetes/kubelet.conf.d/10-anonymous.conf authentication.anonymous.enabled: true overrides /var/lib/kubelet/config.yaml authentication.anonymous.enabled: false',
      ),
      anonymous.evidence.join('\n'),
    );
    assert.ok(
      anonymous.remediation?.summary.startsWith(
        'In /etc/kubernetes/kubelet.conf.d/10-anonymous.conf set:\n  authentication:\n    anonymous:\n      enabled: false\n',
      ),
      anonymous.remediation?.summary,
    );
    const authz = byProblem(outcome, 'KubeletAuthorizationAlwaysAllow');
    assert.ok(
      authz.evidence.includes(
        'from drop-in /etc/kubernetes/kubelet.conf.d/50-site/60-authz.conf authorization.mode: AlwaysAllow overrides /var/lib/kubelet/config.yaml authorization.mode: Webhook',
      ),
      authz.evidence.join('\n'),
    );
  });

  it('with --config-dir but no --config the flag defaults still apply', async (t) => {
    const root = await host(t, {
      argv: ['kubelet', '--config-dir=/etc/kubernetes/kubelet.conf.d'],
      files: {
        'etc/kubernetes/kubelet.conf.d/10-auth.conf': `${HEADER}authentication:\n  anonymous:\n    enabled: false\n`,
      },
    });
    const outcome = await run(root);
    assert.ok(!problems(outcome).includes('KubeletAnonymousAuthEnabled'));
    const authz = byProblem(outcome, 'KubeletAuthorizationAlwaysAllow');
    assert.ok(authz.evidence.includes('from default (no --config)'));
    // Anonymous is off, so AlwaysAllow alone is a warning.
    assert.equal(authz.severity, 'warning');
    assert.equal(byProblem(outcome, 'KubeletReadOnlyPortOpen').evidence[0], 'readOnlyPort: 10255');
  });

  it('reports a config file that does not parse with its line, and checks what flags set', async (t) => {
    const root = await host(t, {
      argv: ['/usr/bin/kubelet', '--config=/var/lib/kubelet/config.yaml', '--read-only-port=10255'],
      files: {
        'var/lib/kubelet/config.yaml': `${HEADER}authentication:\n  anonymous:\n    enabled: false\n   webhook: {enabled: true}\nreadOnlyPort: 0\n`,
      },
    });
    const outcome = await run(root);
    const invalid = byProblem(outcome, 'KubeletConfigInvalid');
    assert.equal(invalid.id, 'KubeletConfigInvalid:/var/lib/kubelet/config.yaml');
    assert.equal(invalid.severity, 'warning');
    assert.equal(
      invalid.evidence[0],
      '/var/lib/kubelet/config.yaml:6:4: bad indentation of a mapping entry',
    );
    assert.equal(invalid.evidence[1], 'line 6:    webhook: {enabled: true}');
    // Values the file would set are unknown: no guess from the defaults ...
    assert.deepEqual(settingProblems(outcome), ['KubeletConfigInvalid', 'KubeletReadOnlyPortOpen']);
    // ... but a flag's value is known whatever the file says.
    assert.equal(
      byProblem(outcome, 'KubeletReadOnlyPortOpen').evidence[1],
      'from flag --read-only-port=10255',
    );
  });

  it('a drop-in that sets a key overrides a config file that does not parse', async (t) => {
    const root = await host(t, {
      argv: ['kubelet', '--config=/var/lib/kubelet/config.yaml', '--config-dir=/etc/kubelet.d'],
      files: {
        'var/lib/kubelet/config.yaml': `${HEADER}readOnlyPort: [\n`,
        'etc/kubelet.d/10-auth.conf': `${HEADER}authentication:\n  anonymous:\n    enabled: true\n`,
      },
    });
    const outcome = await run(root);
    // Whatever the broken file says, the drop-in's value is the one the kubelet ends with.
    assert.deepEqual(settingProblems(outcome), [
      'KubeletAnonymousAuthEnabled',
      'KubeletConfigInvalid',
    ]);
    assert.equal(
      byProblem(outcome, 'KubeletAnonymousAuthEnabled').evidence[1],
      'from drop-in /etc/kubelet.d/10-auth.conf authentication.anonymous.enabled: true',
    );
  });

  it('resolves a relative clientCAFile against the config file, as the kubelet does', async (t) => {
    const root = await host(t, {
      argv: ['kubelet', '--config=/var/lib/kubelet/config.yaml'],
      files: {
        'var/lib/kubelet/config.yaml': `${HEADER}authentication:\n  x509:\n    clientCAFile: pki/ca.crt\n`,
        'var/lib/kubelet/pki/ca.crt': 'fixture: stands for a CA certificate\n',
      },
    });
    await fs.chmod(path.join(root, 'var/lib/kubelet/pki/ca.crt'), 0o666);
    const outcome = await run(root);
    assert.ok(!problems(outcome).includes('KubeletClientCAFileNotSet'));
    assert.ok(
      outcome.findings.some(
        (f) =>
          f.id === 'KubeletFilePermissions:/var/lib/kubelet/pki/ca.crt' &&
          /client CA file/.test(f.title),
      ),
      outcome.findings.map((f) => f.id).join(', '),
    );
  });

  it('reports a value of the wrong type and does not check that setting', async (t) => {
    const root = await host(t, {
      argv: ['/usr/bin/kubelet', '--config=/var/lib/kubelet/config.yaml'],
      files: {
        'var/lib/kubelet/config.yaml': `${HEADER}readOnlyPort: "10255"\nrotateCertificates: true\n`,
      },
    });
    const outcome = await run(root);
    const invalid = byProblem(outcome, 'KubeletConfigInvalid');
    assert.equal(invalid.id, 'KubeletConfigInvalid:/var/lib/kubelet/config.yaml#readOnlyPort');
    assert.match(invalid.message, /readOnlyPort: "10255" is not an integer/);
    assert.ok(!problems(outcome).includes('KubeletReadOnlyPortOpen'));
  });

  it('reports a missing or unreadable config file and never throws', async (t) => {
    const missing = await host(t, {
      argv: ['/usr/bin/kubelet', '--config=/var/lib/kubelet/config.yaml'],
    });
    const gone = byProblem(await run(missing), 'KubeletConfigUnreadable');
    assert.equal(gone.id, 'KubeletConfigUnreadable:/var/lib/kubelet/config.yaml');
    assert.match(gone.title, /is missing/);
    assert.deepEqual(settingProblems(await run(missing)), ['KubeletConfigUnreadable']);

    // A directory where the file should be: exists, cannot be read as a file (root reads any
    // mode, so a chmod 000 would not do).
    const unreadable = await host(t, {
      argv: ['/usr/bin/kubelet', '--config=/var/lib/kubelet/config.yaml'],
    });
    await fs.mkdir(path.join(unreadable, 'var/lib/kubelet/config.yaml'), { recursive: true });
    const cannot = byProblem(await run(unreadable), 'KubeletConfigUnreadable');
    assert.match(cannot.title, /cannot be read/);
    assert.match(cannot.evidence[0] ?? '', /not a regular file/);

    // A --config-dir that is gone: the kubelet's next start fails on it.
    const noDir = await host(t, {
      argv: ['/usr/bin/kubelet', '--config-dir=/etc/kubernetes/kubelet.conf.d'],
    });
    const dir = byProblem(await run(noDir), 'KubeletConfigUnreadable');
    assert.equal(dir.id, 'KubeletConfigUnreadable:/etc/kubernetes/kubelet.conf.d');
    assert.equal(dir.title, 'kubelet drop-in directory is missing');
  });

  it('reports files more open than CIS allows, and not owned by root (real chmod and chown)', async (t) => {
    const root = await host(t, { fixture: 'kubelet-config-kubeadm', argv: KUBEADM_ARGV });
    await fs.chmod(path.join(root, 'var/lib/kubelet/config.yaml'), 0o644);
    await fs.chmod(path.join(root, 'etc/kubernetes/kubelet.conf'), 0o640);
    await fs.chmod(path.join(root, 'etc/kubernetes/pki/ca.crt'), 0o666);
    await fs.chmod(path.join(root, 'var/lib/kubelet/pki/kubelet.key'), 0o604);
    const asRoot = rootForPart(t, 'file ownership (chown)');
    if (asRoot) {
      await fs.chown(path.join(root, 'etc/kubernetes/kubelet.conf'), 1000, 1000);
      // Owned by root but in another group: still not root:root.
      await fs.chown(path.join(root, 'var/lib/kubelet/pki/kubelet.crt'), 0, 1000);
    }
    const outcome = await run(root);
    const modes = outcome.findings
      .filter((f) => f.problem === 'KubeletFilePermissions')
      .map((f) => f.id)
      .sort();
    assert.deepEqual(modes, [
      'KubeletFilePermissions:/etc/kubernetes/kubelet.conf',
      'KubeletFilePermissions:/etc/kubernetes/pki/ca.crt',
      'KubeletFilePermissions:/var/lib/kubelet/config.yaml',
      'KubeletFilePermissions:/var/lib/kubelet/pki/kubelet.key',
    ]);
    const config = outcome.findings.find(
      (f) => f.id === 'KubeletFilePermissions:/var/lib/kubelet/config.yaml',
    );
    assert.equal(config?.title, 'kubelet config file is mode 0644, CIS asks 0600');
    assert.match(config?.message ?? '', /its group may read it, everyone may read it/);
    assert.ok(config?.evidence.some((line) => line.includes('CIS Kubernetes 1.8 4.1.9')));
    assert.equal(config?.remediation?.summary, 'chmod 600 /var/lib/kubelet/config.yaml');
    const ca = outcome.findings.find(
      (f) => f.id === 'KubeletFilePermissions:/etc/kubernetes/pki/ca.crt',
    );
    // A CA certificate may be world-readable (644); 666 lets anyone replace it.
    assert.equal(ca?.title, 'kubelet client CA file is mode 0666, CIS asks 0644');
    if (asRoot) {
      const owners = outcome.findings.filter((f) => f.problem === 'KubeletFileOwnership');
      assert.deepEqual(
        owners.map((f) => f.id),
        [
          'KubeletFileOwnership:/etc/kubernetes/kubelet.conf',
          'KubeletFileOwnership:/var/lib/kubelet/pki/kubelet.crt',
        ],
      );
      assert.match(owners[0]?.evidence[0] ?? '', /owner uid 1000 gid 1000/);
      assert.ok(owners[0]?.evidence.some((line) => line.includes('4.1.6')));
      assert.match(owners[1]?.evidence[0] ?? '', /owner uid 0 gid 1000/);
    }
  });

  it('audits drop-in files too', async (t) => {
    const root = await host(t, {
      fixture: 'kubelet-config-dropins',
      argv: [...KUBEADM_ARGV, '--config-dir=/etc/kubernetes/kubelet.conf.d'],
    });
    await fs.chmod(path.join(root, 'etc/kubernetes/kubelet.conf.d/50-site/60-authz.conf'), 0o664);
    const outcome = await run(root);
    assert.deepEqual(
      outcome.findings.filter((f) => f.problem === 'KubeletFilePermissions').map((f) => f.id),
      ['KubeletFilePermissions:/etc/kubernetes/kubelet.conf.d/50-site/60-authz.conf'],
    );
  });

  it('is skipped, with the reason, on a host without a kubelet (a laptop)', async (t) => {
    const root = await host(t, {});
    assert.deepEqual(await run(root), {
      findings: [],
      skipped: 'no kubelet on this host: no kubelet process and no /var/lib/kubelet',
    });
  });

  it('on a kubelet node with no kubelet process, says once that nothing was audited', async (t) => {
    const root = await host(t, { files: { 'var/lib/kubelet/config.yaml': HEADER } });
    const outcome = await run(root);
    assert.deepEqual(problems(outcome), ['KubeletProcessNotFound']);
    assert.equal(outcome.findings[0]?.severity, 'info');
  });

  it('audits checks.kubelet-config.configFile when no kubelet runs', async (t) => {
    const root = await host(t, { fixture: 'kubelet-config-kubeadm' });
    await fs.writeFile(
      path.join(root, 'var/lib/kubelet/config.yaml'),
      `${HEADER}readOnlyPort: 10255\nrotateCertificates: true\n`,
    );
    const outcome = await run(root, { configFile: '/var/lib/kubelet/config.yaml' });
    const readOnly = byProblem(outcome, 'KubeletReadOnlyPortOpen');
    assert.ok(
      readOnly.evidence.includes(
        'kubelet: no process found; auditing checks.kubelet-config.configFile /var/lib/kubelet/config.yaml',
      ),
      readOnly.evidence.join('\n'),
    );
  });

  it("ignores a kind node's kubelet on a laptop (a container's cgroup or mount namespace)", async (t) => {
    const kindCgroup = `0::/system.slice/docker-${'ab'.repeat(32)}.scope/kubelet.slice/kubelet.service\n`;
    const byCgroup = await host(t, {
      argv: ['/usr/bin/kubelet', '--config=/var/lib/kubelet/config.yaml'],
      cgroup: kindCgroup,
    });
    const skipped = {
      findings: [],
      skipped: `no kubelet on this host: only kubelets in containers (pid ${KUBELET_PID}) and no /var/lib/kubelet`,
    };
    assert.deepEqual(await run(byCgroup), skipped);

    const byNamespace = await host(t, {
      argv: ['/usr/bin/kubelet', '--config=/var/lib/kubelet/config.yaml'],
    });
    await fs.mkdir(path.join(byNamespace, 'proc/1/ns'), { recursive: true });
    await fs.mkdir(path.join(byNamespace, `proc/${KUBELET_PID}/ns`), { recursive: true });
    await fs.symlink('mnt:[4026531841]', path.join(byNamespace, 'proc/1/ns/mnt'));
    await fs.symlink('mnt:[4026532513]', path.join(byNamespace, `proc/${KUBELET_PID}/ns/mnt`));
    assert.deepEqual(await run(byNamespace), skipped);

    // The same kubelet in the host's mount namespace is audited (its config file is missing).
    await fs.rm(path.join(byNamespace, `proc/${KUBELET_PID}/ns/mnt`));
    await fs.symlink('mnt:[4026531841]', path.join(byNamespace, `proc/${KUBELET_PID}/ns/mnt`));
    assert.deepEqual(problems(await run(byNamespace)), ['KubeletConfigUnreadable']);
  });

  it('finds a kubelet started as "hyperkube kubelet"', async (t) => {
    const root = await host(t, {
      comm: 'hyperkube',
      argv: ['/hyperkube', 'kubelet', '--anonymous-auth=false', '--authorization-mode=Webhook'],
    });
    const outcome = await run(root);
    assert.ok(!problems(outcome).includes('KubeletAnonymousAuthEnabled'));
    assert.ok(!problems(outcome).includes('KubeletAuthorizationAlwaysAllow'));
    assert.ok(problems(outcome).includes('KubeletReadOnlyPortOpen'));
  });
});

describe('kubelet-config check on this machine', () => {
  it('finds a real process named kubelet in /proc and reads its real cmdline', async (t) => {
    // Skip where the answer would not be ours: this test runs in another mount namespace than
    // PID 1 (its child would be a containerized kubelet), or a real kubelet already runs here.
    const ns = (pid: string) => fs.readlink(`/proc/${pid}/ns/mnt`).catch(() => undefined);
    const [initNs, ownNs] = [await ns('1'), await ns('self')];
    if (initNs !== undefined && ownNs !== undefined && initNs !== ownNs) {
      t.skip('not in the mount namespace of PID 1');
      return;
    }
    const comms = await Promise.all(
      (await fs.readdir('/proc'))
        .filter((name) => /^\d+$/.test(name))
        .map((pid) => fs.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')),
    );
    if (comms.some((comm) => comm.trim() === 'kubelet')) {
      t.skip('a kubelet already runs on this machine');
      return;
    }
    const dir = await tempDir(t);
    // A shell under the name kubelet: comm is "kubelet", and it keeps the flags in its argv.
    const binary = path.join(dir, 'kubelet');
    await fs.copyFile('/bin/sh', binary);
    await fs.chmod(binary, 0o755);
    const config = path.join(dir, 'config.yaml');
    await fs.writeFile(config, `${HEADER}rotateCertificates: true\n`, { mode: 0o600 });
    const { spawn } = await import('node:child_process');
    const child = spawn(
      binary,
      ['-c', 'while :; do sleep 1; done', `--config=${config}`, '--read-only-port=10255'],
      { stdio: 'ignore' },
    );
    t.after(() => child.kill('SIGKILL'));
    await new Promise((resolve) => child.once('spawn', resolve));
    const outcome = await run('/');
    const readOnly = byProblem(outcome, 'KubeletReadOnlyPortOpen');
    assert.deepEqual(readOnly.evidence.slice(1, 3), [
      `from flag --read-only-port=10255`,
      `kubelet: process ${child.pid} --config ${config}`,
    ]);
    assert.ok(!problems(outcome).includes('KubeletClientCertRotationOff'));
  });
});
