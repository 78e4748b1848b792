// A local HTTPS server that answers the Kubernetes API calls node-auditor makes the way a real
// kube-apiserver v1.26 does: status codes, Status bodies with the exact message formats,
// headers, watch streams. Every shape comes from the recordings in test/fixtures/kube-api
// (see the README there); what was not recorded follows the apiserver's source.
//
// The ServiceAccount identity is authorized with agent/kubernetes/permissions.ts, so a call
// that the agent's RBAC does not allow fails here with the same 403 a cluster would send
// (or, with rbacFeatures: [], as before any role is bound: the sa-*-norbac recordings).
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { writeFile, mkdir } from 'node:fs/promises';
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import path from 'node:path';
import { load as loadYaml } from 'js-yaml';
import {
  CLUSTER_RULES,
  EVENT_NAMESPACE,
  EVENT_RULES,
  FEATURES,
  LEASE_RULES,
  grantedRules,
} from '../../agent/kubernetes/permissions.ts';
import type { Feature, PolicyRule } from '../../agent/kubernetes/permissions.ts';
import { selfSignedCertificate } from '../tls/selfSigned.ts';

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

export interface FakeKubeApiOptions {
  /** Node names to create at start, default ['k1-node01']. The `node` identity is the first. */
  nodes?: string[];
  /**
   * --anonymous-auth (default true). With false, a request without credentials gets 401 on
   * every path, /healthz and /version included (the anonymousoff-* recordings).
   */
  anonymousAuth?: boolean;
  /**
   * The features (permissions.ts) whose rules the ServiceAccount is granted, as the chart grants
   * them for the agent's settings. Default: every one but the remediation ones, the recorded
   * ServiceAccount's rights.
   */
  rbacFeatures?: readonly Feature[]; // [] : nothing bound (the sa-*-norbac recordings)
  /** Also the remediation features' rules, as the chart grants them with an action enabled. */
  remediationRbac?: boolean;
}

const REMEDIATION_FEATURES: readonly Feature[] = ['remediation', 'remediationLock'];

/**
 * The recorded ClusterRoleBinding sets: a fresh v1.26 cluster; with system:unauthenticated in
 * system:basic-user and system:discovery (the pre-1.14 default the seeds fix); and that plus
 * kube-system/kubernetes-dashboard bound to cluster-admin.
 */
export type RbacVariant = 'default' | 'legacy-unauth' | 'risky';

const RBAC_FIXTURES: Record<RbacVariant, string> = {
  default: 'admin-clusterrolebindings-default-200.json',
  'legacy-unauth': 'admin-clusterrolebindings-legacy-unauth-200.json',
  risky: 'admin-clusterrolebindings-risky-200.json',
};

export interface RecordedRequest {
  method: string;
  /** URL path without the query. */
  path: string;
  query: URLSearchParams;
  /** 'sa' | 'admin' | 'node' | 'anonymous' (no credentials) | 'invalid' (unknown bearer token). */
  identity: string;
  contentType?: string;
  /** The raw Authorization header, if any. */
  authorization?: string;
  /** The raw Cookie header, if any. */
  cookie?: string;
  /** Parsed JSON (or YAML for apply patches), else the raw text; absent without a body. */
  body?: unknown;
  status: number;
  /** Date.now() when the request arrived. */
  at: number;
  /** The code of the ERROR event a watch stream carried (410 Expired), if it carried one. */
  watchError?: number;
}

export type IdentityName = 'sa' | 'admin' | 'node';

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string | null;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

