// The sysctl check against fixture host trees (test/fixtures/hosts/*/README.md says what each
// one models and what it must produce).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { readPersistedSysctls } from '../../agent/checks/sysctl/persistedSysctls.ts';
import { sysctlCheck } from '../../agent/checks/sysctl/sysctlCheck.ts';
import type { SysctlOptions } from '../../agent/checks/sysctl/sysctlCheck.ts';
import { loadConfig } from '../../agent/config/loadConfig.ts';
import type { CheckOutcome } from '../../agent/checks/check.ts';
import type { FindingDraft } from '../../agent/findings/finding.ts';
import { HostRoot } from '../../agent/host/hostRoot.ts';
import { copyFixtureHost, fixtureHost, runCli, tempDir, writeFiles } from '../helpers.ts';
import { checkOptions, runCheckOn } from './runCheckOn.ts';

const defaultOptions = checkOptions(sysctlCheck, {});

/** Options as the agent gets them from a profile override in its configuration. */
async function optionsWithProfile(profileYaml: string): Promise<SysctlOptions> {
  const { config } = await loadConfig({
    env: { NODE_AUDITOR_CHECKS__SYSCTL__PROFILE: profileYaml },
  });
  return config.checks.sysctl as unknown as SysctlOptions;
}

async function runOn(root: string, options = defaultOptions): Promise<CheckOutcome> {
  return runCheckOn(sysctlCheck, root, options);
}

function ids(outcome: CheckOutcome): string[] {
  return outcome.findings.map((f) => `${f.severity} ${f.id}`).sort();
}

function finding(outcome: CheckOutcome, id: string): FindingDraft {
  const f = outcome.findings.find((x) => x.id === id);
  assert.ok(f, `expected finding ${id}; got ${ids(outcome).join(', ')}`);
  return f;
}

function sample(outcome: CheckOutcome, metric: string, key: string): number | undefined {
  return outcome.samples?.find((s) => s.metric === metric && s.labels.key === key)?.value;
}

test('compliant node: no findings, every key compliant and persisted', async () => {
  const outcome = await runOn(fixtureHost('compliant'));
  assert.deepEqual(ids(outcome), []);
  for (const key of Object.keys(defaultOptions.profile)) {
    assert.equal(sample(outcome, 'node_auditor_sysctl_compliant', key), 1, key);
    assert.equal(sample(outcome, 'node_auditor_sysctl_persisted', key), 1, key);
  }
  assert.equal(sample(outcome, 'node_auditor_sysctl', 'fs.inotify.max_user_watches'), 1048576);
  // not a single number: no value sample, but compliance is still exported
  assert.equal(
    sample(outcome, 'node_auditor_sysctl', 'net.ipv4.ip_local_reserved_ports'),
    undefined,
  );
});

