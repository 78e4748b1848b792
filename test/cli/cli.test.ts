// The command line as an operator uses it: the bundled bin, real processes, exit codes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import {
  BIN,
  REPO,
  cleanEnv,
  fixtureHost,
  requireRoot,
  runCli,
  startAgent,
  tempDir,
  writeFiles,
} from '../helpers.ts';

const HOSTS = ['compliant', 'bad-runtime', 'no-br-netfilter', 'drift', 'precedence', 'garbage'];

test('check exits 0 on a compliant node and says so', async () => {
  const r = await runCli([
    'check',
    '--host-root',
    fixtureHost('compliant'),
    '--node-name',
    'k1-node01',
  ]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^node-auditor check: node k1-node01, /);
  assert.match(r.stdout, /^sysctl\s+ok\s+\d+ms\s+none$/m);
  assert.match(r.stdout, /No problems\. Exit status 0\.\n$/);
  assert.equal(r.stderr, '');
});

test('check exits 1 with problems, and the table reads in 80 columns', async () => {
  const r = await runCli(['check', '--host-root', fixtureHost('bad-runtime')]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stdout,
    /^CRITICAL {2}fs\.inotify\.max_user_watches is 8192, needs at least 524288$/m,
  );
  assert.match(
    r.stdout,
    /^ {2}Fix:\n {4}Add this line to \/etc\/sysctl\.d\/99-kubernetes\.conf:\n {8}fs\.inotify\.max_user_watches = 1048576\n {4}then apply it: sysctl --system$/m,
  );
  assert.match(r.stdout, /7 problems \(3 critical, 4 warning\)\. Exit status 1\.\n$/);
});

test('no line of any report is wider than 80 columns', async () => {
  for (const host of HOSTS) {
    const r = await runCli(['check', '--host-root', fixtureHost(host)]);
    const wide = r.stdout.split('\n').filter((line) => line.length > 80);
    assert.deepEqual(wide, [], `${host}: lines over 80 columns`);
  }
});

test('check --output json prints the contract object', async () => {
  const r = await runCli([
    'check',
    '--output',
    'json',
    '--host-root',
    fixtureHost('no-br-netfilter'),
    '--node-name',
    'k1-node01',
  ]);
  assert.equal(r.code, 1);
  const report = JSON.parse(r.stdout) as {
    node: string;
    startedAt: string;
    checks: { id: string; status: string; durationMs: number }[];
    findings: Record<string, unknown>[];
  };
  assert.equal(report.node, 'k1-node01');
  assert.ok(!Number.isNaN(Date.parse(report.startedAt)));
  assert.deepEqual(
    report.checks.map((c) => [c.id, c.status, typeof c.durationMs]),
    [
      ['sysctl', 'problem', 'number'],
      ['logs', 'ok', 'number'],
      ['kubelet-cert', 'skipped', 'number'],
      ['container-runtime', 'ok', 'number'],
      ['inotify', 'ok', 'number'],
      ['pause', 'ok', 'number'],
      ['zombies', 'ok', 'number'],
      ['kubelet-anonymous', 'skipped', 'number'],
      ['kubelet-config', 'skipped', 'number'],
      ['apiserver-anonymous', 'skipped', 'number'],
      ['cve', 'skipped', 'number'],
      ['rbac', 'skipped', 'number'],
      ['runtime-config', 'ok', 'number'],
    ],
  );
  assert.equal(report.findings.length, 1);
  const [f] = report.findings;
  assert.deepEqual(Object.keys(f ?? {}).slice(0, 8), [
    'check',
    'id',
    'problem',
    'severity',
    'title',
    'message',
    'evidence',
    'remediation',
  ]);
  assert.equal(f?.check, 'sysctl');
  assert.equal(f?.severity, 'critical');
  assert.deepEqual(Object.keys(f?.remediation as object), ['summary', 'automatic']);
});