export interface KubeObject {
  kind?: string;
  apiVersion?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export interface NodeCondition {
  type: string;
  status: string;
  lastHeartbeatTime?: string | null;
  lastTransitionTime?: string | null;
  reason?: string;
  message?: string;
}

export interface KubeNode extends KubeObject {
  spec: {
    taints?: { key: string; value?: string; effect: string; timeAdded?: string }[];
    unschedulable?: boolean;
    [key: string]: unknown;
  };
  status: {
    conditions?: NodeCondition[];
    addresses?: { type: string; address: string }[];
    nodeInfo?: Record<string, string>;
    [key: string]: unknown;
  };
}

export interface KubePod extends KubeObject {
  spec: {
    nodeName?: string;
    containers: { name: string; image?: string; [key: string]: unknown }[] | null;
    [key: string]: unknown;
  };
  status: {
    phase?: string;
    containerStatuses?: {
      name: string;
      containerID?: string;
      ready: boolean;
      restartCount: number;
      image: string;
      imageID: string;
      started?: boolean;
      state: Record<string, unknown>;
    }[];
    [key: string]: unknown;
  };
}

export interface KubeEvent extends KubeObject {
  involvedObject: {
    kind?: string;
    namespace?: string;
    name?: string;
    uid?: string;
    apiVersion?: string;
    fieldPath?: string;
  };
  reason?: string;
  message?: string;
  source: { component?: string; host?: string };
  firstTimestamp: string | null;
  lastTimestamp: string | null;
  count?: number;
  type?: string;
  eventTime: string | null;
  reportingComponent: string;
  reportingInstance: string;
}

export interface KubeLease extends KubeObject {
  spec: {
    holderIdentity?: string;
    leaseDurationSeconds?: number;
    acquireTime?: string;
    renewTime?: string;
    leaseTransitions?: number;
  };
}

export interface AddPodInput {
  namespace: string;
  name: string;
  nodeName: string;
  uid?: string;
  containers?: { name: string; containerID?: string; image?: string }[];
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export interface FailNextOptions {
  retryAfterSeconds?: number;
  match?: (method: string, path: string) => boolean;
  /**
   * 429 only: answer as v1.26's priority-and-fairness filter really does, with text/plain
   * "Too many requests, please try again later.\n" (http.Error) instead of a Status body.
   */
  plainText?: boolean;
}

export interface FakeKubeApi {
  /** https://127.0.0.1:<port> */
  url: string;
  host: string;
  port: number;
  /** PEM of the self-signed certificate clients must trust. */
  caPem: string;
  /** Bearer tokens per identity. */
  tokens: { sa: string; admin: string; node: string };
  /** The user names the identities authenticate as. */
  users: { sa: string; admin: string; node: string };
  requests: RecordedRequest[];
  /** A kubeconfig (clusters/users/contexts, certificate-authority-data, token) for this server. */
  writeKubeconfig(file: string, identity: IdentityName): Promise<void>;
  /** A ServiceAccount mount (token, ca.crt, namespace) for in-cluster access as `sa`. */
  writeServiceAccountDir(dir: string): Promise<void>;
  // state
  getNode(name: string): KubeNode;
  /** Mutates a copy, stores it normalized, bumps resourceVersion, notifies watchers (MODIFIED). */
  updateNode(name: string, mutate: (node: KubeNode) => void): void;
  setNodeReady(name: string, ready: boolean): void;
  addNode(name: string): KubeNode;
  deleteNode(name: string): void;
  addPod(pod: AddPodInput): KubePod;
  deletePod(namespace: string, name: string): void;
  pods(): KubePod[];
  /** Current core/v1 Event objects. */
  events(): KubeEvent[];
  /** What the API server's --event-ttl does: the Event is gone. */
  deleteEvent(namespace: string, name: string): void;
  getLease(namespace: string, name: string): KubeLease | undefined;
  /** The current (latest) resourceVersion. */
  resourceVersion(): string;
  // faults
  /** Stop accepting connections and reset the open ones (watches end abruptly). */
  goDown(): Promise<void>;
  /** Listen again on the same port. */
  comeBack(): Promise<void>;
  failNext(count: number, status: 429 | 500 | 503, opts?: FailNextOptions): void;
  /**
   * Every resourceVersion so far becomes too old: for a watch (410 Expired in the stream), and
   * for a list's continue token (410 Expired, with a token for the rest at the current one).
   */
  compactAll(): void;
  /**
   * compactAll while watches are open, overtaking them as an etcd compaction overtakes a watch
   * served from etcd: each open watch gets one ERROR 410 Expired event and ends. Returns how
   * many watches were ended.
   */
  expireWatches(): number;
  setLatency(ms: number): void;
  /** What GET /version reports (major, minor and gitVersion; default the recorded v1.26.0). */
  setVersion(gitVersion: string): void;
  /**
   * Register the metrics.k8s.io/v1beta1 aggregated API, as installing metrics-server does: /apis
   * lists the group and GET .../nodes (authorized by RBAC like any resource) answers a
   * NodeMetricsList. Without it, the path is 404 (recorded: admin-metrics-nodes-404.json).
   */
  registerMetricsApi(): void;
  // RBAC (the fresh cluster's default ClusterRoles and ClusterRoleBindings at start). System
  // anonymous is authorized from these objects, as RBAC does.
  /** Replace every ClusterRoleBinding with a recorded set. */
  useRbac(variant: RbacVariant): void;
  /** Create or replace a ClusterRoleBinding, ClusterRole, RoleBinding or Role. */
  putRbac(object: KubeObject): void;
  deleteRbac(kind: string, namespace: string, name: string): void;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------
// JSON values
// ---------------------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | JsonObj;
interface JsonObj {
  [key: string]: Json;
}

function isObj(v: unknown): v is JsonObj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function clone<T>(v: T): T {
  return structuredClone(v);
}

function deepEqual(a: Json | undefined, b: Json | undefined): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (isObj(a) && isObj(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

function objAt(o: JsonObj, key: string): JsonObj {
  const v = o[key];
  return isObj(v) ? v : {};
}

function strAt(o: JsonObj | undefined, key: string): string | undefined {
  const v = o?.[key];
  return typeof v === 'string' ? v : undefined;
}

/** Go's %q for the strings these messages quote (close enough: JSON escaping). */
function q(s: string): string {
  return JSON.stringify(s);
}

/** Go's %v of a value decoded into interface{} (maps print with sorted keys). */
function goFmt(v: Json | undefined): string {
  if (v === undefined || v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') {
    if (Number.isInteger(v) && Math.abs(v) < 2 ** 63) return String(v);
    const exp = Math.floor(Math.log10(Math.abs(v)));
    if (exp < -4 || exp >= 21) {
      return v.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
    }
    return String(v);
  }
  if (Array.isArray(v)) return `[${v.map(goFmt).join(' ')}]`;
  return `map[${Object.keys(v)
    .sort()
    .map((k) => `${k}:${goFmt(v[k])}`)
    .join(' ')}]`;
}

// ---------------------------------------------------------------------------------------------
// Go time parsing (metav1.Time is RFC3339, metav1.MicroTime is RFC3339 with exactly 6 digits)
// ---------------------------------------------------------------------------------------------

const RFC3339 = '2006-01-02T15:04:05Z07:00';
const RFC3339_MICRO = '2006-01-02T15:04:05.000000Z07:00';
/** time.Time{} (year 1) in Unix seconds: Go marshals it as null in metav1 types. */
const GO_ZERO_SECONDS = -62135596800;

interface GoTime {
  seconds: number;
  nanos: number;
}

function isDigit(s: string, i: number): boolean {
  const c = s.charCodeAt(i);
  return c >= 48 && c <= 57;
}

/** A port of the parts of Go's time.Parse these two layouts use, with its error messages. */
function goParseTime(value: string, micro: boolean): GoTime | { error: string } {
  const layout = micro ? RFC3339_MICRO : RFC3339;
  let v = value;
  const cannot = (elem: string): { error: string } => ({
    error: `parsing time ${q(value)} as ${q(layout)}: cannot parse ${q(v)} as ${q(elem)}`,
  });
  const range = (what: string): { error: string } => ({
    error: `parsing time ${q(value)}: ${what} out of range`,
  });
  const getnum = (fixed: boolean): number | undefined => {
    if (!isDigit(v, 0)) return undefined;
    if (!isDigit(v, 1)) {
      if (fixed) return undefined;
      const n = v.charCodeAt(0) - 48;
      v = v.slice(1);
      return n;
    }
    const n = (v.charCodeAt(0) - 48) * 10 + (v.charCodeAt(1) - 48);
    v = v.slice(2);
    return n;
  };
  const literal = (s: string): boolean => {
    if (!v.startsWith(s)) return false;
    v = v.slice(s.length);
    return true;
  };
  if (v.length < 4 || ![0, 1, 2, 3].every((i) => isDigit(v, i))) return cannot('2006');
  const year = Number(v.slice(0, 4));
  v = v.slice(4);
  if (!literal('-')) return cannot('-');
  const month = getnum(true);
  if (month === undefined) return cannot('01');
  if (month < 1 || month > 12) return range('month');
  if (!literal('-')) return cannot('-');
  const day = getnum(true);
  if (day === undefined) return cannot('02');
  if (!literal('T')) return cannot('T');
  const hour = getnum(false);
  if (hour === undefined) return cannot('15');
  if (hour >= 24) return range('hour');
  if (!literal(':')) return cannot(':');
  const minute = getnum(true);
  if (minute === undefined) return cannot('04');
  if (minute >= 60) return range('minute');
  if (!literal(':')) return cannot(':');
  const second = getnum(true);
  if (second === undefined) return cannot('05');
  if (second >= 60) return range('second');
  let nanos = 0;
  const fraction = (digits: number): boolean => {
    let ns = 0;
    for (let i = 1; i <= digits; i++) {
      if (!isDigit(v, i)) return false;
      if (i <= 9) ns = ns * 10 + (v.charCodeAt(i) - 48);
    }
    for (let i = digits; i < 9; i++) ns *= 10;
    nanos = ns;
    v = v.slice(digits + 1);
    return true;
  };
  if (micro) {
    if (v.length < 7 || (v[0] !== '.' && v[0] !== ',') || !fraction(6)) return cannot('.000000');
  } else if (v.length >= 2 && (v[0] === '.' || v[0] === ',') && isDigit(v, 1)) {
    let n = 1;
    while (isDigit(v, n)) n++;
    fraction(n - 1);
  }
  let offset = 0;
  if (v.startsWith('Z')) {
    v = v.slice(1);
  } else {
    if (v.length < 6 || v[3] !== ':') return cannot('Z07:00');
    const sign = v[0];
    const hh = v.slice(1, 3);
    const mm = v.slice(4, 6);
    if (!isDigit(hh, 0) || !isDigit(hh, 1) || !isDigit(mm, 0) || !isDigit(mm, 1)) {
      return cannot('Z07:00');
    }
    if (sign !== '+' && sign !== '-') return cannot('Z07:00');
    const oh = Number(hh);
    const om = Number(mm);
    if (oh > 24) return range('time zone offset hour');
    if (om > 60) return range('time zone offset minute');
    offset = (sign === '-' ? -1 : 1) * (oh * 3600 + om * 60);
    v = v.slice(6);
  }
  if (v !== '') return { error: `parsing time ${q(value)}: extra text: ${q(v)}` };
  const daysIn = new Date(Date.UTC(2000, month, 0)).getUTCDate();
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const maxDay = month === 2 ? (leap ? 29 : 28) : daysIn;
  if (day < 1 || day > maxDay) return range('day');
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, 0);
  return { seconds: d.getTime() / 1000 - offset, nanos };
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

function formatSeconds(seconds: number): string {
  const d = new Date(seconds * 1000);
  return (
    `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}` +
    `T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}`
  );
}

/** metav1.Time as the apiserver writes it: UTC, whole seconds; the zero time is null. */
function formatTime(t: GoTime): string | null {
  if (t.seconds === GO_ZERO_SECONDS) return null;
  return `${formatSeconds(t.seconds)}Z`;
}

/** metav1.MicroTime: UTC, exactly 6 fractional digits. */
function formatMicroTime(t: GoTime): string | null {
  if (t.seconds === GO_ZERO_SECONDS && t.nanos === 0) return null;
  return `${formatSeconds(t.seconds)}.${pad(Math.floor(t.nanos / 1000), 6)}Z`;
}

function nowTime(): string {
  return `${formatSeconds(Math.floor(Date.now() / 1000))}Z`;
}

// ---------------------------------------------------------------------------------------------
// Schemas: enough of the Go types to decode a request body like the apiserver (unknown fields
// dropped with a warning, time fields parsed and truncated, Go's field order and omitempty on
// the way out, Go's error messages) and to merge strategic-merge patches.
// ---------------------------------------------------------------------------------------------

type Sch =
  | { k: 'string'; go: string }
  | { k: 'int32' }
  | { k: 'int64' }
  | { k: 'bool' }
  | { k: 'float64' }
  | { k: 'time' }
  | { k: 'microtime' }
  | { k: 'struct'; go: string; fields: Record<string, Fld>; atomic?: boolean }
  | { k: 'list'; of: Sch; mergeKey?: string; setMerge?: boolean }
  | { k: 'map'; of: Sch }
  | { k: 'raw' };

interface Fld {
  s: Sch;
  /** `omitempty` */
  omit: boolean;
  /** a pointer: nil is omitted, a zero value is kept */
  ptr: boolean;
}

const str: Sch = { k: 'string', go: 'string' };
const named = (go: string): Sch => ({ k: 'string', go });
const i32: Sch = { k: 'int32' };
const i64: Sch = { k: 'int64' };
const bool: Sch = { k: 'bool' };
const time: Sch = { k: 'time' };
const microtime: Sch = { k: 'microtime' };
const raw: Sch = { k: 'raw' };
const list = (of: Sch, opts: { mergeKey?: string; setMerge?: boolean } = {}): Sch => ({
  k: 'list',
  of,
  ...opts,
});
const map = (of: Sch): Sch => ({ k: 'map', of });
const struct = (go: string, fields: Record<string, Fld>, atomic = false): Sch => ({
  k: 'struct',
  go,
  fields,
  atomic,
});
const req = (s: Sch): Fld => ({ s, omit: false, ptr: false });
const opt = (s: Sch): Fld => ({ s, omit: true, ptr: false });
const ptr = (s: Sch): Fld => ({ s, omit: true, ptr: true });

function goType(s: Sch): string {
  switch (s.k) {
    case 'string':
      return s.go;
    case 'int32':
    case 'int64':
    case 'bool':
    case 'float64':
      return s.k;
    case 'time':
      return 'v1.Time';
    case 'microtime':
      return 'v1.MicroTime';
    case 'struct':
      return `v1.${s.go}`;
    case 'list':
      return `[]${goType(s.of)}`;
    case 'map':
      return `map[string]${goType(s.of)}`;
    case 'raw':
      return 'interface {}';
  }
}

const managedFieldsEntry = struct('ManagedFieldsEntry', {
  manager: opt(str),
  operation: opt(named('v1.ManagedFieldsOperationType')),
  apiVersion: opt(str),
  time: ptr(time),
  fieldsType: opt(str),
  fieldsV1: ptr(raw),
  subresource: opt(str),
});

const ownerReference = struct('OwnerReference', {
  apiVersion: req(str),
  kind: req(str),
  name: req(str),
  uid: req(named('types.UID')),
  controller: ptr(bool),
  blockOwnerDeletion: ptr(bool),
});

const objectMeta = struct('ObjectMeta', {
  name: opt(str),
  generateName: opt(str),
  namespace: opt(str),
  selfLink: opt(str),
  uid: opt(named('types.UID')),
  resourceVersion: opt(str),
  generation: opt(i64),
  creationTimestamp: opt(time),
  deletionTimestamp: ptr(time),
  deletionGracePeriodSeconds: ptr(i64),
  labels: opt(map(str)),
  annotations: opt(map(str)),
  ownerReferences: opt(list(ownerReference, { mergeKey: 'uid' })),
  finalizers: opt(list(str, { setMerge: true })),
  managedFields: opt(list(managedFieldsEntry)),
});

const typeMeta = { kind: opt(str), apiVersion: opt(str) };

const nodeCondition = struct('NodeCondition', {
  type: req(named('v1.NodeConditionType')),
  status: req(named('v1.ConditionStatus')),
  lastHeartbeatTime: opt(time),
  lastTransitionTime: opt(time),
  reason: opt(str),
  message: opt(str),
});

const nodeSchema = struct('Node', {
  ...typeMeta,
  metadata: opt(objectMeta),
  spec: opt(
    struct('NodeSpec', {
      podCIDR: opt(str),
      podCIDRs: opt(list(str, { setMerge: true })),
      providerID: opt(str),
      unschedulable: opt(bool),
      taints: opt(
        list(
          struct('Taint', {
            key: req(str),
            value: opt(str),
            effect: req(named('v1.TaintEffect')),
            timeAdded: ptr(time),
          }),
        ),
      ),
      configSource: ptr(raw),
      externalID: opt(str),
    }),
  ),
  status: opt(
    struct('NodeStatus', {
      capacity: opt(map(raw)),
      allocatable: opt(map(raw)),
      phase: opt(named('v1.NodePhase')),
      conditions: opt(list(nodeCondition, { mergeKey: 'type' })),
      addresses: opt(
        list(
          struct('NodeAddress', {
            type: req(named('v1.NodeAddressType')),
            address: req(str),
          }),
          { mergeKey: 'type' },
        ),
      ),
      daemonEndpoints: opt(
        struct('NodeDaemonEndpoints', {
          kubeletEndpoint: opt(struct('DaemonEndpoint', { Port: req(i32) })),
        }),
      ),
      nodeInfo: opt(
        struct('NodeSystemInfo', {
          machineID: req(str),
          systemUUID: req(str),
          bootID: req(str),
          kernelVersion: req(str),
          osImage: req(str),
          containerRuntimeVersion: req(str),
          kubeletVersion: req(str),
          kubeProxyVersion: req(str),
          operatingSystem: req(str),
          architecture: req(str),
        }),
      ),
      images: opt(list(struct('ContainerImage', { names: req(list(str)), sizeBytes: opt(i64) }))),
      volumesInUse: opt(list(named('v1.UniqueVolumeName'))),
      volumesAttached: opt(list(raw)),
      config: ptr(raw),
    }),
  ),
});

const objectReference = struct(
  'ObjectReference',
  {
    kind: opt(str),
    namespace: opt(str),
    name: opt(str),
    uid: opt(named('types.UID')),
    apiVersion: opt(str),
    resourceVersion: opt(str),
    fieldPath: opt(str),
  },
  true,
);

const eventSchema = struct('Event', {
  ...typeMeta,
  metadata: opt(objectMeta),
  involvedObject: req(objectReference),
  reason: opt(str),
  message: opt(str),
  source: opt(struct('EventSource', { component: opt(str), host: opt(str) })),
  firstTimestamp: opt(time),
  lastTimestamp: opt(time),
  count: opt(i32),
  type: opt(str),
  eventTime: opt(microtime),
  series: ptr(struct('EventSeries', { count: opt(i32), lastObservedTime: opt(microtime) })),
  action: opt(str),
  related: ptr(objectReference),
  reportingComponent: req(str),
  reportingInstance: req(str),
});

const leaseSchema = struct('Lease', {
  ...typeMeta,
  metadata: opt(objectMeta),
  spec: opt(
    struct('LeaseSpec', {
      holderIdentity: ptr(str),
      leaseDurationSeconds: ptr(i32),
      acquireTime: ptr(microtime),
      renewTime: ptr(microtime),
      leaseTransitions: ptr(i32),
    }),
  ),
});

const containerSchema = struct('Container', {
  name: req(str),
  image: opt(str),
  command: opt(list(str)),
  args: opt(list(str)),
  workingDir: opt(str),
  ports: opt(list(raw)),
  envFrom: opt(list(raw)),
  env: opt(list(raw)),
  resources: opt(
    struct('ResourceRequirements', {
      limits: opt(map(raw)),
      requests: opt(map(raw)),
      claims: opt(list(raw)),
    }),
  ),
  volumeMounts: opt(list(raw)),
  volumeDevices: opt(list(raw)),
  livenessProbe: ptr(raw),
  readinessProbe: ptr(raw),
  startupProbe: ptr(raw),
  lifecycle: ptr(raw),
  terminationMessagePath: opt(str),
  terminationMessagePolicy: opt(named('v1.TerminationMessagePolicy')),
  imagePullPolicy: opt(named('v1.PullPolicy')),
  securityContext: ptr(raw),
  stdin: opt(bool),
  stdinOnce: opt(bool),
  tty: opt(bool),
});

const containerState = struct('ContainerState', {
  waiting: ptr(raw),
  running: ptr(struct('ContainerStateRunning', { startedAt: opt(time) })),
  terminated: ptr(raw),
});

const containerStatus = struct('ContainerStatus', {
  name: req(str),
  state: opt(containerState),
  lastState: opt(containerState),
  ready: req(bool),
  restartCount: req(i32),
  image: req(str),
  imageID: req(str),
  containerID: opt(str),
  started: ptr(bool),
});

const podSchema = struct('Pod', {
  ...typeMeta,
  metadata: opt(objectMeta),
  spec: opt(
    struct('PodSpec', {
      volumes: opt(list(raw)),
      initContainers: opt(list(containerSchema, { mergeKey: 'name' })),
      containers: req(list(containerSchema, { mergeKey: 'name' })),
      ephemeralContainers: opt(list(raw)),
      restartPolicy: opt(named('v1.RestartPolicy')),
      terminationGracePeriodSeconds: ptr(i64),
      activeDeadlineSeconds: ptr(i64),
      dnsPolicy: opt(named('v1.DNSPolicy')),
      nodeSelector: opt(map(str)),
      serviceAccountName: opt(str),
      serviceAccount: opt(str),
      automountServiceAccountToken: ptr(bool),
      nodeName: opt(str),
      hostNetwork: opt(bool),
      hostPID: opt(bool),
      hostIPC: opt(bool),
      shareProcessNamespace: ptr(bool),
      securityContext: ptr(raw),
      imagePullSecrets: opt(list(raw)),
      hostname: opt(str),
      subdomain: opt(str),
      affinity: ptr(raw),
      schedulerName: opt(str),
      tolerations: opt(list(raw)),
      hostAliases: opt(list(raw)),
      priorityClassName: opt(str),
      priority: ptr(i32),
      dnsConfig: ptr(raw),
      readinessGates: opt(list(raw)),
      runtimeClassName: ptr(str),
      enableServiceLinks: ptr(bool),
      preemptionPolicy: ptr(named('v1.PreemptionPolicy')),
      overhead: opt(map(raw)),
      topologySpreadConstraints: opt(list(raw)),
      setHostnameAsFQDN: ptr(bool),
      os: ptr(raw),
      hostUsers: ptr(bool),
      schedulingGates: opt(list(raw)),
      resourceClaims: opt(list(raw)),
    }),
  ),
  status: opt(
    struct('PodStatus', {
      phase: opt(named('v1.PodPhase')),
      conditions: opt(
        list(
          struct('PodCondition', {
            type: req(named('v1.PodConditionType')),
            status: req(named('v1.ConditionStatus')),
            lastProbeTime: opt(time),
            lastTransitionTime: opt(time),
            reason: opt(str),
            message: opt(str),
          }),
          { mergeKey: 'type' },
        ),
      ),
      message: opt(str),
      reason: opt(str),
      nominatedNodeName: opt(str),
      hostIP: opt(str),
      podIP: opt(str),
      podIPs: opt(list(struct('PodIP', { ip: opt(str) }), { mergeKey: 'ip' })),
      startTime: ptr(time),
      initContainerStatuses: opt(list(containerStatus)),
      containerStatuses: opt(list(containerStatus)),
      qosClass: opt(named('v1.PodQOSClass')),
      ephemeralContainerStatuses: opt(list(containerStatus)),
    }),
  ),
});

const namespaceSchema = struct('Namespace', {
  ...typeMeta,
  metadata: opt(objectMeta),
  spec: opt(struct('NamespaceSpec', { finalizers: opt(list(named('v1.FinalizerName'))) })),
  status: opt(
    struct('NamespaceStatus', {
      phase: opt(named('v1.NamespacePhase')),
      conditions: opt(list(raw)),
    }),
  ),
});

// rbac.authorization.k8s.io/v1 (k8s.io/api/rbac/v1/types.go), in Go's field order
const rbacSubject = struct('Subject', {
  kind: req(str),
  apiGroup: opt(str),
  name: req(str),
  namespace: opt(str),
});
const roleRef = struct('RoleRef', { apiGroup: req(str), kind: req(str), name: req(str) });
const policyRule = struct('PolicyRule', {
  verbs: req(list(str)),
  apiGroups: opt(list(str)),
  resources: opt(list(str)),
  resourceNames: opt(list(str)),
  nonResourceURLs: opt(list(str)),
});
const bindingSchema = (go: string) =>
  struct(go, {
    ...typeMeta,
    metadata: opt(objectMeta),
    subjects: opt(list(rbacSubject)),
    roleRef: req(roleRef),
  });
const roleSchema = (go: string) =>
  struct(go, {
    ...typeMeta,
    metadata: opt(objectMeta),
    rules: req(list(policyRule)),
    aggregationRule: opt(raw),
  });

// ---------------------------------------------------------------------------------------------
// Decoding (normalizing) an object through a schema
// ---------------------------------------------------------------------------------------------

/** A decode error that stops decoding at once (Go: an UnmarshalJSON error). */
class DecodeAbort extends Error {}

interface DecodeState {
  typeError?: string;
  unknown: string[];
}

function jsonKind(v: Json): string {
  if (typeof v === 'string') return 'string';
  if (typeof v === 'number') return 'number';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return 'array';
  return 'object';
}

function typeMismatch(
  st: DecodeState,
  value: string,
  parent: string,
  names: string[],
  s: Sch,
): undefined {
  if (st.typeError !== undefined) return undefined;
  st.typeError =
    names.length === 0
      ? `json: cannot unmarshal ${value} into Go value of type ${goType(s)}`
      : `json: cannot unmarshal ${value} into Go struct field ${parent}.${names.join('.')} of type ${goType(s)}`;
  return undefined;
}

function isEmptyGo(s: Sch, v: Json): boolean {
  switch (s.k) {
    case 'struct':
    case 'time':
    case 'microtime':
      return false;
    default:
      if (v === '' || v === 0 || v === false || v === null) return true;
      if (Array.isArray(v)) return v.length === 0;
      if (isObj(v)) return s.k === 'map' || s.k === 'raw' ? Object.keys(v).length === 0 : false;
      return false;
  }
}

function zeroOf(s: Sch, st: DecodeState): Json | undefined {
  switch (s.k) {
    case 'string':
      return '';
    case 'int32':
    case 'int64':
    case 'float64':
      return 0;
    case 'bool':
      return false;
    case 'time':
    case 'microtime':
      return null;
    case 'struct':
      return decodeValue(s, {}, [], '', '', st);
    default:
      return undefined; // nil slice / map / interface
  }
}

function decodeValue(
  s: Sch,
  v: Json,
  names: string[],
  full: string,
  parent: string,
  st: DecodeState,
): Json | undefined {
  switch (s.k) {
    case 'string':
      if (typeof v !== 'string') {
        typeMismatch(st, jsonKind(v), parent, names, s);
        return;
      }
      return v;
    case 'bool':
      if (typeof v !== 'boolean') {
        typeMismatch(st, jsonKind(v), parent, names, s);
        return;
      }
      return v;
    case 'float64':
      if (typeof v !== 'number') {
        typeMismatch(st, jsonKind(v), parent, names, s);
        return;
      }
      return v;
    case 'int32':
    case 'int64': {
      if (typeof v !== 'number') {
        typeMismatch(st, jsonKind(v), parent, names, s);
        return;
      }
      const limit = s.k === 'int32' ? 2 ** 31 : 2 ** 63;
      if (!Number.isInteger(v) || v >= limit || v < -limit) {
        typeMismatch(st, `number ${String(v)}`, parent, names, s);
        return;
      }
      return v;
    }
    case 'time':
    case 'microtime': {
      if (typeof v !== 'string') {
        throw new DecodeAbort(
          `json: cannot unmarshal ${jsonKind(v)} into Go struct field ${parent}.${names.join('.')} of type string`,
        );
      }
      const t = goParseTime(v, s.k === 'microtime');
      if ('error' in t) throw new DecodeAbort(t.error);
      return s.k === 'time' ? formatTime(t) : formatMicroTime(t);
    }
    case 'raw':
      return clone(v);
    case 'list': {
      if (!Array.isArray(v)) {
        typeMismatch(st, jsonKind(v), parent, names, s);
        return;
      }
      return v.map((e, i) => {
        const path = `${full}[${String(i)}]`;
        const d = e === null ? undefined : decodeValue(s.of, e, names, path, parent, st);
        return d ?? zeroOf(s.of, st) ?? null;
      });
    }
    case 'map': {
      if (!isObj(v)) {
        typeMismatch(st, jsonKind(v), parent, names, s);
        return;
      }
      const out: JsonObj = {};
      for (const key of Object.keys(v).sort()) {
        const e = v[key];
        const d =
          e === undefined || e === null
            ? undefined
            : decodeValue(s.of, e, names, `${full}.${key}`, parent, st);
        out[key] = d ?? zeroOf(s.of, st) ?? null;
      }
      return out;
    }
    case 'struct': {
      if (!isObj(v)) {
        typeMismatch(st, jsonKind(v), parent, names, s);
        return;
      }
      const decoded = new Map<string, Json | undefined>();
      for (const key of Object.keys(v)) {
        const fld = Object.hasOwn(s.fields, key) ? s.fields[key] : undefined;
        const childFull = full === '' ? key : `${full}.${key}`;
        if (fld === undefined) {
          st.unknown.push(childFull);
          continue;
        }
        const value = v[key];
        decoded.set(
          key,
          value === undefined || value === null
            ? undefined
            : decodeValue(fld.s, value, [...names, key], childFull, s.go, st),
        );
      }
      const out: JsonObj = {};
      for (const [key, fld] of Object.entries(s.fields)) {
        const value = decoded.get(key);
        if (value === undefined) {
          if (fld.ptr) {
            if (!fld.omit) out[key] = null;
            continue;
          }
          const zero = zeroOf(fld.s, st);
          if (zero === undefined) {
            if (!fld.omit) out[key] = null;
          } else if (!fld.omit || !isEmptyGo(fld.s, zero)) {
            out[key] = zero;
          }
          continue;
        }
        if (!fld.ptr && fld.omit && isEmptyGo(fld.s, value)) continue;
        out[key] = value;
      }
      return out;
    }
  }
}

type DecodeResult = { obj: JsonObj; unknown: string[] } | { error: string };

/** Decodes like the apiserver: the first UnmarshalJSON error, else the first type error. */
function decodeObject(s: Sch, v: Json): DecodeResult {
  const st: DecodeState = { unknown: [] };
  try {
    const out = decodeValue(s, v, [], '', '', st);
    if (st.typeError !== undefined) return { error: st.typeError };
    if (!isObj(out)) return { error: `json: cannot unmarshal ${jsonKind(v)} into Go value` };
    return { obj: out, unknown: st.unknown };
  } catch (error) {
    if (error instanceof DecodeAbort) return { error: error.message };
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------
// Patches: strategic merge (apimachinery's ordering), JSON merge (RFC 7386), JSON patch (6902)
// ---------------------------------------------------------------------------------------------

class PatchError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function discardNulls(v: Json): Json {
  if (Array.isArray(v)) return v.map(discardNulls);
  if (isObj(v)) {
    const out: JsonObj = {};
    for (const [k, x] of Object.entries(v)) {
      if (x !== null && !k.startsWith('$')) out[k] = discardNulls(x);
    }
    return out;
  }
  return v;
}

function fieldSchema(s: Sch | undefined, key: string): Sch | undefined {
  if (s?.k === 'struct') return Object.hasOwn(s.fields, key) ? s.fields[key]?.s : undefined;
  if (s?.k === 'map') return s.of;
  return undefined;
}

function smpMergeMap(s: Sch | undefined, original: JsonObj, patch: JsonObj): JsonObj {
  const directive = patch.$patch;
  if (directive === 'replace') return discardNulls(patch) as JsonObj;
  if (directive === 'delete') return {};
  const out = clone(original);
  const orders = new Map<string, Json[]>();
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$setElementOrder/')) {
      if (Array.isArray(value)) orders.set(key.slice('$setElementOrder/'.length), value);
    } else if (key.startsWith('$deleteFromPrimitiveList/')) {
      const field = key.slice('$deleteFromPrimitiveList/'.length);
      const current = out[field];
      if (Array.isArray(current) && Array.isArray(value)) {
        out[field] = current.filter((x) => !value.some((y) => deepEqual(x, y)));
      }
    }
  }
  for (const [key, pv] of Object.entries(patch)) {
    if (key.startsWith('$')) continue;
    if (pv === null) {
      Reflect.deleteProperty(out, key);
      continue;
    }
    const fs = fieldSchema(s, key);
    const ov = out[key];
    if (ov === undefined) {
      out[key] = discardNulls(pv);
    } else if (isObj(ov) && isObj(pv)) {
      out[key] = smpMergeMap(fs, ov, pv);
    } else if (Array.isArray(ov) && Array.isArray(pv) && fs?.k === 'list') {
      if (fs.mergeKey !== undefined) {
        out[key] = smpMergeList(fs.of, fs.mergeKey, ov, pv, orders.get(key));
      } else if (fs.setMerge === true) {
        out[key] = smpMergePrimitives(ov, pv, orders.get(key));
      } else {
        out[key] = discardNulls(pv);
      }
    } else {
      out[key] = discardNulls(pv);
    }
  }
  const retain = patch.$retainKeys;
  if (Array.isArray(retain)) {
    for (const key of Object.keys(out)) if (!retain.includes(key)) Reflect.deleteProperty(out, key);
  }
  return out;
}

/** apimachinery's mergeSortedSlice: interleave server-only items into the patch items. */
function mergeSorted(
  left: Json[],
  right: Json[],
  serverOrder: Json[],
  indexOf: (list: Json[], item: Json) => number,
): Json[] {
  const out: Json[] = [];
  let i = 0;
  let j = 0;
  while (i < left.length || j < right.length) {
    if (i >= left.length) out.push(right[j++] ?? null);
    else if (j >= right.length) out.push(left[i++] ?? null);
    else {
      const li = indexOf(serverOrder, left[i] ?? null);
      const ri = indexOf(serverOrder, right[j] ?? null);
      if (li >= 0 && ri >= 0 && li < ri) out.push(left[i++] ?? null);
      else out.push(right[j++] ?? null);
    }
  }
  return out;
}

function stableSortBy(items: Json[], order: Json[], indexOf: (l: Json[], x: Json) => number) {
  return items
    .map((item, n) => ({ item, n, at: indexOf(order, item) }))
    .sort((a, b) => a.at - b.at || a.n - b.n)
    .map((x) => x.item);
}

function smpMergeList(
  elem: Sch,
  key: string,
  original: Json[],
  patch: Json[],
  order: Json[] | undefined,
): Json[] {
  if (patch.some((p) => isObj(p) && p.$patch === 'replace')) {
    return patch.filter((p) => !(isObj(p) && p.$patch === 'replace')).map(discardNulls);
  }
  const keyOf = (x: Json): Json | undefined => (isObj(x) ? x[key] : undefined);
  for (const p of patch) {
    if (!isObj(p) || keyOf(p) === undefined) {
      throw new PatchError(500, `map: ${goFmt(p)} does not contain declared merge key: ${key}`);
    }
  }
  const deletions = patch.filter((p) => isObj(p) && p.$patch === 'delete');
  let merged = original.filter((o) => !deletions.some((d) => deepEqual(keyOf(d), keyOf(o))));
  const items = patch.filter((p) => !(isObj(p) && p.$patch === 'delete'));
  const base = merged;
  merged = [...merged];
  for (const p of items) {
    const at = merged.findIndex((m) => deepEqual(keyOf(m), keyOf(p)));
    const current = at >= 0 ? merged[at] : undefined;
    if (at >= 0 && isObj(current) && isObj(p)) merged[at] = smpMergeMap(elem, current, p);
    else merged.push(discardNulls(p));
  }
  const indexOf = (l: Json[], x: Json): number => l.findIndex((y) => deepEqual(keyOf(y), keyOf(x)));
  const patchOrder = order ?? items;
  const patchItems = merged.filter((m) => indexOf(patchOrder, m) >= 0);
  const serverOnly = merged.filter((m) => indexOf(patchOrder, m) < 0);
  return mergeSorted(
    stableSortBy(serverOnly, base, indexOf),
    stableSortBy(patchItems, patchOrder, indexOf),
    base,
    indexOf,
  );
}

function smpMergePrimitives(original: Json[], patch: Json[], order: Json[] | undefined): Json[] {
  const merged = [...original];
  for (const p of patch) if (!merged.some((m) => deepEqual(m, p))) merged.push(p);
  const indexOf = (l: Json[], x: Json): number => l.findIndex((y) => deepEqual(y, x));
  const patchOrder = order ?? patch;
  const patchItems = merged.filter((m) => indexOf(patchOrder, m) >= 0);
  const serverOnly = merged.filter((m) => indexOf(patchOrder, m) < 0);
  return mergeSorted(
    stableSortBy(serverOnly, original, indexOf),
    stableSortBy(patchItems, patchOrder, indexOf),
    original,
    indexOf,
  );
}

function jsonMergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObj(patch)) return clone(patch);
  const out: JsonObj = isObj(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) Reflect.deleteProperty(out, k);
    else out[k] = jsonMergePatch(out[k], v);
  }
  return out;
}

/** RFC 6902, as evanphx/json-patch applies it; any failure is the apiserver's generic 422. */
function jsonPatch(doc: Json, ops: Json): Json {
  if (!Array.isArray(ops)) {
    throw new PatchError(
      400,
      `json: cannot unmarshal ${jsonKind(ops)} into Go value of type jsonpatch.Patch`,
    );
  }
  const fail = (): never => {
    throw new PatchError(422, 'generic');
  };
  const parse = (p: Json | undefined): string[] => {
    if (typeof p !== 'string') return fail();
    if (p === '') return [];
    if (!p.startsWith('/')) return fail();
    return p
      .slice(1)
      .split('/')
      .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  };
  const parentOf = (root: Json, parts: string[]): { container: Json; key: string } => {
    let cur: Json = root;
    for (const part of parts.slice(0, -1)) {
      if (Array.isArray(cur)) {
        if (!/^(0|[1-9]\d*)$/.test(part)) return fail();
        const next: Json | undefined = cur[Number(part)];
        if (next === undefined) return fail();
        cur = next;
      } else if (isObj(cur)) {
        const next: Json | undefined = cur[part];
        if (next === undefined) return fail();
        cur = next;
      } else return fail();
    }
    const key = parts[parts.length - 1];
    if (key === undefined) return fail();
    return { container: cur, key };
  };
  const get = (root: Json, parts: string[]): Json => {
    if (parts.length === 0) return root;
    const { container, key } = parentOf(root, parts);
    if (Array.isArray(container)) {
      if (!/^(0|[1-9]\d*)$/.test(key)) return fail();
      return container[Number(key)] ?? fail();
    }
    if (isObj(container)) return container[key] ?? fail();
    return fail();
  };
  const remove = (root: Json, parts: string[]): Json => {
    const { container, key } = parentOf(root, parts);
    if (Array.isArray(container)) {
      const i = /^(0|[1-9]\d*)$/.test(key) ? Number(key) : -1;
      if (i < 0 || i >= container.length) return fail();
      return container.splice(i, 1)[0] ?? null;
    }
    if (isObj(container)) {
      const old = container[key];
      if (old === undefined) return fail();
      Reflect.deleteProperty(container, key);
      return old;
    }
    return fail();
  };
  const add = (root: Json, parts: string[], value: Json, replace: boolean): Json => {
    if (parts.length === 0) return value;
    const { container, key } = parentOf(root, parts);
    if (Array.isArray(container)) {
      if (key === '-' && !replace) container.push(value);
      else {
        const i = /^(0|[1-9]\d*)$/.test(key) ? Number(key) : -1;
        if (i < 0 || (replace ? i >= container.length : i > container.length)) return fail();
        if (replace) container[i] = value;
        else container.splice(i, 0, value);
      }
    } else if (isObj(container)) {
      if (replace && container[key] === undefined) return fail();
      container[key] = value;
    } else return fail();
    return root;
  };
  let root = clone(doc);
  for (const op of ops) {
    if (!isObj(op)) return fail();
    const parts = parse(op.path);
    const value = op.value;
    switch (op.op) {
      case 'add':
        if (value === undefined) return fail();
        root = add(root, parts, clone(value), false);
        break;
      case 'replace':
        if (value === undefined) return fail();
        root = add(root, parts, clone(value), true);
        break;
      case 'remove':
        if (parts.length === 0) return fail();
        remove(root, parts);
        break;
      case 'test':
        if (!deepEqual(get(root, parts), value ?? null)) return fail();
        break;
      case 'move': {
        const from = parse(op.from);
        const moved = remove(root, from);
        root = add(root, parts, moved, false);
        break;
      }
      case 'copy':
        root = add(root, parts, clone(get(root, parse(op.from))), false);
        break;
      default:
        return fail();
    }
  }
  return root;
}

/** A simple server-side apply: merge by the schema's list keys, keep the live order. */
function applyMerge(s: Sch | undefined, live: Json | undefined, applied: Json): Json {
  if (isObj(applied) && isObj(live) && (s === undefined || s.k !== 'struct' || s.atomic !== true)) {
    const out = clone(live);
    for (const [k, v] of Object.entries(applied)) {
      out[k] = v === null ? null : applyMerge(fieldSchema(s, k), out[k], v);
    }
    return out;
  }
  if (Array.isArray(applied) && Array.isArray(live) && s?.k === 'list' && s.mergeKey) {
    const key = s.mergeKey;
    const out = clone(live);
    for (const a of applied) {
      const at = out.findIndex((o) => isObj(o) && isObj(a) && deepEqual(o[key], a[key]));
      if (at >= 0) out[at] = applyMerge(s.of, out[at], a);
      else out.push(clone(a));
    }
    return out;
  }
  return clone(applied);
}

// ---------------------------------------------------------------------------------------------
// managedFields (FieldsV1) for objects the apiserver tracks (events, leases)
// ---------------------------------------------------------------------------------------------

interface FNode {
  member: boolean;
  children: Map<string, FNode>;
}

const fnode = (): FNode => ({ member: false, children: new Map() });

function fchild(n: FNode, key: string): FNode {
  let c = n.children.get(key);
  if (c === undefined) {
    c = fnode();
    n.children.set(key, c);
  }
  return c;
}

function fEmpty(n: FNode): boolean {
  return !n.member && [...n.children.values()].every(fEmpty);
}

function fEncode(n: FNode): JsonObj {
  const out: JsonObj = {};
  if (n.member && n.children.size > 0) out['.'] = {};
  for (const key of [...n.children.keys()].sort()) {
    const c = n.children.get(key);
    if (c !== undefined && !fEmpty(c)) out[key] = fEncode(c);
  }
  return out;
}

function fDecode(v: Json | undefined): FNode {
  const n = fnode();
  if (!isObj(v)) return n;
  const keys = Object.keys(v);
  if (keys.length === 0 || keys.includes('.')) n.member = true;
  for (const key of keys) if (key !== '.') n.children.set(key, fDecode(v[key]));
  return n;
}

function fUnion(a: FNode, b: FNode): FNode {
  const out: FNode = { member: a.member || b.member, children: new Map() };
  for (const key of new Set([...a.children.keys(), ...b.children.keys()])) {
    out.children.set(key, fUnion(a.children.get(key) ?? fnode(), b.children.get(key) ?? fnode()));
  }
  return out;
}

function fDifference(a: FNode, b: FNode): FNode {
  const out: FNode = { member: a.member && !b.member, children: new Map() };
  for (const [key, c] of a.children) {
    const other = b.children.get(key);
    const d = other === undefined ? c : fDifference(c, other);
    if (!fEmpty(d)) out.children.set(key, d);
  }
  return out;
}

/** Every leaf (and list, list item, map) of a value, as smd's ToFieldSet. */
function fAll(s: Sch | undefined, v: Json | undefined, into: FNode): void {
  if (v === undefined || v === null) return;
  if (s?.k === 'struct' && s.atomic !== true && isObj(v)) {
    for (const [key, fld] of Object.entries(s.fields)) {
      const c = v[key];
      if (c === undefined || c === null) continue;
      fAll(fld.s, c, fchild(into, `f:${key}`));
    }
    return;
  }
  if (s?.k === 'map' && isObj(v)) {
    into.member = true;
    for (const key of Object.keys(v)) fchild(into, `f:${key}`).member = true;
    return;
  }
  if (s?.k === 'list' && s.mergeKey !== undefined && Array.isArray(v)) {
    into.member = true;
    for (const e of v) {
      if (!isObj(e)) continue;
      const c = fchild(into, `k:${JSON.stringify({ [s.mergeKey]: e[s.mergeKey] ?? null })}`);
      c.member = true;
      fAll(s.of, e, c);
    }
    return;
  }
  into.member = true;
}

/** Fields added/changed (owned by the writer) and removed between two objects. */
function fDiff(s: Sch, a: Json | undefined, b: Json | undefined, changed: FNode, removed: FNode) {
  if (deepEqual(a, b)) return;
  if (b === undefined || b === null) {
    fAll(s, a, removed);
    if (!removed.member) removed.member = true;
    return;
  }
  if (s.k === 'struct' && s.atomic !== true && isObj(b)) {
    const av = isObj(a) ? a : {};
    for (const [key, fld] of Object.entries(s.fields)) {
      if (deepEqual(av[key], b[key])) continue;
      fDiff(fld.s, av[key], b[key], fchild(changed, `f:${key}`), fchild(removed, `f:${key}`));
    }
    return;
  }
  if (s.k === 'map' && isObj(b)) {
    const av = isObj(a) ? a : undefined;
    if (av === undefined) changed.member = true;
    for (const key of new Set([...Object.keys(av ?? {}), ...Object.keys(b)])) {
      const x = av?.[key];
      const y = b[key];
      if (deepEqual(x, y)) continue;
      if (y === undefined) fchild(removed, `f:${key}`).member = true;
      else fchild(changed, `f:${key}`).member = true;
    }
    return;
  }
  if (s.k === 'list' && s.mergeKey !== undefined && Array.isArray(b)) {
    const key = s.mergeKey;
    const av = Array.isArray(a) ? a : undefined;
    if (av === undefined) changed.member = true;
    const id = (e: Json) => `k:${JSON.stringify({ [key]: isObj(e) ? (e[key] ?? null) : null })}`;
    const olds = new Map((av ?? []).map((e) => [id(e), e]));
    for (const e of b) {
      const old = olds.get(id(e));
      olds.delete(id(e));
      if (old === undefined) {
        const c = fchild(changed, id(e));
        c.member = true;
        fAll(s.of, e, c);
      } else fDiff(s.of, old, e, fchild(changed, id(e)), fchild(removed, id(e)));
    }
    for (const gone of olds.keys()) fchild(removed, gone).member = true;
    return;
  }
  changed.member = true;
}

/** The field set a write changed, minus what the apiserver does not track (metadata, status). */
function changedFields(schema: Sch, old: JsonObj, next: JsonObj, reset: string[]) {
  const strip = (o: JsonObj): JsonObj => {
    const out = clone(o);
    delete out.kind;
    delete out.apiVersion;
    const meta = objAt(out, 'metadata');
    const kept: JsonObj = {};
    for (const key of ['labels', 'annotations']) if (meta[key] !== undefined) kept[key] = meta[key];
    if (Object.keys(kept).length > 0) out.metadata = kept;
    else delete out.metadata;
    for (const r of reset) Reflect.deleteProperty(out, r);
    return out;
  };
  const changed = fnode();
  const removed = fnode();
  fDiff(schema, strip(old), strip(next), changed, removed);
  return { changed, removed };
}

// ---------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------

interface ResourceDef {
  resource: string;
  group: string;
  version: string;
  kind: string;
  listKind: string;
  namespaced: boolean;
  schema: Sch;
  subresources: string[];
  allowUnconditionalUpdate: boolean;
  /** Field selector labels the apiserver accepts for this resource. */
  fields: Record<string, (o: JsonObj) => string>;
  /** Whether writes through the API may create/replace/patch it. */
  writable: boolean;
}

const metaFields = {
  'metadata.name': (o: JsonObj) => strAt(objAt(o, 'metadata'), 'name') ?? '',
  'metadata.namespace': (o: JsonObj) => strAt(objAt(o, 'metadata'), 'namespace') ?? '',
};

const RESOURCES: ResourceDef[] = [
  {
    resource: 'nodes',
    group: '',
    version: 'v1',
    kind: 'Node',
    listKind: 'NodeList',
    namespaced: false,
    schema: nodeSchema,
    subresources: ['status'],
    allowUnconditionalUpdate: true,
    fields: {
      'metadata.name': metaFields['metadata.name'],
      'spec.unschedulable': (o) => String(objAt(o, 'spec').unschedulable === true),
    },
    writable: true,
  },
  {
    resource: 'pods',
    group: '',
    version: 'v1',
    kind: 'Pod',
    listKind: 'PodList',
    namespaced: true,
    schema: podSchema,
    subresources: [],
    allowUnconditionalUpdate: true,
    fields: {
      ...metaFields,
      'spec.nodeName': (o) => strAt(objAt(o, 'spec'), 'nodeName') ?? '',
      'spec.restartPolicy': (o) => strAt(objAt(o, 'spec'), 'restartPolicy') ?? '',
      'spec.schedulerName': (o) => strAt(objAt(o, 'spec'), 'schedulerName') ?? '',
      'spec.serviceAccountName': (o) => strAt(objAt(o, 'spec'), 'serviceAccountName') ?? '',
      'status.phase': (o) => strAt(objAt(o, 'status'), 'phase') ?? '',
      'status.podIP': (o) => strAt(objAt(o, 'status'), 'podIP') ?? '',
      'status.nominatedNodeName': (o) => strAt(objAt(o, 'status'), 'nominatedNodeName') ?? '',
    },
    writable: false,
  },
  {
    resource: 'events',
    group: '',
    version: 'v1',
    kind: 'Event',
    listKind: 'EventList',
    namespaced: true,
    schema: eventSchema,
    subresources: [],
    allowUnconditionalUpdate: true,
    fields: {
      ...metaFields,
      ...Object.fromEntries(
        ['kind', 'namespace', 'name', 'uid', 'apiVersion', 'resourceVersion', 'fieldPath'].map(
          (f) => [
            `involvedObject.${f}`,
            (o: JsonObj) => strAt(objAt(o, 'involvedObject'), f) ?? '',
          ],
        ),
      ),
      reason: (o) => strAt(o, 'reason') ?? '',
      reportingComponent: (o) => strAt(o, 'reportingComponent') ?? '',
      source: (o) => strAt(objAt(o, 'source'), 'component') ?? '',
      type: (o) => strAt(o, 'type') ?? '',
    },
    writable: true,
  },
  {
    resource: 'leases',
    group: 'coordination.k8s.io',
    version: 'v1',
    kind: 'Lease',
    listKind: 'LeaseList',
    namespaced: true,
    schema: leaseSchema,
    subresources: [],
    allowUnconditionalUpdate: false,
    fields: { ...metaFields },
    writable: true,
  },
  {
    resource: 'namespaces',
    group: '',
    version: 'v1',
    kind: 'Namespace',
    listKind: 'NamespaceList',
    namespaced: false,
    schema: namespaceSchema,
    subresources: [],
    allowUnconditionalUpdate: true,
    fields: {
      'metadata.name': metaFields['metadata.name'],
      'status.phase': (o) => strAt(objAt(o, 'status'), 'phase') ?? '',
    },
    writable: false,
  },
  ...(
    [
      ['clusterrolebindings', 'ClusterRoleBinding', false, bindingSchema('ClusterRoleBinding')],
      ['clusterroles', 'ClusterRole', false, roleSchema('ClusterRole')],
      ['rolebindings', 'RoleBinding', true, bindingSchema('RoleBinding')],
      ['roles', 'Role', true, roleSchema('Role')],
    ] as const
  ).map(([resource, kind, namespaced, schema]): ResourceDef => ({
    resource,
    group: 'rbac.authorization.k8s.io',
    version: 'v1',
    kind,
    listKind: `${kind}List`,
    namespaced,
    schema,
    subresources: [],
    allowUnconditionalUpdate: true,
    fields: namespaced ? { ...metaFields } : { 'metadata.name': metaFields['metadata.name'] },
    // set by the tests (putRbac, useRbac), as an administrator would with kubectl
    writable: false,
  })),
];

function resourceDef(name: string): ResourceDef {
  const def = RESOURCES.find((r) => r.resource === name);
  if (def === undefined) throw new Error(`no resource ${name}`);
  return def;
}

function apiVersionOf(def: ResourceDef): string {
  return def.group === '' ? def.version : `${def.group}/${def.version}`;
}

function qualified(def: ResourceDef): string {
  return def.group === '' ? def.resource : `${def.resource}.${def.group}`;
}

const KNOWN_NAMESPACES = [
  'default',
  'kube-system',
  'kube-public',
  'kube-node-lease',
  'node-auditor',
];
const SA_NAMESPACE = 'node-auditor';
const LEASE_NAMESPACE = 'node-auditor';
const SA_USER = 'system:serviceaccount:node-auditor:node-auditor';
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_SUBDOMAIN_MSG =
  "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

const VERSION_INFO = {
  major: '1',
  minor: '26',
  gitVersion: 'v1.26.0',
  gitCommit: 'd15ef3101210b20aac2e7a044ef087f397ad58c0',
  gitTreeState: 'archive',
  buildDate: '2026-11-22T01:25:45Z',
  goVersion: 'go1.19.8',
  compiler: 'gc',
  platform: 'linux/amd64',
};

// ---------------------------------------------------------------------------------------------
// Status objects
// ---------------------------------------------------------------------------------------------

interface StatusCause {
  reason?: string;
  message?: string;
  field?: string;
}

interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

interface FieldError {
  type: 'FieldValueInvalid' | 'FieldValueRequired';
  field: string;
  /** Already formatted as Go does (strings quoted, uint64 0 as 0x0). */
  value?: string;
  detail: string;
}

function fieldErrorBody(e: FieldError): string {
  if (e.type === 'FieldValueRequired') {
    return e.detail === '' ? 'Required value' : `Required value: ${e.detail}`;
  }
  return `Invalid value: ${e.value ?? '""'}: ${e.detail}`;
}

/** A metav1.Status with Go's field order and omitempty. */
/** kube-apiserver's message for a continue token whose revision etcd compacted (storage/etcd3). */
const INCONSISTENT_CONTINUE =
  'The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.';

function failure(code: number, reason: string, message: string, details?: StatusDetails): JsonObj {
  const out: JsonObj = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure' };
  if (message !== '') out.message = message;
  if (reason !== '') out.reason = reason;
  if (details !== undefined) {
    const d: JsonObj = {};
    if (details.name !== undefined && details.name !== '') d.name = details.name;
    if (details.group !== undefined && details.group !== '') d.group = details.group;
    if (details.kind !== undefined && details.kind !== '') d.kind = details.kind;
    if (details.causes !== undefined) {
      d.causes = details.causes.map((c) => {
        const cause: JsonObj = {};
        if (c.reason !== undefined && c.reason !== '') cause.reason = c.reason;
        if (c.message !== undefined && c.message !== '') cause.message = c.message;
        if (c.field !== undefined && c.field !== '') cause.field = c.field;
        return cause;
      });
    }
    if (details.retryAfterSeconds !== undefined) d.retryAfterSeconds = details.retryAfterSeconds;
    out.details = d;
  }
  out.code = code;
  return out;
}

function notFound(def: ResourceDef, name: string): JsonObj {
  return failure(404, 'NotFound', `${qualified(def)} ${q(name)} not found`, {
    name,
    group: def.group,
    kind: def.resource,
  });
}

function invalid(kindLabel: string, group: string, kind: string, name: string, errs: FieldError[]) {
  const bodies = errs.map((e) => `${e.field}: ${fieldErrorBody(e)}`);
  const agg = bodies.length === 1 ? (bodies[0] ?? '') : `[${bodies.join(', ')}]`;
  return failure(422, 'Invalid', `${kindLabel} ${q(name)} is invalid: ${agg}`, {
    name,
    group,
    kind,
    causes: errs.map((e) => ({ reason: e.type, message: fieldErrorBody(e), field: e.field })),
  });
}

function conflict(def: ResourceDef, name: string, why: string): JsonObj {
  return failure(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(def)} ${q(name)}: ${why}`,
    {
      name,
      group: def.group,
      kind: def.resource,
    },
  );
}

function badRequest(message: string): JsonObj {
  return failure(400, 'BadRequest', message);
}

// ---------------------------------------------------------------------------------------------
// Request info, authentication, authorization
// ---------------------------------------------------------------------------------------------

interface RequestInfo {
  isResource: boolean;
  path: string;
  verb: string;
  prefix: string;
  group: string;
  version: string;
  namespace: string;
  resource: string;
  subresource: string;
  name: string;
  parts: string[];
}

const HTTP_VERBS: Record<string, string> = {
  POST: 'create',
  GET: 'get',
  HEAD: 'get',
  PUT: 'update',
  PATCH: 'patch',
  DELETE: 'delete',
};

/** A query flag as apimachinery converts it: present and not "0"/"false" is true. */
function goBool(value: string | null): boolean {
  return value !== null && value !== '0' && value.toLowerCase() !== 'false';
}

/** k8s.io/apiserver's RequestInfoFactory.NewRequestInfo. */
function requestInfo(method: string, pathname: string, query: URLSearchParams): RequestInfo {
  const info: RequestInfo = {
    isResource: false,
    path: pathname,
    verb: method.toLowerCase(),
    prefix: '',
    group: '',
    version: '',
    namespace: '',
    resource: '',
    subresource: '',
    name: '',
    parts: [],
  };
  let parts = pathname
    .replace(/^\/+|\/+$/g, '')
    .split('/')
    .map((p) => {
      try {
        return decodeURIComponent(p);
      } catch {
        return p;
      }
    });
  if (parts.length < 3 || (parts[0] !== 'api' && parts[0] !== 'apis')) return info;
  info.prefix = parts[0] ?? '';
  parts = parts.slice(1);
  if (info.prefix === 'apis') {
    if (parts.length < 3) return info;
    info.group = parts[0] ?? '';
    parts = parts.slice(1);
  }
  info.isResource = true;
  info.version = parts[0] ?? '';
  parts = parts.slice(1);
  if (parts[0] === 'watch' || parts[0] === 'proxy') {
    info.verb = parts[0];
    parts = parts.slice(1);
  } else {
    info.verb = HTTP_VERBS[method] ?? '';
  }
  if (parts[0] === 'namespaces') {
    if (parts.length > 1) {
      info.namespace = parts[1] ?? '';
      if (parts.length > 2 && parts[2] !== 'status' && parts[2] !== 'finalize')
        parts = parts.slice(2);
    }
  }
  info.parts = parts;
  if (parts.length >= 3 && info.verb !== 'proxy') info.subresource = parts[2] ?? '';
  if (parts.length >= 2) info.name = parts[1] ?? '';
  if (parts.length >= 1) info.resource = parts[0] ?? '';
  if (info.name === '' && info.verb === 'get') {
    info.verb = goBool(query.get('watch')) ? 'watch' : 'list';
    const selector = parseFieldSelector(query.get('fieldSelector') ?? '');
    const name = selector?.find((t) => t.field === 'metadata.name' && t.op === '=');
    if (name !== undefined && name.value !== '' && !/^\.\.?$|[/%]/.test(name.value)) {
      info.name = name.value;
    }
  }
  if (info.name === '' && info.verb === 'delete') info.verb = 'deletecollection';
  return info;
}

interface Who {
  id: 'sa' | 'admin' | 'node' | 'anonymous';
  user: string;
}

interface Decision {
  allowed: boolean;
  reason: string;
}

/** What a rule grants (the tables' own rules, or the Node authorizer's). */
type Grant = Pick<PolicyRule, 'apiGroups' | 'resources' | 'verbs'>;

function ruleAllows(rule: Grant, info: RequestInfo): boolean {
  const resource = info.subresource === '' ? info.resource : `${info.resource}/${info.subresource}`;
  return (
    (rule.apiGroups.includes(info.group) || rule.apiGroups.includes('*')) &&
    (rule.resources.includes(resource) || rule.resources.includes('*')) &&
    (rule.verbs.includes(info.verb) || rule.verbs.includes('*'))
  );
}

const PUBLIC_INFO_PATHS = ['/healthz', '/livez', '/readyz', '/version', '/version/'];
const DISCOVERY_PATHS = [
  '/api',
  '/api/*',
  '/apis',
  '/apis/*',
  '/openapi',
  '/openapi/*',
  ...PUBLIC_INFO_PATHS,
];

function nonResourceAllowed(paths: string[], info: RequestInfo): boolean {
  if (info.verb !== 'get') return false;
  return paths.some((p) =>
    p.endsWith('*') ? info.path.startsWith(p.slice(0, -1)) : info.path === p,
  );
}

/** RBAC for system:authenticated: system:discovery, system:basic-user, system:public-info-viewer. */
function authenticatedAllows(info: RequestInfo): boolean {
  if (!info.isResource) return nonResourceAllowed(DISCOVERY_PATHS, info);
  return (
    info.group === 'authorization.k8s.io' &&
    ['selfsubjectaccessreviews', 'selfsubjectrulesreviews'].includes(info.resource) &&
    info.verb === 'create'
  );
}

/** The rules of the Node authorizer in v1.26 (bootstrappolicy.NodeRules), the parts that matter. */
const NODE_RULES: Grant[] = [
  { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
  {
    apiGroups: ['authorization.k8s.io'],
    resources: ['subjectaccessreviews', 'localsubjectaccessreviews'],
    verbs: ['create'],
  },
  { apiGroups: [''], resources: ['services'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['create', 'get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['nodes/status'], verbs: ['update', 'patch'] },
  { apiGroups: [''], resources: ['nodes'], verbs: ['update', 'patch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'update', 'patch'] },
  {
    apiGroups: [''],
    resources: ['pods'],
    verbs: ['get', 'list', 'watch', 'create', 'delete'],
  },
  { apiGroups: [''], resources: ['pods/status'], verbs: ['update', 'patch'] },
  { apiGroups: [''], resources: ['pods/eviction'], verbs: ['create'] },
  { apiGroups: [''], resources: ['endpoints'], verbs: ['get'] },
  {
    apiGroups: ['certificates.k8s.io'],
    resources: ['certificatesigningrequests'],
    verbs: ['create', 'get', 'list', 'watch'],
  },
  {
    apiGroups: ['node.k8s.io'],
    resources: ['runtimeclasses'],
    verbs: ['get', 'list', 'watch'],
  },
];

function nodeAuthorizer(info: RequestInfo, nodeName: string): Decision {
  if (!info.isResource) return { allowed: false, reason: '' };
  if (
    info.group === '' &&
    ['secrets', 'configmaps', 'persistentvolumeclaims', 'persistentvolumes'].includes(info.resource)
  ) {
    if (!['get', 'list', 'watch'].includes(info.verb)) {
      return { allowed: false, reason: 'can only read resources of this type' };
    }
    if (info.subresource !== '') return { allowed: false, reason: 'cannot read subresource' };
    if (info.namespace === '' && info.resource !== 'persistentvolumes') {
      return { allowed: false, reason: 'can only read namespaced object of this type' };
    }
    if (info.name === '') return { allowed: false, reason: 'No Object name found' };
    return {
      allowed: false,
      reason: `no relationship found between node '${nodeName}' and this object`,
    };
  }
  if (info.group === 'coordination.k8s.io' && info.resource === 'leases') {
    if (!['get', 'create', 'update', 'patch', 'delete'].includes(info.verb)) {
      return {
        allowed: false,
        reason: 'can only get, create, update, patch, or delete a node lease',
      };
    }
    if (info.namespace !== 'kube-node-lease') {
      return {
        allowed: false,
        reason: 'can only access leases in the "kube-node-lease" system namespace',
      };
    }
    return { allowed: true, reason: '' };
  }
  return { allowed: NODE_RULES.some((r) => ruleAllows(r, info)), reason: '' };
}

function saAuthorizer(info: RequestInfo, features: ReadonlySet<Feature>): Decision {
  if (!info.isResource) return { allowed: false, reason: '' };
  const allows = (table: readonly PolicyRule[]) =>
    grantedRules(table, features).some((r) => ruleAllows(r, info));
  const allowed =
    allows(CLUSTER_RULES) ||
    (info.namespace === EVENT_NAMESPACE && allows(EVENT_RULES)) ||
    (info.namespace === LEASE_NAMESPACE && allows(LEASE_RULES));
  return { allowed, reason: '' };
}

/** The RBAC objects the anonymous identity is authorized from. */
interface RbacState {
  clusterRoleBindings: JsonObj[];
  clusterRoles: JsonObj[];
  roleBindings: JsonObj[];
  roles: JsonObj[];
}

const RBAC_GROUP = 'rbac.authorization.k8s.io';

function subjectsOf(binding: JsonObj): JsonObj[] {
  const subjects = binding.subjects;
  return Array.isArray(subjects) ? subjects.filter(isObj) : [];
}

function stringsAt(o: JsonObj, key: string): string[] {
  const v = o[key];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** RBAC's rule matching (plugin/pkg/auth/authorizer/rbac/rbac.go RuleAllows). */
function policyRuleAllows(rule: JsonObj, info: RequestInfo): boolean {
  const verbs = stringsAt(rule, 'verbs');
  if (!verbs.includes(info.verb) && !verbs.includes('*')) return false;
  if (!info.isResource) {
    return stringsAt(rule, 'nonResourceURLs').some(
      (u) =>
        u === '*' || u === info.path || (u.endsWith('*') && info.path.startsWith(u.slice(0, -1))),
    );
  }
  const groups = stringsAt(rule, 'apiGroups');
  const resources = stringsAt(rule, 'resources');
  const names = stringsAt(rule, 'resourceNames');
  const resource = info.subresource === '' ? info.resource : `${info.resource}/${info.subresource}`;
  return (
    (groups.includes('*') || groups.includes(info.group)) &&
    (resources.includes('*') || resources.includes(resource)) &&
    (names.length === 0 || names.includes(info.name))
  );
}

/** What RBAC allows system:anonymous (a member of system:unauthenticated) to do. */
function anonymousRbacAllows(rbac: RbacState, info: RequestInfo): boolean {
  const isAnonymous = (subject: JsonObj) =>
    (subject.kind === 'User' && subject.name === 'system:anonymous') ||
    (subject.kind === 'Group' && subject.name === 'system:unauthenticated');
  const rulesOf = (ref: JsonObj, namespace: string): JsonObj[] => {
    const source =
      ref.kind === 'ClusterRole'
        ? rbac.clusterRoles
        : rbac.roles.filter((r) => strAt(objAt(r, 'metadata'), 'namespace') === namespace);
    const role = source.find((r) => strAt(objAt(r, 'metadata'), 'name') === ref.name);
    const rules = role?.rules;
    return Array.isArray(rules) ? rules.filter(isObj) : [];
  };
  const granted = (binding: JsonObj, namespace: string) =>
    subjectsOf(binding).some(isAnonymous) &&
    rulesOf(objAt(binding, 'roleRef'), namespace).some((rule) => policyRuleAllows(rule, info));
  if (rbac.clusterRoleBindings.some((b) => granted(b, ''))) return true;
  // a RoleBinding grants only within its namespace, and never non-resource URLs
  if (!info.isResource || info.namespace === '') return false;
  return rbac.roleBindings.some(
    (b) =>
      strAt(objAt(b, 'metadata'), 'namespace') === info.namespace && granted(b, info.namespace),
  );
}

function authorize(
  who: Who,
  info: RequestInfo,
  nodeName: string,
  rbac: RbacState,
  saFeatures: ReadonlySet<Feature>,
): Decision {
  if (who.id === 'admin') return { allowed: true, reason: '' };
  if (who.id === 'anonymous') return { allowed: anonymousRbacAllows(rbac, info), reason: '' };
  if (authenticatedAllows(info)) return { allowed: true, reason: '' };
  return who.id === 'node' ? nodeAuthorizer(info, nodeName) : saAuthorizer(info, saFeatures);
}

function forbidden(who: Who, info: RequestInfo, reason: string): JsonObj {
  let msg: string;
  if (!info.isResource) {
    msg = `User ${q(who.user)} cannot ${info.verb} path ${q(info.path)}`;
  } else {
    const resource =
      info.subresource === '' ? info.resource : `${info.resource}/${info.subresource}`;
    msg =
      info.namespace !== ''
        ? `User ${q(who.user)} cannot ${info.verb} resource ${q(resource)} in API group ${q(info.group)} in the namespace ${q(info.namespace)}`
        : `User ${q(who.user)} cannot ${info.verb} resource ${q(resource)} in API group ${q(info.group)} at the cluster scope`;
  }
  if (reason !== '') msg = `${msg}: ${reason}`;
  if (!info.isResource) return failure(403, 'Forbidden', `forbidden: ${msg}`, {});
  const gr = info.group === '' ? info.resource : `${info.resource}.${info.group}`;
  const head = info.name === '' ? `${gr} is forbidden` : `${gr} ${q(info.name)} is forbidden`;
  return failure(403, 'Forbidden', `${head}: ${msg}`, {
    name: info.name,
    group: info.group,
    kind: info.resource,
  });
}

// ---------------------------------------------------------------------------------------------
// Selectors
// ---------------------------------------------------------------------------------------------

interface FieldTerm {
  field: string;
  op: '=' | '!=';
  value: string;
}

function parseFieldSelector(s: string): FieldTerm[] | undefined {
  if (s.trim() === '') return [];
  const terms: FieldTerm[] = [];
  for (const part of s.split(',')) {
    const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(part.trim());
    if (m === null) return undefined;
    terms.push({
      field: (m[1] ?? '').trim(),
      op: m[2] === '!=' ? '!=' : '=',
      value: (m[3] ?? '').trim(),
    });
  }
  return terms;
}

type LabelTerm =
  | { key: string; op: 'eq' | 'neq'; values: string[] }
  | { key: string; op: 'in' | 'notin'; values: string[] }
  | { key: string; op: 'exists' | 'notexists'; values: string[] };

function parseLabelSelector(s: string): LabelTerm[] | undefined {
  const terms: LabelTerm[] = [];
  const parts: string[] = [];
  let depth = 0;
  let cur = '';
  for (const c of s) {
    if (c === '(') depth++;
    if (c === ')') depth--;
    if (c === ',' && depth === 0) {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  for (const raw of parts) {
    const part = raw.trim();
    if (part === '') continue;
    let m = /^(\S+)\s+(in|notin)\s*\(([^)]*)\)$/.exec(part);
    if (m !== null) {
      const values = (m[3] ?? '').split(',').map((v) => v.trim());
      terms.push({ key: m[1] ?? '', op: m[2] === 'in' ? 'in' : 'notin', values });
      continue;
    }
    m = /^([^=!\s]+)\s*(==|=|!=)\s*(\S*)$/.exec(part);
    if (m !== null) {
      terms.push({ key: m[1] ?? '', op: m[2] === '!=' ? 'neq' : 'eq', values: [m[3] ?? ''] });
      continue;
    }
    m = /^(!?)([^=!\s()]+)$/.exec(part);
    if (m !== null) {
      terms.push({ key: m[2] ?? '', op: m[1] === '!' ? 'notexists' : 'exists', values: [] });
      continue;
    }
    return undefined;
  }
  return terms;
}

function labelsMatch(terms: LabelTerm[], o: JsonObj): boolean {
  const labels = objAt(objAt(o, 'metadata'), 'labels');
  return terms.every((t) => {
    const v = strAt(labels, t.key);
    switch (t.op) {
      case 'eq':
        return v !== undefined && v === t.values[0];
      case 'neq':
        return v !== t.values[0];
      case 'in':
        return v !== undefined && t.values.includes(v);
      case 'notin':
        return v === undefined || !t.values.includes(v);
      case 'exists':
        return v !== undefined;
      case 'notexists':
        return v === undefined;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

interface Change {
  rv: number;
  def: ResourceDef;
  type: EventType;
  old: JsonObj | undefined;
  obj: JsonObj;
}

interface Watcher {
  def: ResourceDef;
  namespace: string;
  fields: FieldTerm[];
  labels: LabelTerm[];
  send(type: string, obj: JsonObj): void;
  /** Ends an open watch with ERROR 410 Expired (absent for a list's matcher). */
  expire?(): void;
}

interface PendingFailure {
  left: number;
  status: 429 | 500 | 503;
  retryAfterSeconds: number;
  match: ((method: string, path: string) => boolean) | undefined;
  plainText: boolean;
}

const MAX_BODY = 3 * 1024 * 1024;
const BOOKMARK_INTERVAL_MS = 1000;
const MAX_WATCH_SECONDS = 1800;

function readFixtureBody(file: string): Json | undefined {
  try {
    const text = readFileSync(new URL(`../fixtures/kube-api/${file}`, import.meta.url), 'utf8');
    const doc = JSON.parse(text) as { response?: { body?: Json } };
    return doc.response?.body;
  } catch {
    return undefined;
  }
}

function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
}

function goJsonError(text: string): string {
  if (text.trim() === '') return 'unexpected end of JSON input';
  try {
    JSON.parse(text);
    return '';
  } catch (error) {
    const message = error instanceof Error ? error.message : '';
    if (/end of JSON input|Unterminated/i.test(message)) return 'unexpected end of JSON input';
    const at = /position (\d+)/.exec(message);
    const c = at === null ? text.trim()[0] : text[Number(at[1])];
    return `invalid character '${c ?? ''}' looking for beginning of value`;
  }
}

class Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly at: number;
  readonly url: URL;
  readonly rawBody: string;
  readonly record: RecordedRequest;
  readonly headers = new Map<string, string[]>();
  who: Who = { id: 'anonymous', user: 'system:anonymous' };
  info: RequestInfo;
  pf: [string, string] | undefined;
  done = false;

  constructor(req: IncomingMessage, res: ServerResponse, rawBody: string, at: number) {
    this.req = req;
    this.res = res;
    this.at = at;
    this.rawBody = rawBody;
    this.url = new URL(req.url ?? '/', 'https://127.0.0.1');
    this.info = requestInfo(req.method ?? 'GET', this.url.pathname, this.url.searchParams);
    const contentType = req.headers['content-type'];
    this.record = {
      method: req.method ?? 'GET',
      path: this.url.pathname,
      query: this.url.searchParams,
      identity: 'anonymous',
      status: 0,
      at,
    };
    if (contentType !== undefined) this.record.contentType = contentType;
    if (req.headers.authorization !== undefined)
      this.record.authorization = req.headers.authorization;
    if (req.headers.cookie !== undefined) this.record.cookie = req.headers.cookie;
    if (rawBody !== '') {
      const type = mediaType(contentType);
      try {
        this.record.body = type.endsWith('yaml') ? loadYaml(rawBody) : JSON.parse(rawBody);
      } catch {
        this.record.body = rawBody;
      }
    }
  }

  header(name: string, value: string): void {
    const list = this.headers.get(name) ?? [];
    list.push(value);
    this.headers.set(name, list);
  }

  private writeHead(status: number, contentType: string): void {
    this.res.statusCode = status;
    const all = new Map(this.headers);
    all.set('Cache-Control', ['no-cache, private']);
    all.set('Content-Type', [contentType]);
    if (this.pf !== undefined) {
      all.set('X-Kubernetes-Pf-Flowschema-Uid', [this.pf[0]]);
      all.set('X-Kubernetes-Pf-Prioritylevel-Uid', [this.pf[1]]);
    }
    // Go writes header fields sorted by name (Date and the length come last)
    for (const name of [...all.keys()].sort()) {
      const values = all.get(name);
      if (values !== undefined)
        this.res.setHeader(name, values.length === 1 ? (values[0] ?? '') : values);
    }
    this.record.status = status;
  }

  /** A complete response; bodies over 2 KiB go out chunked, as Go's net/http does. */
  send(status: number, body: string, contentType = 'application/json'): void {
    if (this.done) return;
    this.done = true;
    this.writeHead(status, contentType);
    if (this.res.destroyed) return;
    if (Buffer.byteLength(body) <= 2048) {
      this.res.setHeader('Content-Length', Buffer.byteLength(body));
      this.res.end(body);
    } else {
      this.res.write(body);
      this.res.end();
    }
  }

  json(status: number, obj: Json): void {
    this.send(status, `${JSON.stringify(obj)}\n`);
  }

  status(obj: JsonObj): void {
    this.json(typeof obj.code === 'number' ? obj.code : 500, obj);
  }

  text(status: number, text: string): void {
    this.header('X-Content-Type-Options', 'nosniff');
    this.send(status, text, 'text/plain; charset=utf-8');
  }

  /** Starts a chunked stream (a watch). */
  stream(): void {
    this.done = true;
    this.writeHead(200, 'application/json');
    if (!this.res.destroyed) this.res.flushHeaders();
  }
}

class FakeKubeApiServer implements FakeKubeApi {
  url = '';
  host = '127.0.0.1';
  port = 0;
  caPem = '';
  tokens: { sa: string; admin: string; node: string };
  users: { sa: string; admin: string; node: string };
  requests: RecordedRequest[] = [];

  private keyPem = '';
  private server: https.Server | undefined;
  private readonly sockets = new Set<Socket>();
  private readonly streams = new Set<ServerResponse>();
  private readonly nodeName: string;
  private readonly anonymousAuth: boolean;
  private readonly saFeatures: ReadonlySet<Feature>;
  private version: Record<string, string> = { ...VERSION_INFO };
  private rv = 100;
  private compactedBelow = 0;
  private latencyMs = 0;
  private podIps = 0;
  private readonly failures: PendingFailure[] = [];
  private readonly store = new Map<ResourceDef, Map<string, JsonObj>>();
  private history: Change[] = [];
  private readonly watchers = new Set<Watcher>();
  private readonly pf = {
    exempt: [randomUUID(), randomUUID()] as [string, string],
    probes: ['', ''] as [string, string],
    globalDefault: [randomUUID(), randomUUID()] as [string, string],
    nodeHigh: [randomUUID(), randomUUID()] as [string, string],
    systemNodes: [randomUUID(), randomUUID()] as [string, string],
    serviceAccounts: [randomUUID(), randomUUID()] as [string, string],
  };
  private metricsApi = false;
  private readonly fixtures = {
    api: readFixtureBody('admin-api-200.json'),
    apis: readFixtureBody('admin-apis-200.json'),
    readyzVerbose: readFixtureBody('anonymous-readyz-verbose-200.json'),
  };

  constructor(options: FakeKubeApiOptions) {
    const nodes = options.nodes ?? ['k1-node01'];
    this.nodeName = nodes[0] ?? 'k1-node01';
    this.pf.probes = [randomUUID(), this.pf.exempt[1]];
    const token = () => randomBytes(24).toString('base64url');
    this.tokens = { sa: token(), admin: token(), node: token() };
    this.users = { sa: SA_USER, admin: 'admin', node: `system:node:${this.nodeName}` };
    for (const def of RESOURCES) this.store.set(def, new Map());
    for (const ns of KNOWN_NAMESPACES) this.ensureNamespace(ns);
    for (const name of nodes) this.addNode(name);
    this.anonymousAuth = options.anonymousAuth ?? true;
    const features =
      options.rbacFeatures ??
      (Object.keys(FEATURES) as Feature[]).filter((f) => !REMEDIATION_FEATURES.includes(f));
    this.saFeatures = new Set([
      ...features,
      ...(options.remediationRbac === true ? REMEDIATION_FEATURES : []),
    ]);
    this.seedRbac();
  }

  async start(): Promise<void> {
    const { key, cert } = await selfSignedCertificate();
    this.keyPem = key;
    this.caPem = cert;
    await this.listen(0);
  }

  // ----- lifecycle -------------------------------------------------------------------------

  private async listen(port: number): Promise<void> {
    const server = https.createServer({ key: this.keyPem, cert: this.caPem }, (req, res) => {
      this.onRequest(req, res).catch((error: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          res.statusCode = 500;
          res.end(String(error));
        }
      });
    });
    server.keepAliveTimeout = 90_000;
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.on('close', () => this.sockets.delete(socket));
    });
    server.on('clientError', (_error, socket) => socket.destroy());
    for (let attempt = 0; ; attempt++) {
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen(port, '127.0.0.1', () => {
            server.off('error', reject);
            resolve();
          });
        });
        break;
      } catch (error) {
        if (attempt >= 50 || (error as { code?: string }).code !== 'EADDRINUSE') throw error;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    this.server = server;
    const address = server.address();
    if (address !== null && typeof address === 'object') this.port = address.port;
    this.url = `https://${this.host}:${String(this.port)}`;
  }