test("bad runtime (the seed's NotReady node): every out-of-profile key, with the right severity", async () => {
  const outcome = await runOn(fixtureHost('bad-runtime'));
  assert.deepEqual(ids(outcome), [
    'critical SysctlOutOfProfile:fs.inotify.max_user_instances',
    'critical SysctlOutOfProfile:fs.inotify.max_user_watches',
    'critical SysctlOutOfProfile:net.ipv4.ip_forward',
    'warning SysctlOutOfProfile:kernel.panic',
    'warning SysctlOutOfProfile:kernel.panic_on_oops',
    'warning SysctlOutOfProfile:net.ipv4.ip_local_reserved_ports',
    'warning SysctlOutOfProfile:vm.overcommit_memory',
  ]);
  const watches = finding(outcome, 'SysctlOutOfProfile:fs.inotify.max_user_watches');
  assert.equal(watches.title, 'fs.inotify.max_user_watches is 8192, needs at least 524288');
  assert.match(watches.message, /Failed to start cAdvisor/);
  assert.deepEqual(watches.evidence, ['/proc/sys/fs/inotify/max_user_watches = 8192']);
  // the fix writes the seed's value (the recommended one), in the agent's persist file
  assert.equal(
    watches.remediation?.summary,
    'Add this line to /etc/sysctl.d/99-kubernetes.conf:\n    fs.inotify.max_user_watches = 1048576\nthen apply it: sysctl --system',
  );
  assert.equal(sample(outcome, 'node_auditor_sysctl', 'fs.inotify.max_user_watches'), 8192);
  assert.equal(sample(outcome, 'node_auditor_sysctl_compliant', 'fs.inotify.max_user_watches'), 0);

  // persisted in 99-sysctl.conf but never applied: the fix is sysctl --system, not a new line
  const forward = finding(outcome, 'SysctlOutOfProfile:net.ipv4.ip_forward');
  assert.match(
    forward.message,
    /\/etc\/sysctl\.d\/99-sysctl\.conf sets 1, but that has not been applied/,
  );
  assert.equal(
    forward.remediation?.summary,
    'Apply the persisted configuration:\n    sysctl --system',
  );
  assert.deepEqual(forward.evidence, [
    '/proc/sys/net/ipv4/ip_forward = 0',
    '/etc/sysctl.d/99-sysctl.conf:2: net.ipv4.ip_forward = 1',
  ]);
  assert.equal(sample(outcome, 'node_auditor_sysctl_persisted', 'net.ipv4.ip_forward'), 1);

  const ports = finding(outcome, 'SysctlOutOfProfile:net.ipv4.ip_local_reserved_ports');
  assert.equal(
    ports.title,
    'net.ipv4.ip_local_reserved_ports is (empty), needs a list including 30000-32767',
  );
  assert.match(
    ports.remediation?.summary ?? '',
    /net\.ipv4\.ip_local_reserved_ports = 30000-32767/,
  );
});

test('missing br_netfilter: one finding naming the module, how to load and persist it', async () => {
  const outcome = await runOn(fixtureHost('no-br-netfilter'));
  assert.deepEqual(ids(outcome), ['critical BrNetfilterNotLoaded']);
  const f = finding(outcome, 'BrNetfilterNotLoaded');
  assert.equal(f.title, 'br_netfilter module not loaded');
  assert.deepEqual(f.evidence, [
    '/proc/sys/net/bridge/bridge-nf-call-iptables: absent',
    '/proc/sys/net/bridge/bridge-nf-call-ip6tables: absent',
    '/proc/sys/net/bridge/bridge-nf-call-arptables: absent',
  ]);
  const fix = f.remediation?.summary ?? '';
  assert.match(fix, /modprobe br_netfilter/);
  assert.match(fix, /echo br_netfilter > \/etc\/modules-load\.d\/br_netfilter\.conf/);
  assert.match(fix, /net\.bridge\.bridge-nf-call-iptables = 1/);
  assert.match(fix, /sysctl --system/);
  assert.equal(
    sample(outcome, 'node_auditor_sysctl_compliant', 'net.bridge.bridge-nf-call-iptables'),
    0,
  );
});

test('a bridge key missing beside others that exist: br_netfilter is loaded, so the finding says the key is not in it', async (t) => {
  const root = await copyFixtureHost(t, 'compliant');
  await fs.rm(path.join(root, 'proc/sys/net/bridge/bridge-nf-call-arptables'));
  const outcome = await runOn(root);
  assert.deepEqual(ids(outcome), ['critical SysctlKeyMissing:net.bridge.bridge-nf-call-arptables']);
  const f = finding(outcome, 'SysctlKeyMissing:net.bridge.bridge-nf-call-arptables');
  assert.match(
    f.message,
    /^\/proc\/sys\/net\/bridge\/bridge-nf-call-arptables is absent, though br_netfilter is loaded \(net\.bridge\.bridge-nf-call-iptables, net\.bridge\.bridge-nf-call-ip6tables exist\): this kernel's br_netfilter has no net\.bridge\.bridge-nf-call-arptables\./,
  );
  assert.doesNotMatch(f.remediation?.summary ?? '', /modprobe|Load the module/);
  assert.match(
    f.remediation?.summary ?? '',
    /checks\.sysctl\.profile\.net\.bridge\.bridge-nf-call-arptables\.enabled: false/,
  );
});

