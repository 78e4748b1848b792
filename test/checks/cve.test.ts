// The cve check through the agent's own client and ClusterService on the test API server,
// which answers as the recorded v1.26.0 kube-apiserver does (its /version with the gitVersion
// of each case, this node's Node with the case's kubelet version) and authorizes the
// unauthenticated GET /apis from its RBAC objects: 403 on a fresh cluster, 200 with the seeds'
// legacy system:unauthenticated bindings.
import assert from 'node:assert/strict';
import { promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { CheckOutcome, ClusterService } from '../../agent/checks/check.ts';
import { cveCheck, shippedCveTable } from '../../agent/checks/cve/cveCheck.ts';
import { CveTableError, matchCve, validateCveTable } from '../../agent/checks/cve/cveTable.ts';
import { clusterService } from '../../agent/kubernetes/clusterService.ts';
import { openKubeAccess } from '../../agent/kubernetes/kubeAccess.ts';
import { KubeApi } from '../../agent/kubernetes/kubeApi.ts';
import { parseKubeVersion } from '../../agent/parsers/kubeVersion.ts';
import { tempDir } from '../helpers.ts';
import { startFakeKubeApi } from '../kube/fakeKubeApi.ts';
import type { FakeKubeApi } from '../kube/fakeKubeApi.ts';
import { selfSignedCertificate } from '../tls/selfSigned.ts';
import { checkOptions, runCheckOn, sampleValue } from './runCheckOn.ts';

/** The recorded API server, its anonymous side authorized from its RBAC objects. */
let fake: FakeKubeApi;
/** The agent's client, as its ServiceAccount. */
let api: KubeApi;
let otherCa: string;

before(async () => {
  fake = await startFakeKubeApi();
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'node-auditor-cve-'));
  const kubeconfig = path.join(dir, 'kubeconfig');
  await fake.writeKubeconfig(kubeconfig, 'sa');
  api = new KubeApi(await openKubeAccess({ kind: 'kubeconfig', file: kubeconfig }));
  await fs.rm(dir, { recursive: true, force: true });
  otherCa = (await selfSignedCertificate()).cert;
});

after(async () => {
  api.close();
  await fake.close();
});

interface ClusterCase {
  gitVersion?: string;
  kubeletVersion?: string;
  operatingSystem?: string;
  leader?: boolean;
  /** system:unauthenticated bound to system:discovery (the seeds' legacy bindings): /apis answers 200. */
  anonymousDiscovery?: boolean;
  /** The CA the agent trusts for the API server (default: the server's own). */
  ca?: string;
}

/** The agent's ClusterService on the fake API server, set up as the case says. */
function cluster(c: ClusterCase): ClusterService {
  fake.setVersion(c.gitVersion ?? 'v1.26.0');
  fake.updateNode('k1-node01', (node) => {
    node.status.nodeInfo = {
      ...node.status.nodeInfo,
      kubeletVersion: c.kubeletVersion ?? 'v1.26.0',
      operatingSystem: c.operatingSystem ?? 'linux',
    };
  });
  fake.useRbac(c.anonymousDiscovery === true ? 'legacy-unauth' : 'default');
  const service = clusterService(api, { isLeader: () => c.leader ?? true, nodeName: 'k1-node01' });
  return c.ca === undefined ? service : { ...service, server: { ...service.server, ca: c.ca } };
}

/** Requests that reached the API server without credentials, from `since` on. */
function anonymousRequests(since: number) {
  return fake.requests.slice(since).filter((r) => r.identity === 'anonymous');
}

function options(overrides: Record<string, unknown> = {}) {
  return checkOptions(cveCheck, { probeTimeout: '2s', ...overrides });
}

function run(c: ClusterCase, overrides: Record<string, unknown> = {}): Promise<CheckOutcome> {
  return runCheckOn(cveCheck, '/nonexistent-host-root', options(overrides), {
    cluster: cluster(c),
  });
}

