// One run of the `runtime-config` check (what it looks for, and why: runtimeConfigCheck.ts):
// the reads of daemon.json, dockerd's command line (through its pid file and /proc, since flags
// such as --insecure-registry never show in daemon.json), containerd's config.toml and hosts.toml
// files and CRI-O's registries.conf, and the findings they give.
import path from 'node:path';
import type { FindingDraft, Severity } from '../../findings/finding.ts';
import { HostReadError } from '../../host/hostRoot.ts';
import type { HostRoot } from '../../host/hostRoot.ts';
import {
  containerdRegistryConfig,
  hostsDirNamespace,
  hostsTomlInsecure,
} from '../../parsers/containerdRegistryConfig.ts';
import { registriesConfInsecure } from '../../parsers/containersRegistriesConf.ts';
import {
  classifyInsecureRegistry,
  parseDockerDaemonJson,
  parseDockerListenAddress,
} from '../../parsers/dockerDaemonJson.ts';
import type { DockerDaemonSettings } from '../../parsers/dockerDaemonJson.ts';
import { splitCmdline } from '../../parsers/commandLine.ts';
import { parseDockerdArgs } from '../../parsers/dockerdArgs.ts';
import { checkDaemonJsonDirectives } from '../../parsers/dockerdOptions.ts';
import type { DockerdArgs } from '../../parsers/dockerdArgs.ts';
import type { InsecureRegistrySetting } from '../../parsers/registryHost.ts';
import { parseTomlSubset } from '../../parsers/tomlSubset.ts';
import type { TomlDocument } from '../../parsers/tomlSubset.ts';
import type { CheckOutcome } from '../check.ts';
import type { RuntimeConfigOptions } from './runtimeConfigCheck.ts';

type Options = RuntimeConfigOptions;

/** The title's registry part: long names are cut so that a title fits an 80-column table. */
const TITLE_HOST_MAX = 28;

/** One run of the check (loaded on first use: see runtimeConfigCheck.ts). */
export async function auditRuntimeConfig(host: HostRoot, options: Options): Promise<CheckOutcome> {
  const audit = new Audit(host);
  await audit.docker(options);
  await audit.containerd(options);
  await audit.registriesConf(options.registriesConf);
  return { findings: audit.findings };
}

/** One run's reads and findings. */
class Audit {
  readonly findings: FindingDraft[] = [];
  private readonly host: HostRoot;

  constructor(host: HostRoot) {
    this.host = host;
  }

  // ---- docker ----

  async docker(options: Options): Promise<void> {
    const dockerd = await this.dockerdArgs(options.dockerPidFile);
    const file = dockerd?.configFile ?? options.dockerDaemonJson;
    const bytes = await this.read(file);
    // Why dockerd would refuse its configuration; empty when it can load it.
    const refused: Refusal[] = [];
    let settings: DockerDaemonSettings = {};
    if (bytes === null && dockerd?.configFile !== undefined && (await this.absent(file))) {
      // Only the default file may be missing; a named one is required at start and reload.
      refused.push({
        evidence: `dockerd --config-file ${file}: open ${file}: no such file or directory`,
        fix: `restore ${file} (or remove --config-file from dockerd's command line)`,
      });
    }
    if (bytes !== null) {
      const parsed = parseDockerDaemonJson(bytes);
      if (parsed.ok) {
        settings = parsed.settings;
        refused.push(...directiveRefusals(file, parsed.json, dockerd));
      } else {
        const { message, line, column } = parsed.error;
        refused.push({
          evidence:
            line === undefined ? `${file}: ${message}` : `${file}:${line}:${column}: ${message}`,
        });
      }
    }
    const flags = 'dockerd command line';
    const registries = [
      ...(settings.insecureRegistries ?? []).map((entry) => ({ entry, source: file })),
      ...(dockerd?.insecureRegistries ?? []).map((entry) => ({ entry, source: flags })),
    ];
    for (const { entry, source } of registries) {
      const registry = classifyInsecureRegistry(entry);
      if (registry.kind === 'invalid') {
        refused.push({
          evidence: `${source}: insecure registry ${JSON.stringify(entry)} ${registry.reason}`,
        });
        continue;
      }
      if (registry.loopback) continue;
      this.dockerInsecureRegistry(entry, source, source === flags ? undefined : file, registry);
    }
    if (refused.length > 0) this.daemonConfigRefused(file, refused);
    const hosts = [
      ...(settings.hosts ?? []).map((entry) => ({ entry, source: file })),
      ...(dockerd?.hosts ?? []).map((entry) => ({ entry, source: flags })),
    ];
    // Client certificates are required only with tlsverify; "tls" alone encrypts but lets
    // anyone in. A flag and the same key in daemon.json cannot both be set (dockerd refuses).
    const tlsverify = dockerd?.tlsverify ?? settings.tlsverify;
    if (tlsverify === true) return;
    for (const { entry, source } of hosts) {
      const address = parseDockerListenAddress(entry);
      if (!('address' in address)) continue;
      this.dockerApiUnauthenticated(address, source, file, dockerd, settings);
    }
  }

