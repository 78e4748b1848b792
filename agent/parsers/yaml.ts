// js-yaml, loaded the first time a YAML document is read or written, not at start-up.
//
// Evaluating js-yaml costs about 3 MiB of RSS (bench/RESULTS.md, "what the agent's memory
// is"), and an agent started without a config file, on a host whose kubelet has no config
// file, reads no YAML at all. node-cron is loaded the same way (config/configSchema.ts).
import type * as JsYaml from 'js-yaml';

let loading: Promise<typeof JsYaml> | undefined;

export function jsYaml(): Promise<typeof JsYaml> {
  loading ??= import('js-yaml');
  return loading;
}
