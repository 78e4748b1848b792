// The kubelet's effective configuration, built the way cmd/kubelet/app/server.go builds it, with
// where each value came from:
//
// 1. Without --config the kubelet starts from its *flag* defaults: the KubeletConfiguration
//    v1beta1 defaults with applyLegacyDefaults (cmd/kubelet/app/options/options.go) on top,
//    kept "to preserve the command line API": anonymous auth ON, authorization AlwaysAllow,
//    read-only port 10255, token webhook off. This holds with --config-dir alone, too.
// 2. With --config the file replaces all of that, defaulted by the v1beta1 defaulter
//    (pkg/kubelet/apis/config/v1beta1/defaults.go, SetDefaults_KubeletConfiguration):
//    authentication.anonymous.enabled false, authorization.mode Webhook, and readOnlyPort is
//    not defaulted at all, so it stays 0 (disabled). See also kubeadm's #64187 review: "the
//    v1beta1 defaulter is the canonical source of defaults, and we maintain the old defaults
//    for flags via applyLegacyDefaults".
// 3. --config-dir drop-ins (*.conf, in lexical order) are merged over that, one after the other,
//    as a JSON merge patch (mergeKubeletConfigurations): a mapping is overridden key by key, a
//    list or scalar replaced whole ("Kubelet Configuration Directory Merging",
//    kubernetes.io/docs/reference/node/kubelet-config-directory-merging/). A null only deletes
//    the key from the patch result, and the merged JSON is unmarshalled over the config already
//    built, so a null changes nothing: null is "not set" here.
// 4. Then every flag on the command line is parsed again over the result
//    (kubeletConfigFlagPrecedence, kubernetes#56171): a flag beats the file and the drop-ins.
//    --feature-gates adds to the file's featureGates rather than replacing them.
//
// So a setting's value is found from the last layer back: flag, last drop-in ... first drop-in,
// config file, default for the mode. The layers it overrode are kept for the finding's words.
import path from 'node:path';
import { parseGoBool } from '../../parsers/commandLine.ts';
import { flagText, parseFeatureGates, parseGoInt32 } from '../../parsers/kubeletFlags.ts';
import type { KubeletCommandLine, KubeletFlag } from '../../parsers/kubeletFlags.ts';
import { lookupKey } from '../../parsers/kubeletConfigFile.ts';
import type { KubeletConfigDocument } from '../../parsers/kubeletConfigFile.ts';

/** "flags": no --config (the flag defaults apply); "file": with --config (v1beta1 defaults). */
export type ConfigMode = 'flags' | 'file';

export interface ConfigLayer {
  kind: 'file' | 'dropin';
  /** Host path. */
  path: string;
  /** undefined when the file could not be read or parsed. */
  document: KubeletConfigDocument | undefined;
}

export type SettingSource =
  | { kind: 'flag'; flag: KubeletFlag }
  | { kind: 'file' | 'dropin'; path: string; key: string }
  | { kind: 'default'; mode: ConfigMode; configFile?: string; key: string };

export interface SettingValue<T> {
  value: T;
  source: SettingSource;
  /** Values of earlier layers this one overrides, the most recent first. */
  overrides: { value: unknown; source: SettingSource }[];
}

type ValueType = 'boolean' | 'string' | 'integer';

interface SettingSpec<T> {
  /** Key in KubeletConfiguration. */
  key: string;
  /** The flag that sets it, or a feature gate set through --feature-gates. */
  flag: { name: string } | { featureGate: string };
  type: ValueType;
  defaults: Record<ConfigMode, T>;
  /** A file path: a relative one in a config file is relative to that file's directory. */
  path?: boolean;
}

function spec<T>(s: SettingSpec<T>): SettingSpec<T> {
  return s;
}