  /** dockerd's flags, when its pid file names a live dockerd process. */
  private async dockerdArgs(pidFile: string): Promise<DockerdArgs | undefined> {
    const pid = /^\s*(\d+)\s*$/.exec((await this.quietRead(pidFile)) ?? '')?.[1];
    if (pid === undefined) return undefined;
    const proc = { resolveLinks: false };
    // A stale pid file may name another process now.
    const comm = await this.quietRead(`/proc/${pid}/comm`, proc);
    if (comm?.trim() !== 'dockerd') return undefined;
    const cmdline = await this.quietRead(`/proc/${pid}/cmdline`, proc);
    if (cmdline === null) return undefined;
    return parseDockerdArgs(splitCmdline(cmdline));
  }

  /** Whether a host file is known not to exist (not merely unreadable). */
  private async absent(file: string): Promise<boolean> {
    try {
      return (await this.host.readBytes(file)) === null;
    } catch {
      return false;
    }
  }

  private daemonConfigRefused(file: string, refused: Refusal[]): void {
    const evidence = refused.map((r) => r.evidence);
    const fixes = [...new Set(refused.flatMap((r) => (r.fix === undefined ? [] : [r.fix])))];
    const rest = refused.some((r) => r.fix === undefined);
    this.findings.push({
      id: 'DockerDaemonJsonInvalid',
      problem: 'DockerDaemonJsonInvalid',
      severity: 'warning',
      title: 'dockerd cannot load its configuration: it would not start',
      message: `dockerd cannot load its configuration (${evidence.join('; ')}). It refuses to start with it ("unable to configure the Docker daemon with file ${file}: ..."), so the next restart of docker or reboot of the node leaves the node without that container runtime. A reload ("systemctl reload docker", or SIGHUP) logs the same error and keeps the configuration dockerd already had, so edits to the file silently do not apply.`,
      evidence,
      remediation: {
        summary:
          `${[...fixes, ...(rest ? [`fix ${file}`] : [])].join('; ')}. Check the result with "dockerd --validate --config-file ${file}" plus the flags dockerd runs with (docker 23+; or "python3 -m json.tool ${file}" for the syntax), then apply it with "systemctl reload docker" and make sure "journalctl -u docker" shows no "unable to configure the Docker daemon" after "Got signal to reload configuration". Options that cannot be reloaded (hosts, data-root, storage-driver) and any change to dockerd's flags need "systemctl restart docker".`.replace(
            /^./,
            (c) => c.toUpperCase(),
          ),
        automatic: false,
      },
    });
  }

  private dockerInsecureRegistry(
    entry: string,
    source: string,
    file: string | undefined,
    registry: { kind: 'cidr'; everything: boolean } | { kind: 'host'; host: string },
  ): void {
    const everything = registry.kind === 'cidr' && registry.everything;
    const what =
      registry.kind === 'cidr'
        ? everything
          ? 'every registry but Docker Hub'
          : `every registry whose name resolves into ${entry}`
        : entry;
    const where =
      file === undefined
        ? '--insecure-registry on the dockerd command line'
        : `"insecure-registries" in ${file}`;
    this.findings.push({
      id: `InsecureRegistry:${source}:${entry}`,
      problem: 'InsecureRegistry',
      severity: everything ? 'critical' : 'warning',
      title: `docker pulls from ${shorten(entry)} without TLS verification`,
      message: `${where} lists ${JSON.stringify(entry)}: docker pulls from ${what} over HTTPS without checking the certificate, and over plain HTTP when HTTPS fails. Anyone who can intercept or redirect the traffic can serve their own images, and they then run on this node.${registry.kind === 'cidr' ? ' A network entry matches a registry by the address its name resolves to, so DNS decides which registries are trusted blindly.' : ''}`,
      evidence: [
        file === undefined
          ? `dockerd --insecure-registry ${entry}`
          : `${file}: "insecure-registries" includes ${JSON.stringify(entry)}`,
      ],
      remediation: {
        summary: `Serve the registry over TLS with a certificate this node trusts (a public CA, or its CA certificate in /etc/docker/certs.d/<host:port>/ca.crt), then remove ${JSON.stringify(entry)} from ${file === undefined ? 'the --insecure-registry flags of dockerd (its systemd unit or /etc/sysconfig/docker) and "systemctl daemon-reload && systemctl restart docker"' : `"insecure-registries" in ${file} and run "systemctl reload docker" (insecure-registries is reloaded on SIGHUP, running containers are untouched)`}; "docker info" then no longer lists it under "Insecure Registries" (127.0.0.0/8 stays: docker's default).`,
        automatic: false,
      },
    });
  }

