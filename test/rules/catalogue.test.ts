// The built-in catalogue is data, tested like code: every rule has lines it must match and lines
// it must not, and lines that only look like problems match no rule at all.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import * as v from 'valibot';
import { CAUSES } from '../../agent/findings/causes.ts';
import { builtinRules } from '../../agent/rules/catalogue.ts';
import { parseRe2 } from '../../agent/rules/regex/re2Syntax.ts';
import { requiredLiterals } from '../../agent/rules/regex/requiredLiterals.ts';
import { RuleSet } from '../../agent/rules/ruleSet.ts';
import { ruleSpecSchema } from '../../agent/rules/ruleSpec.ts';
import { recordFromSyslogLine } from '../../agent/sources/logRecord.ts';

const FIXTURES = path.join(import.meta.dirname, '..', 'fixtures', 'logs');
const NOW = Date.parse('2026-11-22T12:00:00Z');

const rules = builtinRules();
const ruleSet = new RuleSet(rules.map((spec) => ({ spec, origin: 'built-in' })));

function matchedIds(line: string, source = '/var/log/syslog'): string[] {
  const record = recordFromSyslogLine(line, source, NOW);
  return ruleSet
    .evaluate(record)
    .filter((m) => m.kind === 'match')
    .map((m) => m.rule.id);
}

describe('built-in log rules', () => {
  it('are valid rules: they pass the schema operators’ rules must pass, every pattern RE2 that compiles', () => {
    const parsed = v.safeParse(v.array(ruleSpecSchema), rules);
    assert.ok(
      parsed.success,
      parsed.issues?.map((i) => `${v.getDotPath(i) ?? ''}: ${i.message}`).join('\n'),
    );
    assert.equal(new Set(rules.map((r) => r.id)).size, rules.length, 'ids are unique');
  });

  it('cover every NotReady cause and the kernel problems node-problem-detector ships', () => {
    const causes = new Set(rules.map((r) => r.cause));
    for (const cause of Object.keys(CAUSES)) assert.ok(causes.has(cause as never), cause);
    const problems = new Set(rules.map((r) => r.problem));
    for (const problem of [
      'OOMKilling',
      'TaskHung',
      'KernelDeadlock',
      'ReadonlyFilesystem',
      'Ext4Error',
      'XfsShutdown',
      'IOError',
      'UnregisterNetDevice',
      'KernelOops',
    ]) {
      assert.ok(problems.has(problem), problem);
    }
  });

  for (const rule of rules) {
    it(`${rule.id}: matches its examples and not its look-alikes`, () => {
      assert.ok(rule.examples !== undefined, 'every built-in rule has examples');
      assert.ok(rule.examples.match.length > 0, 'at least one line it must match');
      for (const line of rule.examples.match) {
        assert.ok(matchedIds(line).includes(rule.id), `should match: ${line}`);
      }
      for (const line of rule.examples.noMatch) {
        assert.ok(!matchedIds(line).includes(rule.id), `should not match: ${line}`);
      }
    });
  }

  it('match no line that only looks like a problem', () => {
    const lines = readFileSync(path.join(FIXTURES, 'benign.log'), 'utf8').trim().split('\n');
    assert.ok(lines.length > 30);
    for (const line of lines) assert.deepEqual(matchedIds(line), [], line);
  });

  it('each have a prefilter literal long enough to keep matching fast', () => {
    // The matcher skips ahead by up to the shortest literal of all rules: one short literal
    // slows every line down (bench/logMatch.bench.ts).
    for (const rule of rules) {
      const literals = requiredLiterals(parseRe2(rule.pattern));
      assert.ok(literals !== undefined, `${rule.id} has no literal`);
      const shortest = Math.min(...literals.map((l) => l.length));
      assert.ok(shortest >= 8, `${rule.id}: shortest literal "${literals.join('", "')}"`);
    }
  });

  it('have unique ids', () => {
    assert.equal(new Set(rules.map((r) => r.id)).size, rules.length);
  });
});