export const SETTINGS = {
  anonymousAuth: spec<boolean>({
    key: 'authentication.anonymous.enabled',
    flag: { name: 'anonymous-auth' },
    type: 'boolean',
    defaults: { flags: true, file: false },
  }),
  authorizationMode: spec<string>({
    key: 'authorization.mode',
    flag: { name: 'authorization-mode' },
    type: 'string',
    defaults: { flags: 'AlwaysAllow', file: 'Webhook' },
  }),
  readOnlyPort: spec<number>({
    key: 'readOnlyPort',
    flag: { name: 'read-only-port' },
    type: 'integer',
    defaults: { flags: 10255, file: 0 },
  }),
  clientCAFile: spec<string>({
    key: 'authentication.x509.clientCAFile',
    flag: { name: 'client-ca-file' },
    type: 'string',
    defaults: { flags: '', file: '' },
    path: true,
  }),
  protectKernelDefaults: spec<boolean>({
    key: 'protectKernelDefaults',
    flag: { name: 'protect-kernel-defaults' },
    type: 'boolean',
    defaults: { flags: false, file: false },
  }),
  makeIPTablesUtilChains: spec<boolean>({
    key: 'makeIPTablesUtilChains',
    flag: { name: 'make-iptables-util-chains' },
    type: 'boolean',
    defaults: { flags: true, file: true },
  }),
  // Not defaulted by v1beta1: false in both modes (kubeadm writes rotateCertificates: true).
  rotateCertificates: spec<boolean>({
    key: 'rotateCertificates',
    flag: { name: 'rotate-certificates' },
    type: 'boolean',
    defaults: { flags: false, file: false },
  }),
  serverTLSBootstrap: spec<boolean>({
    key: 'serverTLSBootstrap',
    flag: { name: 'rotate-server-certificates' },
    type: 'boolean',
    defaults: { flags: false, file: false },
  }),
  // Beta and on by default since Kubernetes 1.12.
  rotateKubeletServerCertificate: spec<boolean>({
    key: 'featureGates.RotateKubeletServerCertificate',
    flag: { featureGate: 'RotateKubeletServerCertificate' },
    type: 'boolean',
    defaults: { flags: true, file: true },
  }),
  tlsCertFile: spec<string>({
    key: 'tlsCertFile',
    flag: { name: 'tls-cert-file' },
    type: 'string',
    defaults: { flags: '', file: '' },
    path: true,
  }),
} as const;

type Settings = typeof SETTINGS;
type ValueOf<S> = S extends SettingSpec<infer T> ? T : never;

/** A value the kubelet would refuse (wrong type, not a number): the setting is then unknown. */
export interface InvalidValue {
  source: Exclude<SettingSource, { kind: 'default' }>;
  key: string;
  problem: string;
}

export interface EffectiveKubeletConfig {
  mode: ConfigMode;
  /** --config (host path), when given. */
  configFile?: string;
  /** --config-dir (host path), when given. */
  configDir?: string;
  /** --kubeconfig: not a KubeletConfiguration field, a flag only; "" when not given. */
  kubeconfig: string;
  /** --cert-dir (flag only), default /var/lib/kubelet/pki. */
  certDir: string;
  /**
   * Each setting's value and where it came from; undefined when unknown: a config layer could not
   * be read and no flag sets it, or its value is invalid.
   */
  settings: { [K in keyof Settings]: SettingValue<ValueOf<Settings[K]>> | undefined };
  invalid: InvalidValue[];
}

/** The kubelet's default --cert-dir. */
const DEFAULT_CERT_DIR = '/var/lib/kubelet/pki';

function coerce(type: ValueType, value: unknown): { value: unknown } | { problem: string } {
  // The kubelet decodes strictly typed: "false" in quotes is a string, not a boolean.
  const seen = JSON.stringify(value);
  if (type === 'boolean') {
    return typeof value === 'boolean' ? { value } : { problem: `${seen} is not a boolean` };
  }
  if (type === 'integer') {
    return typeof value === 'number' && Number.isInteger(value)
      ? { value }
      : { problem: `${seen} is not an integer` };
  }
  return typeof value === 'string' ? { value } : { problem: `${seen} is not a string` };
}