  private dockerApiUnauthenticated(
    address: { entry: string; address: string; loopback: boolean; allInterfaces: boolean },
    source: string,
    file: string,
    dockerd: DockerdArgs | undefined,
    settings: DockerDaemonSettings,
  ): void {
    const tls = dockerd?.tls ?? settings.tls;
    const tlsverify = dockerd?.tlsverify ?? settings.tlsverify;
    const reach = address.loopback
      ? 'It is bound to loopback, so that is every local user and process, every hostNetwork pod, and web pages open in a browser on the node.'
      : address.allInterfaces
        ? 'It is bound to every interface: anyone who can reach this node on that port.'
        : 'Anyone who can reach that address gets it.';
    const unknownFlags =
      tlsverify === undefined && dockerd === undefined
        ? ' (dockerd is not running or its pid file is missing, so flags such as --tlsverify could not be checked)'
        : '';
    const evidence = [
      source === file
        ? `${file}: "hosts" includes ${JSON.stringify(address.entry)}`
        : `dockerd -H ${address.entry}`,
      `tlsverify: ${tlsverify === undefined ? 'not set (off)' : String(tlsverify)}${unknownFlags}`,
      ...(tls === undefined ? [] : [`tls: ${String(tls)}`]),
    ];
    const severity: Severity = address.loopback ? 'warning' : 'critical';
    this.findings.push({
      id: `DockerApiUnauthenticated:${address.address}`,
      problem: 'DockerApiUnauthenticated',
      severity,
      title: `docker API on tcp://${shorten(address.address)} needs no client certificate`,
      message: `dockerd listens on tcp://${address.address} without tlsverify${tls === true ? ' (tls only encrypts: any client is accepted)' : ''}: whoever connects has the docker API, which is root on this node (a privileged container with the host's / mounted). ${reach}`,
      evidence,
      remediation: {
        summary: `Remove ${JSON.stringify(address.entry)} from ${source === file ? `"hosts" in ${file}` : 'the -H flags of dockerd (its systemd unit)'} and use the unix socket (remote clients over SSH: "docker context create --docker host=ssh://user@node"), or require client certificates: "tlsverify": true with "tlscacert", "tlscert" and "tlskey" in ${file}. Then "systemctl restart docker" (hosts is not reloadable).`,
        automatic: false,
      },
    });
  }

  // ---- containerd ----

  async containerd(options: Options): Promise<void> {
    const file = options.containerdConfig;
    const doc = await this.readToml(file, 'containerd does not start with it');
    const dirs = new Map<string, string | undefined>([[options.containerdCertsDir, undefined]]);
    if (doc !== undefined) {
      const config = containerdRegistryConfig(doc);
      this.insecureSettings('containerd', file, config.insecure, containerdRemedy(file));
      for (const ref of config.hostsDirs)
        if (ref.dir.startsWith('/') && !dirs.has(ref.dir))
          dirs.set(ref.dir, `${file}:${ref.line}: ${ref.setting}`);
    }
    for (const [dir, namedBy] of dirs) {
      const entries = await this.list(dir);
      for (const entry of entries ?? []) {
        if (entry.isFile) continue;
        const hostsToml = `${dir}/${entry.name}/hosts.toml`;
        const hosts = await this.readToml(
          hostsToml,
          'containerd ignores it and falls back to the certificate files in its directory',
        );
        if (hosts === undefined) continue;
        const namespace = hostsDirNamespace(entry.name);
        const settings = hostsTomlInsecure(hosts, namespace);
        this.insecureSettings('containerd', hostsToml, settings, hostsTomlRemedy(hostsToml), {
          wildcard: namespace === '_default',
          ...(namedBy === undefined ? {} : { context: `hosts directory from ${namedBy}` }),
        });
      }
    }
  }

  // ---- CRI-O / podman ----

  async registriesConf(file: string): Promise<void> {
    const files = [file];
    const dropIns = await this.list(`${file}.d`);
    for (const entry of dropIns ?? [])
      if (entry.name.endsWith('.conf') && !entry.isDirectory) files.push(`${file}.d/${entry.name}`);
    for (const path of files) {
      const doc = await this.readToml(path, 'CRI-O and podman refuse it');
      if (doc === undefined) continue;
      this.insecureSettings('CRI-O', path, registriesConfInsecure(doc), registriesConfRemedy(path));
    }
  }

