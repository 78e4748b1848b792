// node-problem-detector system-log-monitor configs load unchanged and behave as in NPD: kmsg,
// journald and filelog monitors; a pattern must match up to the end of the newest message
// (NPD appends \z); a multi-line pattern is matched against the monitor's last bufferSize
// messages; skipList lines are skipped; a permanent rule carries its condition.
import assert from 'node:assert/strict';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadNpdRules, selectRules } from '../../agent/rules/catalogue.ts';
import { parseNpdConfig } from '../../agent/rules/npdConfig.ts';
import { RuleSet } from '../../agent/rules/ruleSet.ts';
import type { LogRecord } from '../../agent/sources/logRecord.ts';
import { recordFromSyslogLine } from '../../agent/sources/logRecord.ts';
import { REPO, tempDir } from '../helpers.ts';

const NPD = path.join(REPO, 'test', 'fixtures', 'npd');
const NOW = Date.parse('2026-11-22T12:00:00Z');

async function npdRuleSet(...files: string[]): Promise<RuleSet> {
  return new RuleSet(
    await selectRules({
      disabledRules: [],
      rules: [],
      npdConfigs: files.map((f) => path.join(NPD, f)),
    }),
  );
}

function kmsg(message: string): LogRecord {
  return {
    source: 'kmsg',
    kind: 'kmsg',
    identifier: 'kernel',
    message,
    line: `kernel: ${message}`,
    time: NOW,
    timeKnown: true,
  };
}

/** Ids of the NPD rules a record matches (the built-ins match some of the same lines). */
function npdMatches(set: RuleSet, record: LogRecord): string[] {
  return set
    .evaluate(record)
    .filter((m) => m.kind === 'match' && m.rule.id.startsWith('npd/'))
    .map((m) => m.rule.id);
}

