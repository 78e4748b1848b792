// Load the configuration once: embedded defaults < config file (YAML or JSON) < environment
// < flags. Validate the merged result with the one schema, then freeze it. Every error names
// the setting and where its value came from (the file, the env var or the flag); the CLI exits
// 2 on them, a reload keeps the old configuration.
import * as fs from '../host/asyncFs.ts';
import os from 'node:os';
import path from 'node:path';
import type { Logger } from 'pino';
import * as v from 'valibot';
import { CHECKS } from '../checks/registry.ts';
import type { Check } from '../checks/check.ts';
import { AuditorError, ErrorCode, fileErrorReason } from '../errors.ts';
import { closestName } from '../parsers/closestName.ts';
import { jsYaml } from '../parsers/yaml.ts';
import { configSchema, stepLimitKeys } from './configSchema.ts';
import { formatDuration, parseDuration } from './duration.ts';
import { crossFieldKeys } from './schemaParts.ts';
import type { Config } from './configSchema.ts';
import { describeSchema, keysAt } from './schemaWalk.ts';
import type { AnySchema, SchemaNode } from './schemaWalk.ts';

/** Flags that set a configuration value, and the setting each one sets. */
export const CONFIG_FLAGS = {
  'host-root': ['hostRoot'],
  listen: ['listen'],
  'node-name': ['nodeName'],
  kubeconfig: ['kubeconfig'],
  'log-level': ['log', 'level'],
  'state-dir': ['stateDir'],
} as const satisfies Record<string, readonly string[]>;

export type ConfigFlag = keyof typeof CONFIG_FLAGS;

export const ENV_PREFIX = 'NODE_AUDITOR_';
/**
 * Kubernetes puts "service link" variables in every pod: a Service named node-auditor (the
 * chart's) yields NODE_AUDITOR_SERVICE_HOST, NODE_AUDITOR_PORT_9746_TCP_ADDR and so on. They are
 * not settings; treating them as typos would crash-loop every pod of the DaemonSet.
 */
const SERVICE_LINK =
  /_(SERVICE_HOST|SERVICE_PORT(_[A-Z0-9_]+)?|PORT(_\d+_(TCP|UDP|SCTP)(_(PROTO|PORT|ADDR))?)?)$/;
/** The config file path may also come from the environment (not a setting itself). */
export const CONFIG_FILE_ENV = 'NODE_AUDITOR_CONFIG';

export interface ConfigInputs {
  /** Path of a YAML or JSON config file (--config, else $NODE_AUDITOR_CONFIG). */
  file?: string | undefined;
  env?: NodeJS.ProcessEnv;
  flags?: Partial<Record<ConfigFlag, string>>;
  /**
   * The command reads the configuration once (check, config, scan-logs): the config file may
   * then be a pipe, `--config <(...)`. `run` reads it again on every change and SIGHUP, which a
   * pipe cannot give, so there it must be a file.
   */
  once?: boolean;
}

/** A pipe given as the config file (a one-shot command): read for at most this long, this much. */
export const CONFIG_PIPE_LIMITS = { timeoutMs: 30_000, maxBytes: 4 * 1024 * 1024 };

export interface LoadedConfig {
  config: Readonly<Config>;
  /** The config file that was read, if any. */
  file?: string;
  /** Its text as read: what a file watcher compares later versions with. */
  fileText?: string;
  /** What was not right but was made so (a host name turned into a node name), to log. */
  warnings?: string[];
}

const DEFAULTS_SOURCE = 'built-in defaults';

type Doc = Record<string, unknown>;
type Path = readonly PropertyKey[];
interface Layer {
  source: string;
  doc: Doc;
}