  // ---- shared ----

  /** One InsecureRegistry finding per registry and file, with every setting line as evidence. */
  private insecureSettings(
    runtime: string,
    file: string,
    settings: InsecureRegistrySetting[],
    remedy: (host: string) => string,
    extra: { wildcard?: boolean; context?: string } = {},
  ): void {
    const byHost = new Map<string, InsecureRegistrySetting[]>();
    for (const setting of settings) {
      if (setting.loopback) continue;
      byHost.set(setting.host, [...(byHost.get(setting.host) ?? []), setting]);
    }
    for (const [host, found] of byHost) {
      const kinds = new Set(found.map((s) => s.kind));
      const how =
        kinds.has('insecure') || (kinds.has('plain-http') && kinds.has('skip-verify'))
          ? 'without TLS verification and over plain HTTP'
          : kinds.has('plain-http')
            ? 'over plain HTTP'
            : 'without TLS verification';
      const wildcard = extra.wildcard === true;
      const notes = [...new Set(found.flatMap((s) => (s.note === undefined ? [] : [s.note])))];
      this.findings.push({
        id: `InsecureRegistry:${file}:${host}`,
        problem: 'InsecureRegistry',
        severity: wildcard ? 'critical' : 'warning',
        title: `${runtime} pulls from ${shorten(host)} ${how === 'over plain HTTP' ? 'over plain HTTP' : 'without TLS verification'}`,
        message: `${file} makes ${runtime} pull images from ${host} ${how}${notes.length > 0 ? ` (${notes.join('; ')})` : ''}. Anyone who can intercept or redirect the traffic can serve their own images, and they then run on this node.${wildcard ? ' This is the _default hosts directory: it applies to every registry without a directory of its own.' : ''}`,
        evidence: [
          ...found.map((s) => `${file}:${s.line}: ${s.setting}`),
          ...(extra.context === undefined ? [] : [extra.context]),
        ],
        remediation: { summary: remedy(host), automatic: false },
      });
    }
  }

  /** A TOML file parsed; undefined when absent, unreadable or invalid (reported). */
  private async readToml(file: string, whenInvalid: string): Promise<TomlDocument | undefined> {
    const bytes = await this.read(file);
    if (bytes === null) return undefined;
    const doc = parseTomlSubset(bytes.toString('utf8'));
    const invalid = doc.problems.find((p) => p.kind === 'invalid');
    if (invalid !== undefined) {
      this.findings.push({
        id: `RuntimeConfigInvalid:${file}`,
        problem: 'RuntimeConfigInvalid',
        severity: 'warning',
        title: `runtime config ${shorten(path.posix.basename(file))} is not valid TOML`,
        message: `${file} is not valid TOML (line ${invalid.line}, column ${invalid.column}: ${invalid.reason}). A TOML file that does not parse is rejected as a whole: ${whenInvalid}. None of its settings is in effect, and its registry settings were not checked.`,
        evidence: [`${file}:${invalid.line}:${invalid.column}: ${invalid.reason}`],
        remediation: {
          summary: `Fix ${file} at line ${invalid.line}${file.endsWith('config.toml') ? ' (compare with "containerd config default"), then "systemctl restart containerd" and check "journalctl -u containerd"' : ''}.`,
          automatic: false,
        },
      });
      return undefined;
    }
    const skipped = doc.problems.filter((p) => p.kind === 'unsupported');
    if (skipped.length > 0) {
      this.findings.push({
        id: `RuntimeConfigUnreadable:${file}`,
        problem: 'RuntimeConfigUnreadable',
        severity: 'info',
        title: `parts of ${shorten(path.posix.basename(file))} were not checked`,
        message: `${file} has values node-auditor does not read; the settings around them were checked.`,
        evidence: skipped.map((p) => `${file}:${p.line}:${p.column}: ${p.reason}`),
      });
    }
    return doc;
  }

  /** A host file's bytes, or null when absent; an unreadable one is an info finding. */
  private async read(file: string): Promise<Buffer | null> {
    try {
      return await this.host.readBytes(file);
    } catch (error) {
      if (!(error instanceof HostReadError)) throw error;
      this.unreadable(file, error.message);
      return null;
    }
  }

  private async list(dir: string): Promise<Awaited<ReturnType<HostRoot['listDir']>>> {
    try {
      return await this.host.listDir(dir);
    } catch (error) {
      if (!(error instanceof HostReadError)) throw error;
      this.unreadable(dir, error.message);
      return null;
    }
  }