describe('node-problem-detector configs', () => {
  it('a kmsg monitor: temporary rules are problems, permanent ones set their condition', async () => {
    const set = await npdRuleSet('kernel-monitor.json');
    const oom = set.rules.find((r) => r.id === 'npd/kernel-monitor/oomkilling');
    assert.equal(oom?.problem, 'OOMKilling');
    assert.equal(oom.origin, path.join(NPD, 'kernel-monitor.json'));
    assert.equal(oom.condition, undefined);
    assert.equal(oom.clear.quietMs, 10 * 60_000);
    const aufs = set.rules.find((r) => r.id === 'npd/kernel-monitor/aufsumounthung');
    assert.equal(aufs?.condition, 'KernelDeadlock');
    assert.equal(aufs.clear.onReboot, true);

    assert.deepEqual(
      npdMatches(
        set,
        kmsg(
          'Killed process 4242 (java) total-vm:8388608kB, anon-rss:4194304kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:8448kB oom_score_adj:-997',
        ),
      ),
      ['npd/kernel-monitor/oomkilling'],
    );
    assert.deepEqual(
      npdMatches(
        set,
        kmsg('INFO: task umount.aufs:21568 blocked for more than 120 seconds.'),
      ).sort(),
      ['npd/kernel-monitor/aufsumounthung', 'npd/kernel-monitor/taskhung'],
    );
    // NPD compiles pattern + "\z": the match must reach the end of the message.
    assert.deepEqual(
      npdMatches(
        set,
        kmsg('INFO: task umount.aufs:21568 blocked for more than 120 seconds. (and then some)'),
      ),
      [],
    );
    // Only kernel messages: the same text in a file or the journal is not this monitor's.
    const fromFile = recordFromSyslogLine(
      'Nov 22 12:00:00 k1 kernel: INFO: task umount.aufs:21568 blocked for more than 120 seconds.',
      '/var/log/syslog',
      NOW,
    );
    assert.deepEqual(npdMatches(set, fromFile), []);
  });

  it('a multi-line pattern matches across the monitor’s last messages', async () => {
    const set = await npdRuleSet('kernel-monitor.json');
    const lines = [
      'INFO: task docker:20744 blocked for more than 120 seconds.',
      '      Tainted: G           C    4.4.0-104-generic #127-Ubuntu',
      '"echo 0 > /proc/sys/kernel/hung_task_timeout_secs" disables this message.',
      'docker          D ffff8801b8a2fc58     0 20744      1 0x00000000',
      ' ffff8801b8a2fc58 ffffffff81e11500 ffff8800b8c1c600 ffff8801b8a30000',
    ];
    const matched = lines.map((line) => npdMatches(set, kmsg(line)));
    assert.deepEqual(matched.slice(0, 4), [['npd/kernel-monitor/taskhung'], [], [], []]);
    assert.deepEqual(matched[4], ['npd/kernel-monitor/dockerhung']);
  });

  it('a journald monitor reads its SYSLOG_IDENTIFIER, and the journal source is told to pass it', async () => {
    const set = await npdRuleSet('docker-monitor.json');
    const line =
      'Error trying v2 registry: failed to register layer: rename /var/lib/docker/image/overlay/layerdb/tmp/write-set-1 /var/lib/docker/image/overlay/layerdb/sha256/4c1b: directory not empty';
    const record = (identifier: string): LogRecord => ({
      source: 'journald',
      kind: 'journald',
      identifier,
      message: line,
      line,
      time: NOW,
      timeKnown: true,
    });
    assert.deepEqual(npdMatches(set, record('dockerd')), ['npd/docker-monitor/corruptdockerimage']);
    assert.deepEqual(npdMatches(set, record('containerd')), []);
    assert.ok(set.journaldIdentifiers().includes('dockerd'));
  });

  it('a filelog monitor: its file is followed, its message pattern finds the message, skipList applies', async () => {
    const set = await npdRuleSet('custom-filelog.json');
    assert.deepEqual(set.monitorPaths(), ['/var/log/kern.log']);
    const line = (text: string) =>
      recordFromSyslogLine(
        `Nov 22 12:00:00 k1-node01 kernel: [ 9432.854807] ${text}`,
        '/var/log/kern.log',
        NOW,
      );
    const full = 'nf_conntrack: nf_conntrack: table full, dropping packet';
    assert.deepEqual(npdMatches(set, line(full)), [
      'npd/kernel-monitor-file/nf-conntrack-table-full',
    ]);
    assert.equal(set.rules.at(-1)?.problem, 'NfConntrackTableFull');
    assert.deepEqual(npdMatches(set, line(`audit: ${full}`)), [], 'skipList');
    // Another file's lines are not this monitor's.
    const elsewhere = recordFromSyslogLine(
      `Nov 22 12:00:00 k1-node01 kernel: [ 9432.854807] ${full}`,
      '/var/log/syslog',
      NOW,
    );
    assert.deepEqual(npdMatches(set, elsewhere), []);
  });

  it('a config that is not NPD’s, or a rule pattern that is not RE2, is refused with the file and rule named', async (t) => {
    const dir = await tempDir(t);
    const write = async (name: string, doc: unknown) => {
      const file = path.join(dir, name);
      await fs.writeFile(file, typeof doc === 'string' ? doc : JSON.stringify(doc));
      return file;
    };
    const base = JSON.parse(
      await fs.readFile(path.join(NPD, 'kernel-monitor.json'), 'utf8'),
    ) as Record<string, unknown> & { rules: Record<string, unknown>[] };
    const cases: [string, unknown, RegExp][] = [
      ['garbage.json', '{"plugin": ', /garbage\.json: not JSON/],
      [
        'plugin.json',
        { ...base, plugin: 'custom' },
        /plugin\.json: plugin: plugin must be filelog, journald or kmsg/,
      ],
      [
        'lookahead.json',
        { ...base, rules: [{ type: 'temporary', reason: 'Ahead', pattern: 'foo(?=bar)' }] },
        /lookahead\.json: rules\[0\] \(Ahead\): .*pattern/,
      ],
      [
        'filelog.json',
        { ...base, plugin: 'filelog' },
        /filelog\.json: a filelog monitor needs logPath and pluginConfig\.message/,
      ],
    ];
    for (const [name, doc, expected] of cases) {
      const file = await write(name, doc);
      await assert.rejects(loadNpdRules([file]), expected, name);
    }
    await assert.rejects(
      loadNpdRules([path.join(dir, 'absent.json')]),
      /absent\.json: cannot read it \(no such file\)/,
    );
    // Parsing alone (no file): every rule, in order, with unique ids.
    const rules = parseNpdConfig(
      JSON.stringify({ ...base, rules: [base.rules[0], base.rules[0]] }),
      'x.json',
    );
    assert.deepEqual(
      rules.map((r) => r.spec.id),
      ['npd/kernel-monitor/oomkilling', 'npd/kernel-monitor/oomkilling-2'],
    );
  });
});
