// Reading the kubelet's --config file and --config-dir drop-ins through the host root, in the
// order the kubelet applies them. The drop-in directory is walked as Go's filepath.WalkDir walks
// it (mergeKubeletConfigurations): entries in lexical order, subdirectories descended into where
// they sort, every non-directory whose name ends in ".conf" read. A file the kubelet would fail
// on (missing, unreadable, not a KubeletConfiguration) is a problem to report, never a throw.
import { describeError } from '../../errors.ts';
import type { HostRoot } from '../../host/hostRoot.ts';
import { parseKubeletConfigFile } from '../../parsers/kubeletConfigFile.ts';
import type { ConfigLayer } from './effectiveKubeletConfig.ts';

/** Enough for any real drop-in directory; a directory with more is not read further. */
const MAX_DROPINS = 64;
const MAX_DEPTH = 8;
/** A line that may hold a credential (staticPodURLHeader carries HTTP headers) is not shown. */
const SENSITIVE = /authorization|bearer|token|password|secret|credential/i;

export interface ConfigFileProblem {
  /** Host path of the file or directory. */
  path: string;
  kind: 'file' | 'dropin' | 'dropin-dir';
  /** missing: does not exist; unreadable: exists but cannot be read; invalid: the kubelet refuses it. */
  problem: 'missing' | 'unreadable' | 'invalid';
  reason: string;
  /** For a YAML error: where, and the line itself (unless it may hold a credential). */
  line?: number;
  column?: number;
  lineText?: string;
}

export interface LoadedConfig {
  /** The config file (if any), then the drop-ins in the kubelet's order. */
  layers: ConfigLayer[];
  problems: ConfigFileProblem[];
  /** Drop-in files found (host paths), for the permission audit. */
  dropins: string[];
}

function sourceLine(text: string, line: number): string {
  const raw = text.split('\n')[line - 1] ?? '';
  if (SENSITIVE.test(raw)) return '(not shown: it may hold a credential)';
  return raw.length > 120 ? `${raw.slice(0, 117)}...` : raw;
}

async function readLayer(
  host: HostRoot,
  kind: 'file' | 'dropin',
  hostPath: string,
  problems: ConfigFileProblem[],
): Promise<ConfigLayer> {
  let text: string | null;
  try {
    text = await host.readText(hostPath);
  } catch (error) {
    problems.push({ path: hostPath, kind, problem: 'unreadable', reason: describeError(error) });
    return { kind, path: hostPath, document: undefined };
  }
  if (text === null) {
    problems.push({ path: hostPath, kind, problem: 'missing', reason: 'does not exist' });
    return { kind, path: hostPath, document: undefined };
  }
  const parsed = await parseKubeletConfigFile(text);
  if (!parsed.ok) {
    problems.push({
      path: hostPath,
      kind,
      problem: 'invalid',
      reason: parsed.reason,
      ...(parsed.line === undefined
        ? {}
        : {
            line: parsed.line,
            ...(parsed.column === undefined ? {} : { column: parsed.column }),
            lineText: sourceLine(text, parsed.line),
          }),
    });
    return { kind, path: hostPath, document: undefined };
  }
  return { kind, path: hostPath, document: parsed.document };
}

/**
 * Drop-in files under a directory, in the order the kubelet merges them, added to `out`;
 * false when the directory does not exist.
 */
async function dropinFiles(
  host: HostRoot,
  dir: string,
  depth: number,
  out: string[],
): Promise<boolean> {
  const entries = await host.listDir(dir);
  if (entries === null) return false;
  for (const entry of entries) {
    if (out.length >= MAX_DROPINS) break;
    const child = `${dir.replace(/\/+$/, '')}/${entry.name}`;
    if (entry.isDirectory) {
      if (depth < MAX_DEPTH) await dropinFiles(host, child, depth + 1, out);
    } else if (entry.name.endsWith('.conf')) {
      out.push(child);
    }
  }
  return true;
}

export async function loadKubeletConfig(
  host: HostRoot,
  configFile: string | undefined,
  configDir: string | undefined,
): Promise<LoadedConfig> {
  const layers: ConfigLayer[] = [];
  const problems: ConfigFileProblem[] = [];
  const dropins: string[] = [];
  if (configFile !== undefined) layers.push(await readLayer(host, 'file', configFile, problems));
  if (configDir !== undefined) {
    let exists = false;
    try {
      exists = await dropinFiles(host, configDir, 0, dropins);
    } catch (error) {
      problems.push({
        path: configDir,
        kind: 'dropin-dir',
        problem: 'unreadable',
        reason: describeError(error),
      });
      // Drop-ins that could not be listed may set anything: what they set is unknown.
      layers.push({ kind: 'dropin', path: configDir, document: undefined });
    }
    if (!exists && problems.every((p) => p.path !== configDir)) {
      // The kubelet fails to start on a missing --config-dir; one running with it read something.
      problems.push({
        path: configDir,
        kind: 'dropin-dir',
        problem: 'missing',
        reason: 'does not exist',
      });
      layers.push({ kind: 'dropin', path: configDir, document: undefined });
    }
    for (const dropin of dropins) layers.push(await readLayer(host, 'dropin', dropin, problems));
  }
  return { layers, problems, dropins };
}