export async function loadConfig(
  inputs: ConfigInputs,
  checks: readonly Check[] = CHECKS,
): Promise<LoadedConfig> {
  const schema = configSchema(checks);
  const env = inputs.env ?? {};
  const file = inputs.file ?? nonEmpty(env[CONFIG_FILE_ENV]);
  const layers: Layer[] = [{ source: DEFAULTS_SOURCE, doc: await v.parseAsync(schema, {}) }];
  // A path from the environment is named with its variable: the operator may not know it is set.
  const fileRead =
    file === undefined
      ? undefined
      : await readConfigFile(
          file,
          inputs.file === undefined ? `${file} (from ${CONFIG_FILE_ENV})` : file,
          inputs.once === true,
        );
  if (file !== undefined && fileRead !== undefined)
    layers.push({ source: file, doc: fileRead.doc });
  layers.push(...(await envLayers(env, schema)));
  for (const [flag, setting] of Object.entries(CONFIG_FLAGS)) {
    const value = inputs.flags?.[flag as ConfigFlag];
    if (value !== undefined) layers.push({ source: `flag --${flag}`, doc: nest(setting, value) });
  }

  const provenance = new Map<string, string>();
  const merged: Doc = {};
  for (const layer of layers) mergeInto(merged, layer.doc, layer.source, [], provenance);
  const warnings = await fitStepLimits(merged, checks, provenance);

  const result = await v.safeParseAsync(schema, merged);
  if (!result.success) {
    const lines = result.issues.map((issue) => describeIssue(issue, schema, provenance));
    throw new AuditorError(
      ErrorCode.ConfigInvalid,
      `invalid configuration:\n${[...new Set(lines)].join('\n')}`,
    );
  }
  const parsed = result.output as Omit<Config, 'nodeName'> & { nodeName?: string };
  const hostRootSource = sourceOf(['hostRoot'], provenance);
  // A relative path is relative to the config file's directory when the file set it, else to
  // the working directory (a flag, a variable).
  const absolute = (key: 'hostRoot' | 'stateDir') =>
    path.resolve(
      file !== undefined && sourceOf([key], provenance) === file ? path.dirname(file) : '.',
      parsed[key],
    );
  const fromHost = parsed.nodeName === undefined ? nodeNameFromHost(os.hostname()) : undefined;
  const config: Config = {
    ...parsed,
    nodeName: parsed.nodeName ?? fromHost?.name ?? '',
    hostRoot: absolute('hostRoot'),
    stateDir: absolute('stateDir'),
  };
  await requireDirectory(config.hostRoot, hostRootSource);
  if (fromHost?.warning !== undefined) warnings.push(fromHost.warning);
  return {
    config: deepFreeze(config),
    ...(file === undefined || fileRead === undefined ? {} : { file, fileText: fileRead.text }),
    ...(warnings.length === 0 ? {} : { warnings }),
  };
}

/**
 * A check's step limit (probeTimeout, requestTimeout) must be shorter than its timeout. When
 * the step limit is the built-in default and the operator shortened only timeout
 * (container-runtime: {timeout: 3s} under the default probeTimeout 3s), the step limit is
 * lowered to half of timeout, with a warning: rejecting a configuration over a value nobody
 * wrote would crash-loop the agent after an upgrade. Half leaves the other half of the run for
 * what the check does besides that one step. A step limit the operator set is left alone: the
 * schema rejects it, naming both settings. Returns the warnings; `merged` is changed in place.
 */
async function fitStepLimits(
  merged: Doc,
  checks: readonly Check[],
  provenance: Map<string, string>,
): Promise<string[]> {
  const warnings: string[] = [];
  const sections = isPlainObject(merged.checks) ? merged.checks : {};
  for (const check of checks) {
    const section = sections[check.id];
    if (!isPlainObject(section) || typeof section.timeout !== 'string') continue;
    const timeoutMs = parseDuration(section.timeout);
    if (timeoutMs === undefined) continue;
    for (const key of stepLimitKeys(check)) {
      const value = section[key];
      const path = ['checks', check.id, key];
      if (typeof value !== 'string' || provenance.get(pathKey(path)) !== DEFAULTS_SOURCE) continue;
      const limitMs = parseDuration(value);
      if (limitMs === undefined || limitMs < timeoutMs) continue;
      const lowered = formatDuration(Math.floor(timeoutMs / 2));
      // Below the option's own minimum (a timeout of 100ms): nothing fits; the schema says so.
      if (!(await v.safeParseAsync(check.options[key] as AnySchema, lowered)).success) continue;
      section[key] = lowered;
      warnings.push(
        `${formatPath(path)} is lowered from its default ${value} to ${lowered}, half of checks.${check.id}.timeout (${section.timeout}, from ${sourceOf(['checks', check.id, 'timeout'], provenance)}), to end before the run does; set ${key} to choose another value`,
      );
    }
  }
  return warnings;
}

/**
 * The node name when no setting and no NODE_NAME gives one: the host name, lower-cased, as the
 * kubelet registers it. A host name that is no valid node name (My_Laptop: "_" is not allowed)
 * becomes one (my-laptop), with a warning: NODE_NAME=my_laptop is an error, but a host name
 * is not something the operator typed for us.
 */
export function nodeNameFromHost(hostname: string): { name: string; warning?: string } {
  const lower = hostname.toLowerCase();
  const name =
    lower
      .replace(/[^a-z0-9.-]/g, '-')
      .split('.')
      .map((label) => label.replace(/^-+|-+$/g, ''))
      .filter((label) => label !== '')
      .join('.')
      .slice(0, 253)
      .replace(/[.-]+$/, '') || 'localhost';
  if (name === lower) return { name };
  return {
    name,
    warning: `the host name "${hostname}" is not a valid Kubernetes node name; using "${name}" (--node-name or NODE_NAME sets it)`,
  };
}

