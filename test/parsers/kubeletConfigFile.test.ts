// KubeletConfiguration files as the kubelet reads them: YAML 1.1 scalars, the last of a
// repeated key, and the files it refuses (with the line of a YAML error).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { lookupKey, parseKubeletConfigFile } from '../../agent/parsers/kubeletConfigFile.ts';
import { fixtureHost } from '../helpers.ts';

const HEAD = 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n';

async function document(text: string): Promise<Record<string, unknown>> {
  const parsed = await parseKubeletConfigFile(text);
  assert.ok(parsed.ok, parsed.ok ? '' : parsed.reason);
  return parsed.document;
}

describe('kubelet config file', () => {
  it("reads kubeadm's config.yaml", async () => {
    const text = readFileSync(
      `${fixtureHost('kubelet-config-kubeadm')}/var/lib/kubelet/config.yaml`,
      'utf8',
    );
    const doc = await document(text);
    assert.deepEqual(lookupKey(doc, 'authentication.anonymous.enabled'), {
      state: 'set',
      value: false,
    });
    assert.deepEqual(lookupKey(doc, 'authorization.mode'), { state: 'set', value: 'Webhook' });
    assert.deepEqual(lookupKey(doc, 'readOnlyPort'), { state: 'unset' });
    assert.deepEqual(lookupKey(doc, 'authentication.x509.clientCAFile'), {
      state: 'set',
      value: '/etc/kubernetes/pki/ca.crt',
    });
  });

  it('reads YAML 1.1 booleans as go-yaml v2 does ("yes" is true) and JSON too', async () => {
    const doc = await document(`${HEAD}authentication:\n  anonymous:\n    enabled: yes\n`);
    assert.deepEqual(lookupKey(doc, 'authentication.anonymous.enabled'), {
      state: 'set',
      value: true,
    });
    const json = await document(
      '{"apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration", "readOnlyPort": 10255}',
    );
    assert.deepEqual(lookupKey(json, 'readOnlyPort'), { state: 'set', value: 10255 });
  });

  it("lets the last of a repeated key count, as the kubelet's lenient decoding does", async () => {
    const doc = await document(`${HEAD}readOnlyPort: 10255\nreadOnlyPort: 0\n`);
    assert.deepEqual(lookupKey(doc, 'readOnlyPort'), { state: 'set', value: 0 });
  });

  it('treats null as not set, and a scalar on the way to a key as invalid', async () => {
    const doc = await document(
      `${HEAD}authentication:\n  anonymous: ~\nauthorization: Webhook\nreadOnlyPort: null\n`,
    );
    assert.deepEqual(lookupKey(doc, 'authentication.anonymous.enabled'), { state: 'unset' });
    assert.deepEqual(lookupKey(doc, 'readOnlyPort'), { state: 'unset' });
    assert.deepEqual(lookupKey(doc, 'authorization.mode'), {
      state: 'invalid',
      at: 'authorization',
    });
  });

  it('gives the line and column of a YAML error', async () => {
    const parsed = await parseKubeletConfigFile(
      `${HEAD}authentication:\n  anonymous:\n    enabled: false\n   webhook: {enabled: true\n`,
    );
    assert.equal(parsed.ok, false);
    assert.ok(!parsed.ok);
    assert.equal(parsed.line, 6);
    assert.equal(typeof parsed.column, 'number');
    assert.match(parsed.reason, /\w/);
  });

  it('refuses what the kubelet refuses: empty, a list, no kind, another API group', async () => {
    for (const [text, reason] of [
      ['', /empty/],
      ['# all commented out\n', /empty/],
      ['- a\n- b\n', /a list/],
      ['readOnlyPort: 0\n', /kind is null/],
      ['apiVersion: v1\nkind: KubeletConfiguration\n', /not in the kubelet\.config\.k8s\.io group/],
    ] as const) {
      const parsed = await parseKubeletConfigFile(text);
      assert.ok(!parsed.ok, text);
      assert.match(parsed.reason, reason);
    }
  });
});