test('drift: not persisted, persisted out of profile, and harmless differences are told apart', async () => {
  const outcome = await runOn(fixtureHost('drift'));
  assert.deepEqual(ids(outcome), [
    'info SysctlNotPersisted:vm.overcommit_memory',
    'info SysctlPersistedDiffers:fs.inotify.max_user_watches',
    'warning SysctlNotPersisted:net.ipv4.ip_forward',
    'warning SysctlPersistedDiffers:fs.inotify.max_user_instances',
  ]);
  const instances = finding(outcome, 'SysctlPersistedDiffers:fs.inotify.max_user_instances');
  assert.match(
    instances.message,
    /\/etc\/sysctl\.d\/99-kubernetes\.conf \(line 3\) sets 128, which does not meet the profile/,
  );
  // the file that wins must change: the fix names its line
  assert.equal(
    instances.remediation?.summary,
    'In /etc/sysctl.d/99-kubernetes.conf, change line 3 to:\n    fs.inotify.max_user_instances = 8192\nthen apply it: sysctl --system',
  );
  assert.equal(
    sample(outcome, 'node_auditor_sysctl_compliant', 'fs.inotify.max_user_instances'),
    1,
  );
  assert.equal(
    sample(outcome, 'node_auditor_sysctl_persisted', 'fs.inotify.max_user_instances'),
    0,
  );
  assert.equal(sample(outcome, 'node_auditor_sysctl_persisted', 'net.ipv4.ip_forward'), 0);
  // not persisted but the boot default meets the profile: nothing to say
  assert.equal(sample(outcome, 'node_auditor_sysctl_persisted', 'vm.panic_on_oom'), 1);
  assert.equal(
    sample(outcome, 'node_auditor_sysctl_persisted', 'net.bridge.bridge-nf-call-iptables'),
    1,
  );
});

test('a bridge key out of profile is critical; a key that cannot be read is a warning naming its path, with no compliance sample; a file only in /lib/sysctl.d is read', async (t) => {
  const root = await copyFixtureHost(t, 'compliant');
  await writeFiles(root, {
    // br_netfilter loaded, but bridged traffic bypasses iptables: Services break
    'proc/sys/net/bridge/bridge-nf-call-iptables': '0\n',
    'lib/sysctl.d/50-vendor-only.conf': 'net.core.somaxconn = 4096\n',
  });
  // a /proc/sys entry the agent cannot read (root reads any mode: a directory in its place)
  await fs.rm(path.join(root, 'proc/sys/vm/panic_on_oom'));
  await fs.mkdir(path.join(root, 'proc/sys/vm/panic_on_oom'));
  const outcome = await runOn(root);
  assert.deepEqual(ids(outcome), [
    'critical SysctlOutOfProfile:net.bridge.bridge-nf-call-iptables',
    'warning SysctlUnreadable:vm.panic_on_oom',
  ]);
  const bridge = finding(outcome, 'SysctlOutOfProfile:net.bridge.bridge-nf-call-iptables');
  assert.deepEqual(bridge.evidence[0], '/proc/sys/net/bridge/bridge-nf-call-iptables = 0');
  assert.equal(
    sample(outcome, 'node_auditor_sysctl_compliant', 'net.bridge.bridge-nf-call-iptables'),
    0,
  );
  const unreadable = finding(outcome, 'SysctlUnreadable:vm.panic_on_oom');
  assert.match(unreadable.evidence[0] ?? '', /\/proc\/sys\/vm\/panic_on_oom/);
  assert.equal(sample(outcome, 'node_auditor_sysctl_compliant', 'vm.panic_on_oom'), undefined);
  assert.equal(sample(outcome, 'node_auditor_sysctl', 'vm.panic_on_oom'), undefined);
  // the sixth place, with a file of a name no other place has
  const persisted = await readPersistedSysctls(new HostRoot(root));
  assert.deepEqual(
    persisted.assignmentsOf('net.core.somaxconn').map((a) => `${a.file}=${a.value}`),
    ['/lib/sysctl.d/50-vendor-only.conf=4096'],
  );
});