test('--only runs just the named checks; the others are reported as skipped', async (t) => {
  const dir = await tempDir(t);
  await writeFiles(dir, { 'c.yaml': 'checks: {sysctl: {enabled: false}}\n' });
  // disabled in config: skipped, nothing found, exit 0
  const disabled = await runCli([
    'check',
    '--output',
    'json',
    '--config',
    path.join(dir, 'c.yaml'),
    '--host-root',
    fixtureHost('bad-runtime'),
  ]);
  assert.equal(disabled.code, 0);
  const { checks } = JSON.parse(disabled.stdout) as {
    checks: { id: string; status: string; reason?: string }[];
  };
  assert.deepEqual(
    // the node checks; the others need a kubelet or a cluster and are skipped here
    checks.slice(0, 7).map((c) => [c.id, c.status, c.reason]),
    [
      ['sysctl', 'skipped', 'disabled in config'],
      ['logs', 'ok', undefined],
      [
        'kubelet-cert',
        'skipped',
        'no kubelet client certificate at /var/lib/kubelet/pki/kubelet-client-current.pem; on a kubelet node set checks.kubelet-cert.path to it (k3s: /var/lib/rancher/k3s/agent/client-kubelet.crt)',
      ],
      ['container-runtime', 'ok', undefined],
      ['inotify', 'ok', undefined],
      ['pause', 'ok', undefined],
      ['zombies', 'ok', undefined],
    ],
  );
  // --only asks for it explicitly: it runs
  const only = await runCli([
    'check',
    '--only',
    'sysctl',
    '--config',
    path.join(dir, 'c.yaml'),
    '--host-root',
    fixtureHost('bad-runtime'),
  ]);
  assert.equal(only.code, 1);
});

test('--only adds up when repeated; any other flag given twice is a usage error', async () => {
  const r = await runCli([
    'check',
    '--output',
    'json',
    '--only',
    'sysctl',
    '--only',
    'inotify,sysctl',
    '--host-root',
    fixtureHost('bad-runtime'),
  ]);
  // The second --only replaced the first: sysctl, with its criticals, was skipped, exit 0.
  assert.equal(r.code, 1, r.stderr);
  const { checks } = JSON.parse(r.stdout) as { checks: { id: string; status: string }[] };
  assert.deepEqual(
    checks.filter((c) => c.status !== 'skipped').map((c) => [c.id, c.status]),
    [
      ['sysctl', 'problem'],
      ['inotify', 'ok'],
    ],
  );
  const cases: [string[], string][] = [
    [
      ['check', '--config', 'a.yaml', '--config', 'b.yaml'],
      '--config given 2 times ("a.yaml", "b.yaml"); give it once',
    ],
    [
      ['check', '--output', 'json', '--output', 'table'],
      '--output given 2 times ("json", "table"); give it once',
    ],
    [
      ['run', '--listen', ':1', '--listen', ':2', '--listen', ':3'],
      '--listen given 3 times (":1", ":2", ":3"); give it once',
    ],
  ];
  for (const [args, message] of cases) {
    const twice = await runCli(args);
    assert.equal(twice.code, 2, args.join(' '));
    assert.ok(twice.stderr.startsWith(`node-auditor: ${message}\n`), twice.stderr);
  }
});

