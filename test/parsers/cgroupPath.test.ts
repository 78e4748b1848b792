// /proc/<pid>/cgroup as the kubelet and the runtimes write it, for containerd, CRI-O and Docker
// under both cgroup drivers and both cgroup versions, and the variations seen in clusters
// (kind's --cgroup-root, a reader inside a cgroup namespace, CRI-O's conmon, static pods).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseCgroup } from '../../agent/parsers/cgroupPath.ts';

const UID = '6f1d7a2c-3b4e-4c5d-8e9f-0a1b2c3d4e5f';
const SYSTEMD_UID = UID.replaceAll('-', '_');
const ID = 'a'.repeat(8) + '0123456789abcdef'.repeat(3) + 'b'.repeat(8);

/** A cgroup v1 file (several hierarchies, the same path in each) or a v2 one. */
function v1(path: string): string {
  return [
    `12:pids:${path}`,
    `11:memory:${path}`,
    `4:cpu,cpuacct:${path}`,
    `1:name=systemd:${path}`,
    '0::/',
  ].join('\n');
}
function v2(path: string): string {
  return `0::${path}\n`;
}

const FORMS: { name: string; path: string; runtime?: string; driver: string }[] = [
  {
    name: 'containerd, systemd driver',
    path: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${SYSTEMD_UID}.slice/cri-containerd-${ID}.scope`,
    runtime: 'containerd',
    driver: 'systemd',
  },
  {
    name: 'containerd, cgroupfs driver',
    path: `/kubepods/burstable/pod${UID}/${ID}`,
    driver: 'cgroupfs',
  },
  {
    name: 'CRI-O, systemd driver',
    path: `/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod${SYSTEMD_UID}.slice/crio-${ID}.scope`,
    runtime: 'cri-o',
    driver: 'systemd',
  },
  {
    name: 'CRI-O, cgroupfs driver',
    path: `/kubepods/besteffort/pod${UID}/crio-${ID}`,
    runtime: 'cri-o',
    driver: 'cgroupfs',
  },
  {
    name: 'Docker (cri-dockerd), systemd driver',
    path: `/kubepods.slice/kubepods-pod${SYSTEMD_UID}.slice/docker-${ID}.scope`,
    runtime: 'docker',
    driver: 'systemd',
  },
  {
    name: 'Docker (cri-dockerd), cgroupfs driver, guaranteed pod',
    path: `/kubepods/pod${UID}/${ID}`,
    driver: 'cgroupfs',
  },
];

for (const form of FORMS) {
  for (const [version, file] of [
    ['cgroup v1', v1(form.path)],
    ['cgroup v2', v2(form.path)],
  ] as const) {
    test(`${form.name}, ${version}: pod UID and container ID`, () => {
      const identity = parseCgroup(file);
      assert.ok(identity);
      assert.equal(identity.podUid, UID);
      assert.equal(identity.containerId, ID);
      assert.equal(identity.runtime, form.runtime);
      assert.equal(identity.driver, form.driver);
      assert.equal(identity.path, form.path);
      const podPath = form.path.slice(0, form.path.lastIndexOf('/'));
      assert.equal(
        identity.podPidsDir,
        (version === 'cgroup v1' ? '/sys/fs/cgroup/pids' : '/sys/fs/cgroup') + podPath,
      );
    });
  }
}

test("kind's kubelet (--cgroup-root=/kubelet) prefixes the slices", () => {
  const identity = parseCgroup(
    v2(
      `/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod${SYSTEMD_UID}.slice/cri-containerd-${ID}.scope`,
    ),
  );
  assert.equal(identity?.podUid, UID);
  assert.equal(identity.containerId, ID);
});

test('read from inside a cgroup namespace, the path is relative ("/.."): still found, pids dir from the root', () => {
  const identity = parseCgroup(
    v2(
      `/../../kubepods-burstable-pod${SYSTEMD_UID}.slice/cri-containerd-${ID}.scope`.replace(
        '/../../',
        '/../../kubepods.slice/kubepods-burstable.slice/',
      ),
    ),
  );
  assert.equal(identity?.podUid, UID);
  assert.equal(identity.containerId, ID);
  assert.equal(
    identity.podPidsDir,
    `/sys/fs/cgroup/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${SYSTEMD_UID}.slice`,
  );
});

test("CRI-O's conmon sits in the pod's cgroup under its own scope: the pod, marked conmon", () => {
  const identity = parseCgroup(
    v2(
      `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${SYSTEMD_UID}.slice/crio-conmon-${ID}.scope`,
    ),
  );
  assert.equal(identity?.podUid, UID);
  assert.equal(identity.conmon, true);
  assert.equal(identity.containerId, ID);
});

test('a static pod (UID = 32-digit config hash) is a pod too', () => {
  const hash = '5d8e6f3c0c0a1e2b3c4d5e6f7a8b9c0d';
  assert.equal(parseCgroup(v1(`/kubepods/burstable/pod${hash}/${ID}`))?.podUid, hash);
  assert.equal(
    parseCgroup(
      v2(
        `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${hash}.slice/cri-containerd-${ID}.scope`,
      ),
    )?.podUid,
    hash,
  );
});

test('a process in the pod cgroup itself (no container level) belongs to the pod only', () => {
  const identity = parseCgroup(v1(`/kubepods/burstable/pod${UID}`));
  assert.equal(identity?.podUid, UID);
  assert.equal(identity.containerId, undefined);
});

test('host processes, system services and plain docker containers are not in a pod', () => {
  assert.equal(parseCgroup(v2('/system.slice/kubelet.service')), undefined);
  assert.equal(parseCgroup(v1('/')), undefined);
  assert.equal(parseCgroup(''), undefined);
  assert.equal(parseCgroup('garbage without colons\n\0\xff'), undefined);
  const docker = parseCgroup(v2(`/system.slice/docker-${ID}.scope`));
  assert.equal(docker?.podUid, undefined);
  assert.equal(docker?.containerId, ID);
  assert.equal(parseCgroup(v1(`/docker/${ID}`))?.containerId, ID);
});

test('cgroup v1 with the pod only in some hierarchies: the pids one is preferred for pids.max', () => {
  const identity = parseCgroup(
    [
      `12:pids:/kubepods/burstable/pod${UID}/${ID}`,
      '1:name=systemd:/system.slice/containerd.service',
    ].join('\n'),
  );
  assert.equal(identity?.podPidsDir, `/sys/fs/cgroup/pids/kubepods/burstable/pod${UID}`);
  const fromSystemd = parseCgroup(
    ['12:pids:/', `1:name=systemd:/kubepods/burstable/pod${UID}/${ID}`].join('\n'),
  );
  assert.equal(fromSystemd?.podUid, UID);
  // The path came from another hierarchy: where its pids.max is, is not known.
  assert.equal(fromSystemd.podPidsDir, undefined);
});