test('br_netfilter loaded by hand but not at boot: the bridge keys are not persisted, until a modules-load.d file, /etc/modules or the kernel itself loads it', async (t) => {
  const root = await copyFixtureHost(t, 'compliant');
  // in the profile's order
  const bridgeKeys = [
    'net.bridge.bridge-nf-call-iptables',
    'net.bridge.bridge-nf-call-ip6tables',
    'net.bridge.bridge-nf-call-arptables',
  ];
  const notPersisted = async () => {
    const outcome = await runOn(root);
    const found = outcome.findings.filter((f) => f.id === 'BrNetfilterNotPersisted');
    return { outcome, found: found[0], ids: ids(outcome) };
  };
  // the compliant node lists it in /etc/modules-load.d/k8s.conf
  assert.deepEqual((await notPersisted()).ids, []);

  await fs.rm(path.join(root, 'etc/modules-load.d/k8s.conf'));
  // a vendor file lists it, but a /dev/null link of the same name in /etc masks it
  await writeFiles(root, { 'usr/lib/modules-load.d/vendor.conf': '# vendor\nbr-netfilter\n' });
  await fs.symlink('/dev/null', path.join(root, 'etc/modules-load.d/vendor.conf'));
  const { outcome, found, ids: raised } = await notPersisted();
  assert.deepEqual(raised, ['warning BrNetfilterNotPersisted']);
  assert.equal(found?.title, 'br_netfilter is loaded now but not at boot');
  assert.match(found?.message ?? '', new RegExp(bridgeKeys.join(', ').replaceAll('.', '\\.')));
  assert.match(found?.message ?? '', /after a reboot those keys are gone/);
  assert.match(
    found?.remediation?.summary ?? '',
    /echo br_netfilter > \/etc\/modules-load\.d\/br_netfilter\.conf/,
  );
  for (const key of bridgeKeys) {
    assert.equal(sample(outcome, 'node_auditor_sysctl_persisted', key), 0, key);
    assert.equal(sample(outcome, 'node_auditor_sysctl_compliant', key), 1, key);
  }
  assert.equal(sample(outcome, 'node_auditor_sysctl_persisted', 'net.ipv4.ip_forward'), 1);

  // each of the three ways it does load at boot clears it
  await fs.rm(path.join(root, 'etc/modules-load.d/vendor.conf'));
  assert.deepEqual((await notPersisted()).ids, [], 'the vendor file, unmasked ("-" is "_")');
  await fs.rm(path.join(root, 'usr/lib/modules-load.d/vendor.conf'));
  await writeFiles(root, { 'etc/modules': '# /etc/modules\nloop\nbr_netfilter\n' });
  assert.deepEqual((await notPersisted()).ids, [], "Debian's /etc/modules");
  // ... unless systemd's link to it is masked: then it is not loaded at boot
  await fs.symlink('/dev/null', path.join(root, 'etc/modules-load.d/modules.conf'));
  assert.deepEqual((await notPersisted()).ids, ['warning BrNetfilterNotPersisted']);
  await fs.rm(path.join(root, 'etc/modules-load.d/modules.conf'));
  await fs.symlink('../modules', path.join(root, 'etc/modules-load.d/modules.conf'));
  assert.deepEqual((await notPersisted()).ids, [], 'the link to /etc/modules');
  await fs.rm(path.join(root, 'etc/modules'));
  assert.deepEqual((await notPersisted()).ids, ['warning BrNetfilterNotPersisted']);
  // sysfs: loaded as a module (initstate), not built in; no initstate: built in
  await writeFiles(root, { 'sys/module/br_netfilter/initstate': 'live\n' });
  assert.deepEqual((await notPersisted()).ids, ['warning BrNetfilterNotPersisted']);
  await fs.rm(path.join(root, 'sys/module/br_netfilter/initstate'));
  assert.deepEqual((await notPersisted()).ids, [], 'built in, as sysfs shows it');
  await writeFiles(root, { 'sys/module/br_netfilter/initstate': 'live\n' });
  await writeFiles(root, {
    'proc/sys/kernel/osrelease': '6.1.0-test\n',
    'lib/modules/6.1.0-test/modules.builtin':
      'kernel/net/bridge/bridge.ko\nkernel/net/bridge/br_netfilter.ko\n',
  });
  assert.deepEqual((await notPersisted()).ids, [], 'built into the running kernel');
});

