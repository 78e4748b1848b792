// The shipped alert rules file, read as the tests need it: the alerting rules with their
// labels and annotations, and where the runbooks live.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { load as loadYaml } from 'js-yaml';
import { REPO } from '../helpers.ts';

export const RULES_FILE = path.join(REPO, 'chart', 'files', 'node-auditor.rules.yaml');
export const RUNBOOKS_DIR = path.join(REPO, 'docs', 'runbooks');
/** Every runbook_url is this prefix and `<alertname>.md` (the rules file's header says so). */
export const RUNBOOK_BASE = 'https://github.com/node-auditor/node-auditor/blob/main/docs/runbooks/';

export interface AlertRule {
  group: string;
  alert: string;
  expr: string;
  for?: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
}

interface RulesFile {
  groups: { name: string; rules: (Partial<AlertRule> & { record?: string })[] }[];
}

export async function loadAlertRules(file = RULES_FILE): Promise<AlertRule[]> {
  const parsed = loadYaml(await fs.readFile(file, 'utf8')) as RulesFile;
  const rules: AlertRule[] = [];
  for (const group of parsed.groups) {
    for (const rule of group.rules) {
      if (rule.alert === undefined) continue; // recording rules have no page
      rules.push({
        group: group.name,
        alert: rule.alert,
        expr: rule.expr ?? '',
        ...(rule.for === undefined ? {} : { for: rule.for }),
        labels: rule.labels ?? {},
        annotations: rule.annotations ?? {},
      });
    }
  }
  return rules;
}

/** The alert names, each once, in file order. */
export function alertNames(rules: readonly AlertRule[]): string[] {
  return [...new Set(rules.map((r) => r.alert))];
}