test('usage errors print the usage and exit 2', async () => {
  const cases: [string[], RegExp][] = [
    [['check', '--bogus'], /^node-auditor: unknown flag --bogus\n\nUsage: node-auditor <command>/],
    [
      ['frobnicate'],
      /^node-auditor: unknown command "frobnicate" \(commands: run, check, config, scan-logs, help, version\)/,
    ],
    [[], /^node-auditor: no command given/],
    [
      ['check', '--output', 'xml'],
      /^node-auditor: --output must be table or json for check, not "xml"/,
    ],
    [
      ['check', '--only', 'sysctl,nope'],
      /^node-auditor: --only: unknown check "nope" \(checks: sysctl, logs, kubelet-cert, container-runtime, inotify, pause, zombies, kubelet-anonymous, kubelet-config, apiserver-anonymous, cve, rbac, runtime-config\)/,
    ],
    [['config', '--only', 'sysctl'], /^node-auditor: --only is a flag of check, not of config/],
    [['check', 'extra'], /^node-auditor: unexpected argument "extra"/],
    [['check', '--listen'], /^node-auditor: flag --listen needs a value/],
  ];
  for (const [args, expected] of cases) {
    const r = await runCli(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    // wrapped at 80 columns, continuation lines under the message
    assert.match(r.stderr.replace(/\n {14}/g, ' '), expected);
    assert.equal(r.stdout, '');
    const lines = r.stderr.trimEnd().split('\n');
    assert.deepEqual(
      lines.filter((line) => line.length > 80),
      [],
      `${args.join(' ')}: lines over 80 columns`,
    );
    // A short usage, so the error is still on the screen: not the 30 lines of --help.
    assert.ok(lines.length <= 9, `${args.join(' ')}: ${lines.length} lines:\n${r.stderr}`);
    assert.equal(
      lines.slice(-3).join('\n'),
      'Usage: node-auditor <command> [flags]\nCommands: run, check, config, scan-logs FILE...\nRun node-auditor --help for what each does and every flag.',
    );
  }
});

test('configuration errors name the key and the file, exit 2, and print no usage', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'config.yaml');
  await writeFiles(dir, { 'config.yaml': 'checks:\n  sysctl:\n    interval: soon\n' });
  for (const command of ['check', 'run', 'config']) {
    const r = await runCli([command, '--config', file, '--listen', '127.0.0.1:0']);
    assert.equal(r.code, 2, command);
    assert.equal(
      r.stderr,
      `node-auditor: invalid configuration:\n${file}: checks.sysctl.interval: invalid duration "soon" (use e.g. 500ms, 30s, 5m, 1h)\n`,
    );
  }
  const missing = await runCli(['check', '--config', path.join(dir, 'nope.yaml')]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /cannot read config file .*nope\.yaml: no such file/);
});

test('run refuses a config file that is a FIFO at once (exit 2); check and config read a pipe', async (t) => {
  const dir = await tempDir(t);
  const fifo = path.join(dir, 'config.yaml');
  const made = spawnSync('mkfifo', [fifo]);
  assert.equal(made.status, 0, String(made.stderr));
  // Read with readFile, a FIFO waits for a writer that never comes: run hung. run reads the
  // file again on every change and SIGHUP, which a pipe cannot give.
  const r = await runCli(['run', '--config', fifo, '--listen', '127.0.0.1:0'], {
    timeoutMs: 5000,
  });
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr,
    `node-auditor: cannot read config file ${fifo}: not a regular file (it is a FIFO); run reads its config file again on every change and on SIGHUP, so it must be a file (check, config and scan-logs read a pipe once)\n`,
  );
  // check and config read the configuration once: `--config <(...)` works, as it did before
  // FIFOs were refused
  for (const command of ['config', 'check --only sysctl']) {
    const piped = spawnSync(
      'bash',
      [
        '-c',
        `exec "$0" "$1" ${command} --output json --host-root "$2" --config <(printf 'nodeName: from-a-pipe\\n'; sleep 0.3; printf 'checks: {sysctl: {interval: 5m}}\\n')`,
        process.execPath,
        BIN,
        fixtureHost('compliant'),
      ],
      { encoding: 'utf8', env: cleanEnv(), timeout: 20_000 },
    );
    assert.equal(piped.status, 0, `${command}: ${piped.stderr}`);
    const out = JSON.parse(piped.stdout) as {
      nodeName?: string;
      node?: string;
      checks: unknown;
    };
    assert.equal(out.nodeName ?? out.node, 'from-a-pipe', command);
  }
  // /dev/null stays the way to say "no file" (over $NODE_AUDITOR_CONFIG)
  const none = await runCli(['config', '--config', '/dev/null']);
  assert.equal(none.code, 0, none.stderr);
});

test('run with a kubeconfig that is a FIFO is refused at once, exit 2', async (t) => {
  const dir = await tempDir(t);
  const fifo = path.join(dir, 'kubeconfig');
  const made = spawnSync('mkfifo', [fifo]);
  assert.equal(made.status, 0, String(made.stderr));
  // Read with readFile, it held start-up for good (and a SIGTERM waited for it).
  const r = await runCli(
    [
      'run',
      '--kubeconfig',
      fifo,
      '--listen',
      '127.0.0.1:0',
      '--host-root',
      fixtureHost('compliant'),
    ],
    { timeoutMs: 10_000, env: { NODE_AUDITOR_STATE_DIR: dir } },
  );
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stderr, `node-auditor: kubeconfig ${fifo}: not a regular file (it is a FIFO)\n`);
});

