// RE2 syntax as node-problem-detector's rules use it (Go's regexp), translated to RegExps V8 can
// run in linear time, and the literals the prefilter looks for.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Re2SyntaxError, parseRe2 } from '../../agent/rules/regex/re2Syntax.ts';
import { canMatchNewline, re2ToRegExp } from '../../agent/rules/regex/re2ToRegExp.ts';
import { requiredLiterals } from '../../agent/rules/regex/requiredLiterals.ts';

function compile(pattern: string, anchorEnd = false): RegExp {
  return re2ToRegExp(parseRe2(pattern), { anchorEnd });
}

function matches(pattern: string, text: string): boolean {
  return compile(pattern).test(text);
}

describe('RE2 syntax to RegExp', () => {
  it('matches what Go would for the patterns node-problem-detector ships', () => {
    const oom = 'Killed process \\d+ (.+) total-vm:\\d+kB, anon-rss:\\d+kB, file-rss:\\d+kB.*';
    assert.ok(
      matches(
        oom,
        'Memory cgroup out of memory: Killed process 63214 (uwsgi) total-vm:3149468kB, anon-rss:164992kB, file-rss:52176kB, shmem-rss:92kB, UID:0 pgtables:1372kB oom_score_adj:986',
      ),
    );
    assert.ok(!matches(oom, 'oom_reaper: reaped process 63214 (uwsgi), now anon-rss:0kB'));
    const hung = 'task [\\S ]+:\\w+ blocked for more than \\w+ seconds\\.';
    assert.ok(matches(hung, 'INFO: task jbd2/sda1-8:123 blocked for more than 120 seconds.'));
    assert.ok(!matches(hung, 'INFO: task jbd2/sda1-8:123 blocked for more than 120 seconds'));
    assert.ok(
      matches(
        'Started (Kubernetes kubelet|kubelet.service|kubelet.service - Kubernetes kubelet|kubelet.service - kubelet: The Kubernetes Node Agent).',
        'Started kubelet.service - kubelet: The Kubernetes Node Agent.',
      ),
    );
  });

  it('anchors at the end like node-problem-detector (pattern + \\z), not at the start', () => {
    const divide = compile('divide error: 0000 \\[#\\d+\\] SMP', true);
    assert.ok(divide.test('divide error: 0000 [#1] SMP'));
    assert.ok(divide.test('Oops: divide error: 0000 [#1] SMP'));
    assert.ok(!divide.test('divide error: 0000 [#1] SMP PTI'));
  });

  it('keeps RE2 meanings that differ from JavaScript', () => {
    // \s is [\t\n\f\r ] (no \v), \d and \w are ASCII, . is anything but \n (including \r).
    assert.ok(!matches('^\\s$', '\v'));
    assert.ok(!matches('^\\d$', '٣'));
    assert.ok(!matches('^\\w$', 'é'));
    assert.ok(matches('^a.b$', 'a\rb'));
    assert.ok(!matches('^a.b$', 'a\nb'));
    assert.ok(matches('(?s)^a.b$', 'a\nb'));
    // $ without (?m) is the end of the text only.
    assert.ok(!compile('a$').test('a\nb'));
  });

  it('resolves (?i) into explicit sets, in any scope', () => {
    assert.ok(matches('(?i)pleg is NOT healthy', 'PLEG is not healthy'));
    assert.ok(matches('a(?i)b|c', 'aB'));
    assert.ok(matches('a(?i)b|c', 'C'));
    assert.ok(matches('x(?i:y)z', 'xYz'));
    assert.ok(!matches('x(?i:y)z', 'xYZ'));
    assert.ok(matches('(?i)[a-c]+', 'ABC'));
    assert.ok(!matches('(?i)^[^a]$', 'A'));
    assert.ok(matches('(?i)straße', 'STRAßE'));
    // The emitted RegExp carries no i or u flag (the linear engine refuses them).
    assert.equal(compile('(?i)abc').flags, '');
  });

  it('supports classes, POSIX classes, escapes, \\Q...\\E, counted and lazy repeats, named groups', () => {
    assert.ok(matches('^[[:alpha:]]+[[:digit:]]{2}$', 'abc12'));
    assert.ok(!matches('^[[:^space:]]+$', 'a b'));
    assert.ok(matches('^[]a]+$', ']a]'));
    assert.ok(matches('^[a-]+$', 'a-a'));
    assert.ok(matches('^\\x41\\x{42}\\103\\t$', 'ABC\t'));
    assert.ok(matches('^\\Q.*+?\\E$', '.*+?'));
    assert.ok(matches('^a{2,3}$', 'aaa'));
    assert.ok(!matches('^a{2,3}$', 'aaaa'));
    assert.ok(matches('^a{2,}$', 'aaaa'));
    assert.ok(matches('^x{,2}$', 'x{,2}'), 'a brace that is not a repeat is a literal');
    assert.ok(matches('^(?P<pid>\\d+) (?<comm>\\w+)$', '12 sh'));
    assert.equal(compile('<(.+?)>').exec('<a><b>')?.[1], 'a');
    assert.ok(matches('^\\pL+$', 'Ωmega'));
    assert.ok(matches('^\\p{Greek}+$', 'Ωλ'));
    assert.ok(!matches('^\\P{L}$', 'a'));
    assert.ok(matches('caf\\x{e9}', 'café'));
    assert.ok(matches('^😀$', '😀'));
  });

  it('refuses what RE2 refuses, naming the problem and where', () => {
    const cases: [string, RegExp][] = [
      ['(a)\\1', /backreferences are not supported/],
      ['foo(?=bar)', /lookahead and lookbehind are not supported/],
      ['(?<!x)y', /lookahead and lookbehind are not supported/],
      ['a**', /invalid nested repetition operator/],
      ['*a', /missing argument to repetition operator/],
      ['a{1001}', /invalid repeat count/],
      ['a{3,2}', /invalid repeat count/],
      ['(abc', /missing closing \)/],
      ['abc)', /unexpected \)/],
      ['[abc', /missing closing \]/],
      ['[z-a]', /invalid character class range/],
      ['\\Z', /invalid escape sequence/],
      ['\\p{Klingon}', /invalid character class range/],
      ['abc\\', /trailing backslash/],
      ['[[:klingon:]]', /invalid character class range/],
    ];
    for (const [pattern, message] of cases) {
      assert.throws(
        () => parseRe2(pattern),
        (error: unknown) => error instanceof Re2SyntaxError && message.test(error.message),
        pattern,
      );
    }
  });

  it('runs catastrophic patterns in linear time instead of hanging', () => {
    const started = performance.now();
    const evil = compile('^(a+)+$');
    assert.equal(evil.test('a'.repeat(40) + '!'), false);
    assert.equal(compile('(x+x+)+y').test('x'.repeat(5000)), false);
    assert.equal(compile('(?i)^(a|A)*$').test('a'.repeat(40) + '!'), false);
    // Backtracking would take hours on these inputs; the linear engine takes milliseconds.
    assert.ok(performance.now() - started < 2000, `took ${performance.now() - started} ms`);
  });

  it('says whether a pattern can span lines (node-problem-detector buffers several)', () => {
    assert.equal(canMatchNewline(parseRe2('task [\\S ]+:\\w+ blocked')), false);
    assert.equal(canMatchNewline(parseRe2('Oops.*')), false);
    assert.equal(canMatchNewline(parseRe2('a\\s+b')), true);
    assert.equal(canMatchNewline(parseRe2('a[^x]b')), true);
    assert.equal(canMatchNewline(parseRe2('(?s)a.b')), true);
  });
});

