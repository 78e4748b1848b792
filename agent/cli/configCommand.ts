// `node-auditor config`: the effective configuration, after defaults, file, env and flags.
import { loadConfig } from '../config/loadConfig.ts';
import { jsYaml } from '../parsers/yaml.ts';
import type { ConfigInputs } from '../config/loadConfig.ts';

export async function configCommand(
  inputs: ConfigInputs,
  output: string | undefined,
  out: NodeJS.WritableStream,
): Promise<number> {
  const { config, file, warnings } = await loadConfig(inputs);
  if (output === 'json') {
    out.write(JSON.stringify(config, null, 2) + '\n');
  } else {
    out.write(
      `# node-auditor effective configuration: built-in defaults < ${file ?? '(no config file)'} < NODE_AUDITOR_* environment < flags\n`,
    );
    for (const warning of warnings ?? []) out.write(`# warning: ${warning}\n`);
    const { dump } = await jsYaml();
    out.write(dump(config, { lineWidth: -1 }));
  }
  return 0;
}