function finding(outcome: CheckOutcome, id: string) {
  return outcome.findings.find((f) => f.id === id);
}

const APISERVER_1002105 = 'VulnerableVersion:CVE-2018-1002105:apiserver';

describe('cve check: CVE-2018-1002105 (fixed in 1.10.11, 1.11.5, 1.12.3)', () => {
  for (const [gitVersion, fixedIn] of [
    ['v1.10.10', '1.10.11'],
    ['v1.11.4', '1.11.5'],
    ['v1.12.2', '1.12.3'],
  ] as const) {
    it(`${gitVersion} is affected; the fix is ${fixedIn}`, async () => {
      const outcome = await run({ gitVersion });
      const f = finding(outcome, APISERVER_1002105);
      assert.ok(f, `expected ${APISERVER_1002105}`);
      // published critical, but discovery is refused to anonymous: a warning
      assert.equal(f.severity, 'warning');
      assert.match(f.message, new RegExp(`Fixed in ${fixedIn.replaceAll('.', '\\.')}\\.`));
      assert.match(f.remediation?.summary ?? '', new RegExp(`kubeadm upgrade apply v${fixedIn}`));
      assert.ok(
        f.evidence.includes(`GET /version: gitVersion ${gitVersion}`),
        f.evidence.join('\n'),
      );
      assert.ok(f.evidence.some((e) => /without credentials: 403 \(refused\)/.test(e)));
      assert.ok(f.title.length <= 80, f.title);
      assert.equal(
        sampleValue(outcome, 'node_auditor_vulnerable', {
          cve: 'CVE-2018-1002105',
          component: 'apiserver',
        }),
        1,
      );
    });
  }

  for (const gitVersion of ['v1.10.11', 'v1.11.5', 'v1.12.3', 'v1.13.0', 'v1.26.0']) {
    it(`${gitVersion} is not affected`, async () => {
      const outcome = await run({ gitVersion });
      assert.equal(finding(outcome, APISERVER_1002105), undefined);
      assert.equal(
        sampleValue(outcome, 'node_auditor_vulnerable', {
          cve: 'CVE-2018-1002105',
          component: 'apiserver',
        }),
        0,
      );
    });
  }

  it('is critical on 1.12.2 when /apis answers anonymous requests, and sends no credential', async () => {
    const since = fake.requests.length;
    const outcome = await run({ gitVersion: 'v1.12.2', anonymousDiscovery: true });
    const f = finding(outcome, APISERVER_1002105);
    assert.equal(f?.severity, 'critical');
    assert.match(f?.title ?? '', /open to anyone/);
    assert.ok(
      f?.evidence.some((e) =>
        /GET https:\/\/127\.0\.0\.1:\d+\/apis without credentials: 200/.test(e),
      ),
    );
    // the fix names the seed's workaround, autoupdate annotation included
    assert.match(f?.remediation?.summary ?? '', /--anonymous-auth=false/);
    assert.match(
      f?.remediation?.summary ?? '',
      /rbac\.authorization\.kubernetes\.io\/autoupdate=false/,
    );
    // one probe, nothing that authenticates
    const anonymous = anonymousRequests(since);
    assert.deepEqual(
      anonymous.map((r) => r.path),
      ['/apis'],
    );
    assert.equal(anonymous[0]?.authorization, undefined);
    assert.equal(anonymous[0]?.cookie, undefined);
  });

  it('does not trust an API server whose certificate the cluster CA does not sign', async () => {
    const since = fake.requests.length;
    const outcome = await run({ gitVersion: 'v1.12.2', ca: otherCa, anonymousDiscovery: true });
    // TLS failed, so nothing was learned: the published severity stands
    const f = finding(outcome, APISERVER_1002105);
    assert.equal(f?.severity, 'warning');
    assert.equal(anonymousRequests(since).length, 0);
    // it did try, and says why it does not know
    assert.ok(
      f?.evidence.some((e) =>
        /\/apis without credentials: the server's certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\) \(whether anyone may call discovery is unknown\)$/.test(
          e,
        ),
      ),
      f?.evidence.join('\n'),
    );
  });

  it('does not probe /apis when no affected CVE needs it', async () => {
    const since = fake.requests.length;
    await run({ gitVersion: 'v1.26.0' });
    assert.equal(anonymousRequests(since).length, 0);
  });
});