test('precedence across the six places sysctl --system reads', async () => {
  const persisted = await readPersistedSysctls(new HostRoot(fixtureHost('precedence')));
  assert.equal(persisted.bootApplier, 'sysctl --system', 'no systemd-sysctl on this host');
  // files apply by name whatever their directory; /usr/lib and /etc hide same-named files
  assert.deepEqual(
    persisted.assignmentsOf('fs.inotify.max_user_watches').map((a) => `${a.file}=${a.value}`),
    [
      '/usr/lib/sysctl.d/10-vendor.conf=100000',
      '/usr/local/lib/sysctl.d/20-local.conf=200000',
      '/run/sysctl.d/30-run.conf=300000',
      '/etc/sysctl.d/40-site.conf=1048576',
    ],
  );
  // /etc/sysctl.conf is applied last, also reached through the absolute 99-sysctl.conf link
  assert.deepEqual(persisted.procps('net.ipv4.ip_forward').winner, {
    pattern: 'net.ipv4.ip_forward',
    value: '1',
    file: '/etc/sysctl.conf',
    line: 2,
  });
  assert.deepEqual(
    persisted.assignmentsOf('net.ipv4.ip_forward').map((a) => `${a.file}=${a.value}`),
    ['/etc/sysctl.d/40-site.conf=0', '/etc/sysctl.d/99-sysctl.conf=1', '/etc/sysctl.conf=1'],
  );
  // systemd-sysctl (had this host one) reaches sysctl.conf only through the 99-sysctl.conf link
  assert.equal(
    persisted.systemd('net.ipv4.ip_forward').winner?.file,
    '/etc/sysctl.d/99-sysctl.conf',
  );
  // "-" prefix and "/" separators
  assert.equal(persisted.procps('net.ipv4.ip_local_reserved_ports').winner?.value, '30000-32767');
  // a /dev/null link masks the vendor file of that name
  assert.equal(persisted.procps('fs.inotify.max_user_instances').winner, undefined);
  assert.deepEqual(
    persisted.files.map((f) => `${f.path}${f.masked ? ' (masked)' : ''}`),
    [
      '/usr/lib/sysctl.d/10-vendor.conf',
      '/usr/local/lib/sysctl.d/20-local.conf',
      '/run/sysctl.d/30-run.conf',
      '/etc/sysctl.d/40-site.conf',
      '/etc/sysctl.d/60-masked.conf (masked)',
      '/etc/sysctl.d/99-sysctl.conf',
      '/etc/sysctl.conf',
    ],
  );
  const outcome = await runOn(fixtureHost('precedence'));
  assert.deepEqual(ids(outcome), ['warning SysctlNotPersisted:fs.inotify.max_user_instances']);
});