describe('required literals (the prefilter)', () => {
  const literals = (pattern: string) => requiredLiterals(parseRe2(pattern));

  it('finds the most selective literal of a concatenation, case folded', () => {
    assert.deepEqual(literals('inotify_add_watch .*: no space left on device'), [
      ': no space left on device',
    ]);
    assert.deepEqual(literals('(?i)PLEG is not healthy'), ['pleg is not healthy']);
    assert.deepEqual(literals('Killed process \\d+ (.+) total-vm:\\d+kB'), ['killed process ']);
  });

  it('gives one literal per alternative, or none when an alternative has none', () => {
    assert.deepEqual(literals('(Started|Stopped) kubelet')?.sort(), [
      'started kubelet',
      'stopped kubelet',
    ]);
    assert.deepEqual(literals('colou?r scheme'), ['color scheme', 'colour scheme']);
    assert.equal(literals('(error|.*)'), undefined);
    assert.equal(literals('.*'), undefined);
    assert.equal(literals('a\\d'), undefined, 'too short to be worth looking for');
  });

  it('cuts literals at non-ASCII characters (the scanner folds ASCII only)', () => {
    assert.deepEqual(literals('café au lait'), [' au lait']);
  });

  it('every literal it names occurs in every line the pattern matches', () => {
    const pattern = '(?i)(kubelet|k3s)\\.service: (Main process exited|Failed with result)';
    const re = compile(pattern);
    const lits = literals(pattern) ?? [];
    assert.ok(lits.length > 0);
    for (const line of [
      'kubelet.service: Main process exited, code=exited, status=1/FAILURE',
      "K3S.service: failed with result 'exit-code'.",
    ]) {
      assert.ok(re.test(line));
      assert.ok(
        lits.some((l) => line.toLowerCase().includes(l)),
        line,
      );
    }
  });
});