  async goDown(): Promise<void> {
    const server = this.server;
    if (server === undefined) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) =>
      server.close(() => {
        resolve();
      }),
    );
    for (const socket of this.sockets) {
      try {
        socket.resetAndDestroy();
      } catch {
        socket.destroy();
      }
    }
    this.sockets.clear();
    await closed;
  }

  async comeBack(): Promise<void> {
    if (this.server !== undefined) return;
    await this.listen(this.port);
  }

  async close(): Promise<void> {
    for (const res of this.streams) res.end();
    await this.goDown();
  }

  setLatency(ms: number): void {
    this.latencyMs = ms;
  }

  failNext(count: number, status: 429 | 500 | 503, opts: FailNextOptions = {}): void {
    this.failures.push({
      left: count,
      status,
      retryAfterSeconds: opts.retryAfterSeconds ?? 1,
      match: opts.match,
      plainText: opts.plainText === true,
    });
  }

  compactAll(): void {
    this.rv += 1;
    this.compactedBelow = this.rv;
    this.history = [];
  }

  expireWatches(): number {
    this.compactAll();
    let ended = 0;
    for (const w of [...this.watchers]) {
      if (w.expire === undefined) continue;
      w.expire();
      ended++;
    }
    return ended;
  }

  resourceVersion(): string {
    return String(this.rv);
  }

  // ----- kubeconfig ------------------------------------------------------------------------

  async writeKubeconfig(file: string, identity: IdentityName): Promise<void> {
    const ca = Buffer.from(this.caPem).toString('base64');
    const lines = [
      'apiVersion: v1',
      'kind: Config',
      'clusters:',
      '- name: fake-kube-api',
      '  cluster:',
      `    server: ${q(this.url)}`,
      `    certificate-authority-data: ${ca}`,
      'users:',
      `- name: ${identity}`,
      '  user:',
      `    token: ${q(this.tokens[identity])}`,
      'contexts:',
      '- name: fake-kube-api',
      '  context:',
      '    cluster: fake-kube-api',
      `    user: ${identity}`,
      ...(identity === 'sa' ? [`    namespace: ${SA_NAMESPACE}`] : []),
      'current-context: fake-kube-api',
      'preferences: {}',
      '',
    ];
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, lines.join('\n'), { mode: 0o600 });
  }

  async writeServiceAccountDir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'token'), this.tokens.sa);
    await writeFile(path.join(dir, 'ca.crt'), this.caPem);
    await writeFile(path.join(dir, 'namespace'), SA_NAMESPACE);
  }

  // ----- state -----------------------------------------------------------------------------

  private objects(def: ResourceDef): Map<string, JsonObj> {
    const m = this.store.get(def);
    if (m === undefined) throw new Error(`no store for ${def.resource}`);
    return m;
  }

  private key(def: ResourceDef, namespace: string, name: string): string {
    return def.namespaced ? `${namespace}/${name}` : name;
  }

  private nextRv(): string {
    this.rv += 1;
    return String(this.rv);
  }

  private commit(def: ResourceDef, type: EventType, obj: JsonObj, old: JsonObj | undefined): void {
    const meta = objAt(obj, 'metadata');
    const key = this.key(def, strAt(meta, 'namespace') ?? '', strAt(meta, 'name') ?? '');
    if (type === 'DELETED') this.objects(def).delete(key);
    else this.objects(def).set(key, obj);
    const change: Change = { rv: this.rv, def, type, old, obj: clone(obj) };
    this.history.push(change);
    if (this.history.length > 10_000) this.history.splice(0, this.history.length - 10_000);
    for (const w of this.watchers) this.deliver(w, change);
  }

  private matches(w: Watcher, o: JsonObj): boolean {
    const meta = objAt(o, 'metadata');
    if (w.namespace !== '' && strAt(meta, 'namespace') !== w.namespace) return false;
    for (const t of w.fields) {
      const get = w.def.fields[t.field];
      const v = get === undefined ? '' : get(o);
      if (t.op === '=' ? v !== t.value : v === t.value) return false;
    }
    return labelsMatch(w.labels, o);
  }

  private deliver(w: Watcher, c: Change): void {
    if (c.def !== w.def) return;
    const now = this.matches(w, c.obj);
    const before = c.old !== undefined && this.matches(w, c.old);
    if (c.type === 'ADDED') {
      if (now) w.send('ADDED', c.obj);
    } else if (c.type === 'DELETED') {
      if (now) w.send('DELETED', c.obj);
    } else if (now && before) w.send('MODIFIED', c.obj);
    else if (now) w.send('ADDED', c.obj);
    else if (before) w.send('DELETED', c.obj);
  }

  private normalize(def: ResourceDef, obj: Json): JsonObj {
    const decoded = decodeObject(def.schema, obj);
    if ('error' in decoded) throw new Error(`${def.kind}: ${decoded.error}`);
    return decoded.obj;
  }

  private ensureNamespace(name: string): void {
    const def = resourceDef('namespaces');
    if (this.objects(def).has(name)) return;
    const ns = this.normalize(def, {
      kind: 'Namespace',
      apiVersion: 'v1',
      metadata: {
        name,
        uid: randomUUID(),
        resourceVersion: this.nextRv(),
        creationTimestamp: nowTime(),
        labels: { 'kubernetes.io/metadata.name': name },
      },
      spec: { finalizers: ['kubernetes'] },
      status: { phase: 'Active' },
    });
    this.commit(def, 'ADDED', ns, undefined);
  }

  addNode(name: string): KubeNode {
    const def = resourceDef('nodes');
    const index = this.objects(def).size;
    const created = nowTime();
    const node = this.normalize(def, {
      kind: 'Node',
      apiVersion: 'v1',
      metadata: {
        name,
        uid: randomUUID(),
        resourceVersion: this.nextRv(),
        creationTimestamp: created,
      },
      spec: { taints: [{ key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' }] },
      status: {
        conditions: [
          {
            type: 'Ready',
            status: 'True',
            lastHeartbeatTime: created,
            lastTransitionTime: created,
            reason: 'KubeletReady',
            message: 'kubelet is posting ready status',
          },
        ],
        addresses: [{ type: 'InternalIP', address: `127.0.0.${String((index % 254) + 1)}` }],
        nodeInfo: { kubeletVersion: 'v1.26.0' },
      },
    });
    this.commit(def, 'ADDED', node, undefined);
    return clone(node) as unknown as KubeNode;
  }

  deleteNode(name: string): void {
    const def = resourceDef('nodes');
    const node = this.objects(def).get(name);
    if (node === undefined) throw new Error(`no node ${name}`);
    const gone = clone(node);
    gone.metadata = { ...objAt(gone, 'metadata'), resourceVersion: this.nextRv() };
    this.commit(def, 'DELETED', gone, node);
  }

  getNode(name: string): KubeNode {
    const node = this.objects(resourceDef('nodes')).get(name);
    if (node === undefined) throw new Error(`no node ${name}`);
    return clone(node) as unknown as KubeNode;
  }

  updateNode(name: string, mutate: (node: KubeNode) => void): void {
    const def = resourceDef('nodes');
    const old = this.objects(def).get(name);
    if (old === undefined) throw new Error(`no node ${name}`);
    const copy = clone(old) as unknown as KubeNode;
    mutate(copy);
    const next = this.normalize(def, copy as unknown as Json);
    next.metadata = { ...objAt(next, 'metadata'), name, resourceVersion: this.nextRv() };
    this.commit(def, 'MODIFIED', this.normalize(def, next), old);
  }

  setNodeReady(name: string, ready: boolean): void {
    this.updateNode(name, (node) => {
      const now = nowTime();
      const conditions = node.status.conditions ?? [];
      let cond = conditions.find((c) => c.type === 'Ready');
      if (cond === undefined) {
        cond = { type: 'Ready', status: 'Unknown' };
        conditions.push(cond);
      }
      const status = ready ? 'True' : 'False';
      if (cond.status !== status) cond.lastTransitionTime = now;
      cond.status = status;
      cond.lastHeartbeatTime = now;
      cond.reason = ready ? 'KubeletReady' : 'KubeletNotReady';
      cond.message = ready
        ? 'kubelet is posting ready status'
        : 'container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not initialized';
      node.status.conditions = conditions;
    });
  }

  addPod(input: AddPodInput): KubePod {
    const def = resourceDef('pods');
    this.ensureNamespace(input.namespace);
    const node = this.objects(resourceDef('nodes')).get(input.nodeName);
    const hostIP =
      (objAt(node ?? {}, 'status').addresses as JsonObj[] | undefined)?.find(
        (a) => a.type === 'InternalIP',
      )?.address ?? '127.0.0.1';
    this.podIps += 1;
    const podIP = `10.244.${String(Math.floor(this.podIps / 250) % 250)}.${String((this.podIps % 250) + 2)}`;
    const created = nowTime();
    const containers = input.containers ?? [{ name: input.name }];
    const hex = () => randomBytes(32).toString('hex');
    const pod = this.normalize(def, {
      kind: 'Pod',
      apiVersion: 'v1',
      metadata: {
        name: input.name,
        namespace: input.namespace,
        uid: input.uid ?? randomUUID(),
        resourceVersion: this.nextRv(),
        creationTimestamp: created,
        ...(input.labels === undefined ? {} : { labels: input.labels }),
        ...(input.annotations === undefined ? {} : { annotations: input.annotations }),
      },
      spec: {
        containers: containers.map((c) => ({
          name: c.name,
          image: c.image ?? 'docker.io/library/busybox:1.36',
          resources: {},
          terminationMessagePath: '/dev/termination-log',
          terminationMessagePolicy: 'File',
          imagePullPolicy: 'IfNotPresent',
        })),
        restartPolicy: 'Always',
        terminationGracePeriodSeconds: 30,
        dnsPolicy: 'ClusterFirst',
        serviceAccountName: 'default',
        serviceAccount: 'default',
        nodeName: input.nodeName,
        securityContext: {},
        schedulerName: 'default-scheduler',
        tolerations: [
          {
            key: 'node.kubernetes.io/not-ready',
            operator: 'Exists',
            effect: 'NoExecute',
            tolerationSeconds: 300,
          },
          {
            key: 'node.kubernetes.io/unreachable',
            operator: 'Exists',
            effect: 'NoExecute',
            tolerationSeconds: 300,
          },
        ],
        priority: 0,
        enableServiceLinks: true,
        preemptionPolicy: 'PreemptLowerPriority',
      },
      status: {
        phase: 'Running',
        conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({
          type,
          status: 'True',
          lastProbeTime: null,
          lastTransitionTime: created,
        })),
        hostIP,
        podIP,
        podIPs: [{ ip: podIP }],
        startTime: created,
        containerStatuses: containers.map((c) => ({
          name: c.name,
          state: { running: { startedAt: created } },
          lastState: {},
          ready: true,
          restartCount: 0,
          image: c.image ?? 'docker.io/library/busybox:1.36',
          imageID: `docker.io/library/busybox@sha256:${hex()}`,
          containerID: c.containerID ?? `containerd://${hex()}`,
          started: true,
        })),
        qosClass: 'BestEffort',
      },
    });
    this.commit(def, 'ADDED', pod, undefined);
    return clone(pod) as unknown as KubePod;
  }

  deletePod(namespace: string, name: string): void {
    const def = resourceDef('pods');
    const pod = this.objects(def).get(`${namespace}/${name}`);
    if (pod === undefined) throw new Error(`no pod ${namespace}/${name}`);
    const gone = clone(pod);
    gone.metadata = { ...objAt(gone, 'metadata'), resourceVersion: this.nextRv() };
    this.commit(def, 'DELETED', gone, pod);
  }

  pods(): KubePod[] {
    return [...this.objects(resourceDef('pods')).values()].map(
      (p) => clone(p) as unknown as KubePod,
    );
  }

  events(): KubeEvent[] {
    return [...this.objects(resourceDef('events')).values()].map(
      (e) => clone(e) as unknown as KubeEvent,
    );
  }

  deleteEvent(namespace: string, name: string): void {
    const def = resourceDef('events');
    const event = this.objects(def).get(`${namespace}/${name}`);
    if (event === undefined) throw new Error(`no event ${namespace}/${name}`);
    const gone = clone(event);
    gone.metadata = { ...objAt(gone, 'metadata'), resourceVersion: this.nextRv() };
    this.commit(def, 'DELETED', gone, event);
  }

  getLease(namespace: string, name: string): KubeLease | undefined {
    const lease = this.objects(resourceDef('leases')).get(`${namespace}/${name}`);
    return lease === undefined ? undefined : (clone(lease) as unknown as KubeLease);
  }

  // ----- HTTP ------------------------------------------------------------------------------

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    res.on('error', () => undefined);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    }
    if (this.latencyMs > 0) await new Promise((r) => setTimeout(r, this.latencyMs));
    const ex = new Exchange(req, res, Buffer.concat(chunks).toString('utf8'), at);
    this.requests.push(ex.record);
    ex.header('Audit-Id', randomUUID());
    this.handle(ex, size);
    if (!ex.done) ex.text(404, '404 page not found\n');
  }

  private authenticate(ex: Exchange): boolean {
    const header = ex.req.headers.authorization;
    if (header === undefined) return this.anonymous(ex);
    const parts = header.split(' ');
    if (parts.length < 2 || parts[0]?.toLowerCase() !== 'bearer' || parts[1] === '')
      return this.anonymous(ex);
    const token = parts[1];
    const id = (['sa', 'admin', 'node'] as const).find((k) => this.tokens[k] === token);
    if (id === undefined) {
      ex.record.identity = 'invalid';
      ex.status(failure(401, 'Unauthorized', 'Unauthorized'));
      return false;
    }
    ex.who = { id, user: this.users[id] };
    ex.record.identity = id;
    return true;
  }

  /** No credentials: system:anonymous, or 401 with --anonymous-auth=false (anonymousoff-*-401). */
  private anonymous(ex: Exchange): boolean {
    if (this.anonymousAuth) return true;
    ex.status(failure(401, 'Unauthorized', 'Unauthorized'));
    return false;
  }

  private rbacState(): RbacState {
    const all = (resource: string) => [...this.objects(resourceDef(resource)).values()];
    return {
      clusterRoleBindings: all('clusterrolebindings'),
      clusterRoles: all('clusterroles'),
      roleBindings: all('rolebindings'),
      roles: all('roles'),
    };
  }

  setVersion(gitVersion: string): void {
    const [, major = '', minor = ''] = /^v(\d+)\.(\d+)/.exec(gitVersion) ?? [];
    this.version = { ...VERSION_INFO, major, minor, gitVersion };
  }

  registerMetricsApi(): void {
    this.metricsApi = true;
  }

  useRbac(variant: RbacVariant): void {
    const def = resourceDef('clusterrolebindings');
    for (const old of [...this.objects(def).values()]) this.removeRbac(def, old);
    const list = readFixtureBody(RBAC_FIXTURES[variant]);
    const items = isObj(list) && Array.isArray(list.items) ? list.items.filter(isObj) : [];
    for (const item of items)
      this.storeRbac(def, { kind: def.kind, apiVersion: 'rbac.authorization.k8s.io/v1', ...item });
  }

  putRbac(object: KubeObject): void {
    const def = RESOURCES.find((r) => r.group === RBAC_GROUP && r.kind === object.kind);
    if (def === undefined) throw new Error(`not an RBAC kind: ${String(object.kind)}`);
    this.storeRbac(def, object as unknown as JsonObj);
  }

  deleteRbac(kind: string, namespace: string, name: string): void {
    const def = RESOURCES.find((r) => r.group === RBAC_GROUP && r.kind === kind);
    const old =
      def === undefined ? undefined : this.objects(def).get(this.key(def, namespace, name));
    if (def !== undefined && old !== undefined) this.removeRbac(def, old);
  }

  private storeRbac(def: ResourceDef, object: JsonObj): void {
    const meta = objAt(object, 'metadata');
    const namespace = def.namespaced ? (strAt(meta, 'namespace') ?? 'default') : undefined;
    const key = this.key(def, namespace ?? '', strAt(meta, 'name') ?? '');
    const old = this.objects(def).get(key);
    const normalized = this.normalize(def, {
      ...object,
      kind: def.kind,
      apiVersion: 'rbac.authorization.k8s.io/v1',
      metadata: {
        ...meta,
        ...(namespace === undefined ? {} : { namespace }),
        uid: strAt(objAt(old ?? {}, 'metadata'), 'uid') ?? strAt(meta, 'uid') ?? randomUUID(),
        resourceVersion: this.nextRv(),
        creationTimestamp: strAt(meta, 'creationTimestamp') ?? nowTime(),
      },
    });
    this.commit(def, old === undefined ? 'ADDED' : 'MODIFIED', normalized, old);
  }

  private removeRbac(def: ResourceDef, old: JsonObj): void {
    const meta = objAt(old, 'metadata');
    this.objects(def).delete(
      this.key(def, strAt(meta, 'namespace') ?? '', strAt(meta, 'name') ?? ''),
    );
  }

  private seedRbac(): void {
    this.useRbac('default');
    const roles = readFixtureBody('sa-clusterroles-200.json');
    const def = resourceDef('clusterroles');
    const items = isObj(roles) && Array.isArray(roles.items) ? roles.items.filter(isObj) : [];
    for (const item of items) {
      // the recording's own ClusterRole is not part of a fresh cluster
      if (strAt(objAt(item, 'metadata'), 'name') === 'node-auditor') continue;
      this.storeRbac(def, item);
    }
  }

  private flowSchema(ex: Exchange): [string, string] {
    const { who, info } = ex;
    if (who.id === 'admin') return this.pf.exempt;
    if (
      !info.isResource &&
      ['/healthz', '/livez', '/readyz'].some((p) => info.path.startsWith(p))
    ) {
      return this.pf.probes;
    }
    if (who.id === 'node') {
      return info.resource === 'nodes' || info.resource === 'leases'
        ? this.pf.nodeHigh
        : this.pf.systemNodes;
    }
    if (who.id === 'sa') return this.pf.serviceAccounts;
    return this.pf.globalDefault;
  }

  private injectedFailure(ex: Exchange): boolean {
    const method = ex.record.method;
    const path = ex.url.pathname;
    const f = this.failures.find(
      (x) => x.left > 0 && (x.match === undefined || x.match(method, path)),
    );
    if (f === undefined) return false;
    f.left -= 1;
    if (f.left <= 0) this.failures.splice(this.failures.indexOf(f), 1);
    if (f.status !== 500) ex.header('Retry-After', String(f.retryAfterSeconds));
    if (f.status === 429) {
      if (f.plainText) {
        ex.text(429, 'Too many requests, please try again later.\n');
      } else {
        ex.status(
          failure(429, 'TooManyRequests', 'Too many requests, please try again later.', {
            retryAfterSeconds: f.retryAfterSeconds,
          }),
        );
      }
    } else if (f.status === 500) {
      const cause = 'etcdserver: request timed out';
      ex.status(
        failure(500, 'InternalError', `Internal error occurred: ${cause}`, {
          causes: [{ message: cause }],
        }),
      );
    } else {
      ex.status(
        failure(503, 'ServiceUnavailable', 'apiserver is shutting down', {
          retryAfterSeconds: f.retryAfterSeconds,
        }),
      );
    }
    return true;
  }

  private handle(ex: Exchange, bodySize: number): void {
    if (!this.authenticate(ex)) return;
    ex.pf = this.flowSchema(ex);
    if (this.injectedFailure(ex)) return;
    if (bodySize > MAX_BODY) {
      ex.status(
        failure(
          413,
          'RequestEntityTooLarge',
          `Request entity too large: limit is ${String(MAX_BODY)}`,
        ),
      );
      return;
    }
    const info = ex.info;
    const decision = authorize(ex.who, info, this.nodeName, this.rbacState(), this.saFeatures);
    if (!decision.allowed) {
      ex.header('X-Content-Type-Options', 'nosniff');
      ex.status(forbidden(ex.who, info, decision.reason));
      return;
    }
    if (!info.isResource) {
      this.nonResource(ex);
      return;
    }
    this.resourceRequest(ex);
  }

  private nonResource(ex: Exchange): void {
    const p = ex.info.path;
    if (ex.info.verb !== 'get') return;
    if (
      p === '/healthz' ||
      p === '/livez' ||
      p === '/readyz' ||
      /^\/(healthz|livez|readyz)\/[^/]+$/.test(p)
    ) {
      if (
        p === '/readyz' &&
        ex.url.searchParams.has('verbose') &&
        typeof this.fixtures.readyzVerbose === 'string'
      ) {
        ex.text(200, this.fixtures.readyzVerbose);
      } else ex.text(200, 'ok');
      return;
    }
    if (p === '/version' || p === '/version/') {
      ex.send(200, JSON.stringify(this.version, null, 2));
      return;
    }
    if (p === '/api' && this.fixtures.api !== undefined) {
      const body = clone(this.fixtures.api);
      if (isObj(body)) {
        body.serverAddressByClientCIDRs = [
          { clientCIDR: '0.0.0.0/0', serverAddress: `${this.host}:${String(this.port)}` },
        ];
      }
      ex.json(200, body);
      return;
    }
    if (p === '/apis' && this.fixtures.apis !== undefined) {
      const body = clone(this.fixtures.apis);
      if (this.metricsApi && isObj(body) && Array.isArray(body.groups)) {
        const version = { groupVersion: 'metrics.k8s.io/v1beta1', version: 'v1beta1' };
        body.groups.push({
          name: 'metrics.k8s.io',
          versions: [version],
          preferredVersion: version,
        });
      }
      ex.json(200, body);
    }
  }

  private resourceRequest(ex: Exchange): void {
    const info = ex.info;
    if (this.metricsApi && info.group === 'metrics.k8s.io' && info.version === 'v1beta1') {
      // what metrics-server answers through the aggregator (no node reports metrics here)
      if (info.resource === 'nodes' && info.verb === 'list')
        ex.json(200, {
          kind: 'NodeMetricsList',
          apiVersion: 'metrics.k8s.io/v1beta1',
          metadata: {},
          items: [],
        });
      return;
    }
    const def = RESOURCES.find(
      (r) =>
        r.resource === info.resource &&
        r.group === info.group &&
        r.version === info.version &&
        (r.group === '' ? info.prefix === 'api' : info.prefix === 'apis'),
    );
    if (def === undefined || info.parts.length > 3) return;
    if (info.subresource !== '' && !def.subresources.includes(info.subresource)) return;
    const isNamespaceObject = def.resource === 'namespaces';
    if (def.namespaced && info.namespace === '' && info.name !== '' && info.parts.length > 1)
      return;
    if (!def.namespaced && !isNamespaceObject && info.namespace !== '') return;
    const named = info.parts.length >= 2;
    const namespace = isNamespaceObject ? '' : info.namespace;
    switch (info.verb) {
      case 'get':
        this.get(ex, def, namespace, info.name);
        return;
      case 'list':
      case 'watch':
        if (named) return;
        if (info.verb === 'watch') this.watch(ex, def, namespace);
        else this.list(ex, def, namespace);
        return;
      case 'create':
        if (named || !def.writable) {
          this.methodNotAllowed(ex);
          return;
        }
        this.create(ex, def, namespace);
        return;
      case 'update':
        if (!named || !def.writable) {
          this.methodNotAllowed(ex);
          return;
        }
        this.update(ex, def, namespace, info.name, info.subresource);
        return;
      case 'patch':
        if (!named || !def.writable) {
          this.methodNotAllowed(ex);
          return;
        }
        this.patch(ex, def, namespace, info.name, info.subresource);
        return;
      case 'delete':
        if (!def.writable && def.resource !== 'pods') {
          this.methodNotAllowed(ex);
          return;
        }
        this.delete(ex, def, namespace, info.name);
        return;
      default:
        this.methodNotAllowed(ex);
    }
  }

  private methodNotAllowed(ex: Exchange): void {
    ex.status(
      failure(
        405,
        'MethodNotAllowed',
        'the server does not allow this method on the requested resource',
        {},
      ),
    );
  }

  // ----- reads -----------------------------------------------------------------------------

  private get(ex: Exchange, def: ResourceDef, namespace: string, name: string): void {
    const obj = this.objects(def).get(this.key(def, namespace, name));
    if (obj === undefined) {
      ex.status(notFound(def, name));
      return;
    }
    ex.json(200, obj);
  }

  private selectors(
    ex: Exchange,
    def: ResourceDef,
  ): { fields: FieldTerm[]; labels: LabelTerm[] } | undefined {
    const fields = parseFieldSelector(ex.url.searchParams.get('fieldSelector') ?? '');
    if (fields === undefined) {
      ex.status(
        badRequest(`invalid field selector: ${ex.url.searchParams.get('fieldSelector') ?? ''}`),
      );
      return undefined;
    }
    for (const t of fields) {
      if (!(t.field in def.fields)) {
        ex.status(badRequest(`field label not supported: ${t.field}`));
        return undefined;
      }
    }
    const labels = parseLabelSelector(ex.url.searchParams.get('labelSelector') ?? '');
    if (labels === undefined) {
      ex.status(
        badRequest(
          `unable to parse requirement: ${ex.url.searchParams.get('labelSelector') ?? ''}`,
        ),
      );
      return undefined;
    }
    return { fields, labels };
  }

  private sorted(def: ResourceDef): JsonObj[] {
    return [...this.objects(def).entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, o]) => o);
  }

  private list(ex: Exchange, def: ResourceDef, namespace: string): void {
    const sel = this.selectors(ex, def);
    if (sel === undefined) return;
    const w: Watcher = { def, namespace, ...sel, send: () => undefined };
    let items = this.sorted(def).filter((o) => this.matches(w, o));
    const meta: JsonObj = { resourceVersion: String(this.rv) };
    // the revision all pages of a list are read at: the first page's (this fake keeps no old
    // versions of objects, only the number)
    let snapshot = this.rv;
    const cont = ex.url.searchParams.get('continue');
    if (cont !== null && cont !== '') {
      let start = '';
      let rv: unknown;
      try {
        const token = JSON.parse(Buffer.from(cont, 'base64').toString('utf8')) as {
          start?: unknown;
          rv?: unknown;
        };
        start = typeof token.start === 'string' ? token.start : '';
        rv = token.rv;
      } catch {
        ex.status(badRequest('continue key is not valid: illegal base64 data at input byte 0'));
        return;
      }
      // The pages are read at the first one's revision: once etcd compacted it, the API
      // server's etcd3 store answers 410 Expired (handleCompactedErrorForPaging), with a token
      // that reads the rest at the current revision (rv -1), inconsistently.
      if (typeof rv === 'number' && rv !== -1 && rv < this.compactedBelow) {
        const status = failure(410, 'Expired', INCONSISTENT_CONTINUE);
        status.metadata = {
          continue: Buffer.from(JSON.stringify({ v: 'meta.k8s.io/v1', rv: -1, start })).toString(
            'base64',
          ),
        };
        ex.status(status);
        return;
      }
      if (typeof rv === 'number' && rv !== -1) snapshot = rv;
      meta.resourceVersion = String(snapshot);
      items = items.filter((o) => this.objectKey(def, o) > start);
    }
    // resourceVersion=0 is answered from the watch cache, which ignores limit (v1.26's
    // cacher.GetList delegates to etcd only with no resourceVersion, a continue, or a limit with
    // a resourceVersion other than 0): everything at once, never a continue
    const fromCache = ex.url.searchParams.get('resourceVersion') === '0' && cont === null;
    const limit = fromCache ? 0 : Number(ex.url.searchParams.get('limit') ?? '0');
    if (Number.isInteger(limit) && limit > 0 && items.length > limit) {
      const page = items.slice(0, limit);
      const last = page[page.length - 1];
      const token = {
        v: 'meta.k8s.io/v1',
        rv: snapshot,
        start: `${last === undefined ? '' : this.objectKey(def, last)}\u0000`,
      };
      meta.continue = Buffer.from(JSON.stringify(token)).toString('base64');
      meta.remainingItemCount = items.length - limit;
      items = page;
    }
    const out = items.map((o) => {
      const item = clone(o);
      delete item.kind;
      delete item.apiVersion;
      return item;
    });
    ex.json(200, { kind: def.listKind, apiVersion: apiVersionOf(def), metadata: meta, items: out });
  }

  private objectKey(def: ResourceDef, o: JsonObj): string {
    const meta = objAt(o, 'metadata');
    return this.key(def, strAt(meta, 'namespace') ?? '', strAt(meta, 'name') ?? '');
  }

  private watch(ex: Exchange, def: ResourceDef, namespace: string): void {
    const sel = this.selectors(ex, def);
    if (sel === undefined) return;
    const params = ex.url.searchParams;
    const rvParam = params.get('resourceVersion') ?? '';
    let from: number | undefined;
    if (rvParam !== '' && rvParam !== '0') {
      from = /^\d+$/.test(rvParam) ? Number(rvParam) : NaN;
      if (Number.isNaN(from)) {
        ex.status(
          failure(
            500,
            '',
            `resourceVersion: Invalid value: ${q(rvParam)}: strconv.ParseUint: parsing ${q(rvParam)}: invalid syntax`,
          ),
        );
        return;
      }
    }
    const requested = Number(params.get('timeoutSeconds') ?? '');
    const timeoutSeconds =
      Number.isFinite(requested) && requested > 0
        ? Math.min(requested, MAX_WATCH_SECONDS)
        : MAX_WATCH_SECONDS;
    const res = ex.res;
    ex.stream();
    const write = (type: string, object: Json): void => {
      if (!res.destroyed && !res.writableEnded) res.write(`${JSON.stringify({ type, object })}\n`);
    };
    if (from !== undefined && from < this.compactedBelow) {
      write(
        'ERROR',
        failure(
          410,
          'Expired',
          `too old resource version: ${String(from)} (${String(this.compactedBelow)})`,
        ),
      );
      ex.record.watchError = 410;
      res.end();
      return;
    }
    const watcher: Watcher = {
      def,
      namespace,
      ...sel,
      send: write,
      // the recorded Status shape; the message is the one the apiserver's etcd3 watcher gives
      // a watch that a compaction overtook (interpretWatchError), which was not recorded
      expire: () => {
        write(
          'ERROR',
          failure(410, 'Expired', 'The resourceVersion for the provided watch is too old.'),
        );
        ex.record.watchError = 410;
        this.watchers.delete(watcher);
        res.end();
      },
    };
    if (from === undefined) {
      for (const o of this.sorted(def)) if (this.matches(watcher, o)) write('ADDED', o);
    } else {
      for (const c of this.history) if (c.rv > from) this.deliver(watcher, c);
    }
    this.watchers.add(watcher);
    this.streams.add(res);
    const timers: NodeJS.Timeout[] = [setTimeout(() => res.end(), timeoutSeconds * 1000)];
    if (goBool(params.get('allowWatchBookmarks'))) {
      timers.push(
        setInterval(() => {
          const bookmark = this.normalize(def, {
            kind: def.kind,
            apiVersion: apiVersionOf(def),
            metadata: { resourceVersion: String(this.rv) },
          });
          write('BOOKMARK', bookmark);
        }, BOOKMARK_INTERVAL_MS),
      );
    }
    res.on('close', () => {
      this.watchers.delete(watcher);
      this.streams.delete(res);
      for (const t of timers) clearTimeout(t);
    });
  }

  // ----- writes ----------------------------------------------------------------------------

  private kindLabel(def: ResourceDef): string {
    return def.group === '' ? def.kind : `${def.kind}.${def.group}`;
  }

  /** Decodes a create/update body: 415, 400 (JSON, kind, time formats) or the object. */
  private decodeBody(ex: Exchange, def: ResourceDef): { obj: JsonObj } | undefined {
    const type = mediaType(ex.req.headers['content-type']);
    let doc: unknown;
    if (type === 'application/json' || type === 'application/yaml') {
      const jsonError = type === 'application/json' ? goJsonError(ex.rawBody) : '';
      if (jsonError !== '') {
        const summary =
          ex.rawBody === ''
            ? '<empty>'
            : ex.rawBody.startsWith('{')
              ? ex.rawBody.length > 30
                ? `${ex.rawBody.slice(0, 30)} ...`
                : ex.rawBody
              : Buffer.from(ex.rawBody.slice(0, 30)).toString('hex') +
                (ex.rawBody.length > 30 ? ' ...' : '');
        ex.status(
          badRequest(
            `the object provided is unrecognized (must be of type ${def.kind}): couldn't get version/kind; json parse error: ${jsonError} (${summary})`,
          ),
        );
        return undefined;
      }
      try {
        doc = type === 'application/json' ? JSON.parse(ex.rawBody) : loadYaml(ex.rawBody);
      } catch (error) {
        ex.status(badRequest(`error converting YAML to JSON: ${String(error)}`));
        return undefined;
      }
    } else {
      ex.status(
        failure(
          415,
          'UnsupportedMediaType',
          'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf',
        ),
      );
      return undefined;
    }
    if (!isObj(doc)) {
      ex.status(
        badRequest(
          `the object provided is unrecognized (must be of type ${def.kind}): couldn't get version/kind; json parse error: json: cannot unmarshal ${doc === null ? 'null' : jsonKind(doc as Json)} into Go value of type struct { APIVersion string "json:\\"apiVersion,omitempty\\""; Kind string "json:\\"kind,omitempty\\"" } (${ex.rawBody.slice(0, 30)})`,
        ),
      );
      return undefined;
    }
    const kind = strAt(doc, 'kind') ?? def.kind;
    const apiVersion = strAt(doc, 'apiVersion') ?? apiVersionOf(def);
    const version = apiVersion.includes('/') ? (apiVersion.split('/')[1] ?? '') : apiVersion;
    if (kind !== def.kind || apiVersion !== apiVersionOf(def)) {
      ex.status(
        badRequest(
          `${kind} in version ${q(version)} cannot be handled as a ${def.kind}: no kind ${q(kind)} is registered for version ${q(apiVersion)} in scheme "pkg/api/legacyscheme/scheme.go:30"`,
        ),
      );
      return undefined;
    }
    return this.decodeDoc(ex, def, doc, version, false);
  }

  private decodeDoc(
    ex: Exchange,
    def: ResourceDef,
    doc: JsonObj,
    version: string,
    patched: boolean | string,
  ): { obj: JsonObj } | undefined {
    const decoded = decodeObject(def.schema, doc);
    if ('error' in decoded) {
      if (patched !== false) {
        // the apiserver reports a patch result it cannot decode as an invalid "patch" field
        const value = typeof patched === 'string' ? patched : JSON.stringify(doc);
        ex.status(
          failure(
            422,
            'Invalid',
            ` "" is invalid: patch: Invalid value: ${q(value)}: ${decoded.error}`,
            {
              causes: [
                {
                  reason: 'FieldValueInvalid',
                  message: `Invalid value: ${q(value)}: ${decoded.error}`,
                  field: 'patch',
                },
              ],
            },
          ),
        );
      } else {
        ex.status(
          badRequest(
            `${def.kind} in version ${q(version)} cannot be handled as a ${def.kind}: ${decoded.error}`,
          ),
        );
      }
      return undefined;
    }
    const validation = ex.url.searchParams.get('fieldValidation') ?? 'Warn';
    if (decoded.unknown.length > 0) {
      if (validation === 'Strict') {
        const list = decoded.unknown.map((u) => `unknown field ${q(u)}`).join(', ');
        ex.status(
          badRequest(
            `${def.kind} in version ${q(version)} cannot be handled as a ${def.kind}: strict decoding error: ${list}`,
          ),
        );
        return undefined;
      }
      if (validation !== 'Ignore') {
        for (const u of decoded.unknown)
          ex.header('Warning', `299 - ${q(`unknown field ${q(u)}`)}`);
      }
    }
    return { obj: decoded.obj };
  }

  private manager(ex: Exchange): string {
    const fm = ex.url.searchParams.get('fieldManager');
    if (fm !== null && fm !== '') return fm;
    return (ex.req.headers['user-agent'] ?? '').split('/')[0]?.slice(0, 128) ?? '';
  }

  private validate(def: ResourceDef, obj: JsonObj, creating: boolean): FieldError[] {
    const errs: FieldError[] = [];
    const meta = objAt(obj, 'metadata');
    const name = strAt(meta, 'name') ?? '';
    if (creating) {
      if (name === '') {
        errs.push({
          type: 'FieldValueRequired',
          field: 'metadata.name',
          detail: 'name or generateName is required',
        });
      } else if (!DNS1123_SUBDOMAIN.test(name) || name.length > 253) {
        errs.push({
          type: 'FieldValueInvalid',
          field: 'metadata.name',
          value: q(name),
          detail: name.length > 253 ? 'must be no more than 253 characters' : DNS1123_SUBDOMAIN_MSG,
        });
      }
    }
    if (def.resource === 'events') {
      const ns = strAt(meta, 'namespace') ?? '';
      const involvedNs = strAt(objAt(obj, 'involvedObject'), 'namespace') ?? '';
      if (obj.eventTime === null || obj.eventTime === undefined) {
        if (involvedNs === '' ? ns !== '' && ns !== 'default' : ns !== involvedNs) {
          errs.push({
            type: 'FieldValueInvalid',
            field: 'involvedObject.namespace',
            value: q(involvedNs),
            detail: 'does not match event.namespace',
          });
        }
      } else {
        if (involvedNs === '' && ns !== 'default' && ns !== 'kube-system') {
          errs.push({
            type: 'FieldValueInvalid',
            field: 'involvedObject.namespace',
            value: q(involvedNs),
            detail: 'does not match event.namespace',
          });
        }
        if ((strAt(obj, 'reportingComponent') ?? '') === '') {
          errs.push({ type: 'FieldValueRequired', field: 'reportingComponent', detail: '' });
        }
        if ((strAt(obj, 'reportingInstance') ?? '') === '') {
          errs.push({ type: 'FieldValueRequired', field: 'reportingInstance', detail: '' });
        }
        if ((strAt(obj, 'action') ?? '') === '')
          errs.push({ type: 'FieldValueRequired', field: 'action', detail: '' });
        if ((strAt(obj, 'reason') ?? '') === '')
          errs.push({ type: 'FieldValueRequired', field: 'reason', detail: '' });
      }
    }
    if (def.resource === 'leases') {
      const spec = objAt(obj, 'spec');
      const duration = spec.leaseDurationSeconds;
      if (typeof duration === 'number' && duration <= 0) {
        errs.push({
          type: 'FieldValueInvalid',
          field: 'spec.leaseDurationSeconds',
          value: String(duration),
          detail: 'must be greater than 0',
        });
      }
      const transitions = spec.leaseTransitions;
      if (typeof transitions === 'number' && transitions < 0) {
        errs.push({
          type: 'FieldValueInvalid',
          field: 'spec.leaseTransitions',
          value: String(transitions),
          detail: 'must be greater than or equal to 0',
        });
      }
    }
    return errs;
  }

  /** NodeRestriction admission for the node identity; true when it refused the request. */
  private admissionRefuses(ex: Exchange, def: ResourceDef, name: string): boolean {
    if (ex.who.id !== 'node') return false;
    if (def.resource === 'nodes' && name !== this.nodeName) {
      ex.status(
        failure(
          403,
          'Forbidden',
          `nodes ${q(name)} is forbidden: node ${q(this.nodeName)} is not allowed to modify node ${q(name)}`,
          {
            name,
            kind: 'nodes',
          },
        ),
      );
      return true;
    }
    if (def.resource === 'leases' && name !== this.nodeName) {
      ex.status(
        failure(
          403,
          'Forbidden',
          `${qualified(def)} ${q(name)} is forbidden: can only access node lease with the same name as the requesting node`,
          {
            name,
            group: def.group,
            kind: def.resource,
          },
        ),
      );
      return true;
    }
    return false;
  }

  private setManagedFields(
    def: ResourceDef,
    ex: Exchange,
    old: JsonObj,
    next: JsonObj,
    creating: boolean,
    subresource: string,
  ): void {
    const meta = objAt(next, 'metadata');
    const previous = objAt(old, 'metadata').managedFields;
    const entries = (Array.isArray(previous) ? previous : []).filter(isObj);
    delete meta.managedFields;
    // skipNonAppliedManager: nothing is tracked for an object created without entries
    if (!creating && entries.length === 0) return;
    const reset = def.resource === 'nodes' ? [subresource === 'status' ? 'spec' : 'status'] : [];
    const { changed, removed } = changedFields(def.schema, old, next, reset);
    const manager = this.manager(ex);
    const isMine = (e: JsonObj): boolean =>
      (strAt(e, 'manager') ?? '') === manager &&
      strAt(e, 'operation') === 'Update' &&
      (strAt(e, 'subresource') ?? '') === subresource;
    const mine = entries.find(isMine);
    const mineSet = fDifference(fUnion(fDecode(mine?.fieldsV1), changed), removed);
    const mineEntry = (): JsonObj | undefined => {
      if (fEmpty(mineSet)) return undefined;
      const entry: JsonObj = {};
      if (manager !== '') entry.manager = manager;
      entry.operation = 'Update';
      entry.apiVersion = apiVersionOf(def);
      // the time moves only when this write took fields
      entry.time = fEmpty(changed) && mine !== undefined ? (mine.time ?? nowTime()) : nowTime();
      entry.fieldsType = 'FieldsV1';
      entry.fieldsV1 = fEncode(mineSet);
      if (subresource !== '') entry.subresource = subresource;
      return entry;
    };
    const out: JsonObj[] = [];
    for (const e of entries) {
      if (e === mine) {
        const entry = mineEntry();
        if (entry !== undefined) out.push(entry);
        continue;
      }
      const left = fDifference(fDifference(fDecode(e.fieldsV1), changed), removed);
      if (!fEmpty(left)) out.push({ ...e, fieldsV1: fEncode(left) });
    }
    if (mine === undefined) {
      const entry = mineEntry();
      if (entry !== undefined) out.push(entry);
    }
    if (out.length > 0) meta.managedFields = out;
  }

  private create(ex: Exchange, def: ResourceDef, namespace: string): void {
    const decoded = this.decodeBody(ex, def);
    if (decoded === undefined) return;
    const obj = decoded.obj;
    const meta = objAt(obj, 'metadata');
    if (def.namespaced) {
      const ns = strAt(meta, 'namespace');
      if (ns !== undefined && ns !== '' && ns !== namespace) {
        ex.status(
          badRequest(
            'the namespace of the provided object does not match the namespace sent on the request',
          ),
        );
        return;
      }
      meta.namespace = namespace;
    }
    let name = strAt(meta, 'name') ?? '';
    const generateName = strAt(meta, 'generateName') ?? '';
    if (name === '' && generateName !== '') {
      const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
      name =
        generateName + Array.from(randomBytes(5), (b) => alphabet[b % alphabet.length]).join('');
      meta.name = name;
    }
    obj.metadata = meta;
    if (def.namespaced && !this.objects(resourceDef('namespaces')).has(namespace)) {
      ex.status(
        failure(404, 'NotFound', `namespaces ${q(namespace)} not found`, {
          name: namespace,
          kind: 'namespaces',
        }),
      );
      return;
    }
    if (this.admissionRefuses(ex, def, name)) return;
    const errs = this.validate(def, obj, true);
    if (errs.length > 0) {
      ex.status(invalid(this.kindLabel(def), def.group, def.kind, name, errs));
      return;
    }
    if (this.objects(def).has(this.key(def, namespace, name))) {
      ex.status(
        failure(409, 'AlreadyExists', `${qualified(def)} ${q(name)} already exists`, {
          name,
          group: def.group,
          kind: def.resource,
        }),
      );
      return;
    }
    const empty = this.normalize(def, { kind: def.kind, apiVersion: apiVersionOf(def) });
    const next = clone(obj);
    next.kind = def.kind;
    next.apiVersion = apiVersionOf(def);
    this.setManagedFields(def, ex, empty, next, true, '');
    const fields = objAt(next, 'metadata').managedFields;
    if (def.resource === 'nodes') {
      // TaintNodesByCondition admission; the status a node registers with is kept
      const spec = objAt(next, 'spec');
      const taints = Array.isArray(spec.taints) ? spec.taints : [];
      if (!taints.some((t) => isObj(t) && t.key === 'node.kubernetes.io/not-ready')) {
        taints.push({ key: 'node.kubernetes.io/not-ready', effect: 'NoSchedule' });
      }
      spec.taints = taints;
      next.spec = spec;
    }
    next.metadata = {
      ...objAt(next, 'metadata'),
      name,
      uid: randomUUID(),
      resourceVersion: this.nextRv(),
      creationTimestamp: nowTime(),
      ...(fields === undefined ? {} : { managedFields: fields }),
    };
    delete objAt(next, 'metadata').selfLink;
    delete objAt(next, 'metadata').deletionTimestamp;
    const stored = this.normalize(def, next);
    this.commit(def, 'ADDED', stored, undefined);
    ex.json(201, stored);
  }

  /** The common tail of update and patch: validation, no-op detection, managedFields, store. */
  private write(
    ex: Exchange,
    def: ResourceDef,
    old: JsonObj,
    candidate: JsonObj,
    subresource: string,
  ): void {
    const oldMeta = objAt(old, 'metadata');
    const name = strAt(oldMeta, 'name') ?? '';
    const next = clone(candidate);
    const meta = objAt(next, 'metadata');
    for (const key of [
      'name',
      'namespace',
      'uid',
      'creationTimestamp',
      'generation',
      'deletionTimestamp',
    ]) {
      if (oldMeta[key] === undefined) Reflect.deleteProperty(meta, key);
      else meta[key] = oldMeta[key];
    }
    meta.resourceVersion = oldMeta.resourceVersion ?? '';
    meta.managedFields = oldMeta.managedFields ?? [];
    next.metadata = meta;
    if (def.resource === 'nodes') {
      if (subresource === 'status') next.spec = old.spec ?? {};
      else next.status = old.status ?? {};
    }
    next.kind = def.kind;
    next.apiVersion = apiVersionOf(def);
    const errs = this.validate(def, next, false);
    if (errs.length > 0) {
      ex.status(invalid(this.kindLabel(def), def.group, def.kind, name, errs));
      return;
    }
    let normalized = this.normalize(def, next);
    if (deepEqual(normalized, old)) {
      ex.json(200, old);
      return;
    }
    this.setManagedFields(def, ex, old, normalized, false, subresource);
    normalized.metadata = { ...objAt(normalized, 'metadata'), resourceVersion: this.nextRv() };
    normalized = this.normalize(def, normalized);
    this.commit(def, 'MODIFIED', normalized, old);
    ex.json(200, normalized);
  }

  private update(
    ex: Exchange,
    def: ResourceDef,
    namespace: string,
    name: string,
    subresource: string,
  ): void {
    const decoded = this.decodeBody(ex, def);
    if (decoded === undefined) return;
    const obj = decoded.obj;
    const meta = objAt(obj, 'metadata');
    const bodyName = strAt(meta, 'name') ?? '';
    if (bodyName !== name) {
      ex.status(
        badRequest(
          `the name of the object (${bodyName}) does not match the name on the URL (${name})`,
        ),
      );
      return;
    }
    const bodyNs = strAt(meta, 'namespace') ?? '';
    if (def.namespaced && bodyNs !== '' && bodyNs !== namespace) {
      ex.status(
        badRequest(
          'the namespace of the provided object does not match the namespace sent on the request',
        ),
      );
      return;
    }
    const old = this.objects(def).get(this.key(def, namespace, name));
    if (old === undefined) {
      ex.status(notFound(def, name));
      return;
    }
    if (this.admissionRefuses(ex, def, name)) return;
    const oldMeta = objAt(old, 'metadata');
    const rv = strAt(meta, 'resourceVersion') ?? '';
    if (rv === '' && !def.allowUnconditionalUpdate) {
      ex.status(
        invalid(qualified(def), def.group, def.resource, name, [
          {
            type: 'FieldValueInvalid',
            field: 'metadata.resourceVersion',
            value: '0x0',
            detail: 'must be specified for an update',
          },
        ]),
      );
      return;
    }
    const uid = strAt(meta, 'uid') ?? '';
    if (uid !== '' && uid !== strAt(oldMeta, 'uid')) {
      ex.status(
        conflict(
          def,
          name,
          `Precondition failed: UID in precondition: ${uid}, UID in object meta: ${strAt(oldMeta, 'uid') ?? ''}`,
        ),
      );
      return;
    }
    if (rv !== '' && rv !== strAt(oldMeta, 'resourceVersion')) {
      ex.status(
        conflict(
          def,
          name,
          'the object has been modified; please apply your changes to the latest version and try again',
        ),
      );
      return;
    }
    this.write(ex, def, old, obj, subresource);
  }

  private patch(
    ex: Exchange,
    def: ResourceDef,
    namespace: string,
    name: string,
    subresource: string,
  ): void {
    const type = mediaType(ex.req.headers['content-type']);
    const types = [
      'application/json-patch+json',
      'application/merge-patch+json',
      'application/strategic-merge-patch+json',
      'application/apply-patch+yaml',
    ];
    if (!types.includes(type)) {
      ex.status(failure(415, 'UnsupportedMediaType', '415: Unsupported Media Type', {}));
      return;
    }
    if (
      type === 'application/apply-patch+yaml' &&
      (ex.url.searchParams.get('fieldManager') ?? '') === ''
    ) {
      ex.status(
        invalid('PatchOptions.meta.k8s.io', '', '', '', [
          {
            type: 'FieldValueRequired',
            field: 'fieldManager',
            detail: 'is required for apply patch',
          },
        ]),
      );
      return;
    }
    let patchDoc: Json;
    try {
      patchDoc = (
        type === 'application/apply-patch+yaml' ? loadYaml(ex.rawBody) : JSON.parse(ex.rawBody)
      ) as Json;
    } catch {
      ex.status(badRequest(goJsonError(ex.rawBody)));
      return;
    }
    const old = this.objects(def).get(this.key(def, namespace, name));
    if (old === undefined) {
      ex.status(notFound(def, name));
      return;
    }
    if (this.admissionRefuses(ex, def, name)) return;
    let result: Json;
    try {
      if (type === 'application/json-patch+json') result = jsonPatch(old, patchDoc);
      else if (type === 'application/merge-patch+json') result = jsonMergePatch(old, patchDoc);
      else if (type === 'application/strategic-merge-patch+json') {
        if (!isObj(patchDoc)) {
          ex.status(
            badRequest('unable to find api field in struct Node for the json field "$patch"'),
          );
          return;
        }
        result = smpMergeMap(def.schema, old, patchDoc);
      } else result = applyMerge(def.schema, old, patchDoc);
    } catch (error) {
      if (error instanceof PatchError) {
        if (error.status === 422) {
          ex.status(
            failure(
              422,
              'Invalid',
              'the server rejected our request due to an error in our request',
              {},
            ),
          );
          return;
        }
        ex.status(
          error.status === 500 ? failure(500, '', error.message) : badRequest(error.message),
        );
        return;
      }
      throw error;
    }
    if (!isObj(result)) {
      ex.status(badRequest('the patch did not produce an object'));
      return;
    }
    const version = def.version;
    const shown =
      type === 'application/strategic-merge-patch+json' && isObj(patchDoc) ? goFmt(patchDoc) : true;
    const decoded = this.decodeDoc(ex, def, result, version, shown);
    if (decoded === undefined) return;
    const rv = strAt(objAt(decoded.obj, 'metadata'), 'resourceVersion') ?? '';
    if (rv !== '' && rv !== strAt(objAt(old, 'metadata'), 'resourceVersion')) {
      ex.status(
        conflict(
          def,
          name,
          'the object has been modified; please apply your changes to the latest version and try again',
        ),
      );
      return;
    }
    this.write(ex, def, old, decoded.obj, subresource);
  }

  private delete(ex: Exchange, def: ResourceDef, namespace: string, name: string): void {
    const old = this.objects(def).get(this.key(def, namespace, name));
    if (old === undefined) {
      ex.status(notFound(def, name));
      return;
    }
    const gone = clone(old);
    gone.metadata = { ...objAt(gone, 'metadata'), resourceVersion: this.nextRv() };
    this.commit(def, 'DELETED', gone, old);
    if (def.resource === 'pods') {
      ex.json(200, gone);
      return;
    }
    const details: JsonObj = { name };
    if (def.group !== '') details.group = def.group;
    details.kind = def.resource;
    details.uid = strAt(objAt(old, 'metadata'), 'uid') ?? '';
    ex.json(200, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details });
  }
}

export async function startFakeKubeApi(options: FakeKubeApiOptions = {}): Promise<FakeKubeApi> {
  const api = new FakeKubeApiServer(options);
  await api.start();
  return api;
}
