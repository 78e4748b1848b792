// `runtime-config`: container runtime configuration that breaks the runtime or trusts the
// network. dockerd's daemon.json that dockerd cannot read (it then refuses to start, and a
// reload keeps the old settings while logging the error, as the seed's SIGHUP shows); registries
// pulled from without TLS verification (docker's insecure-registries, containerd's
// insecure_skip_verify / skip_verify / http:// endpoints, CRI-O's insecure = true); and a docker
// API on TCP without client certificates, which is root on the node for whoever connects.
// Registries on the node itself (localhost, 127.0.0.0/8, ::1) are insecure by default in both
// docker and containerd and are never reported.
//
// Everything is read from files under the host root, plus dockerd's command line (through its
// pid file and /proc) because flags such as --insecure-registry never show in daemon.json.
//
// Only the definition (options, schedule) is loaded at start; the audit and its parsers (TOML,
// JSON positions, dockerd flags) load on the first run, so an agent with the check disabled
// never has them in memory.
import * as v from 'valibot';
import type { Check } from '../check.ts';
import { hostPath } from '../../config/configSchema.ts';

const hostFile = (fallback: string) => v.optional(hostPath, fallback);

const options = {
  /** dockerd's configuration (host path); dockerd's own --config-file wins when it runs. */
  dockerDaemonJson: hostFile('/etc/docker/daemon.json'),
  /** dockerd's pid file: how its command line (/proc/<pid>/cmdline) is found. */
  dockerPidFile: hostFile('/var/run/docker.pid'),
  /** containerd's configuration. */
  containerdConfig: hostFile('/etc/containerd/config.toml'),
  /** containerd's registry hosts directory (<host>/hosts.toml); config_path adds others. */
  containerdCertsDir: hostFile('/etc/containerd/certs.d'),
  /** containers-registries.conf (CRI-O, podman); "<file>.d/*.conf" drop-ins are read too. */
  registriesConf: hostFile('/etc/containers/registries.conf'),
};

export type RuntimeConfigOptions = v.InferOutput<v.ObjectSchema<typeof options, undefined>>;

export const runtimeConfigCheck: Check<typeof options> = {
  id: 'runtime-config',
  title: 'Container runtime configuration',
  description:
    "Reads docker's daemon.json and command line, containerd's config.toml and hosts.toml files and CRI-O's registries.conf: a daemon.json dockerd cannot load, registries pulled from without TLS verification, a docker API on TCP without client certificates.",
  defaults: { enabled: true, interval: '5m', timeout: '30s' },
  options,
  async run({ host, options }) {
    const { auditRuntimeConfig } = await import('./runtimeConfigAudit.ts');
    return auditRuntimeConfig(host, options);
  },
};