test('a systemd host: boot (systemd-sysctl) and sysctl --system are judged apart', async () => {
  const persisted = await readPersistedSysctls(new HostRoot(fixtureHost('systemd-boot')));
  assert.equal(persisted.bootApplier, 'systemd-sysctl');
  // an explicit key beats a later glob, for both (sysctlPersistenceRealTools.test.ts runs them)
  assert.equal(persisted.systemd('fs.inotify.max_user_watches').winner?.value, '1048576');
  assert.equal(persisted.procps('fs.inotify.max_user_watches').winner?.value, '1048576');
  // "-key" keeps the glob away, for both
  assert.equal(persisted.systemd('fs.inotify.max_user_instances').winner, undefined);
  assert.equal(persisted.procps('fs.inotify.max_user_instances').winner, undefined);
  // a later "-key" cancels an explicit assignment, for systemd-sysctl only
  assert.equal(persisted.systemd('kernel.panic').winner, undefined);
  assert.equal(persisted.procps('kernel.panic').winner?.value, '10');

  const outcome = await runOn(fixtureHost('systemd-boot'));
  assert.deepEqual(ids(outcome), [
    'info SysctlNotPersisted:kernel.panic',
    'warning SysctlNotPersisted:fs.inotify.max_user_instances',
    'warning SysctlNotPersisted:net.ipv4.ip_forward',
  ]);
  const panic = finding(outcome, 'SysctlNotPersisted:kernel.panic');
  assert.match(
    panic.message,
    /\/etc\/sysctl\.d\/10-site\.conf sets kernel\.panic, but for systemd-sysctl a later "-kernel\.panic" line cancels that \(sysctl --system keeps it\)/,
  );
  assert.deepEqual(panic.evidence, [
    '/proc/sys/kernel/panic = 10',
    '/etc/sysctl.d/10-site.conf:5: kernel.panic = 10',
    'systemd-sysctl applies nothing',
    'sysctl --system applies 10 (/etc/sysctl.d/10-site.conf:5)',
  ]);
  // the persist file sorts after the vendor file: its line comes after the "-kernel.panic"
  assert.equal(
    panic.remediation?.summary,
    'Add this line to /etc/sysctl.d/99-kubernetes.conf:\n    kernel.panic = 10\nthen apply it: sysctl --system',
  );
  assert.match(
    finding(outcome, 'SysctlNotPersisted:net.ipv4.ip_forward').message,
    /Only \/etc\/sysctl\.conf sets it, and systemd-sysctl does not read that file/,
  );
  assert.equal(sample(outcome, 'node_auditor_sysctl_persisted', 'kernel.panic'), 0);
  assert.equal(sample(outcome, 'node_auditor_sysctl_persisted', 'fs.inotify.max_user_watches'), 1);
  // reserved ports persisted unsorted and split, the same set as the kernel's: no finding
  assert.equal(
    sample(outcome, 'node_auditor_sysctl_persisted', 'net.ipv4.ip_local_reserved_ports'),
    1,
  );
});

test('fix texts persist a tuned runtime value as it is, never lower', async (t) => {
  const root = await copyFixtureHost(t, 'compliant');
  await writeFiles(root, {
    'proc/sys/fs/inotify/max_user_watches': '4194304\n',
    'etc/sysctl.d/99-kubernetes.conf': 'net.ipv4.ip_forward = 1\n',
  });
  const outcome = await runOn(root);
  assert.match(
    finding(outcome, 'SysctlNotPersisted:fs.inotify.max_user_watches').remediation?.summary ?? '',
    /fs\.inotify\.max_user_watches = 4194304\n/,
  );
});

test("a default recommendation that misses an operator's stricter expectation is not used", async () => {
  const options = await optionsWithProfile('{fs.inotify.max_user_watches: {expect: ">= 2097152"}}');
  const outcome = await runOn(fixtureHost('bad-runtime'), options);
  assert.match(
    finding(outcome, 'SysctlOutOfProfile:fs.inotify.max_user_watches').remediation?.summary ?? '',
    /fs\.inotify\.max_user_watches = 2097152\n/,
  );
});

