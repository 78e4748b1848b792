// dockerd's options as its command line and daemon.json name them, and the two rules by which
// dockerd refuses a daemon.json before reading any value (moby daemon/config/config.go,
// findConfigurationConflicts; checked on start and on every reload):
//
// 1. Every top-level key must name an option: a flag's long name ("storage-driver",
//    "insecure-registry"), or the file name of a list/map flag ("insecure-registries" for
//    --insecure-registry, "labels" for --label). Anything else is "the following directives
//    don't match any configuration option". A shorthand ("H", "D") is not a key. An object
//    value is looked into (its keys are checked instead of its own) unless the option holds a
//    map itself (log-opts, runtimes, ...): "proxies": {"http-proxy": ...} is checked as
//    "http-proxy". "features" and "builder" are never checked, nor two removed options dockerd
//    still tolerates (deprecated-key-path, allow-nondistributable-artifacts).
// 2. No option may be set both by a flag on the command line and in the file, whatever the
//    values: "the following directives are specified both as a flag and in the configuration
//    file". A list flag does not merge with the file's list (--insecure-registry and
//    "insecure-registries" conflict); only --add-runtime and "runtimes" are merged.
//
// Checked against real dockerd 20.10 and moby's current source. The table is the union of the
// options of docker 17.06 to 29 on Linux, so a key is called unknown only when no version
// knows it; a key a newer dockerd dropped (graph, cluster-store) is not reported. A flag's own
// name used as a key for a list ("insecure-registry": [...]) is accepted and then ignored by
// dockerd: its value goes nowhere, but the file loads, so it is not reported here either.

import { closestName } from './closestName.ts';

interface DockerdOption {
  /** One-letter form on the command line (-H, -D); never a daemon.json key. */
  short?: string;
  /** Takes no value (--debug, --tlsverify=false). */
  bool?: true;
  /**
   * The daemon.json key of a list or map flag, when it differs from the flag's name; more
   * than one when it changed across versions (--host-gateway-ip became "host-gateway-ips").
   */
  fileKeys?: readonly string[];
}

const OPTIONS: Readonly<Record<string, DockerdOption>> = {
  'add-runtime': { fileKeys: ['runtimes'] },
  'allow-direct-routing': { bool: true },
  'allow-nondistributable-artifacts': { fileKeys: ['allow-nondistributable-artifacts'] },
  'api-cors-header': {},
  'apparmor-profile': {},
  'authorization-plugin': { fileKeys: ['authorization-plugins'] },
  bip: {},
  bip6: {},
  bridge: { short: 'b' },
  'bridge-accept-fwmark': {},
  'cdi-spec-dir': { fileKeys: ['cdi-spec-dirs'] },
  'cgroup-parent': {},
  'cluster-advertise': {},
  'cluster-store': {},
  'cluster-store-opt': { fileKeys: ['cluster-store-opts'] },
  'config-file': {},
  containerd: {},
  'containerd-namespace': {},
  'containerd-plugins-namespace': {},
  'cpu-rt-period': {},
  'cpu-rt-runtime': {},
  'cri-containerd': { bool: true },
  'data-root': {},
  debug: { short: 'D', bool: true },
  'default-address-pool': { fileKeys: ['default-address-pools'] },
  'default-cgroupns-mode': {},
  'default-gateway': {},
  'default-gateway-v6': {},
  'default-ipc-mode': {},
  'default-network-opt': { fileKeys: ['default-network-opts'] },
  'default-runtime': {},
  'default-shm-size': {},
  'default-ulimit': { fileKeys: ['default-ulimits'] },
  'disable-legacy-registry': { bool: true },
  dns: {},
  'dns-opt': { fileKeys: ['dns-opts'] },
  'dns-search': {},
  'exec-opt': { fileKeys: ['exec-opts'] },
  'exec-root': {},
  experimental: { bool: true },
  feature: { fileKeys: ['features'] },
  'firewall-backend': {},
  'fixed-cidr': {},
  'fixed-cidr-v6': {},
  graph: { short: 'g' },
  group: { short: 'G' },
  help: { short: 'h', bool: true },
  host: { short: 'H', fileKeys: ['hosts'] },
  'host-gateway-ip': { fileKeys: ['host-gateway-ips', 'host-gateway-ip'] },
  'http-proxy': {},
  'https-proxy': {},
  icc: { bool: true },
  init: { bool: true },
  'init-path': {},
  'insecure-registry': { fileKeys: ['insecure-registries'] },
  ip: {},
  'ip-forward': { bool: true },
  'ip-forward-no-drop': { bool: true },
  'ip-masq': { bool: true },
  ip6tables: { bool: true },
  iptables: { bool: true },
  ipv6: { bool: true },
  label: { fileKeys: ['labels'] },
  'live-restore': { bool: true },
  'log-driver': {},
  'log-format': {},
  'log-level': { short: 'l' },
  'log-opt': { fileKeys: ['log-opts'] },
  'max-concurrent-downloads': {},
  'max-concurrent-uploads': {},
  'max-download-attempts': {},
  'metrics-addr': {},
  mtu: {},
  'network-control-plane-mtu': {},
  'network-diagnostic-port': {},
  'no-new-privileges': { bool: true },
  'no-proxy': {},
  'node-generic-resource': { fileKeys: ['node-generic-resources'] },
  'oom-score-adjust': {},
  pidfile: { short: 'p' },
  'raw-logs': { bool: true },
  'registry-mirror': { fileKeys: ['registry-mirrors'] },
  restart: { short: 'r', bool: true },
  rootless: { bool: true },
  'seccomp-profile': {},
  'selinux-enabled': { bool: true },
  'shutdown-timeout': {},
  'storage-driver': { short: 's' },
  'storage-opt': { fileKeys: ['storage-opts'] },
  'swarm-default-advertise-addr': {},
  tls: { bool: true },
  tlscacert: {},
  tlscert: {},
  tlskey: {},
  tlsverify: { bool: true },
  'userland-proxy': { bool: true },
  'userland-proxy-path': {},
  'userns-remap': {},
  validate: { bool: true },
  version: { short: 'v', bool: true },
};

