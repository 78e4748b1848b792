// The rules in force: the built-in catalogue (builtinRules.json, data reviewed like code), minus
// the ones an operator disabled, plus operators' own rules and node-problem-detector configs.
import * as fs from '../host/asyncFs.ts';
import * as v from 'valibot';
import { fileErrorReason } from '../errors.ts';
import builtinCatalogue from './builtinRules.json' with { type: 'json' };
import { parseNpdConfig } from './npdConfig.ts';
import type { NpdRule } from './npdConfig.ts';
import type { RuleInput } from './ruleSet.ts';
import { ruleSpecSchema } from './ruleSpec.ts';
import type { RuleSpec } from './ruleSpec.ts';

/**
 * The built-in rules. Validated by test/rules/catalogue.test.ts (every pattern compiled, every
 * example matched), not at each start: parsing every pattern twice at start-up made the RE2
 * parser hot enough for V8 to optimize it on worker threads, which cost the agent megabytes of
 * resident memory for nothing.
 */
export function builtinRules(): readonly RuleSpec[] {
  return builtinCatalogue.rules as readonly RuleSpec[];
}

export function builtinRuleIds(): string[] {
  return builtinCatalogue.rules.map((r) => r.id);
}

export interface RuleSelection {
  disabledRules: readonly string[];
  rules: readonly RuleSpec[];
  npdConfigs: readonly string[];
}

/** Read and parse the node-problem-detector configs; an Error names the file and the problem. */
export async function loadNpdRules(files: readonly string[]): Promise<NpdRule[]> {
  const out: NpdRule[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await fs.readFile(file, 'utf8');
    } catch (error) {
      throw new Error(`${file}: cannot read it (${fileErrorReason(error)})`, { cause: error });
    }
    const rules = parseNpdConfig(text, file);
    for (const [i, rule] of rules.entries()) {
      const checked = v.safeParse(ruleSpecSchema, rule.spec);
      if (!checked.success) {
        throw new Error(
          `${file}: rules[${i}] (${rule.spec.problem ?? ''}): ${checked.issues[0].message}`,
        );
      }
    }
    out.push(...rules);
  }
  return out;
}

/** Built-ins (minus disabled) + the operator's rules + NPD rules, in that order. */
export async function selectRules(selection: RuleSelection): Promise<RuleInput[]> {
  const disabled = new Set(selection.disabledRules);
  const inputs: RuleInput[] = builtinRules()
    .filter((spec) => !disabled.has(spec.id))
    .map((spec) => ({ spec, origin: 'built-in' }));
  for (const spec of selection.rules) inputs.push({ spec, origin: 'config' });
  for (const { spec, monitor } of await loadNpdRules(selection.npdConfigs)) {
    inputs.push({ spec, origin: monitor.file, monitor });
  }
  return inputs;
}