function coerceFlag(type: ValueType, text: string): { value: unknown } | { problem: string } {
  if (type === 'boolean') {
    const value = parseGoBool(text);
    return value === undefined ? { problem: `"${text}" is not a boolean` } : { value };
  }
  if (type === 'integer') {
    const value = parseGoInt32(text);
    return value === undefined ? { problem: `"${text}" is not a 32-bit integer` } : { value };
  }
  return { value: text };
}

/** A value as YAML would show it. */
export function show(value: unknown): string {
  return typeof value === 'string' ? (value === '' ? '""' : value) : JSON.stringify(value);
}

/** The flag occurrence that sets a setting (the last one; for a gate, the last naming it). */
function flagSetting(
  commandLine: KubeletCommandLine,
  flag: SettingSpec<unknown>['flag'],
): { flag: KubeletFlag; text: string } | { flag: KubeletFlag; problem: string } | undefined {
  if ('name' in flag) {
    const found = commandLine.last.get(flag.name);
    return found === undefined ? undefined : { flag: found, text: found.value };
  }
  let result:
    { flag: KubeletFlag; text: string } | { flag: KubeletFlag; problem: string } | undefined;
  for (const occurrence of commandLine.flags) {
    if (occurrence.name !== 'feature-gates') continue;
    const gates = parseFeatureGates(occurrence.value);
    if (gates === undefined) {
      result = { flag: occurrence, problem: `"${occurrence.value}" is not a list of NAME=BOOL` };
      continue;
    }
    const enabled = gates.get(flag.featureGate);
    if (enabled !== undefined) result = { flag: occurrence, text: String(enabled) };
  }
  return result;
}

function absolutePath(value: unknown, base: string): unknown {
  return typeof value === 'string' && value !== '' && !value.startsWith('/')
    ? path.posix.join(base, value)
    : value;
}

function resolveSetting<T>(
  setting: SettingSpec<T>,
  mode: ConfigMode,
  configFile: string | undefined,
  layers: readonly ConfigLayer[],
  commandLine: KubeletCommandLine,
  invalid: InvalidValue[],
): SettingValue<T> | undefined {
  // Every layer that sets it, in the order the kubelet applies them.
  const found: { value: unknown; source: SettingSource }[] = [];
  let unknown = false;
  for (const layer of layers) {
    if (layer.document === undefined) {
      unknown = true;
      continue;
    }
    const source: SettingSource = { kind: layer.kind, path: layer.path, key: setting.key };
    const lookup = lookupKey(layer.document, setting.key);
    if (lookup.state === 'unset') continue;
    if (lookup.state === 'invalid') {
      invalid.push({ source, key: setting.key, problem: `${lookup.at} is not a mapping` });
      unknown = true;
      continue;
    }
    const coerced = coerce(setting.type, lookup.value);
    if ('problem' in coerced) {
      invalid.push({ source, key: setting.key, problem: coerced.problem });
      unknown = true;
      continue;
    }
    // The kubelet resolves a relative path in its config file against the file's directory
    // (configfiles.resolveRelativePaths); a drop-in's JSON is merged as is, so a relative path
    // there is relative to the kubelet's working directory, / under systemd.
    const base = layer.kind === 'file' ? path.posix.dirname(layer.path) : '/';
    const value = setting.path === true ? absolutePath(coerced.value, base) : coerced.value;
    // A later layer setting the same key replaces an earlier one's value: it is no longer unknown.
    unknown = false;
    found.push({ value, source });
  }
  const fromFlag = flagSetting(commandLine, setting.flag);
  if (fromFlag !== undefined) {
    const source: SettingSource = { kind: 'flag', flag: fromFlag.flag };
    const coerced = 'problem' in fromFlag ? fromFlag : coerceFlag(setting.type, fromFlag.text);
    if ('problem' in coerced) {
      invalid.push({ source, key: setting.key, problem: coerced.problem });
      return undefined;
    }
    // A relative path in a flag is relative to the kubelet's working directory: / under systemd.
    const value = setting.path === true ? absolutePath(coerced.value, '/') : coerced.value;
    found.push({ value, source });
  } else if (unknown) {
    return undefined;
  }
  const winner = found.pop();
  if (winner === undefined) {
    return {
      value: setting.defaults[mode],
      source: {
        kind: 'default',
        mode,
        key: setting.key,
        ...(configFile === undefined ? {} : { configFile }),
      },
      overrides: [],
    };
  }
  return { value: winner.value as T, source: winner.source, overrides: found.reverse() };
}

