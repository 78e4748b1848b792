// The two host actions of remediation, inotify-limits and kernel-networking, as plan -> apply
// (-> verify -> roll back) units. No Kubernetes, no D-Bus: module loading is injected.
//
// What the agent owns, and nothing else: one sysctl.d file per action and one modules-load.d
// file. Each is rewritten whole (same inputs, same bytes: a second run is nothingToDo), starts
// with a header saying node-auditor manages it, and records the runtime value each key had
// before the agent set it. A file at that path without the header is someone else's: refused.
//
// Why the names start with "zz-": procps `sysctl --system` and systemd-sysctl both apply the
// *.conf files of /etc/sysctl.d, /run/sysctl.d, /usr/local/lib/sysctl.d, /usr/lib/sysctl.d and
// /lib/sysctl.d sorted by file name in byte order, whatever the directory, and the last
// explicit assignment of a key wins (over any glob). "zz-" sorts after the digits and the
// lowercase names operators and distributions use (99-sysctl.conf, 99-kubernetes-cri.conf,
// k8s.conf), so ours comes last. One thing comes later and no name can beat it: procps applies
// /etc/sysctl.conf itself once more at the very end (systemd-sysctl does not). A key that file
// (or anything else applied after ours) sets to a value short of the target is reported in the
// plan (persist[].overriddenBy) and left alone: the agent never edits a file it does not own.
// Both are judged by the sysctl check's model (PersistedSysctls.withFile), not a copy of it.
import path from 'node:path';
import { readPersistedSysctls } from '../../checks/sysctl/persistedSysctls.ts';
import { bootModuleSource, isBuiltinModule } from '../../checks/sysctl/persistedModules.ts';
import type { Applier, PersistedSysctls } from '../../checks/sysctl/persistedSysctls.ts';
import { AuditorError, ErrorCode, describeError } from '../../errors.ts';
import type { HostRoot } from '../../host/hostRoot.ts';
import { parseSysctlConf } from '../../parsers/sysctlConf.ts';
import { evaluateExpectation, parseExpectation } from '../../parsers/sysctlExpectation.ts';
import type { Expectation } from '../../parsers/sysctlExpectation.ts';
import { HostWriteError, HostWriter } from '../hostWriter.ts';

export type HostActionName = 'inotify-limits' | 'kernel-networking';

/** The files the agent owns (the chart mounts their directories read-write). */
export const OWNED_FILES = {
  'inotify-limits': { sysctl: '/etc/sysctl.d/zz-node-auditor-inotify-limits.conf' },
  'kernel-networking': {
    sysctl: '/etc/sysctl.d/zz-node-auditor-kernel-networking.conf',
    modules: '/etc/modules-load.d/zz-node-auditor-kernel-networking.conf',
  },
} as const;

/** What kernel-networking sets: forwarding for pod traffic, bridged traffic through iptables. */
export const KERNEL_NETWORKING_SYSCTLS = [
  'net.ipv4.ip_forward',
  'net.bridge.bridge-nf-call-iptables',
  'net.bridge.bridge-nf-call-ip6tables',
] as const;
export const BR_NETFILTER = 'br_netfilter';

const MANAGED = '# Managed by node-auditor';
const FILE_MODE = 0o644;
/** How long the module may take to appear after loadModule (systemd runs modprobe for it). */
const DEFAULT_MODULE_TIMEOUT_MS = 10_000;
const MODULE_POLL_MS = 100;

export interface SysctlChange {
  key: string;
  /** The runtime value when planned; undefined when the key did not exist (module not loaded). */
  before: string | undefined;
  after: string;
}

export interface PersistTarget {
  key: string;
  /** What the persisted value must meet, as the sysctl profile says it: ">= 1048576", "= 1". */
  expect: string;
  /**
   * A host file applied after ours that sets the key short of the target (/etc/sysctl.conf
   * under procps, most often), or (no value) cancels it with a "-key" line (systemd-sysctl):
   * the value will not survive that applier, and the agent will not edit a file it does not
   * own. Verification does not hold the action to this key.
   */
  overriddenBy?: { applier: Applier; file: string; line: number; value?: string };
}

export interface ActionPlan {
  action: HostActionName;
  /** Runtime values to set, in the order they are set. */
  changes: SysctlChange[];
  /** Owned files to (re)write; only those whose content changes. */
  files: { path: string; before: string | null; after: string }[];
  /** Kernel modules to load (not loaded now). */
  modules: string[];
  /** How each key must read in the host's config files afterwards. */
  persist: PersistTarget[];
  /** What the plan could not see or will not fix (unreadable config files, overridden keys). */
  warnings: string[];
  nothingToDo: boolean;
}

