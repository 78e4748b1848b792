// The kubelet command line parsed by pflag's rules, on command lines as kubeadm, kind and
// hand-written systemd units start the kubelet.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  flagText,
  kubeletArguments,
  parseFeatureGates,
  parseGoInt32,
  parseKubeletFlags,
} from '../../agent/parsers/kubeletFlags.ts';
import { parseGoBool, splitCmdline } from '../../agent/parsers/commandLine.ts';

function last(args: string[]): Record<string, string> {
  return Object.fromEntries(
    [...parseKubeletFlags(args).last].map(([name, flag]) => [name, flag.value]),
  );
}

describe('kubelet flags', () => {
  it('splits /proc/<pid>/cmdline at NUL bytes, without the empty string after the last one', () => {
    const bytes = Buffer.from('/usr/bin/kubelet\0--config=/var/lib/kubelet/config.yaml\0--v=2\0');
    assert.deepEqual(splitCmdline(bytes), [
      '/usr/bin/kubelet',
      '--config=/var/lib/kubelet/config.yaml',
      '--v=2',
    ]);
    // An empty argument in the middle is kept: it is an argument.
    assert.deepEqual(splitCmdline('kubelet\0\0--v=2\0'), ['kubelet', '', '--v=2']);
  });

  it('knows a kubelet command line by argv[0], also under hyperkube', () => {
    assert.deepEqual(kubeletArguments(['/usr/bin/kubelet', '--v=2']), ['--v=2']);
    assert.deepEqual(kubeletArguments(['kubelet']), []);
    assert.deepEqual(kubeletArguments(['/hyperkube', 'kubelet', '--v=2']), ['--v=2']);
    assert.equal(kubeletArguments(['/hyperkube', 'kube-apiserver']), undefined);
    assert.equal(kubeletArguments(['/usr/bin/kubelet-wrapper', '--v=2']), undefined);
    assert.equal(kubeletArguments([]), undefined);
  });

  it('reads --flag=value and --flag value', () => {
    assert.deepEqual(
      last([
        '--config=/var/lib/kubelet/config.yaml',
        '--kubeconfig',
        '/etc/kubernetes/kubelet.conf',
        '--container-runtime-endpoint=unix:///run/containerd/containerd.sock',
      ]),
      {
        config: '/var/lib/kubelet/config.yaml',
        kubeconfig: '/etc/kubernetes/kubelet.conf',
        'container-runtime-endpoint': 'unix:///run/containerd/containerd.sock',
      },
    );
  });

  it('never gives a boolean flag the next argument: "--anonymous-auth false" is true and a stray "false"', () => {
    const parsed = parseKubeletFlags(['--anonymous-auth', 'false', '--read-only-port', '0']);
    assert.deepEqual(parsed.last.get('anonymous-auth'), {
      name: 'anonymous-auth',
      value: 'true',
      bare: true,
    });
    assert.deepEqual(parsed.positional, ['false']);
    assert.equal(parsed.last.get('read-only-port')?.value, '0');
  });

  it('reads --flag=false and a bare --flag of a boolean', () => {
    assert.deepEqual(last(['--anonymous-auth=false', '--rotate-certificates']), {
      'anonymous-auth': 'false',
      'rotate-certificates': 'true',
    });
  });

  it('takes the last of a repeated flag', () => {
    const parsed = parseKubeletFlags([
      '--anonymous-auth=false',
      '--authorization-mode=Webhook',
      '--anonymous-auth=true',
    ]);
    assert.equal(parsed.last.get('anonymous-auth')?.value, 'true');
    assert.equal(parsed.flags.length, 3);
  });

  it('treats "_" in a name as "-" (cliflag.WordSepNormalizeFunc)', () => {
    assert.deepEqual(last(['--anonymous_auth=false', '--read_only_port', '10255']), {
      'anonymous-auth': 'false',
      'read-only-port': '10255',
    });
  });

  it('stops at "--" and reads the -v shorthand', () => {
    const parsed = parseKubeletFlags(['-v', '4', '--v=2', '--', '--anonymous-auth=true']);
    assert.deepEqual(
      parsed.flags.map((f) => [f.name, f.value]),
      [
        ['v', '4'],
        ['v', '2'],
      ],
    );
    assert.deepEqual(parsed.positional, ['--anonymous-auth=true']);
    assert.equal(parseKubeletFlags(['-v=3']).last.get('v')?.value, '3');
  });

  it('writes a flag back the one way findings show it', () => {
    const [bare, valued] = parseKubeletFlags(['--anonymous-auth', '--read-only-port', '0']).flags;
    assert.equal(flagText(bare!), '--anonymous-auth');
    assert.equal(flagText(valued!), '--read-only-port=0');
  });

  it('parses booleans and integers as Go does', () => {
    for (const text of ['1', 't', 'T', 'TRUE', 'true', 'True'])
      assert.equal(parseGoBool(text), true);
    for (const text of ['0', 'f', 'F', 'FALSE', 'false', 'False'])
      assert.equal(parseGoBool(text), false);
    for (const text of ['yes', 'on', '', ' true']) assert.equal(parseGoBool(text), undefined);
    assert.equal(parseGoInt32('10255'), 10255);
    assert.equal(parseGoInt32('0'), 0);
    assert.equal(parseGoInt32('0x27ff'), 10239);
    assert.equal(parseGoInt32('010'), 8);
    assert.equal(parseGoInt32('0o17'), 15);
    assert.equal(parseGoInt32('-1'), -1);
    assert.equal(parseGoInt32('2147483648'), undefined);
    assert.equal(parseGoInt32('10255a'), undefined);
    assert.equal(parseGoInt32(''), undefined);
  });

  it('parses --feature-gates values, refusing a pair that is not NAME=BOOL', () => {
    assert.deepEqual(
      parseFeatureGates('RotateKubeletServerCertificate=false, KubeletTracing=true'),
      new Map([
        ['RotateKubeletServerCertificate', false],
        ['KubeletTracing', true],
      ]),
    );
    assert.equal(parseFeatureGates('RotateKubeletServerCertificate'), undefined);
    assert.equal(parseFeatureGates('A=maybe'), undefined);
  });
});
