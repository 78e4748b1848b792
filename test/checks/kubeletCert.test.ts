// The kubelet client certificate check on real certificates (signed by a real CA with openssl,
// with chosen validity dates), in kubelet's real layout: kubelet-client-current.pem is an
// absolute link to a dated file holding the certificate and its private key.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import type { TestContext } from 'node:test';
import type { CheckOutcome } from '../../agent/checks/check.ts';
import { kubeletCertCheck } from '../../agent/checks/kubeletCert/kubeletCertCheck.ts';
import { requireTool, runCli, tempDir } from '../helpers.ts';
import { checkOptions, runCheckOn } from './runCheckOn.ts';

const DAY = 24 * 3600 * 1000;

/** openssl's ca -startdate/-enddate format. */
function asn1(ms: number): string {
  return new Date(ms)
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z');
}

/** A kubelet client certificate valid [from, until), signed by a throwaway CA. Returns the PEM (cert + key). */
async function kubeletPem(
  t: TestContext,
  from: number,
  until: number,
): Promise<string | undefined> {
  const openssl = requireTool(t, 'openssl');
  if (openssl === undefined) return undefined;
  const dir = await tempDir(t);
  const run = (args: string[]) => {
    const r = spawnSync(openssl, args, { cwd: dir, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };
  await fs.writeFile(path.join(dir, 'index.txt'), '');
  await fs.writeFile(path.join(dir, 'serial'), '01\n');
  await fs.writeFile(
    path.join(dir, 'ca.cnf'),
    '[ca]\ndefault_ca = d\n[d]\ndir = .\ndatabase = ./index.txt\nserial = ./serial\nnew_certs_dir = .\ndefault_md = sha256\npolicy = p\nunique_subject = no\n[p]\norganizationName = optional\ncommonName = supplied\n',
  );
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run([
    'req',
    '-x509',
    ...ec,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '3650',
    '-subj',
    '/CN=kubernetes',
  ]);
  run([
    'req',
    '-new',
    ...ec,
    '-keyout',
    'node.key',
    '-out',
    'node.csr',
    '-subj',
    '/O=system:nodes/CN=system:node:k1-node01',
  ]);
  run([
    'ca',
    '-batch',
    '-config',
    'ca.cnf',
    '-cert',
    'ca.crt',
    '-keyfile',
    'ca.key',
    '-in',
    'node.csr',
    '-out',
    'node.crt',
    '-notext',
    '-startdate',
    asn1(from),
    '-enddate',
    asn1(until),
  ]);
  const cert = await fs.readFile(path.join(dir, 'node.crt'), 'utf8');
  const key = await fs.readFile(path.join(dir, 'node.key'), 'utf8');
  return cert + key;
}

/** A host root with kubelet's layout around `pem`. */
async function hostWith(t: TestContext, pem: string): Promise<string> {
  const root = await tempDir(t);
  const pki = path.join(root, 'var', 'lib', 'kubelet', 'pki');
  await fs.mkdir(pki, { recursive: true });
  await fs.writeFile(path.join(pki, 'kubelet-client-2026-01-01-00-00-00.pem'), pem, {
    mode: 0o600,
  });
  // An absolute link, as kubelet makes it: it must resolve inside the host root.
  await fs.symlink(
    '/var/lib/kubelet/pki/kubelet-client-2026-01-01-00-00-00.pem',
    path.join(pki, 'kubelet-client-current.pem'),
  );
  return root;
}

const options = checkOptions(kubeletCertCheck, {});

function run(root: string): Promise<CheckOutcome> {
  return runCheckOn(kubeletCertCheck, root, options);
}

describe('kubelet-cert check', () => {
  it('is quiet for a certificate with months left, and exports its expiry', async (t) => {
    const until = Date.now() + 200 * DAY;
    const pem = await kubeletPem(t, Date.now() - DAY, until);
    if (pem === undefined) return;
    const outcome = await run(await hostWith(t, pem));
    assert.deepEqual(outcome.findings, []);
    assert.deepEqual(outcome.samples, [
      {
        metric: 'node_auditor_kubelet_client_cert_expiry_timestamp_seconds',
        labels: {},
        value: Math.floor(until / 1000),
      },
    ]);
  });

  it('warns days before expiry, without claiming a NotReady cause yet', async (t) => {
    const pem = await kubeletPem(t, Date.now() - 300 * DAY, Date.now() + 3 * DAY + 3600_000);
    if (pem === undefined) return;
    const [finding, ...rest] = (await run(await hostWith(t, pem))).findings;
    assert.equal(rest.length, 0);
    assert.equal(finding?.problem, 'KubeletClientCertExpiring');
    assert.equal(finding?.severity, 'warning');
    assert.equal(finding?.cause, undefined);
    assert.equal(finding?.title, "kubelet's client certificate expires in 3 days");
    assert.ok(
      finding?.evidence.includes(
        '/var/lib/kubelet/pki/kubelet-client-current.pem -> /var/lib/kubelet/pki/kubelet-client-2026-01-01-00-00-00.pem',
      ),
    );
    assert.ok(finding?.evidence.includes('subject: O=system:nodes, CN=system:node:k1-node01'));
  });

  it('names KubeletClientCertExpired once it has expired, and never shows the private key', async (t) => {
    const pem = await kubeletPem(
      t,
      Date.parse('2025-01-01T00:00:00Z'),
      Date.parse('2025-02-01T00:00:00Z'),
    );
    if (pem === undefined) return;
    const [finding] = (await run(await hostWith(t, pem))).findings;
    assert.equal(finding?.cause, 'KubeletClientCertExpired');
    assert.equal(finding?.severity, 'critical');
    assert.match(finding?.message ?? '', /expired at 2025-02-01T00:00:00\.000Z/);
    const text = JSON.stringify(finding);
    assert.ok(!text.includes('PRIVATE KEY'));
    const keyBody = /-----BEGIN PRIVATE KEY-----\n([^\n]+)/.exec(pem)?.[1] ?? 'x';
    assert.ok(!text.includes(keyBody.slice(0, 20)));
  });

  it('calls a certificate from the future a clock problem', async (t) => {
    const pem = await kubeletPem(t, Date.now() + 2 * DAY, Date.now() + 300 * DAY);
    if (pem === undefined) return;
    const [finding] = (await run(await hostWith(t, pem))).findings;
    assert.equal(finding?.problem, 'KubeletClientCertNotYetValid');
  });

  it('is skipped, saying where it looked, on a host without a kubelet certificate there', async (t) => {
    const root = await tempDir(t);
    assert.deepEqual(await run(root), {
      findings: [],
      skipped:
        'no kubelet client certificate at /var/lib/kubelet/pki/kubelet-client-current.pem; on a kubelet node set checks.kubelet-cert.path to it (k3s: /var/lib/rancher/k3s/agent/client-kubelet.crt)',
    });
    // a link whose dated file is gone (kubelet's layout): both names are given
    await fs.mkdir(path.join(root, 'var/lib/kubelet/pki'), { recursive: true });
    await fs.symlink(
      '/var/lib/kubelet/pki/kubelet-client-2026-01-01-00-00-00.pem',
      path.join(root, 'var/lib/kubelet/pki/kubelet-client-current.pem'),
    );
    assert.match(
      (await run(root)).skipped ?? '',
      /^no kubelet client certificate at \/var\/lib\/kubelet\/pki\/kubelet-client-current\.pem -> \/var\/lib\/kubelet\/pki\/kubelet-client-2026-01-01-00-00-00\.pem;/,
    );
  });

  it('check --only kubelet-cert on a host without the certificate says skipped, not ok', async (t) => {
    const r = await runCli(['check', '--only', 'kubelet-cert', '--host-root', await tempDir(t)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^kubelet-cert\s+skipped\s+\d+ms\s+no kubelet client certificate at$/m);
  });

  it('reports a file that holds no certificate', async (t) => {
    const root = await hostWith(
      t,
      '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n',
    );
    const [finding] = (await run(root)).findings;
    assert.equal(finding?.problem, 'KubeletClientCertUnreadable');
  });
});