export interface KeyOutcome {
  key: string;
  /** As read right before the agent wrote it (undefined: did not exist). */
  before: string | undefined;
  /** As read back at the end: the new value, or the restored one after a rollback. */
  after: string | undefined;
}

export interface ActionResult {
  action: HostActionName;
  /**
   * applied: every step done and verified. rolled_back: a step failed or a read-back differed,
   * and everything changed was put back (and read back). failed: the action could not start
   * (stale plan, nothing changed), or putting things back failed too (see hostLeftChanged).
   */
  outcome: 'applied' | 'rolled_back' | 'failed';
  /** One sentence: what was done, or what went wrong. */
  reason: string;
  keys: KeyOutcome[];
  files: { path: string; written: boolean; restored: boolean }[];
  /** Modules loaded by this run. They stay loaded after a rollback (see applyPlan). */
  modulesLoaded: string[];
  /** True when a rollback could not restore everything: the host differs from before. */
  hostLeftChanged: boolean;
  /** Errors met while rolling back, each naming what it could not restore. */
  rollbackErrors: string[];
  warnings: string[];
}

export interface PlanOptions {
  /** The clock the file's records use (tests pin it). */
  now?: () => Date;
}

export interface ApplyDeps {
  /**
   * Load a kernel module. In the agent: restart systemd-modules-load.service over D-Bus, after
   * the modules-load.d file naming it is written. applyPlan then waits for /sys/module/<name>.
   */
  loadModule(name: string): Promise<void>;
  /** How long to wait for the module and its sysctls to appear (default 10 s). */
  moduleTimeoutMs?: number;
}

interface KeySpec {
  key: string;
  expectation: Expectation;
  /** The value written when the runtime value does not meet the expectation. */
  target: string;
}

/** What our own file says about one key: the assignment and the record comment above it. */
interface OwnedLine {
  value: string;
  comment: string;
}

const MAX_SYSCTL_INT = 2_147_483_647;

/**
 * Plan inotify-limits: raise fs.inotify.max_user_watches and max_user_instances to the targets
 * at runtime and persist them. A value already above its target is never lowered.
 */
export async function planInotifyLimits(
  host: HostRoot,
  targets: { maxUserWatches: number; maxUserInstances: number },
  options: PlanOptions = {},
): Promise<ActionPlan> {
  const specs: KeySpec[] = [
    atLeast('fs.inotify.max_user_watches', targets.maxUserWatches),
    atLeast('fs.inotify.max_user_instances', targets.maxUserInstances),
  ];
  const sysctl = await planSysctls(
    host,
    'inotify-limits',
    OWNED_FILES['inotify-limits'].sysctl,
    specs,
    options,
  );
  return finish('inotify-limits', sysctl, [], undefined);
}

/**
 * Plan kernel-networking: load br_netfilter (and persist it in modules-load.d) so the
 * net.bridge keys exist, then set forwarding and the bridge keys to 1 and persist them.
 */