const BY_SHORT = new Map(
  Object.entries(OPTIONS).flatMap(([name, o]) => (o.short === undefined ? [] : [[o.short, name]])),
);

/** Keys whose object value is the option itself, not options to look into. */
const MAP_VALUED = new Set([
  'cluster-store-opts',
  'default-network-opts',
  'log-opts',
  'runtimes',
  'default-ulimits',
  'features',
  'builder',
]);

/** Keys dockerd never checks against its options. */
const NOT_CHECKED = new Set([
  'features',
  'builder',
  'deprecated-key-path',
  'allow-nondistributable-artifacts',
]);

/** Set in the file and by a flag together, yet merged: not a conflict. */
const MERGED = new Set(['runtimes']);

const FILE_KEYS = new Set([
  ...Object.keys(OPTIONS),
  ...Object.values(OPTIONS).flatMap((o) => o.fileKeys ?? []),
  ...NOT_CHECKED,
]);

/** A flag's long name from its long or one-letter form; undefined when dockerd has none. */
export function dockerdFlagName(name: string): string | undefined {
  if (name.length === 1) return BY_SHORT.get(name);
  return name in OPTIONS ? name : undefined;
}

/** Whether dockerd's flag takes no value; unknown flags are taken to take one. */
export function isDockerdBoolFlag(name: string): boolean {
  return OPTIONS[name]?.bool === true;
}

export interface DaemonJsonDirectives {
  /** Keys that name no option, in file order, each with the closest real key if any. */
  unknown: { key: string; suggestion?: string }[];
  /** Keys also set by a flag of the running dockerd, with that flag's long name. */
  conflicts: { key: string; flag: string }[];
}

/**
 * What dockerd says of a daemon.json's keys before reading their values: the top-level
 * object as parsed, and the long names of the flags on dockerd's command line (empty when
 * dockerd is not running: then only unknown keys are found).
 */
export function checkDaemonJsonDirectives(
  json: Readonly<Record<string, unknown>>,
  flags: readonly string[],
): DaemonJsonDirectives {
  const keys = flattenedKeys(json);
  const unknown = keys
    .filter((key) => !FILE_KEYS.has(key))
    .map((key) => {
      const suggestion = closestKey(key);
      return suggestion === undefined ? { key } : { key, suggestion };
    });
  const present = new Set(keys);
  const conflicts: DaemonJsonDirectives['conflicts'] = [];
  for (const flag of new Set(flags)) {
    const option = OPTIONS[flag];
    const candidates = option?.fileKeys ?? [flag];
    for (const key of candidates)
      if (present.has(key) && !MERGED.has(key)) {
        conflicts.push({ key, flag });
        break;
      }
  }
  return { unknown, conflicts };
}

/** The keys dockerd checks: an object under a key that is not map-valued stands for its keys. */
function flattenedKeys(json: Readonly<Record<string, unknown>>): string[] {
  return Object.entries(json).flatMap(([key, value]) =>
    typeof value === 'object' && value !== null && !Array.isArray(value) && !MAP_VALUED.has(key)
      ? Object.keys(value)
      : [key],
  );
}

/**
 * The key probably meant, for the fix: a one-letter flag's key ("H" is "hosts"), else a real
 * key within two edits of a name of five letters or more (a typo, a missing "s").
 */
function closestKey(key: string): string | undefined {
  if (key.length === 1) {
    const name = BY_SHORT.get(key);
    return name === undefined ? undefined : (OPTIONS[name]?.fileKeys?.[0] ?? name);
  }
  return key.length < 5 ? undefined : closestName(key, FILE_KEYS);
}
