// Where containerd is told to trust the network when it pulls images: its CRI plugin's registry
// settings in config.toml, and hosts.toml files in the registry hosts directories. Pure: parsed
// TOML in, settings out (see tomlSubset.ts for the reading).
//
// What containerd does with them (core/remotes/docker/config/hosts.go, the CRI image service):
// - registry.config_path (a ":"-separated list of directories) switches the CRI plugin to
//   hosts.toml files; with it set, registry.mirrors and registry.configs are ignored.
// - Without it, registry.configs."<host>".tls.insecure_skip_verify skips certificate checks
//   (containerd 1.x; containerd 2.x dropped registry.configs.*.tls and ignores it), and a
//   registry.mirrors."<name>".endpoint starting with http:// is plain HTTP.
// - In hosts.toml, skip_verify = true at the top applies to `server`, under [host."<url>"] to
//   that host; a server or host URL with http:// is plain HTTP (with TLS settings present and a
//   port other than 80, containerd tries HTTPS first and falls back to HTTP on a TLS error).
import type { InsecureRegistrySetting } from './registryHost.ts';
import { displayUrl, isLoopbackHost, registryUrl, tomlKey } from './registryHost.ts';
import type { TomlDocument, TomlTable, TomlValue } from './tomlSubset.ts';
import { isTomlTable, tomlGet } from './tomlSubset.ts';

/** The CRI plugins whose `registry` table containerd reads, newest first. */
const CRI_REGISTRY_PLUGINS = [
  // containerd 2.x (config version 3): no registry.configs.*.tls any more.
  { plugin: 'io.containerd.cri.v1.images', tls: false },
  // containerd 1.x config version 2 (2.x migrates it, dropping registry.configs.*.tls).
  { plugin: 'io.containerd.grpc.v1.cri', tls: true },
  // containerd 1.x config version 1.
  { plugin: 'cri', tls: true },
] as const;

/** The transfer service (containerd 2.x) has its own config_path for the pulls it makes. */
const TRANSFER_PLUGIN = 'io.containerd.transfer.v1.local';

export interface HostsDirReference {
  /** A host directory (host path) named by config_path. */
  dir: string;
  /** The setting, for a report: [plugins."…".registry] config_path = "…". */
  setting: string;
  line: number;
}

export interface ContainerdRegistryConfig {
  hostsDirs: HostsDirReference[];
  insecure: InsecureRegistrySetting[];
}

/** Registry settings of a containerd config.toml. */
export function containerdRegistryConfig(doc: TomlDocument): ContainerdRegistryConfig {
  const hostsDirs: HostsDirReference[] = [];
  const insecure: InsecureRegistrySetting[] = [];
  for (const { plugin, tls } of CRI_REGISTRY_PLUGINS) {
    const base = ['plugins', plugin, 'registry'];
    const registry = tomlGet(doc.root, base);
    if (!isTomlTable(registry)) continue;
    const configPath = registry.config_path;
    if (typeof configPath === 'string' && configPath !== '') {
      hostsDirs.push(...splitConfigPath(doc, [...base, 'config_path'], configPath));
      // containerd reads hosts directories instead of everything below.
      continue;
    }
    insecure.push(...mirrorEndpoints(doc, base, registry.mirrors));
    if (tls) insecure.push(...skipVerifyConfigs(doc, base, registry.configs, plugin));
  }
  const transferPath = tomlGet(doc.root, ['plugins', TRANSFER_PLUGIN, 'config_path']);
  if (typeof transferPath === 'string' && transferPath !== '')
    hostsDirs.push(
      ...splitConfigPath(doc, ['plugins', TRANSFER_PLUGIN, 'config_path'], transferPath),
    );
  return { hostsDirs, insecure };
}

function splitConfigPath(doc: TomlDocument, path: string[], value: string): HostsDirReference[] {
  // filepath.SplitList: a list like $PATH.
  return value
    .split(':')
    .filter((dir) => dir !== '')
    .map((dir) => ({
      dir,
      setting: `${header(path.slice(0, -1))} config_path = ${JSON.stringify(value)}`,
      line: lineOf(doc, path),
    }));
}

function mirrorEndpoints(
  doc: TomlDocument,
  base: string[],
  mirrors: TomlValue | undefined,
): InsecureRegistrySetting[] {
  if (!isTomlTable(mirrors)) return [];
  const found: InsecureRegistrySetting[] = [];
  for (const [name, mirror] of Object.entries(mirrors)) {
    if (!isTomlTable(mirror) || !Array.isArray(mirror.endpoint)) continue;
    for (const endpoint of mirror.endpoint) {
      if (typeof endpoint !== 'string') continue;
      const url = registryUrl(endpoint);
      if (url?.scheme !== 'http') continue;
      const path = [...base, 'mirrors', name, 'endpoint'];
      found.push({
        host: url.host,
        kind: 'plain-http',
        line: lineOf(doc, path),
        setting: `${header(path.slice(0, -1))} endpoint = [${JSON.stringify(displayUrl(endpoint))}]`,
        loopback: isLoopbackHost(url.host),
        note: `mirror of ${name}`,
      });
    }
  }
  return found;
}