export async function planKernelNetworking(
  host: HostRoot,
  options: PlanOptions = {},
): Promise<ActionPlan> {
  const owned = OWNED_FILES['kernel-networking'];
  const specs = KERNEL_NETWORKING_SYSCTLS.map((key) => equalTo(key, '1'));
  const [sysctl, modulesFile] = await Promise.all([
    planSysctls(host, 'kernel-networking', owned.sysctl, specs, options),
    readOwned(host, owned.modules),
  ]);
  // The keys exist: br_netfilter is in the kernel, loaded or built in (then nothing to load or
  // persist; the sysctl check judges it the same way).
  const bridgeKeysExist = sysctl.runtime
    .filter(({ key }) => key.startsWith('net.bridge.'))
    .every(({ value }) => value !== undefined);
  const builtIn = bridgeKeysExist && (await isBuiltinModule(host, BR_NETFILTER));
  const modules = bridgeKeysExist ? [] : [BR_NETFILTER];

  const ownModules = parseOwnedModules(modulesFile);
  const listedElsewhere = (await bootModuleSource(host, BR_NETFILTER, owned.modules)) !== undefined;
  const now = (options.now ?? (() => new Date()))().toISOString();
  let moduleLine: { name: string; comment: string } | undefined;
  if (modules.length > 0 && (ownModules.has(BR_NETFILTER) || !listedElsewhere)) {
    moduleLine = {
      name: BR_NETFILTER,
      comment: `# ${BR_NETFILTER}: was not loaded; loaded by node-auditor at ${now}`,
    };
  } else if (ownModules.has(BR_NETFILTER)) {
    moduleLine = { name: BR_NETFILTER, comment: ownModules.get(BR_NETFILTER) as string };
  } else if (!builtIn && !listedElsewhere) {
    moduleLine = {
      name: BR_NETFILTER,
      comment: `# ${BR_NETFILTER}: already loaded; persisted by node-auditor at ${now}`,
    };
  }
  // At boot systemd-sysctl runs after systemd-modules-load, so the net.bridge keys persisted
  // in sysctl.d find the module loaded.
  let modulesPlan: { path: string; before: string | null; after: string } | undefined;
  if (moduleLine !== undefined || modulesFile !== null) {
    const after =
      header('kernel-networking') +
      (moduleLine === undefined ? '' : `${moduleLine.comment}\n${moduleLine.name}\n`);
    if (after !== modulesFile) modulesPlan = { path: owned.modules, before: modulesFile, after };
  }
  return finish('kernel-networking', sysctl, modules, modulesPlan);
}

/**
 * Carry out a plan: write the modules-load.d file, load the modules and wait for them, set each
 * runtime value and read it back, write the sysctl.d file, then verify everything once more
 * (runtime values, modules, and what the host's config files now persist, judged as the sysctl
 * check judges it). When a step fails or a read-back differs, everything changed is put back
 * in reverse order (files and runtime values). A loaded module is left loaded: unloading
 * br_netfilter would change how live bridged traffic is filtered, at once.
 */
export async function applyPlan(
  writer: HostWriter,
  plan: ActionPlan,
  deps: ApplyDeps,
): Promise<ActionResult> {
  const result: ActionResult = {
    action: plan.action,
    outcome: 'applied',
    reason: 'nothing to do: every value is set and persisted',
    keys: [],
    files: [],
    modulesLoaded: [],
    hostLeftChanged: false,
    rollbackErrors: [],
    warnings: [...plan.warnings],
  };
  if (plan.nothingToDo) return result;
  const undo: { what: string; run: () => Promise<void> }[] = [];
  try {
    await checkNotStale(writer, plan);
    const isModulesFile = (file: { path: string }) => file.path.startsWith('/etc/modules-load.d/');
    // Written before loading: in the agent, loading is systemd-modules-load reading this file.
    for (const file of plan.files.filter(isModulesFile))
      await writeOwned(writer, file, result, undo);
    for (const name of plan.modules) {
      await deps.loadModule(name);
      result.modulesLoaded.push(name);
      await waitForModule(writer, name, plan, deps.moduleTimeoutMs ?? DEFAULT_MODULE_TIMEOUT_MS);
    }
    for (const change of plan.changes) {
      const before = await writer.writeSysctl(change.key, change.after);
      const outcome: KeyOutcome = { key: change.key, before, after: undefined };
      result.keys.push(outcome);
      undo.push({ what: `sysctl ${change.key}`, run: () => restoreSysctl(writer, outcome) });
      outcome.after = await writer.readSysctl(change.key);
      expectReadBack(change, outcome.after);
    }
    for (const file of plan.files.filter((f) => !isModulesFile(f)))
      await writeOwned(writer, file, result, undo);
    await verify(writer, plan, result);
    result.reason = describeApplied(plan);
    return result;
  } catch (error) {
    const reason = describeError(error);
    if (undo.length === 0) {
      result.outcome = 'failed';
      result.reason = `${reason}; nothing was changed`;
      return result;
    }
    for (const step of undo.reverse()) {
      try {
        await step.run();
      } catch (rollbackError) {
        result.rollbackErrors.push(`${step.what}: ${describeError(rollbackError)}`);
      }
    }
    // The keys as they read now, whatever the rollback managed.
    for (const key of result.keys)
      key.after = await writer.readSysctl(key.key).catch(() => undefined);
    result.hostLeftChanged = result.rollbackErrors.length > 0;
    result.outcome = result.hostLeftChanged ? 'failed' : 'rolled_back';
    result.reason = result.hostLeftChanged
      ? `${reason}; rolling back failed too: ${result.rollbackErrors.join('; ')}`
      : `${reason}; everything changed was put back`;
    return result;
  }
}