describe('cve check: vendor builds', () => {
  it('says "verify with your vendor" one step lower, without a metric sample', async () => {
    const outcome = await run({
      gitVersion: 'v1.29.1-gke.1589000',
      kubeletVersion: 'v1.28.5-eks-5e0fdde',
    });
    // CVE-2024-10220 (high) affects upstream 1.28.5: for an EKS build it is info, not a warning
    const kubelet = finding(outcome, 'VendorBuildMayBeVulnerable:CVE-2024-10220:kubelet');
    assert.equal(kubelet?.severity, 'info');
    assert.match(kubelet?.message ?? '', /vendor build of 1\.28\.5/);
    assert.match(kubelet?.remediation?.summary ?? '', /vendor's security bulletin/);
    assert.match(kubelet?.remediation?.summary ?? '', /checks\.cve\.ignore/);
    assert.equal(finding(outcome, 'VulnerableVersion:CVE-2024-10220:kubelet'), undefined);
    assert.equal(
      sampleValue(outcome, 'node_auditor_vulnerable', {
        cve: 'CVE-2024-10220',
        component: 'kubelet',
      }),
      undefined,
    );
    // the API server's GKE build: CVE-2024-3177 (low) affects upstream 1.29.1
    assert.equal(
      finding(outcome, 'VendorBuildMayBeVulnerable:CVE-2024-3177:apiserver')?.severity,
      'info',
    );
    // not affected upstream stays a plain 0
    assert.equal(
      sampleValue(outcome, 'node_auditor_vulnerable', {
        cve: 'CVE-2018-1002105',
        component: 'apiserver',
      }),
      0,
    );
  });

  it('the same upstream version is a warning', async () => {
    const outcome = await run({ kubeletVersion: 'v1.28.5' });
    assert.equal(finding(outcome, 'VulnerableVersion:CVE-2024-10220:kubelet')?.severity, 'warning');
    assert.equal(
      sampleValue(outcome, 'node_auditor_vulnerable', {
        cve: 'CVE-2024-10220',
        component: 'kubelet',
      }),
      1,
    );
  });

  it('a k3s build with discovery open to anyone is a warning, not critical', async () => {
    const outcome = await run({ gitVersion: 'v1.12.2+k3s1', anonymousDiscovery: true });
    const f = finding(outcome, 'VendorBuildMayBeVulnerable:CVE-2018-1002105:apiserver');
    assert.equal(f?.severity, 'warning');
    assert.match(f?.message ?? '', /anyone can exploit it/);
  });
});

describe('cve check: the table in use', () => {
  const feed = {
    snapshot: '2027-01-15',
    source: 'https://kubernetes.io/docs/reference/issues-security/official-cve-feed/index.json',
    cves: [
      {
        id: 'CVE-2099-0001',
        summary: 'A kubelet issue published after the shipped snapshot.',
        components: ['kubelet'],
        severity: 'high',
        affected: [{ introduced: '1.26.0', fixed: '1.26.1' }],
        url: 'https://github.com/kubernetes/kubernetes/issues/1',
        sources: ['https://github.com/kubernetes/kubernetes/issues/1'],
      },
    ],
  };

  async function writeFeed(t: TestContext, content: string): Promise<string> {
    const file = path.join(await tempDir(t), 'cves.json');
    await fs.writeFile(file, content);
    return file;
  }

  it('uses checks.cve.feedFile instead of the shipped table', async (t) => {
    const feedFile = await writeFeed(t, JSON.stringify(feed));
    // the recorded Node's kubelet is v1.26.0
    const outcome = await run({}, { feedFile });
    const f = finding(outcome, 'VulnerableVersion:CVE-2099-0001:kubelet');
    assert.equal(f?.severity, 'warning');
    assert.ok(f?.evidence.includes(`table: ${feedFile}, snapshot 2027-01-15`));
    assert.ok(f?.evidence.includes('Node k1-node01 status.nodeInfo.kubeletVersion: v1.26.0'));
    // the shipped table is not consulted: its CVE-2023-2431 (kubelet < 1.26.5) is not reported
    assert.equal(finding(outcome, 'VulnerableVersion:CVE-2023-2431:kubelet'), undefined);
    assert.deepEqual(
      outcome.samples?.map((s) => `${s.labels.cve}/${s.labels.component}=${s.value}`),
      ['CVE-2099-0001/kubelet=1'],
    );
  });

  for (const [label, content, error] of [
    ['not JSON', '{"snapshot": ', /not JSON/],
    [
      'a fixed version before its introduced one',
      JSON.stringify({
        ...feed,
        cves: [{ ...feed.cves[0], affected: [{ introduced: '1.27.0', fixed: '1.26.1' }] }],
      }),
      /cves\.0\.affected\.0: the affected versions must come before the fixed/,
    ],
    [
      'an entry without a URL',
      JSON.stringify({ ...feed, cves: [{ ...feed.cves[0], url: undefined }] }),
      /cves\.0\.url/,
    ],
  ] as const) {
    it(`warns about a feed file with ${label} and uses the shipped table`, async (t) => {
      const feedFile = await writeFeed(t, content);
      const outcome = await run({}, { feedFile });
      const f = finding(outcome, 'CveFeedInvalid');
      assert.equal(f?.severity, 'warning');
      assert.ok(f?.message.includes(feedFile), f?.message);
      assert.match(f?.message ?? '', error);
      assert.match(f?.evidence[0] ?? '', error);
      // the shipped table is used: CVE-2023-2431 affects the recorded kubelet v1.26.0
      const shipped = finding(outcome, 'VulnerableVersion:CVE-2023-2431:kubelet');
      assert.ok(shipped, 'shipped table used');
      assert.ok(shipped.evidence.some((e) => /^table: shipped CVE table, snapshot /.test(e)));
    });
  }

  it('warns about a feed file that does not exist', async (t) => {
    const feedFile = path.join(await tempDir(t), 'missing.json');
    const f = finding(await run({}, { feedFile }), 'CveFeedInvalid');
    assert.deepEqual(f?.evidence, [`${feedFile}: no such file`]);
  });
});

describe('cve check: what is looked at', () => {
  it('skips quietly without a Kubernetes API (npm start on a laptop)', async () => {
    const outcome = await runCheckOn(cveCheck, '/nonexistent-host-root', options());
    assert.deepEqual(outcome.findings, []);
    assert.equal(outcome.samples, undefined);
    assert.match(outcome.skipped ?? '', /no Kubernetes API/);
  });

  it('leaves the API server to the leader; the kubelet is every node’s own', async () => {
    const outcome = await run({ gitVersion: 'v1.12.2', kubeletVersion: 'v1.26.0', leader: false });
    assert.equal(outcome.findings.filter((f) => f.id.endsWith(':apiserver')).length, 0);
    assert.equal(outcome.samples?.filter((s) => s.labels.component === 'apiserver').length, 0);
    assert.ok(finding(outcome, 'VulnerableVersion:CVE-2023-2431:kubelet'));
  });

  it('applies Windows-only kubelet CVEs to Windows nodes only', async () => {
    const labels = { cve: 'CVE-2023-3676', component: 'kubelet' };
    const linux = await run({ kubeletVersion: 'v1.28.0', operatingSystem: 'linux' });
    assert.equal(finding(linux, 'VulnerableVersion:CVE-2023-3676:kubelet'), undefined);
    assert.equal(sampleValue(linux, 'node_auditor_vulnerable', labels), 0);
    const windows = await run({ kubeletVersion: 'v1.28.0', operatingSystem: 'windows' });
    assert.equal(finding(windows, 'VulnerableVersion:CVE-2023-3676:kubelet')?.severity, 'warning');
    assert.equal(sampleValue(windows, 'node_auditor_vulnerable', labels), 1);
  });

  it('names the first fixed release when the running minor never got the fix', async () => {
    // CVE-2022-3172: every 1.21 is affected; 1.22.14 is the first fix
    const f = finding(
      await run({ gitVersion: 'v1.21.3' }),
      'VulnerableVersion:CVE-2022-3172:apiserver',
    );
    assert.match(
      f?.message ?? '',
      /No 1\.21 release has the fix; the first fixed release is 1\.22\.14/,
    );
  });

  it("CVE-2025-5187 (NodeRestriction) for an API server before its branch's fix, not after", async () => {
    for (const [gitVersion, affected] of [
      ['v1.33.2', true],
      ['v1.33.4', false],
      ['v1.32.7', true],
      ['v1.31.12', false],
      ['v1.30.14', true], // older than the announced branches, and affected too: no upstream fix
      ['v1.34.0', false],
    ] as const) {
      const f = finding(await run({ gitVersion }), 'VulnerableVersion:CVE-2025-5187:apiserver');
      assert.equal(f !== undefined, affected, gitVersion);
    }
    const f = finding(
      await run({ gitVersion: 'v1.33.2' }),
      'VulnerableVersion:CVE-2025-5187:apiserver',
    );
    assert.match(f?.message ?? '', /1\.33\.4/);
  });

  it('CVE-2020-8564 (pull secrets in verbose logs) for a 1.17-1.19 kubelet before the fix', async () => {
    for (const [kubeletVersion, affected] of [
      ['v1.19.2', true],
      ['v1.19.3', false],
      ['v1.18.9', true],
      ['v1.17.12', true],
      ['v1.16.15', false],
    ] as const) {
      const f = finding(await run({ kubeletVersion }), 'VulnerableVersion:CVE-2020-8564:kubelet');
      assert.equal(f !== undefined, affected, kubeletVersion);
    }
  });

  it('drops CVEs listed in checks.cve.ignore, finding and sample', async () => {
    const outcome = await run({ kubeletVersion: 'v1.26.0' }, { ignore: ['CVE-2023-2431'] });
    assert.equal(finding(outcome, 'VulnerableVersion:CVE-2023-2431:kubelet'), undefined);
    assert.equal(
      sampleValue(outcome, 'node_auditor_vulnerable', {
        cve: 'CVE-2023-2431',
        component: 'kubelet',
      }),
      undefined,
    );
  });

  it('exports one 1/0 sample per table CVE of each component checked', async () => {
    const outcome = await run({ gitVersion: 'v1.26.0', kubeletVersion: 'v1.26.0' });
    // the shipped table: 33 CVEs, 17 of the API server, 16 of the kubelet
    assert.equal(shippedCveTable().cves.length, 33);
    for (const [component, expected] of [
      ['apiserver', 17],
      ['kubelet', 16],
    ] as const) {
      const got = outcome.samples?.filter((s) => s.labels.component === component) ?? [];
      assert.equal(got.length, expected, component);
      // a 1 for exactly the CVEs reported as findings
      assert.deepEqual(
        got
          .filter((s) => s.value === 1)
          .map((s) => s.labels.cve)
          .sort(),
        outcome.findings
          .filter((f) => f.id.endsWith(`:${component}`) && f.problem === 'VulnerableVersion')
          .map((f) => f.id.split(':')[1])
          .sort(),
        component,
      );
      assert.ok(got.every((s) => s.value === 0 || s.value === 1));
    }
    assert.equal(
      sampleValue(outcome, 'node_auditor_vulnerable', {
        cve: 'CVE-2023-2431',
        component: 'kubelet',
      }),
      1,
    );
    assert.equal(
      sampleValue(outcome, 'node_auditor_vulnerable', {
        cve: 'CVE-2018-1002105',
        component: 'apiserver',
      }),
      0,
    );
  });

  it('says when a reported version is not a version', async () => {
    const f = finding(
      await run({ gitVersion: 'custom-build' }),
      'KubernetesVersionUnparsable:apiserver',
    );
    assert.equal(f?.severity, 'info');
    assert.deepEqual(f?.evidence, ['GET /version gitVersion: "custom-build"']);
  });
});

describe('the shipped CVE table', () => {
  it('validates: ids unique, ranges ordered, URLs and sources present', () => {
    const table = validateCveTable(
      JSON.parse(
        readFileSync(
          new URL('../../agent/checks/cve/kubernetes-cves.json', import.meta.url),
          'utf8',
        ),
      ),
    );
    assert.ok(table.cves.length >= 25);
    for (const entry of table.cves) {
      assert.match(
        entry.url,
        /^https:\/\/github\.com\/kubernetes\/kubernetes\/issues\/\d+$/,
        entry.id,
      );
      assert.ok(entry.sources.includes(entry.url), entry.id);
    }
    assert.equal(
      table.source,
      'https://kubernetes.io/docs/reference/issues-security/official-cve-feed/index.json',
    );
  });

  it('has CVE-2018-1002105 exactly as announced', () => {
    const entry = shippedCveTable().cves.find((c) => c.id === 'CVE-2018-1002105');
    assert.deepEqual(entry?.components, ['apiserver']);
    assert.equal(entry?.severity, 'critical');
    assert.deepEqual(entry?.affected, [
      { fixed: '1.10.11' },
      { introduced: '1.11.0', fixed: '1.11.5' },
      { introduced: '1.12.0', fixed: '1.12.3' },
    ]);
    assert.equal(entry?.url, 'https://github.com/kubernetes/kubernetes/issues/71411');
  });

  it('rejects ranges out of order or overlapping', () => {
    const base = shippedCveTable();
    const entry = base.cves[0];
    assert.ok(entry);
    for (const affected of [
      [{ introduced: '1.12.0', fixed: '1.12.3' }, { fixed: '1.10.11' }],
      [{ fixed: '1.11.5' }, { introduced: '1.11.0', fixed: '1.11.6' }],
      [
        { introduced: '1.20.0', lastAffected: '1.21.14' },
        { introduced: '1.21.14', fixed: '1.22.2' },
      ],
    ]) {
      assert.throws(
        () => validateCveTable({ ...base, cves: [{ ...entry, affected }] }),
        (error: unknown) =>
          error instanceof CveTableError && /oldest first and must not overlap/.test(error.message),
        JSON.stringify(affected),
      );
    }
  });

  it('matches exact version lists and inclusive last-affected ranges', () => {
    const entry = shippedCveTable().cves.find((c) => c.id === 'CVE-2019-11245');
    assert.ok(entry);
    const at = (text: string) => {
      const version = parseKubeVersion(text);
      assert.ok(version);
      return matchCve(entry, version);
    };
    assert.deepEqual(at('v1.14.2'), { affected: true, range: '=1.14.2', fixedIn: '1.14.3' });
    assert.deepEqual(at('v1.14.1'), { affected: false });
    assert.deepEqual(at('v1.14.3'), { affected: false });
    const lastAffected = {
      ...entry,
      affected: [{ introduced: '1.20.0', lastAffected: '1.21.14' }],
    };
    assert.equal(matchCve(lastAffected, parseKubeVersion('v1.21.14')!).affected, true);
    assert.equal(matchCve(lastAffected, parseKubeVersion('v1.21.15')!).affected, false);
  });
});