test('what was set from the environment is named with its variable', async () => {
  const r = await runCli(['check'], { env: { NODE_AUDITOR_CONFIG: '/nope.yaml' } });
  assert.equal(r.code, 2);
  assert.equal(
    r.stderr,
    'node-auditor: cannot read config file /nope.yaml (from NODE_AUDITOR_CONFIG): no such file\n',
  );
  // A KUBECONFIG naming no readable file: Kubernetes off, and the skip says why (it said
  // "no kubeconfig, not in a cluster", while a kubeconfig was named).
  const rbac = await runCli(['check', '--only', 'rbac', '--output', 'json'], {
    env: { KUBECONFIG: '/nonexistent' },
  });
  assert.equal(rbac.code, 0, rbac.stderr);
  const { checks } = JSON.parse(rbac.stdout) as { checks: { id: string; reason?: string }[] };
  assert.equal(
    checks.find((c) => c.id === 'rbac')?.reason,
    'no Kubernetes API: no file KUBECONFIG names can be read (/nonexistent: no such file)',
  );
});

test("a config that shortens only a check's timeout runs, its default probe limit lowered", async (t) => {
  const dir = await tempDir(t);
  await writeFiles(dir, { 'c.yaml': 'checks:\n  container-runtime: {timeout: 3s}\n' });
  // probeTimeout's default is 3s too: this file was exit 2 ("probeTimeout must be shorter than
  // timeout") although it set no probeTimeout, and run crash-looped on it.
  const r = await runCli([
    'check',
    '--only',
    'container-runtime',
    '--config',
    path.join(dir, 'c.yaml'),
    '--host-root',
    fixtureHost('compliant'),
  ]);
  assert.equal(r.code, 0, r.stderr);
  const [warning] = r.stderr
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { event: string; msg: string });
  assert.equal(warning?.event, 'config.adjusted');
  assert.match(warning.msg, /probeTimeout is lowered from its default 3s to 1\.5s/);
});

test('config prints the effective configuration, YAML or JSON', async (t) => {
  const dir = await tempDir(t);
  await writeFiles(dir, { 'c.yaml': 'checks:\n  sysctl:\n    interval: 5m\n' });
  const yaml = await runCli(
    ['config', '--config', path.join(dir, 'c.yaml'), '--node-name', 'k1-node01'],
    { env: { NODE_AUDITOR_LOG__LEVEL: 'debug' } },
  );
  assert.equal(yaml.code, 0, yaml.stderr);
  assert.match(
    yaml.stdout,
    /^# node-auditor effective configuration: built-in defaults < .*c\.yaml < NODE_AUDITOR_\* environment < flags$/m,
  );
  assert.match(yaml.stdout, /^nodeName: k1-node01$/m);
  assert.match(yaml.stdout, /^ {4}interval: 5m$/m);
  assert.match(yaml.stdout, /^ {2}level: debug$/m);
  const json = await runCli(['config', '--output', 'json']);
  const config = JSON.parse(json.stdout) as {
    checks: { sysctl: { profile: Record<string, { expect: string }> } };
  };
  assert.equal(
    config.checks.sysctl.profile['net.ipv4.ip_local_reserved_ports']?.expect,
    'includes 30000-32767',
  );
});

test('--help and --version', async () => {
  const help = await runCli(['--help']);
  assert.equal(help.code, 0);
  assert.match(help.stdout, /^Usage: node-auditor <command> \[flags\]/);
  assert.deepEqual(
    help.stdout.split('\n').filter((line) => line.length > 80),
    [],
    '--help fits 80 columns',
  );
  // every check id is listed under --only
  assert.match(help.stdout.replace(/\n {22}/g, ' '), /, cve, rbac, runtime-config\)\n/);
  assert.match(
    help.stdout.replace(/\n {22}/g, ' '),
    /Exit 0 none, 1 some \(warning or critical\), 2 usage error or an input that cannot be read\./,
  );
  const version = await runCli(['--version']);
  assert.match(version.stdout, /^node-auditor \d+\.\d+\.\d+ \(node v\d+/);
  // as commands too, the way people type them first
  const helpCommand = await runCli(['help']);
  assert.equal(helpCommand.code, 0, helpCommand.stderr);
  assert.equal(helpCommand.stdout, help.stdout);
  const versionCommand = await runCli(['version']);
  assert.equal(versionCommand.code, 0, versionCommand.stderr);
  assert.equal(versionCommand.stdout, version.stdout);
});