// ---- planning ----

interface SysctlPart {
  changes: SysctlChange[];
  file: { path: string; before: string | null; after: string } | undefined;
  persist: PersistTarget[];
  warnings: string[];
  runtime: { key: string; value: string | undefined }[];
}

function atLeast(key: string, target: number): KeySpec {
  // The config schema checks this too; a caller that skipped it must not reach /proc/sys.
  if (!Number.isSafeInteger(target) || target < 1 || target > MAX_SYSCTL_INT)
    throw new AuditorError(
      ErrorCode.ConfigInvalid,
      `target for ${key} must be a whole number from 1 to ${MAX_SYSCTL_INT}, got ${target}`,
    );
  return { key, expectation: expectation(`>= ${target}`), target: String(target) };
}

function equalTo(key: string, value: string): KeySpec {
  return { key, expectation: expectation(`= ${value}`), target: value };
}

function expectation(text: string): Expectation {
  const parsed = parseExpectation(text);
  if (typeof parsed === 'string') throw new TypeError(`bad expectation ${text}: ${parsed}`);
  return parsed;
}

function meets(spec: { expectation: Expectation }, value: string | undefined): boolean {
  return value !== undefined && evaluateExpectation(spec.expectation, value).ok;
}

async function planSysctls(
  host: HostRoot,
  action: HostActionName,
  filePath: string,
  specs: KeySpec[],
  options: PlanOptions,
): Promise<SysctlPart> {
  const writer = new HostWriter(host);
  const [persisted, ownText, ...runtime] = await Promise.all([
    readPersistedSysctls(host),
    readOwned(host, filePath),
    ...specs.map((spec) => writer.readSysctl(spec.key)),
  ]);
  refuseSameNameElsewhere(persisted, filePath);
  const own = parseOwnedSysctls(ownText);
  const now = (options.now ?? (() => new Date()))().toISOString();
  const warnings = persisted.unreadable.map(
    (u) => `${u.path} cannot be read (${u.error}): what it persists was not taken into account`,
  );
  const changes: SysctlChange[] = [];
  const persist: PersistTarget[] = [];
  const lines: string[] = [];
  const written = new Set<string>(); // the keys our file sets
  specs.forEach((spec, i) => {
    const value = runtime[i];
    const ownLine = own.get(spec.key);
    const runtimeOk = meets(spec, value);
    const persistedOk = persisted.views(spec.key).every((view) => meets(spec, view.winner?.value));
    if (!runtimeOk) changes.push({ key: spec.key, before: value, after: spec.target });
    // Our line: when we set the key now (it records the old value), when our earlier line
    // still meets the target (kept byte for byte: idempotent), or when nothing else persists it.
    let line: { value: string; comment: string } | undefined;
    if (!runtimeOk) {
      const was = value === undefined ? 'did not exist' : `was ${value}`;
      line = {
        value: spec.target,
        comment: `# ${spec.key}: ${was} at runtime; set to ${spec.target} by node-auditor at ${now}`,
      };
    } else if (ownLine !== undefined && meets(spec, ownLine.value)) {
      line = ownLine;
    } else if (!persistedOk) {
      line = {
        value: value as string,
        comment: `# ${spec.key}: ${value as string} at runtime, left as is; persisted by node-auditor at ${now}`,
      };
    }
    if (line !== undefined) {
      lines.push(line.comment, `${spec.key} = ${line.value}`);
      written.add(spec.key);
    }
    persist.push({ key: spec.key, expect: spec.expectation.text });
  });
  const after = header(action) + lines.map((l) => `${l}\n`).join('');
  // What would still beat our lines once the file is written, under the same precedence rules
  // the sysctl check judges the host by (procps' /etc/sysctl.conf pass at the end, most often).
  const withOurs = persisted.withFile(filePath, after);
  persist.forEach((target, i) => {
    if (!written.has(target.key)) return;
    const spec = specs[i] as KeySpec;
    const views = withOurs.views(target.key);
    const beaten = views.find(
      (v) => v.winner !== undefined && v.winner.file !== filePath && !meets(spec, v.winner.value),
    );
    if (beaten?.winner !== undefined) {
      const { file: by, line, value } = beaten.winner;
      target.overriddenBy = { applier: beaten.applier, file: by, line, value };
      warnings.push(
        `${by}:${line} sets ${target.key} = ${value} and ${beaten.applier} applies it after ${filePath}; the value set now will not survive it (node-auditor does not edit files it does not own)`,
      );
      return;
    }
    // a "-key" after our line: systemd-sysctl then sets nothing for it at boot
    const cancelled = views.find((v) => v.winner === undefined && v.excludedBy !== undefined);
    if (cancelled?.excludedBy === undefined) return;
    const { file: by, line, key } = cancelled.excludedBy;
    target.overriddenBy = { applier: cancelled.applier, file: by, line };
    warnings.push(
      `${by}:${line} has "-${key}" and ${cancelled.applier} applies it after ${filePath}, leaving the key unset at boot; the value set now will not survive a reboot (node-auditor does not edit files it does not own)`,
    );
  });
  let file: SysctlPart['file'];
  if ((lines.length > 0 || ownText !== null) && after !== ownText)
    file = { path: filePath, before: ownText, after };
  return {
    changes,
    file,
    persist,
    warnings,
    runtime: specs.map((spec, i) => ({ key: spec.key, value: runtime[i] })),
  };
}

