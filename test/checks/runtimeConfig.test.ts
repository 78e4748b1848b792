// The runtime-config check on host roots built in temp dirs: docker's daemon.json (valid,
// broken, insecure registries, a TCP API), dockerd's command line found through its pid file,
// containerd's config.toml and hosts.toml files, CRI-O's registries.conf.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { CheckOutcome } from '../../agent/checks/check.ts';
import { runtimeConfigCheck } from '../../agent/checks/runtimeConfig/runtimeConfigCheck.ts';
import type { FindingDraft } from '../../agent/findings/finding.ts';
import { tempDir, writeFiles } from '../helpers.ts';
import { checkOptions, runCheckOn } from './runCheckOn.ts';

const defaults = checkOptions(runtimeConfigCheck, {});

async function run(t: TestContext, files: Record<string, string | Buffer>): Promise<CheckOutcome> {
  const root = await tempDir(t);
  await writeFiles(root, files);
  return runCheckOn(runtimeConfigCheck, root, defaults);
}

function ids(outcome: CheckOutcome): string[] {
  return outcome.findings.map((f) => f.id).sort();
}

function find(outcome: CheckOutcome, id: string): FindingDraft {
  const finding = outcome.findings.find((f) => f.id === id);
  assert.ok(finding, `no finding ${id} among ${ids(outcome).join(', ')}`);
  return finding;
}

/** A live dockerd in the host's /proc, found through its pid file. */
function dockerd(...args: string[]): Record<string, string> {
  return {
    'var/run/docker.pid': '4242\n',
    'proc/4242/comm': 'dockerd\n',
    'proc/4242/cmdline': ['/usr/bin/dockerd', ...args].join('\0') + '\0',
  };
}

const SEED_DAEMON_JSON = `{
    "storage-driver": "overlay2",
    "insecure-registries": ["docker-registry:5000", "oreo:5000"]
}
`;

