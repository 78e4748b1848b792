import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  coversPortRanges,
  formatPortRanges,
  parsePortRanges,
} from '../../agent/parsers/portRanges.ts';
import {
  describeExpectation,
  evaluateExpectation,
  parseExpectation,
  valueToWrite,
} from '../../agent/parsers/sysctlExpectation.ts';
import type { Expectation } from '../../agent/parsers/sysctlExpectation.ts';

function expectation(text: string): Expectation {
  const e = parseExpectation(text);
  assert.notEqual(typeof e, 'string', `"${text}" should parse`);
  return e as Expectation;
}

test('port lists parse, merge and cover as the kernel writes them', () => {
  assert.deepEqual(parsePortRanges(''), []);
  assert.deepEqual(parsePortRanges('30000-32767'), [[30000, 32767]]);
  assert.deepEqual(parsePortRanges('8080,30000-31000,31001-32767,9000,'), [
    [8080, 8080],
    [9000, 9000],
    [30000, 32767],
  ]);
  // what the kernel refuses (EINVAL): test/checks/sysctlRealKernel.test.ts writes each to it
  assert.equal(parsePortRanges('30000 - 32767'), undefined);
  assert.equal(parsePortRanges('8080, 9000'), undefined);
  assert.equal(parsePortRanges('30000-'), undefined);
  assert.equal(parsePortRanges('70000'), undefined);
  assert.equal(parsePortRanges('5-1'), undefined);
  assert.equal(
    formatPortRanges([
      [8080, 8080],
      [30000, 32767],
    ]),
    '8080,30000-32767',
  );
  const need = parsePortRanges('30000-32767') ?? [];
  assert.equal(coversPortRanges(parsePortRanges('30000-31000,31001-32767') ?? [], need), true);
  assert.equal(coversPortRanges(parsePortRanges('30000-32000') ?? [], need), false);
  assert.equal(coversPortRanges([], need), false);
});

test('numeric expectations compare as integers, beyond 2^53', () => {
  assert.deepEqual(evaluateExpectation(expectation('>= 524288'), '1048576'), { ok: true });
  assert.deepEqual(evaluateExpectation(expectation('>= 524288'), '8192'), {
    ok: false,
    problem: 'mismatch',
  });
  assert.deepEqual(evaluateExpectation(expectation('>= 524288'), 'garbage'), {
    ok: false,
    problem: 'not-integer',
  });
  assert.deepEqual(
    evaluateExpectation(expectation('<= 9223372036854775806'), '9223372036854775807'),
    { ok: false, problem: 'mismatch' },
  );
  assert.deepEqual(evaluateExpectation(expectation('> -1'), '0'), { ok: true });
});

test('"=" compares numbers numerically and other values field by field', () => {
  assert.deepEqual(evaluateExpectation(expectation('= 1'), '01'), { ok: true });
  assert.deepEqual(evaluateExpectation(expectation('1'), '1'), { ok: true });
  assert.deepEqual(evaluateExpectation(expectation('= 32768 60999'), '32768\t60999'), { ok: true });
  assert.deepEqual(evaluateExpectation(expectation('!= 0'), '0'), {
    ok: false,
    problem: 'mismatch',
  });
});

test('"includes" checks a reserved-port list covers the NodePort range', () => {
  const nodePorts = expectation('includes 30000-32767');
  assert.deepEqual(evaluateExpectation(nodePorts, '8080,30000-32767'), { ok: true });
  assert.deepEqual(evaluateExpectation(nodePorts, ''), { ok: false, problem: 'mismatch' });
  assert.deepEqual(evaluateExpectation(nodePorts, 'junk'), { ok: false, problem: 'not-port-list' });
  // the fix keeps what an operator already reserved
  assert.equal(valueToWrite(nodePorts, '8080', undefined), '8080,30000-32767');
});

test('an "includes" list in the config may be written with spaces; the kernel\'s value may not', () => {
  // An expectation is the operator's words and never reaches the kernel: the strict grammar
  // made "includes 30000-32767, 40000" a configuration error (exit 2).
  const spaced = expectation('includes 30000 - 32767, 40000,');
  assert.equal(spaced.text, 'includes 30000-32767,40000');
  assert.deepEqual(evaluateExpectation(spaced, '30000-32767,40000'), { ok: true });
  assert.deepEqual(evaluateExpectation(spaced, '30000-32767'), { ok: false, problem: 'mismatch' });
  // the value read from /proc/sys or a sysctl.d file is still read as the kernel reads it
  assert.deepEqual(evaluateExpectation(spaced, '30000-32767, 40000'), {
    ok: false,
    problem: 'not-port-list',
  });
  assert.equal(valueToWrite(spaced, '8080', undefined), '8080,30000-32767,40000');
  assert.equal(typeof parseExpectation('includes 30000-32767,,40000'), 'string');
  assert.equal(typeof parseExpectation('includes 70000'), 'string');
});

test('bad expectations are rejected with a message saying what is accepted', () => {
  const rejected = (text: string): string => {
    const result = parseExpectation(text);
    assert.equal(typeof result, 'string', `"${text}" should be rejected`);
    return result as string;
  };
  assert.match(rejected('>= lots'), /needs an integer/);
  assert.match(rejected('includes 1-x'), /port list/);
  assert.match(rejected(''), /expected/);
});

test('typed operators are rejected, not read as "=" with a value that starts with one', () => {
  const rejected = (text: string): string => {
    const result = parseExpectation(text);
    assert.equal(
      typeof result,
      'string',
      `"${text}" should be rejected, got ${JSON.stringify(result)}`,
    );
    return result as string;
  };
  // each was accepted as "= (= 1)", "> (> 10)"-like: a finding that can never clear, and a fix
  // that would write "kernel.panic = = 1"
  assert.match(rejected('== 1'), /^"== 1" has "= 1" after "=": one operator, then the value/);
  assert.match(rejected('=> 10'), /^"=> 10" has "> 10" after "=": one operator, then the value/);
  assert.match(rejected('>= >= 5'), /has ">= 5" after ">="/);
  assert.match(rejected('=<5'), /has "<5" after "="/);
  assert.match(rejected('!1'), /^"!1" starts with "!", which is not an operator/);
  assert.match(rejected('= '), /^"=" has no value after "="/);
  assert.match(rejected('>='), /^">=" has no value after ">="/);
  assert.match(rejected('includes'), /^"includes" has no value after "includes"/);
  assert.match(rejected('  '), /^is empty/);
  // values that only contain such characters further on are values
  assert.equal(expectation('= 4 4 1 7').op, '=');
  assert.equal(expectation('!= |/bin/false').op, '!=');
});

test('values to write and descriptions read as an operator would say them', () => {
  assert.equal(valueToWrite(expectation('>= 524288'), '8192', '1048576'), '1048576');
  assert.equal(valueToWrite(expectation('>= 524288'), '8192', undefined), '524288');
  assert.equal(valueToWrite(expectation('> 5'), '1', undefined), '6');
  assert.equal(describeExpectation(expectation('>= 524288')), 'at least 524288');
  assert.equal(
    describeExpectation(expectation('includes 30000-32767')),
    'a list including 30000-32767',
  );
});