function flagValue(commandLine: KubeletCommandLine, name: string): string | undefined {
  const value = commandLine.last.get(name)?.value;
  return value === undefined || value === '' ? undefined : value;
}

function absolute(hostPath: string): string {
  return hostPath.startsWith('/') ? hostPath : '/' + hostPath;
}

/** The config file and drop-in directory a command line names (host paths), if any. */
export function configSources(commandLine: KubeletCommandLine): {
  configFile?: string;
  configDir?: string;
} {
  const configFile = flagValue(commandLine, 'config');
  const configDir = flagValue(commandLine, 'config-dir');
  return {
    ...(configFile === undefined ? {} : { configFile: absolute(configFile) }),
    ...(configDir === undefined ? {} : { configDir: absolute(configDir) }),
  };
}

/**
 * The effective configuration of a kubelet run with `commandLine`, given its config file and
 * drop-ins as read (`layers`: the file first, then the drop-ins in the kubelet's order).
 */
export function resolveEffectiveConfig(
  commandLine: KubeletCommandLine,
  layers: readonly ConfigLayer[],
): EffectiveKubeletConfig {
  const { configFile, configDir } = configSources(commandLine);
  const mode: ConfigMode = configFile === undefined ? 'flags' : 'file';
  const invalid: InvalidValue[] = [];
  const settings = Object.fromEntries(
    Object.entries(SETTINGS).map(([name, setting]) => [
      name,
      resolveSetting(
        setting as SettingSpec<unknown>,
        mode,
        configFile,
        layers,
        commandLine,
        invalid,
      ),
    ]),
  ) as EffectiveKubeletConfig['settings'];
  const kubeconfig = flagValue(commandLine, 'kubeconfig');
  const certDir = flagValue(commandLine, 'cert-dir');
  return {
    mode,
    ...(configFile === undefined ? {} : { configFile }),
    ...(configDir === undefined ? {} : { configDir }),
    kubeconfig: kubeconfig === undefined ? '' : absolute(kubeconfig),
    certDir: certDir === undefined ? DEFAULT_CERT_DIR : absolute(certDir),
    settings,
    invalid,
  };
}

/** One source in words: "flag --anonymous-auth=true", "/var/lib/kubelet/config.yaml readOnlyPort: 0". */
export function describeSource(source: SettingSource, value: unknown): string {
  switch (source.kind) {
    case 'flag':
      return `flag ${flagText(source.flag)}`;
    case 'file':
      return `${source.path} ${source.key}: ${show(value)}`;
    case 'dropin':
      return `drop-in ${source.path} ${source.key}: ${show(value)}`;
    case 'default':
      return source.mode === 'flags'
        ? 'default (no --config)'
        : `default (--config ${source.configFile ?? ''} does not set ${source.key})`;
  }
}

/** Where a setting's value came from, and what it overrode: the words a finding uses. */
export function describeSetting(setting: SettingValue<unknown>): string {
  const own = describeSource(setting.source, setting.value);
  if (setting.overrides.length === 0) return own;
  return `${own} overrides ${setting.overrides.map((o) => describeSource(o.source, o.value)).join(', ')}`;
}