describe('runtime-config check', () => {
  it('says nothing on a host with no runtime configuration at all', async (t) => {
    assert.deepEqual(await run(t, {}), { findings: [] });
  });

  describe('docker', () => {
    it('is quiet about a valid daemon.json with only loopback registries and a unix socket', async (t) => {
      const outcome = await run(t, {
        'etc/docker/daemon.json': JSON.stringify({
          'insecure-registries': [
            '127.0.0.0/8',
            'localhost:5000',
            '127.0.0.1:5000',
            '[::1]:5000',
            '::1/128',
          ],
          hosts: ['unix:///var/run/docker.sock', 'fd://'],
          'log-driver': 'json-file',
        }),
      });
      assert.deepEqual(outcome.findings, []);
    });

    it('reports a daemon.json that does not parse, with line:column and the reload story', async (t) => {
      const outcome = await run(t, {
        'etc/docker/daemon.json': `{
    "storage-driver": "overlay2",
    "insecure-registries": ["docker-registry:5000"],
}
`,
      });
      assert.deepEqual(ids(outcome), ['DockerDaemonJsonInvalid']);
      const finding = find(outcome, 'DockerDaemonJsonInvalid');
      assert.equal(finding.severity, 'warning');
      assert.deepEqual(finding.evidence, [
        "/etc/docker/daemon.json:4:1: invalid character '}' looking for beginning of object key string",
      ]);
      assert.match(finding.message, /refuses to start/);
      assert.match(finding.message, /reload .* keeps the configuration dockerd already had/);
      assert.match(
        finding.remediation?.summary ?? '',
        /dockerd --validate --config-file \/etc\/docker\/daemon\.json/,
      );
      // A file dockerd cannot load is not read for registries: nothing else is claimed.
    });

    it("names each non-loopback insecure registry of the seed's daemon.json", async (t) => {
      const outcome = await run(t, { 'etc/docker/daemon.json': SEED_DAEMON_JSON });
      assert.deepEqual(ids(outcome), [
        'InsecureRegistry:/etc/docker/daemon.json:docker-registry:5000',
        'InsecureRegistry:/etc/docker/daemon.json:oreo:5000',
      ]);
      const oreo = find(outcome, 'InsecureRegistry:/etc/docker/daemon.json:oreo:5000');
      assert.equal(oreo.severity, 'warning');
      assert.equal(oreo.title, 'docker pulls from oreo:5000 without TLS verification');
      assert.deepEqual(oreo.evidence, [
        '/etc/docker/daemon.json: "insecure-registries" includes "oreo:5000"',
      ]);
      assert.match(oreo.remediation?.summary ?? '', /systemctl reload docker/);
      assert.ok(oreo.title.length <= 80);
    });

    it('a CIDR entry is a network of registries; 0.0.0.0/0 is every registry (critical)', async (t) => {
      const outcome = await run(t, {
        'etc/docker/daemon.json': JSON.stringify({
          'insecure-registries': ['10.0.0.0/8', '0.0.0.0/0', '127.0.0.0/8'],
        }),
      });
      assert.deepEqual(ids(outcome), [
        'InsecureRegistry:/etc/docker/daemon.json:0.0.0.0/0',
        'InsecureRegistry:/etc/docker/daemon.json:10.0.0.0/8',
      ]);
      assert.equal(
        find(outcome, 'InsecureRegistry:/etc/docker/daemon.json:0.0.0.0/0').severity,
        'critical',
      );
      const net = find(outcome, 'InsecureRegistry:/etc/docker/daemon.json:10.0.0.0/8');
      assert.equal(net.severity, 'warning');
      assert.match(net.message, /whose name resolves into 10\.0\.0\.0\/8/);
    });

    it('an entry dockerd refuses makes the configuration one it cannot load', async (t) => {
      const outcome = await run(t, {
        'etc/docker/daemon.json': JSON.stringify({ 'insecure-registries': ['ftp://oreo:5000'] }),
      });
      assert.deepEqual(find(outcome, 'DockerDaemonJsonInvalid').evidence, [
        `/etc/docker/daemon.json: insecure registry "ftp://oreo:5000" should not contain '://'`,
      ]);
    });

    it('a TCP API without tlsverify: critical on every interface, warning on loopback', async (t) => {
      const outcome = await run(t, {
        'etc/docker/daemon.json': JSON.stringify({
          hosts: ['unix:///var/run/docker.sock', 'tcp://0.0.0.0:2375', 'tcp://127.0.0.1:2376'],
          tls: true,
        }),
      });
      assert.deepEqual(ids(outcome), [
        'DockerApiUnauthenticated:0.0.0.0:2375',
        'DockerApiUnauthenticated:127.0.0.1:2376',
      ]);
      const open = find(outcome, 'DockerApiUnauthenticated:0.0.0.0:2375');
      assert.equal(open.severity, 'critical');
      assert.match(open.message, /root on this node/);
      assert.match(open.message, /tls only encrypts/);
      assert.deepEqual(open.evidence.slice(0, 2), [
        '/etc/docker/daemon.json: "hosts" includes "tcp://0.0.0.0:2375"',
        'tlsverify: not set (off) (dockerd is not running or its pid file is missing, so flags such as --tlsverify could not be checked)',
      ]);
      assert.equal(find(outcome, 'DockerApiUnauthenticated:127.0.0.1:2376').severity, 'warning');
    });

    it('tlsverify (in daemon.json or as a flag) makes a TCP API fine', async (t) => {
      const inFile = await run(t, {
        'etc/docker/daemon.json': JSON.stringify({
          hosts: ['tcp://0.0.0.0:2376'],
          tlsverify: true,
        }),
      });
      assert.deepEqual(inFile.findings, []);
      const asFlag = await run(t, {
        'etc/docker/daemon.json': JSON.stringify({ hosts: ['tcp://0.0.0.0:2376'] }),
        ...dockerd('--tlsverify', '--tlscacert=/etc/docker/ca.pem'),
      });
      assert.deepEqual(asFlag.findings, []);
    });

    it("reads the seed's flags (DOCKER_OPTS) from dockerd's command line", async (t) => {
      const outcome = await run(t, {
        ...dockerd(
          '--storage-driver=overlay2',
          '--insecure-registry',
          'docker-registry:5000',
          '--insecure-registry=oreo:5000',
          '-H',
          'fd://',
          '-Htcp://0.0.0.0:2375',
        ),
      });
      assert.deepEqual(ids(outcome), [
        'DockerApiUnauthenticated:0.0.0.0:2375',
        'InsecureRegistry:dockerd command line:docker-registry:5000',
        'InsecureRegistry:dockerd command line:oreo:5000',
      ]);
      const oreo = find(outcome, 'InsecureRegistry:dockerd command line:oreo:5000');
      assert.deepEqual(oreo.evidence, ['dockerd --insecure-registry oreo:5000']);
      assert.match(oreo.remediation?.summary ?? '', /--insecure-registry flags of dockerd/);
      assert.deepEqual(find(outcome, 'DockerApiUnauthenticated:0.0.0.0:2375').evidence, [
        'dockerd -H tcp://0.0.0.0:2375',
        'tlsverify: not set (off)',
      ]);
    });

    it("the seed's DOCKER_OPTS beside a daemon.json with the same settings: dockerd refuses the file", async (t) => {
      // /etc/sysconfig/docker still passes the flags while daemon.json has the settings too
      const outcome = await run(t, {
        'etc/docker/daemon.json': SEED_DAEMON_JSON,
        ...dockerd(
          '--storage-driver=overlay2',
          '--insecure-registry',
          'docker-registry:5000',
          '--insecure-registry',
          'oreo:5000',
        ),
      });
      const refused = find(outcome, 'DockerDaemonJsonInvalid');
      assert.deepEqual(refused.evidence, [
        `/etc/docker/daemon.json: "storage-driver" is also set by --storage-driver on dockerd's command line`,
        `/etc/docker/daemon.json: "insecure-registries" is also set by --insecure-registry on dockerd's command line`,
      ]);
      const fix = refused.remediation?.summary ?? '';
      assert.match(fix, /remove --storage-driver, --insecure-registry from dockerd's command line/);
      assert.match(fix, /\/etc\/sysconfig\/docker/);
      assert.match(
        fix,
        /or remove "storage-driver", "insecure-registries" from \/etc\/docker\/daemon\.json/,
      );
      assert.match(refused.message, /refuses to start/);
      // the same file without the flags loads: only its registries are reported
      const alone = await run(t, { 'etc/docker/daemon.json': SEED_DAEMON_JSON });
      assert.ok(!ids(alone).includes('DockerDaemonJsonInvalid'), ids(alone).join(', '));
    });

    it('keys that name no dockerd option are refused, with the likely meant key', async (t) => {
      const outcome = await run(t, {
        'etc/docker/daemon.json': JSON.stringify({
          'storage-drive': 'overlay2',
          H: ['fd://'],
          // an object under an option that is not a map is looked into, as dockerd does
          proxies: { 'http-proxy': 'http://proxy:3128', 'no-proxys': 'localhost' },
          'log-opts': { 'max-size': '10m' },
          features: { buildkit: true },
          // a list flag's own name is accepted by dockerd (and its value ignored)
          'insecure-registry': ['oreo:5000'],
        }),
      });
      assert.deepEqual(ids(outcome), ['DockerDaemonJsonInvalid']);
      const refused = find(outcome, 'DockerDaemonJsonInvalid');
      assert.deepEqual(refused.evidence, [
        '/etc/docker/daemon.json: "storage-drive" is not a dockerd option (did you mean "storage-driver"?)',
        '/etc/docker/daemon.json: "H" is not a dockerd option (did you mean "hosts"?)',
        '/etc/docker/daemon.json: "no-proxys" is not a dockerd option (did you mean "no-proxy"?)',
      ]);
      assert.match(
        refused.remediation?.summary ?? '',
        /^Rename "storage-drive" to "storage-driver" in \/etc\/docker\/daemon\.json \(or remove it\); rename "H" to "hosts"/,
      );
    });

    it('a missing daemon.json is fine unless dockerd was told to read it with --config-file', async (t) => {
      // dockerd starts, and since 17.11 reloads, with no default file (moby#35125): not a finding
      const standard = await run(t, { ...dockerd('--storage-driver=overlay2') });
      assert.deepEqual(standard.findings, []);
      const named = await run(t, {
        ...dockerd('--config-file', '/opt/docker/daemon.json'),
      });
      assert.deepEqual(find(named, 'DockerDaemonJsonInvalid').evidence, [
        'dockerd --config-file /opt/docker/daemon.json: open /opt/docker/daemon.json: no such file or directory',
      ]);
    });

    it("follows dockerd's --config-file, and ignores a stale pid file", async (t) => {
      const moved = await run(t, {
        ...dockerd('--config-file', '/opt/docker/daemon.json'),
        'opt/docker/daemon.json': '{"insecure-registries": ["oreo:5000"]}',
        'etc/docker/daemon.json': '{ not read }',
      });
      assert.deepEqual(ids(moved), ['InsecureRegistry:/opt/docker/daemon.json:oreo:5000']);
      const stale = await run(t, {
        ...dockerd('--insecure-registry', 'oreo:5000'),
        'proc/4242/comm': 'bash\n',
      });
      assert.deepEqual(stale.findings, []);
    });
  });

  describe('containerd', () => {
    const V2_CONFIG = `version = 2

[plugins."io.containerd.grpc.v1.cri".registry]
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors]
    [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
      endpoint = ["http://10.0.0.5:5000", "https://registry-1.docker.io"]
    [plugins."io.containerd.grpc.v1.cri".registry.mirrors."localhost:5000"]
      endpoint = ["http://localhost:5000"]
  [plugins."io.containerd.grpc.v1.cri".registry.configs]
    [plugins."io.containerd.grpc.v1.cri".registry.configs."192.168.31.250:5000".tls]
      insecure_skip_verify = true
    [plugins."io.containerd.grpc.v1.cri".registry.configs."127.0.0.1:5000".tls]
      insecure_skip_verify = true
    [plugins."io.containerd.grpc.v1.cri".registry.configs."gcr.io".auth]
      username = "_json_key"
      password = "not-a-real-secret"
`;

    it('reports insecure_skip_verify and http:// mirrors of a v2 config, with their lines', async (t) => {
      const outcome = await run(t, { 'etc/containerd/config.toml': V2_CONFIG });
      assert.deepEqual(ids(outcome), [
        'InsecureRegistry:/etc/containerd/config.toml:10.0.0.5:5000',
        'InsecureRegistry:/etc/containerd/config.toml:192.168.31.250:5000',
      ]);
      const skip = find(
        outcome,
        'InsecureRegistry:/etc/containerd/config.toml:192.168.31.250:5000',
      );
      assert.equal(
        skip.title,
        'containerd pulls from 192.168.31.250:5000 without TLS verification',
      );
      assert.deepEqual(skip.evidence, [
        '/etc/containerd/config.toml:11: [plugins."io.containerd.grpc.v1.cri".registry.configs."192.168.31.250:5000".tls] insecure_skip_verify = true',
      ]);
      assert.match(skip.message, /containerd 2\.x ignores registry\.configs\.\*\.tls/);
      const http = find(outcome, 'InsecureRegistry:/etc/containerd/config.toml:10.0.0.5:5000');
      assert.equal(http.title, 'containerd pulls from 10.0.0.5:5000 over plain HTTP');
      assert.deepEqual(http.evidence, [
        '/etc/containerd/config.toml:6: [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"] endpoint = ["http://10.0.0.5:5000"]',
      ]);
      // The credentials beside them never reach a finding.
      assert.doesNotMatch(JSON.stringify(outcome), /not-a-real-secret/);
    });

    it('with config_path set, registry.configs are ignored and its hosts directory is read', async (t) => {
      const outcome = await run(t, {
        'etc/containerd/config.toml': `version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = "/etc/containerd/registries:/etc/docker/certs.d"
[plugins."io.containerd.grpc.v1.cri".registry.configs."192.168.31.250:5000".tls]
  insecure_skip_verify = true
`,
        'etc/containerd/registries/reg.example.com_5000_/hosts.toml':
          'server = "https://reg.example.com:5000"\nskip_verify = true\n',
      });
      assert.deepEqual(ids(outcome), [
        'InsecureRegistry:/etc/containerd/registries/reg.example.com_5000_/hosts.toml:reg.example.com:5000',
      ]);
      assert.deepEqual(outcome.findings[0]?.evidence, [
        '/etc/containerd/registries/reg.example.com_5000_/hosts.toml:2: skip_verify = true',
        'hosts directory from /etc/containerd/config.toml:3: [plugins."io.containerd.grpc.v1.cri".registry] config_path = "/etc/containerd/registries:/etc/docker/certs.d"',
      ]);
    });

    it('a containerd 2.x (version 3) config: registry.configs.*.tls is not read by containerd', async (t) => {
      const outcome = await run(t, {
        'etc/containerd/config.toml': `version = 3
[plugins.'io.containerd.cri.v1.images'.registry.configs.'10.0.0.9:5000'.tls]
  insecure_skip_verify = true
`,
      });
      assert.deepEqual(outcome.findings, []);
    });

    it('hosts.toml: skip_verify and an http:// server and host, loopback hosts left out', async (t) => {
      const outcome = await run(t, {
        'etc/containerd/certs.d/docker.io/hosts.toml': `server = "https://registry-1.docker.io"

[host."http://192.168.31.250:5000"]
  capabilities = ["pull", "resolve", "push"]
  skip_verify = true

[host."http://localhost:5000"]
  capabilities = ["pull"]
`,
        'etc/containerd/certs.d/harbor.internal/hosts.toml': `server = "http://harbor.internal"
`,
        'etc/containerd/certs.d/127.0.0.1_5000_/hosts.toml': `server = "http://127.0.0.1:5000"
skip_verify = true
`,
      });
      assert.deepEqual(ids(outcome), [
        'InsecureRegistry:/etc/containerd/certs.d/docker.io/hosts.toml:192.168.31.250:5000',
        'InsecureRegistry:/etc/containerd/certs.d/harbor.internal/hosts.toml:harbor.internal',
      ]);
      const mirror = find(
        outcome,
        'InsecureRegistry:/etc/containerd/certs.d/docker.io/hosts.toml:192.168.31.250:5000',
      );
      assert.deepEqual(mirror.evidence, [
        '/etc/containerd/certs.d/docker.io/hosts.toml:3: [host."http://192.168.31.250:5000"]',
        '/etc/containerd/certs.d/docker.io/hosts.toml:5: [host."http://192.168.31.250:5000"] skip_verify = true',
      ]);
      assert.match(mirror.message, /without TLS verification and over plain HTTP/);
      assert.match(mirror.message, /tries HTTPS first, then falls back to plain HTTP/);
      assert.match(mirror.remediation?.summary ?? '', /no restart needed/);
      const server = find(
        outcome,
        'InsecureRegistry:/etc/containerd/certs.d/harbor.internal/hosts.toml:harbor.internal',
      );
      assert.equal(server.title, 'containerd pulls from harbor.internal over plain HTTP');
      assert.deepEqual(server.evidence, [
        '/etc/containerd/certs.d/harbor.internal/hosts.toml:1: server = "http://harbor.internal"',
      ]);
    });

    it('skip_verify in the _default hosts directory covers every registry: critical', async (t) => {
      const outcome = await run(t, {
        'etc/containerd/certs.d/_default/hosts.toml': 'skip_verify = true\n',
      });
      const [finding] = outcome.findings;
      assert.equal(finding?.severity, 'critical');
      assert.match(finding?.message ?? '', /any registry without its own hosts directory/);
    });

    it('a config.toml that is not TOML is reported with its line and column', async (t) => {
      const outcome = await run(t, {
        'etc/containerd/config.toml':
          'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry\n',
      });
      assert.deepEqual(ids(outcome), ['RuntimeConfigInvalid:/etc/containerd/config.toml']);
      const [finding] = outcome.findings;
      assert.deepEqual(finding?.evidence, [
        '/etc/containerd/config.toml:2:46: expected "]" to close the table header',
      ]);
      assert.match(finding?.message ?? '', /containerd does not start with it/);
    });
  });

  describe('CRI-O', () => {
    it('reports insecure = true registries and mirrors of registries.conf and its drop-ins', async (t) => {
      const outcome = await run(t, {
        'etc/containers/registries.conf': `unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "registry.internal/team"
location = "registry.internal:5000/team"
insecure = true

[[registry]]
location = "localhost:5000"
insecure = true
`,
        'etc/containers/registries.conf.d/mirror.conf': `[[registry]]
location = "docker.io"
[[registry.mirror]]
location = "mirror.internal"
insecure = true
`,
      });
      assert.deepEqual(ids(outcome), [
        'InsecureRegistry:/etc/containers/registries.conf.d/mirror.conf:mirror.internal',
        'InsecureRegistry:/etc/containers/registries.conf:registry.internal:5000/team',
      ]);
      const team = find(
        outcome,
        'InsecureRegistry:/etc/containers/registries.conf:registry.internal:5000/team',
      );
      assert.deepEqual(team.evidence, [
        '/etc/containers/registries.conf:6: [[registry]] location = "registry.internal:5000/team" insecure = true',
      ]);
      assert.match(
        find(
          outcome,
          'InsecureRegistry:/etc/containers/registries.conf.d/mirror.conf:mirror.internal',
        ).message,
        /mirror of docker\.io/,
      );
    });
  });

  it('a configuration path that cannot be read is an info finding, not an error', async (t) => {
    const root = await tempDir(t);
    // A directory where daemon.json should be: it exists but is not a file to read.
    await fs.mkdir(path.join(root, 'etc', 'docker', 'daemon.json'), { recursive: true });
    const outcome = await runCheckOn(runtimeConfigCheck, root, defaults);
    assert.deepEqual(ids(outcome), ['RuntimeConfigUnreadable:/etc/docker/daemon.json']);
    assert.equal(outcome.findings[0]?.severity, 'info');
    assert.match(outcome.findings[0]?.evidence[0] ?? '', /not a regular file/);
  });

  it('every finding has a title that fits an 80-column table and a remediation', async (t) => {
    const outcome = await run(t, {
      'etc/docker/daemon.json': JSON.stringify({
        'insecure-registries': ['a-very-long-registry-name.internal.example.com:5000'],
        hosts: ['tcp://[2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff]:2375'],
      }),
      'etc/containerd/certs.d/a-very-long-registry-name.internal.example.com/hosts.toml':
        'skip_verify = true\n',
    });
    assert.equal(outcome.findings.length, 3);
    for (const finding of outcome.findings) {
      assert.ok(finding.title.length <= 80, finding.title);
      assert.ok(finding.remediation?.summary, finding.id);
    }
  });
});