function skipVerifyConfigs(
  doc: TomlDocument,
  base: string[],
  configs: TomlValue | undefined,
  plugin: string,
): InsecureRegistrySetting[] {
  if (!isTomlTable(configs)) return [];
  const found: InsecureRegistrySetting[] = [];
  for (const [host, config] of Object.entries(configs)) {
    if (!isTomlTable(config)) continue;
    const tls = config.tls;
    if (!isTomlTable(tls) || tls.insecure_skip_verify !== true) continue;
    const path = [...base, 'configs', host, 'tls', 'insecure_skip_verify'];
    found.push({
      host,
      kind: 'skip-verify',
      line: lineOf(doc, path),
      setting: `${header(path.slice(0, -1))} insecure_skip_verify = true`,
      loopback: isLoopbackHost(host),
      ...(plugin === 'io.containerd.grpc.v1.cri'
        ? { note: 'containerd 1.x applies it; containerd 2.x ignores registry.configs.*.tls' }
        : {}),
    });
  }
  return found;
}

/**
 * The registry namespace a hosts directory configures: "_default" (every registry without
 * its own directory), or a host with ":port" written as "_port_" (containerd's hostDirectory).
 */
export function hostsDirNamespace(dirName: string): string {
  const port = /^(.+)_(\d+)_$/.exec(dirName);
  return port === null ? dirName : `${port[1] ?? ''}:${port[2] ?? ''}`;
}

/** Insecure settings of one hosts.toml, for the registry namespace of its directory. */
export function hostsTomlInsecure(doc: TomlDocument, namespace: string): InsecureRegistrySetting[] {
  const found: InsecureRegistrySetting[] = [];
  const root = doc.root;
  const server = typeof root.server === 'string' && root.server !== '' ? root.server : undefined;
  const serverUrl = server === undefined ? undefined : registryUrl(server);
  // Without `server`, containerd talks to the namespace itself over HTTPS (Docker Hub's is
  // registry-1.docker.io; _default's is whichever registry is being pulled from).
  const serverHost =
    serverUrl?.host ??
    (namespace === '_default'
      ? 'any registry without its own hosts directory'
      : namespace === 'docker.io'
        ? 'registry-1.docker.io'
        : namespace);
  if (server !== undefined && serverUrl?.scheme === 'http') {
    found.push({
      host: serverUrl.host,
      kind: 'plain-http',
      line: lineOf(doc, ['server']),
      setting: `server = ${JSON.stringify(displayUrl(server))}`,
      loopback: isLoopbackHost(serverUrl.host),
      ...httpFallbackNote(root, serverUrl.host),
    });
  }
  if (root.skip_verify === true) {
    found.push({
      host: serverHost,
      kind: 'skip-verify',
      line: lineOf(doc, ['skip_verify']),
      setting: 'skip_verify = true',
      loopback: namespace !== '_default' && isLoopbackHost(serverHost),
    });
  }
  const hosts = root.host;
  if (isTomlTable(hosts)) {
    for (const [key, config] of Object.entries(hosts)) {
      const url = registryUrl(key);
      if (url === undefined || !isTomlTable(config)) continue;
      // The key as written, unless it could carry credentials (user:password@).
      const shownKey = key.includes('@') ? `${url.scheme}://${url.host}` : key;
      const hostHeader = `[host.${JSON.stringify(shownKey)}]`;
      if (url.scheme === 'http') {
        found.push({
          host: url.host,
          kind: 'plain-http',
          line: headerLine(doc, ['host', key]) ?? lineOf(doc, ['host', key]),
          setting: hostHeader,
          loopback: isLoopbackHost(url.host),
          ...httpFallbackNote(config, url.host),
        });
      }
      if (config.skip_verify === true) {
        found.push({
          host: url.host,
          kind: 'skip-verify',
          line: lineOf(doc, ['host', key, 'skip_verify']),
          setting: `${hostHeader} skip_verify = true`,
          loopback: isLoopbackHost(url.host),
        });
      }
    }
  }
  return found;
}

function httpFallbackNote(config: TomlTable, host: string): { note?: string } {
  const port = /:(\d+)$/.exec(host)?.[1];
  const tlsSet =
    config.ca !== undefined || config.client !== undefined || config.skip_verify !== undefined;
  if (!tlsSet || port === '80') return {};
  return {
    note: 'with TLS settings present containerd tries HTTPS first, then falls back to plain HTTP',
  };
}

function header(path: string[]): string {
  return `[${path.map(tomlKey).join('.')}]`;
}

function lineOf(doc: TomlDocument, path: string[]): number {
  const key = path.join('\0');
  return doc.entries.find((entry) => entry.path.join('\0') === key)?.line ?? 0;
}

function headerLine(doc: TomlDocument, path: string[]): number | undefined {
  const key = path.join('\0');
  return doc.headers.find((h) => h.path.join('\0') === key)?.line;
}