function finish(
  action: HostActionName,
  sysctl: SysctlPart,
  modules: string[],
  modulesFile: { path: string; before: string | null; after: string } | undefined,
): ActionPlan {
  const files = [modulesFile, sysctl.file].filter((f) => f !== undefined);
  return {
    action,
    changes: sysctl.changes,
    files,
    modules,
    persist: sysctl.persist,
    warnings: sysctl.warnings,
    nothingToDo: sysctl.changes.length === 0 && files.length === 0 && modules.length === 0,
  };
}

const INSTEAD: Record<HostActionName, string> = {
  'inotify-limits': "change the action's targets (maxUserWatches, maxUserInstances)",
  'kernel-networking': 'disable the action',
};

function header(action: HostActionName): string {
  const instead = INSTEAD[action];
  return (
    `${MANAGED}, remediation action ${action}. The agent rewrites this file whole:\n` +
    `# edits here are lost; ${instead} in the node-auditor configuration instead.\n`
  );
}

/** Our file's content, or null; a file there that we did not write is refused. */
async function readOwned(host: HostRoot, hostPath: string): Promise<string | null> {
  const text = await new HostWriter(host).readFile(hostPath);
  if (text !== null && !text.startsWith(MANAGED))
    throw new HostWriteError(
      hostPath,
      'exists and is not managed by node-auditor; refusing to overwrite it',
    );
  return text;
}

/**
 * A file of our name in /run or /usr/lib would be hidden by ours in /etc (same name, earlier
 * directory): creating ours would silently switch off all of its settings.
 */
function refuseSameNameElsewhere(persisted: PersistedSysctls, filePath: string): void {
  const name = path.posix.basename(filePath);
  const other = persisted.files.find(
    (f) => f.path !== filePath && path.posix.basename(f.path) === name,
  );
  if (other !== undefined)
    throw new HostWriteError(
      filePath,
      `${other.path} has the same name, and a file here would hide it`,
    );
}

function parseOwnedSysctls(text: string | null): Map<string, OwnedLine> {
  const owned = new Map<string, OwnedLine>();
  if (text === null) return owned;
  const lines = text.split('\n');
  for (const a of parseSysctlConf(text).assignments) {
    const comment = lines[a.line - 2] ?? '';
    // A line without our record above it was not written by us: rewrite it with one.
    if (comment.startsWith(`# ${a.key}: `)) owned.set(a.key, { value: a.value, comment });
  }
  return owned;
}

function parseOwnedModules(text: string | null): Map<string, string> {
  const owned = new Map<string, string>();
  if (text === null) return owned;
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    const name = line.trim();
    const comment = lines[i - 1] ?? '';
    if (name !== '' && !name.startsWith('#') && comment.startsWith(`# ${name}: `))
      owned.set(name, comment);
  });
  return owned;
}

// ---- applying ----

/** Apply acts on the state it planned against; anything else changed in between is not ours to overwrite. */
async function checkNotStale(writer: HostWriter, plan: ActionPlan): Promise<void> {
  for (const change of plan.changes) {
    if (change.before === undefined) continue; // appears with the module
    const now = await writer.readSysctl(change.key);
    if (now !== change.before)
      throw new HostWriteError(
        `sysctl ${change.key}`,
        `changed since the plan (${change.before} -> ${now ?? 'missing'}); plan again`,
      );
  }
  for (const file of plan.files) {
    if ((await writer.readFile(file.path)) !== file.before)
      throw new HostWriteError(file.path, 'changed since the plan; plan again');
  }
}