test('fix texts never hide another file: same-named vendor file, glob line under /etc', async (t) => {
  const sameName = await copyFixtureHost(t, 'bad-runtime');
  await writeFiles(sameName, {
    'usr/lib/sysctl.d/99-kubernetes.conf': 'net.ipv4.conf.all.forwarding = 1\n',
  });
  assert.match(
    finding(await runOn(sameName), 'SysctlOutOfProfile:fs.inotify.max_user_watches').remediation
      ?.summary ?? '',
    /^\/usr\/lib\/sysctl\.d\/99-kubernetes\.conf has the same name as \/etc\/sysctl\.d\/99-kubernetes\.conf, which would hide it\. Copy it to \/etc\/sysctl\.d\/99-kubernetes\.conf first/,
  );
  const glob = await copyFixtureHost(t, 'bad-runtime');
  await writeFiles(glob, { 'etc/sysctl.d/90-site.conf': 'fs.inotify.max_user_* = 4096\n' });
  assert.equal(
    finding(await runOn(glob), 'SysctlOutOfProfile:fs.inotify.max_user_watches').remediation
      ?.summary,
    'In /etc/sysctl.d/90-site.conf, add this line right after line 1 (which sets fs.inotify.max_user_*):\n    fs.inotify.max_user_watches = 1048576\nthen apply it: sysctl --system',
  );
});

test('a vendor file applied after the persist file: the fix overrides it from /etc', async (t) => {
  const root = await copyFixtureHost(t, 'compliant');
  await writeFiles(root, {
    'usr/lib/sysctl.d/99-zz-vendor.conf': 'fs.inotify.max_user_watches = 8192\n',
  });
  const outcome = await runOn(root);
  const f = finding(outcome, 'SysctlPersistedDiffers:fs.inotify.max_user_watches');
  assert.equal(f.severity, 'warning');
  assert.match(
    f.remediation?.summary ?? '',
    /^\/usr\/lib\/sysctl\.d\/99-zz-vendor\.conf \(not under \/etc\) sets it and is applied after \/etc\/sysctl\.d\/99-kubernetes\.conf\. Copy it to \/etc\/sysctl\.d\/99-zz-vendor\.conf/,
  );
});

test('garbage never crashes the check: each bad file is a finding naming its path', async (t) => {
  const root = await copyFixtureHost(t, 'garbage');
  // what git cannot hold: a FIFO (would block a naive read) and an oversized file
  execFileSync('mkfifo', [path.join(root, 'etc/sysctl.d/40-fifo.conf')]);
  await fs.writeFile(
    path.join(root, 'etc/sysctl.d/50-huge.conf'),
    Buffer.alloc(3 * 1024 * 1024, '#'),
  );
  const outcome = await runOn(root);
  assert.deepEqual(ids(outcome), [
    'critical SysctlOutOfProfile:fs.inotify.max_user_watches',
    'info SysctlConfigInvalid:/etc/sysctl.d/30-junk.conf',
    'warning HostFileUnreadable:/etc/sysctl.d/40-fifo.conf',
    'warning HostFileUnreadable:/etc/sysctl.d/50-huge.conf',
    'warning SysctlConfigInvalid:/etc/sysctl.d/10-binary.conf',
    'warning SysctlConfigInvalid:/etc/sysctl.d/20-typo.conf',
    'warning SysctlNotPersisted:fs.inotify.max_user_instances',
  ]);
  const garbage = finding(outcome, 'SysctlOutOfProfile:fs.inotify.max_user_watches');
  assert.equal(garbage.title, 'fs.inotify.max_user_watches is garbage, needs at least 524288');
  // 99-kubernetes.conf sets 1048576, but no sysctl --system turns "garbage" into a number
  assert.match(
    garbage.message,
    /^fs\.inotify\.max_user_watches is garbage, not an integer, so the node profile's ">= 524288" cannot be judged\./,
  );
  assert.match(
    garbage.message,
    /either \/proc\/sys\/fs\/inotify\/max_user_watches under the host root is not the kernel's/,
  );
  assert.equal(
    garbage.remediation?.summary,
    'Compare with "sysctl fs.inotify.max_user_watches" run on the node. If it shows garbage too, change checks.sysctl.profile.fs.inotify.max_user_watches.expect to fit that form; if not, point --host-root at the host\'s / and mount the host\'s /proc at its /proc.',
  );
  assert.deepEqual(finding(outcome, 'SysctlConfigInvalid:/etc/sysctl.d/20-typo.conf').evidence, [
    "/etc/sysctl.d/20-typo.conf:2: missing '=': fs.inotify.max_user_instances 8192",
  ]);
  assert.deepEqual(finding(outcome, 'HostFileUnreadable:/etc/sysctl.d/40-fifo.conf').evidence, [
    'cannot read /etc/sysctl.d/40-fifo.conf: not a regular file',
  ]);
  assert.match(
    finding(outcome, 'HostFileUnreadable:/etc/sysctl.d/50-huge.conf').evidence[0] ?? '',
    /larger than the 1048576-byte limit/,
  );
});