/** What the command runs with, where the log begins (debug), and what was adjusted (warn). */
export function logLoaded(log: Logger, loaded: LoadedConfig): void {
  const { config } = loaded;
  for (const warning of loaded.warnings ?? []) log.warn({ event: 'config.adjusted' }, warning);
  log.debug(
    {
      event: 'config.loaded',
      file: loaded.file ?? null,
      hostRoot: config.hostRoot,
      nodeName: config.nodeName,
      stateDir: config.stateDir,
      enabledChecks: Object.entries(config.checks)
        .filter(([, settings]) => settings.enabled)
        .map(([id]) => id),
    },
    `configuration loaded from ${loaded.file ?? 'defaults, environment and flags (no file)'}`,
  );
}

/** `named`: the file as messages name it; `once`: a pipe may be read (ConfigInputs.once). */
async function readConfigFile(
  file: string,
  named: string,
  once: boolean,
): Promise<{ doc: Doc; text: string }> {
  let text: string;
  try {
    text = await fs.readRegularFile(file, once ? { pipe: CONFIG_PIPE_LIMITS } : {});
  } catch (error) {
    const fifo = (error as { kind?: unknown }).kind === 'a FIFO';
    const why =
      fileErrorReason(error) +
      (fifo
        ? '; run reads its config file again on every change and on SIGHUP, so it must be a file (check, config and scan-logs read a pipe once)'
        : '');
    throw new AuditorError(ErrorCode.ConfigUnreadable, `cannot read config file ${named}: ${why}`, {
      cause: error,
    });
  }
  // Blank or only comments (a config with everything commented out): all defaults. js-yaml
  // would call that "no document".
  if (text.split('\n').every((line) => /^\s*(#.*)?$/.test(line))) return { doc: {}, text };
  const { load: parseYaml } = await jsYaml();
  let doc: unknown;
  try {
    // YAML 1.2 core schema (JSON is YAML too): "yes" stays a string, duplicate keys are errors.
    doc = parseYaml(text, { filename: file });
  } catch (error) {
    const why =
      error instanceof Error ? (error.message.split('\n')[0] ?? error.message) : String(error);
    throw new AuditorError(
      ErrorCode.ConfigUnreadable,
      `cannot parse config file ${named}: ${why}`,
      {
        cause: error,
      },
    );
  }
  if (doc === null || doc === undefined) return { doc: {}, text };
  if (!isPlainObject(doc)) {
    throw new AuditorError(
      ErrorCode.ConfigUnreadable,
      `cannot use config file ${named}: the top level must be a mapping of settings, not ${Array.isArray(doc) ? 'a list' : typeof doc}`,
    );
  }
  return { doc, text };
}

/**
 * NODE_AUDITOR_<SETTING>: "__" separates levels, case and "-"/"_" inside a name are ignored
 * (NODE_AUDITOR_HOST_ROOT -> hostRoot, NODE_AUDITOR_CHECKS__SYSCTL__INTERVAL -> checks.sysctl.interval).
 * Also NODE_NAME (the downward API). $KUBECONFIG is not a setting: it comes after in-cluster
 * (kubernetes/kubeAccess.ts), while an explicit kubeconfig comes before it.
 */
async function envLayers(env: NodeJS.ProcessEnv, schema: AnySchema): Promise<Layer[]> {
  const layers: Layer[] = [];
  const nodeNameEnv = nonEmpty(env.NODE_NAME);
  if (nodeNameEnv !== undefined) {
    layers.push({ source: 'environment variable NODE_NAME', doc: { nodeName: nodeNameEnv } });
  }
  const names = Object.keys(env)
    .filter(
      (name) => name.startsWith(ENV_PREFIX) && name !== CONFIG_FILE_ENV && !SERVICE_LINK.test(name),
    )
    .sort();
  for (const name of names) {
    const raw = env[name] ?? '';
    const source = `environment variable ${name}`;
    const segments = name.slice(ENV_PREFIX.length).split('__');
    const path: string[] = [];
    let node: AnySchema | undefined = schema;
    let leafType = 'string';
    for (const segment of segments) {
      const described: SchemaNode | undefined =
        node === undefined ? undefined : describeSchema(node);
      if (described?.kind !== 'object') {
        throw new AuditorError(
          ErrorCode.ConfigInvalid,
          `invalid configuration:\n${source}: "${path.join('.')}" has no settings below it`,
        );
      }
      const key = described.keys.find((k) => normalizeName(k) === normalizeName(segment));
      if (key === undefined) {
        const where = path.length === 0 ? '' : ` under ${path.join('.')}`;
        throw new AuditorError(
          ErrorCode.ConfigInvalid,
          `invalid configuration:\n${source}: no setting "${segment.toLowerCase()}"${where} (known: ${described.keys.join(', ')})`,
        );
      }
      path.push(key);
      node = described.child(key);
      const below = node === undefined ? undefined : describeSchema(node);
      leafType = below?.kind === 'leaf' ? below.type : (below?.kind ?? 'string');
    }
    layers.push({ source, doc: nest(path, await envValue(raw, leafType)) });
  }
  return layers;
}

/** Strings stay strings ("0755" is not a number); other types and sections parse as YAML. */
async function envValue(raw: string, type: string): Promise<unknown> {
  if (type === 'string' || type === 'picklist') return raw;
  const { load: parseYaml } = await jsYaml();
  try {
    return parseYaml(raw);
  } catch {
    return raw;
  }
}

function mergeInto(
  target: Doc,
  layer: Doc,
  source: string,
  path: Path,
  provenance: Map<string, string>,
): void {
  for (const [key, value] of Object.entries(layer)) {
    const here = [...path, key];
    provenance.set(pathKey(here), source);
    const existing = target[key];
    if (isPlainObject(value) && isPlainObject(existing)) {
      mergeInto(existing, value, source, here, provenance);
    } else if (isPlainObject(value)) {
      const copy: Doc = {};
      mergeInto(copy, value, source, here, provenance);
      target[key] = copy;
    } else {
      target[key] = value;
    }
  }
}

function describeIssue(
  issue: v.BaseIssue<unknown>,
  schema: AnySchema,
  provenance: Map<string, string>,
): string {
  const path = (issue.path ?? []).map((item) => item.key as PropertyKey);
  if (issue.type === 'strict_object' && issue.expected === 'never') {
    // An unknown key: its path ends with the key itself.
    const key = String(path.at(-1));
    const hint = closestName(key, keysAt(schema, path.slice(0, -1)));
    return `${sourceOf(path, provenance)}: ${formatPath(path)}: unknown setting${hint === undefined ? '' : ` (did you mean "${hint}"?)`}`;
  }
  const keys =
    typeof issue.requirement === 'function' ? crossFieldKeys.get(issue.requirement) : undefined;
  if (keys !== undefined) {
    // A rule between settings: each is named with where its value came from.
    const section = isPlainObject(issue.input) ? issue.input : {};
    const named = keys.map((key) => {
      const value = section[key];
      const shown = typeof value === 'string' || typeof value === 'number' ? ` (${value})` : '';
      return {
        source: sourceOf([...path, key], provenance),
        text: formatPath([...path, key]) + shown,
      };
    });
    const listed = named.map(({ source, text }, i) =>
      i > 0 && named[i - 1]?.source === source ? text : `${source}: ${text}`,
    );
    return `${listed.join(' and ')}: ${issue.message}`;
  }
  const message =
    issue.kind === 'schema'
      ? `expected ${issue.expected ?? 'something else'}, got ${issue.received}`
      : issue.message;
  return `${sourceOf(path, provenance)}: ${formatPath(path)}: ${message}`;
}

/** Where the value at a path came from: the most specific layer that set it or a parent. */
function sourceOf(path: Path, provenance: Map<string, string>): string {
  for (let n = path.length; n > 0; n--) {
    const source = provenance.get(pathKey(path.slice(0, n)));
    if (source !== undefined) return source;
  }
  return DEFAULTS_SOURCE;
}

/** checks.sysctl.profile["fs.inotify.max_user_watches"].expect */
export function formatPath(path: Path): string {
  if (path.length === 0) return '(top level)';
  return path
    .map((segment, i) => {
      const s = String(segment);
      if (typeof segment === 'number') return `[${s}]`;
      if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(s)) return i === 0 ? s : `.${s}`;
      return `[${JSON.stringify(s)}]`;
    })
    .join('');
}

function pathKey(path: Path): string {
  return JSON.stringify(path.map(String));
}

function nest(path: readonly string[], value: unknown): Doc {
  let doc: unknown = value;
  for (let i = path.length - 1; i >= 0; i--) doc = { [path[i] as string]: doc };
  return doc as Doc;
}

async function requireDirectory(dir: string, source: string): Promise<void> {
  try {
    const stat = await fs.stat(dir);
    if (stat.isDirectory()) return;
  } catch {
    /* reported below */
  }
  throw new AuditorError(
    ErrorCode.ConfigInvalid,
    `invalid configuration:\n${source}: hostRoot: ${dir} is not a directory`,
  );
}

function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_]/g, '');
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value === '' ? undefined : value;
}

function isPlainObject(value: unknown): value is Doc {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
