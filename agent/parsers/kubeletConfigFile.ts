// A KubeletConfiguration file (the kubelet's --config, or one of its --config-dir drop-ins) ->
// its document. The kubelet reads YAML (or JSON) with sigs.k8s.io/yaml, which is go-yaml v2
// underneath: YAML 1.1 scalars ("enabled: yes" is true), and in its lenient pass a repeated key
// is allowed and the last one counts. Both are mirrored here. A file the kubelet would refuse
// (not YAML, empty, not a mapping, not a KubeletConfiguration) is an error with its reason and,
// for a YAML error, the line and column.
import { describeError } from '../errors.ts';
import { jsYaml } from './yaml.ts';

export type KubeletConfigDocument = Record<string, unknown>;

export type ParsedKubeletConfig =
  | { ok: true; document: KubeletConfigDocument }
  | { ok: false; reason: string; line?: number; column?: number };

const API_GROUP = 'kubelet.config.k8s.io/';

function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function parseKubeletConfigFile(text: string): Promise<ParsedKubeletConfig> {
  if (text.trim() === '' || text.split('\n').every((line) => /^\s*(#.*)?$/.test(line))) {
    return { ok: false, reason: 'the file is empty (the kubelet refuses an empty config file)' };
  }
  const { YAML11_SCHEMA, YAMLException, load } = await jsYaml();
  let document: unknown;
  try {
    document = load(text, { schema: YAML11_SCHEMA, json: true });
  } catch (error) {
    if (error instanceof YAMLException) {
      const mark = error.mark;
      return {
        ok: false,
        reason: error.reason,
        ...(mark === undefined ? {} : { line: mark.line + 1, column: mark.column + 1 }),
      };
    }
    return { ok: false, reason: describeError(error) };
  }
  if (!isMapping(document)) {
    return {
      ok: false,
      reason: `the top level is ${Array.isArray(document) ? 'a list' : `a ${typeof document}`}, not a mapping`,
    };
  }
  const kind = document.kind;
  const apiVersion = document.apiVersion;
  // The kubelet decodes by kind and apiVersion: without them it does not know what the file is.
  if (kind !== 'KubeletConfiguration' || typeof apiVersion !== 'string') {
    return {
      ok: false,
      reason: `kind is ${JSON.stringify(kind ?? null)} and apiVersion ${JSON.stringify(apiVersion ?? null)}; the kubelet needs kind: KubeletConfiguration and apiVersion: kubelet.config.k8s.io/v1beta1`,
    };
  }
  if (!apiVersion.startsWith(API_GROUP)) {
    return {
      ok: false,
      reason: `apiVersion ${apiVersion} is not in the ${API_GROUP.slice(0, -1)} group`,
    };
  }
  return { ok: true, document };
}

export type ConfigLookup =
  /** Not in the document (or null, which the kubelet treats as not set). */
  | { state: 'unset' }
  | { state: 'set'; value: unknown }
  /** A key on the way is not a mapping ("authentication: true"): the kubelet refuses that. */
  | { state: 'invalid'; at: string };

/** The value at a dotted key ("authentication.anonymous.enabled"). */
export function lookupKey(document: KubeletConfigDocument, key: string): ConfigLookup {
  let node: unknown = document;
  const parts = key.split('.');
  for (const [i, part] of parts.entries()) {
    if (node === null || node === undefined) return { state: 'unset' };
    if (!isMapping(node)) return { state: 'invalid', at: parts.slice(0, i).join('.') };
    node = Object.hasOwn(node, part) ? node[part] : undefined;
  }
  return node === null || node === undefined ? { state: 'unset' } : { state: 'set', value: node };
}
