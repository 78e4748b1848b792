// Version strings as API servers and kubelets really report them: upstream releases,
// pre-releases, and vendor builds (k3s, RKE2, EKS, GKE, OpenShift).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  compareKubeVersions,
  coreVersion,
  isVendorBuild,
  parseKubeVersion,
} from '../../agent/parsers/kubeVersion.ts';
import type { KubeVersion } from '../../agent/parsers/kubeVersion.ts';

function parse(text: string): KubeVersion {
  const version = parseKubeVersion(text);
  assert.ok(version, `${text} should parse`);
  return version;
}

describe('parseKubeVersion', () => {
  it('reads an upstream release', () => {
    assert.deepEqual(parseKubeVersion('v1.26.0'), {
      raw: 'v1.26.0',
      major: 1,
      minor: 26,
      patch: 0,
    });
    assert.equal(isVendorBuild(parse('v1.26.0')), false);
    // kubectl and some tools print it without the "v"
    assert.equal(coreVersion(parse('1.12.2')), '1.12.2');
  });

  it('keeps upstream pre-releases apart from vendor builds', () => {
    for (const [text, pre] of [
      ['v1.29.0-rc.1', 'rc.1'],
      ['v1.30.0-alpha.2', 'alpha.2'],
      ['v1.28.0-beta.0', 'beta.0'],
    ] as const) {
      const version = parse(text);
      assert.equal(version.preRelease, pre, text);
      assert.equal(isVendorBuild(version), false, text);
    }
  });

  it('recognises vendor builds by their suffix or build metadata', () => {
    for (const [text, core, tag] of [
      ['v1.27.3+k3s1', '1.27.3', '+k3s1'],
      ['v1.30.0+rke2r1', '1.30.0', '+rke2r1'],
      ['v1.28.5-eks-5e0fdde', '1.28.5', '-eks-5e0fdde'],
      ['v1.29.1-gke.1589000', '1.29.1', '-gke.1589000'],
      ['v1.27.6+b49f9d1', '1.27.6', '+b49f9d1'],
      ['v1.20.15-rancher1-1', '1.20.15', '-rancher1-1'],
    ] as const) {
      const version = parse(text);
      assert.equal(coreVersion(version), core, text);
      assert.equal(version.vendorTag, tag, text);
      assert.equal(version.preRelease, undefined, text);
      assert.equal(isVendorBuild(version), true, text);
    }
  });

  it('calls a build from a git tree (pre-release plus commit) a vendor build', () => {
    const version = parse('v1.31.0-alpha.0.1234+0123456789abcd');
    assert.equal(version.preRelease, 'alpha.0.1234');
    assert.equal(isVendorBuild(version), true);
  });

  it('trims what the API returned and refuses what is not a version', () => {
    assert.equal(parse(' v1.26.0\n').raw, 'v1.26.0');
    for (const text of ['', 'v1.26', 'latest', 'v1.26.0 extra', 'v1.x.0', '1.26.0-', 'v1.26.0+']) {
      assert.equal(parseKubeVersion(text), undefined, JSON.stringify(text));
    }
  });
});

describe('compareKubeVersions', () => {
  const sorted = [
    'v1.9.11',
    'v1.10.10',
    'v1.10.11',
    'v1.12.3-alpha.1',
    'v1.12.3-beta.0',
    'v1.12.3-rc.0',
    'v1.12.3-rc.2',
    'v1.12.3-rc.10',
    'v1.12.3',
    'v1.13.0',
  ];

  it('orders releases numerically and pre-releases before their release', () => {
    const shuffled = [...sorted].reverse().map(parse);
    assert.deepEqual(
      shuffled.sort(compareKubeVersions).map((v) => v.raw),
      sorted,
    );
  });

  it('ignores the vendor tag: a vendor build compares as the release it is based on', () => {
    assert.equal(compareKubeVersions(parse('v1.28.5-eks-5e0fdde'), parse('v1.28.5')), 0);
    assert.ok(compareKubeVersions(parse('v1.27.3+k3s1'), parse('v1.27.4')) < 0);
  });
});