test('reserved ports persisted with spaces the kernel refuses do not count as persisted', async (t) => {
  const root = await copyFixtureHost(t, 'compliant');
  await writeFiles(root, {
    'etc/sysctl.d/99-kubernetes.conf': (
      await fs.readFile(path.join(root, 'etc/sysctl.d/99-kubernetes.conf'), 'utf8')
    ).replace('ip_local_reserved_ports=30000-32767', 'ip_local_reserved_ports = 30000 - 32767'),
  });
  const outcome = await runOn(root);
  assert.deepEqual(ids(outcome), [
    'warning SysctlPersistedDiffers:net.ipv4.ip_local_reserved_ports',
  ]);
  assert.equal(
    finding(outcome, 'SysctlPersistedDiffers:net.ipv4.ip_local_reserved_ports').remediation
      ?.summary,
    'In /etc/sysctl.d/99-kubernetes.conf, change line 3 to:\n    net.ipv4.ip_local_reserved_ports = 30000-32767\nthen apply it: sysctl --system',
  );
  assert.equal(
    sample(outcome, 'node_auditor_sysctl_persisted', 'net.ipv4.ip_local_reserved_ports'),
    0,
  );
});

test('a mistyped expect is a config error naming the key (exit 2), not a finding that never clears', async (t) => {
  for (const [expect, message] of [
    ['== 1', '"== 1" has "= 1" after "="'],
    ['=> 10', '"=> 10" has "> 10" after "="'],
    ['= ', '"=" has no value after "="'],
  ] as const) {
    await assert.rejects(
      optionsWithProfile(`{kernel.panic: {expect: "${expect}"}}`),
      (error: Error) => {
        assert.match(error.message, /checks\.sysctl\.profile\["kernel\.panic"\]\.expect: /);
        assert.ok(error.message.includes(message), error.message);
        return true;
      },
    );
  }
  const dir = await tempDir(t);
  await writeFiles(dir, {
    'c.yaml': 'checks: {sysctl: {profile: {kernel.panic: {expect: "== 10"}}}}\n',
  });
  const r = await runCli([
    'check',
    '--config',
    path.join(dir, 'c.yaml'),
    '--host-root',
    fixtureHost('compliant'),
  ]);
  assert.equal(r.code, 2, r.stdout);
  assert.match(
    r.stderr,
    /c\.yaml: checks\.sysctl\.profile\["kernel\.panic"\]\.expect: "== 10" has "= 10" after "="/,
  );
});

test('operators add and override profile keys in config', async () => {
  const options = await optionsWithProfile(`{
    fs.inotify.max_user_watches: {expect: ">= 2097152"},
    kernel.ostype: {expect: "= Linux", reason: "only Linux nodes"},
    kernel.panic: {enabled: false}
  }`);
  const outcome = await runOn(fixtureHost('compliant'), options);
  assert.deepEqual(ids(outcome), [
    'critical SysctlOutOfProfile:fs.inotify.max_user_watches',
    'warning SysctlKeyMissing:kernel.ostype',
  ]);
  assert.equal(sample(outcome, 'node_auditor_sysctl_compliant', 'kernel.panic'), undefined);
});