async function writeOwned(
  writer: HostWriter,
  file: ActionPlan['files'][number],
  result: ActionResult,
  undo: { what: string; run: () => Promise<void> }[],
): Promise<void> {
  const outcome = { path: file.path, written: false, restored: false };
  result.files.push(outcome);
  const previous = await writer.writeFileAtomic(file.path, file.after, { mode: FILE_MODE });
  outcome.written = true;
  undo.push({
    what: file.path,
    run: async () => {
      await writer.restoreFile(file.path, previous, { mode: FILE_MODE });
      if ((await writer.readFile(file.path)) !== previous)
        throw new HostWriteError(file.path, 'reads back otherwise after restoring it');
      outcome.restored = true;
    },
  });
}

async function restoreSysctl(writer: HostWriter, key: KeyOutcome): Promise<void> {
  // Created by loading the module: there is no earlier value to go back to.
  if (key.before === undefined) return;
  await writer.writeSysctl(key.key, key.before);
  const now = await writer.readSysctl(key.key);
  if (now !== key.before)
    throw new HostWriteError(
      `sysctl ${key.key}`,
      `reads ${now ?? 'missing'} after restoring ${key.before}`,
    );
}

function expectReadBack(change: SysctlChange, value: string | undefined): void {
  // Numbers compare as numbers: the kernel prints "01" back as "1".
  if (!meets({ expectation: expectation(`= ${change.after}`) }, value))
    throw new HostWriteError(
      `sysctl ${change.key}`,
      `reads back ${value ?? 'missing'}, not ${change.after}`,
    );
}

async function waitForModule(
  writer: HostWriter,
  name: string,
  plan: ActionPlan,
  timeoutMs: number,
): Promise<void> {
  const bridgeKeys = plan.changes.filter((c) => c.before === undefined).map((c) => c.key);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const loaded = await writer.host.exists(`/sys/module/${name}`);
    const missing: string[] = [];
    for (const key of bridgeKeys)
      if ((await writer.readSysctl(key)) === undefined) missing.push(key);
    if (loaded && missing.length === 0) return;
    if (Date.now() >= deadline) {
      const what = loaded
        ? `${missing.join(', ')} did not appear`
        : `/sys/module/${name} did not appear`;
      throw new HostWriteError(`module ${name}`, `loaded, but ${what} within ${timeoutMs} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, MODULE_POLL_MS));
  }
}

/** Everything once more, after every step: a later write may have undone an earlier one. */
async function verify(writer: HostWriter, plan: ActionPlan, result: ActionResult): Promise<void> {
  for (const change of plan.changes) {
    const value = await writer.readSysctl(change.key);
    const key = result.keys.find((k) => k.key === change.key);
    if (key !== undefined) key.after = value;
    expectReadBack(change, value);
  }
  for (const name of plan.modules) {
    if (!(await writer.host.exists(`/sys/module/${name}`)))
      throw new HostWriteError(`module ${name}`, `/sys/module/${name} is gone`);
  }
  for (const file of plan.files) {
    if ((await writer.readFile(file.path)) !== file.after)
      throw new HostWriteError(file.path, 'reads back otherwise than written');
  }
  const persisted = await readPersistedSysctls(writer.host);
  for (const target of plan.persist) {
    if (target.overriddenBy !== undefined) continue; // known before acting, reported in warnings
    const spec = { expectation: expectation(target.expect) };
    for (const view of persisted.views(target.key)) {
      if (!meets(spec, view.winner?.value)) {
        const where =
          view.winner === undefined
            ? 'nothing'
            : `${view.winner.value} (${view.winner.file}:${view.winner.line})`;
        throw new HostWriteError(
          `sysctl ${target.key}`,
          `${view.applier} would apply ${where} after this change, not ${target.expect}`,
        );
      }
    }
  }
}

/** What a successful apply of the plan says it did (a dry run says the same). */
export function describeApplied(plan: ActionPlan): string {
  const parts: string[] = [];
  if (plan.modules.length > 0) parts.push(`loaded ${plan.modules.join(', ')}`);
  if (plan.changes.length > 0)
    parts.push(`set ${plan.changes.map((c) => `${c.key} = ${c.after}`).join(', ')}`);
  if (plan.files.length > 0) parts.push(`wrote ${plan.files.map((f) => f.path).join(', ')}`);
  return parts.join('; ');
}