  private unreadable(file: string, reason: string): void {
    this.findings.push({
      id: `RuntimeConfigUnreadable:${file}`,
      problem: 'RuntimeConfigUnreadable',
      severity: 'info',
      title: `cannot read ${shorten(path.posix.basename(file))}: not checked`,
      message: `${reason}; the registry settings in it were not checked. The agent needs read access to the runtime's configuration (root, or the host's /etc mounted readable).`,
      evidence: [reason],
    });
  }

  /** For reads whose failure only means "unknown" (pid file, /proc of dockerd). */
  private async quietRead(
    file: string,
    readOptions: { resolveLinks?: boolean } = {},
  ): Promise<string | null> {
    try {
      return await this.host.readText(file, readOptions);
    } catch {
      return null;
    }
  }
}

/** One reason dockerd refuses its configuration, with its own fix when it has one. */
interface Refusal {
  evidence: string;
  fix?: string;
}

/**
 * Keys dockerd refuses before reading any value (dockerdOptions.ts): ones that name no option,
 * and ones the running dockerd also has as a flag (the seed's DOCKER_OPTS beside a daemon.json
 * with the same settings). Flag values are not shown: --http-proxy may hold a password.
 */
function directiveRefusals(
  file: string,
  json: Record<string, unknown>,
  dockerd: DockerdArgs | undefined,
): Refusal[] {
  const { unknown, conflicts } = checkDaemonJsonDirectives(json, dockerd?.flags ?? []);
  const refusals: Refusal[] = unknown.map(({ key, suggestion }) => ({
    evidence: `${file}: ${JSON.stringify(key)} is not a dockerd option${suggestion === undefined ? '' : ` (did you mean ${JSON.stringify(suggestion)}?)`}`,
    fix:
      suggestion === undefined
        ? `remove ${JSON.stringify(key)} from ${file}`
        : `rename ${JSON.stringify(key)} to ${JSON.stringify(suggestion)} in ${file} (or remove it)`,
  }));
  if (conflicts.length > 0) {
    const flags = conflicts.map((c) => `--${c.flag}`).join(', ');
    const keys = conflicts.map((c) => JSON.stringify(c.key)).join(', ');
    const fix = `keep each setting in one place (dockerd refuses an option given both as a flag and in ${file}, even with the same value): remove ${flags} from dockerd's command line (ExecStart of docker.service, or the EnvironmentFile it reads such as /etc/sysconfig/docker or /etc/default/docker; "systemctl cat docker" shows both) and run "systemctl daemon-reload && systemctl restart docker", or remove ${keys} from ${file}; if the unit no longer passes them, the running dockerd keeps them until that restart`;
    for (const { key, flag } of conflicts)
      refusals.push({
        evidence: `${file}: ${JSON.stringify(key)} is also set by --${flag} on dockerd's command line`,
        fix,
      });
  }
  return refusals;
}

function containerdRemedy(file: string): (host: string) => string {
  return (host) =>
    `Serve ${host} over TLS with a certificate this node trusts, then configure it in a hosts directory instead of ${file}: set config_path = "/etc/containerd/certs.d" under [plugins."io.containerd.grpc.v1.cri".registry] (containerd 2.x: [plugins."io.containerd.cri.v1.images".registry]), write /etc/containerd/certs.d/${host.replace(/:(\d+)$/, '_$1_')}/hosts.toml with server = "https://${host}" and, for a private CA, [host."https://${host}"] ca = "/etc/containerd/certs.d/${host.replace(/:(\d+)$/, '_$1_')}/ca.crt", remove the insecure_skip_verify / http:// line, and "systemctl restart containerd" (running containers keep running).`;
}

function hostsTomlRemedy(file: string): (host: string) => string {
  return (host) =>
    `Serve ${host} over TLS with a certificate this node trusts; in ${file} use https:// instead of http:// and replace skip_verify = true with ca = "<path to the registry's CA certificate>". containerd reads hosts.toml on every pull: no restart needed.`;
}

function registriesConfRemedy(file: string): (host: string) => string {
  return (host) =>
    `Serve ${host} over TLS with a certificate this node trusts (a private CA's certificate goes in /etc/containers/certs.d/${host}/ca.crt), set insecure = false (or remove it) in ${file}, then "systemctl reload crio" (or restart CRI-O) so it reads the file again.`;
}

function shorten(text: string): string {
  return text.length <= TITLE_HOST_MAX ? text : `${text.slice(0, TITLE_HOST_MAX - 3)}...`;
}