test("help COMMAND and COMMAND --help print that command's usage", async () => {
  // `help check` was "unknown command "help" (commands: ..., help, version)"
  const check = await runCli(['help', 'check']);
  assert.equal(check.code, 0, check.stderr);
  assert.match(check.stdout, /^Usage: node-auditor check \[flags\]\n\nRun every check once/);
  assert.match(check.stdout, /^ {2}--only ID\[,ID\] {6}Run only these checks/m);
  assert.doesNotMatch(check.stdout, /--listen|--state-dir/, 'flags of run only');
  assert.equal((await runCli(['check', '--help'])).stdout, check.stdout);
  for (const command of ['run', 'config', 'scan-logs']) {
    const r = await runCli(['help', command]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Usage: node-auditor ${command}`));
    assert.deepEqual(
      r.stdout.split('\n').filter((line) => line.length > 80),
      [],
      `help ${command} fits 80 columns`,
    );
  }
  const scan = await runCli(['help', 'scan-logs']);
  assert.match(scan.stdout, /^Usage: node-auditor scan-logs FILE\.\.\. \[flags\]/);
  const unknown = await runCli(['help', 'frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(
    unknown.stderr,
    /^node-auditor: help: unknown command "frobnicate" \(commands: run, check, config,\s+scan-logs\)\n/,
  );
  const versionArg = await runCli(['version', 'check']);
  assert.equal(versionArg.code, 2);
  assert.match(versionArg.stderr, /^node-auditor: version takes no argument \("check"\)\n/);
});

test('a host name that is no valid node name is made one, with a warning', (t) => {
  if (!requireRoot(t, 'a UTS namespace with its own host name')) return;
  // "_" is not allowed in a node name: NODE_NAME=my_laptop is rejected, and the host name
  // My_Laptop was taken as my_laptop without a word.
  const r = spawnSync(
    'unshare',
    [
      '--uts',
      'sh',
      '-c',
      'echo My_Laptop > /proc/sys/kernel/hostname && exec "$0" "$1" check --only sysctl --output json --host-root "$2"',
      process.execPath,
      BIN,
      fixtureHost('compliant'),
    ],
    { encoding: 'utf8', env: cleanEnv() },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { node: string }).node, 'my-laptop');
  const [warning] = r.stderr
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { level: number | string; event: string; msg: string });
  assert.equal(warning?.event, 'config.adjusted');
  assert.equal(
    warning.msg,
    'the host name "My_Laptop" is not a valid Kubernetes node name; using "my-laptop" (--node-name or NODE_NAME sets it)',
  );
});

test('npx --no-install node-auditor runs the bin on Node 24 from the checkout', () => {
  const r = spawnSync('npx', ['--no-install', 'node-auditor', '--version'], {
    cwd: REPO,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^node-auditor \d+\.\d+\.\d+ \(node v24\./);
});

test('run keeps its state where --state-dir says, over NODE_AUDITOR_STATE_DIR', async (t) => {
  const flag = await tempDir(t);
  const env = await tempDir(t);
  const agent = await startAgent(
    t,
    ['--state-dir', flag, '--host-root', fixtureHost('compliant')],
    {
      env: { NODE_AUDITOR_STATE_DIR: env },
    },
  );
  assert.equal(await agent.stop(), 0);
  // the log pipeline saves its positions when it stops
  assert.deepEqual(await fs.readdir(flag), ['logs.json']);
  assert.deepEqual(await fs.readdir(env), []);
});

test('--log-level debug logs each check run: result, time, findings; trace names them', async (t) => {
  const runs = async (level: string) => {
    const r = await runCli([
      'check',
      '--log-level',
      level,
      '--only',
      'sysctl,inotify',
      '--host-root',
      fixtureHost('bad-runtime'),
    ]);
    assert.equal(r.code, 1, r.stderr);
    return r.stderr
      .split('\n')
      .filter((line) => line.startsWith('{'))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
      .filter((line) => line.event === 'check.run')
      .sort((a, b) => String(a.check).localeCompare(String(b.check)));
  };
  const debug = await runs('debug');
  assert.deepEqual(
    debug.map((l) => [l.level, l.check, l.result, l.findings, typeof l.durationMs, l.ids]),
    [
      ['debug', 'inotify', 'ok', 0, 'number', undefined],
      ['debug', 'sysctl', 'problem', 7, 'number', undefined],
    ],
  );
  const trace = await runs('trace');
  assert.ok(
    (trace[1]?.ids as string[]).includes('SysctlOutOfProfile:fs.inotify.max_user_watches'),
    JSON.stringify(trace[1]),
  );
  // info (the default of run): none of it
  assert.deepEqual(await runs('info'), []);
  // run: the HTTP requests too
  const agent = await startAgent(t, [
    '--log-level',
    'debug',
    '--host-root',
    fixtureHost('compliant'),
  ]);
  await fetch(`${agent.url}/healthz?x=1`);
  const request = await agent.waitForLog((l) => l.event === 'http.request');
  assert.deepEqual([request.method, request.path, request.status], ['GET', '/healthz', 200]);
  assert.ok(agent.logs.some((l) => l.event === 'check.run' && l.check === 'sysctl'));
});

test('run on a port already in use fails with a clear message, exit 1', async (t) => {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => server.close());
  const { port } = server.address() as net.AddressInfo;
  const r = await runCli([
    'run',
    '--listen',
    `127.0.0.1:${port}`,
    '--host-root',
    fixtureHost('compliant'),
  ]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    new RegExp(`^node-auditor: cannot listen on 127\\.0\\.0\\.1:${port}: listen EADDRINUSE`),
  );
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('log rules that do not load are configuration errors naming the key, the file and the rule', async (t) => {
  const dir = await tempDir(t);
  await writeFiles(dir, {
    'rules.yaml': [
      'checks:',
      '  logs:',
      '    rules:',
      '      - id: my-rule',
      '        title: mine',
      '        pattern: "foo(?=bar)"',
      '        problem: Mine',
      '        severity: warning',
      '',
    ].join('\n'),
    'npd.json': JSON.stringify({
      plugin: 'kmsg',
      source: 'x',
      rules: [{ type: 'temporary', reason: 'Ahead', pattern: 'a(?=b)' }],
    }),
    'disabled.yaml': 'checks:\n  logs:\n    disabledRules: [no-such-rule]\n',
  });
  await writeFiles(dir, {
    'npd.yaml': `checks:\n  logs:\n    npdConfigs: [${path.join(dir, 'npd.json')}]\n`,
  });
  const cases: [string, string][] = [
    [
      'rules.yaml',
      'checks.logs.rules[0].pattern: invalid pattern: lookahead and lookbehind are not supported (RE2 syntax) at offset 3',
    ],
    [
      'npd.yaml',
      `checks.logs.npdConfigs: ${path.join(dir, 'npd.json')}: rules[0] (Ahead): invalid pattern: lookahead and lookbehind are not supported (RE2 syntax) at offset 1`,
    ],
    [
      'disabled.yaml',
      'checks.logs.disabledRules: unknown built-in rule "no-such-rule" (built-in rules: ',
    ],
  ];
  for (const [name, message] of cases) {
    for (const command of ['check', 'run']) {
      const r = await runCli([
        command,
        '--config',
        path.join(dir, name),
        '--listen',
        '127.0.0.1:0',
      ]);
      assert.equal(r.code, 2, `${command} ${name}: ${r.stderr}`);
      assert.ok(
        r.stderr.startsWith(
          `node-auditor: invalid configuration:\n${path.join(dir, name)}: ${message}`,
        ),
        r.stderr,
      );
    }
  }
});
