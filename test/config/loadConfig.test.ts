import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { loadConfig } from '../../agent/config/loadConfig.ts';
import { AuditorError, ErrorCode } from '../../agent/errors.ts';
import { fixtureHost, tempDir, writeFiles } from '../helpers.ts';

async function configError(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof AuditorError, `expected an AuditorError, got ${String(error)}`);
    assert.ok(error.code === ErrorCode.ConfigInvalid || error.code === ErrorCode.ConfigUnreadable);
    return error.message;
  }
  assert.fail('expected the configuration to be rejected');
}

test('embedded defaults: every check enabled with its interval, the seed profile, port 9746', async () => {
  const { config } = await loadConfig({ env: {} });
  assert.equal(config.listen, '0.0.0.0:9746');
  assert.equal(config.hostRoot, '/');
  assert.equal(config.nodeName, os.hostname().toLowerCase());
  assert.equal(config.log.level, 'info');
  assert.equal(config.checks.sysctl?.enabled, true);
  assert.equal(config.checks.sysctl?.interval, '60s');
  const profile = config.checks.sysctl?.profile as Record<
    string,
    { expect: string; severity: string }
  >;
  assert.equal(profile['fs.inotify.max_user_watches']?.expect, '>= 524288');
  assert.equal(profile['net.ipv4.ip_forward']?.severity, 'critical');
});

test('precedence: defaults < file < environment < flags', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'config.yaml');
  await writeFiles(dir, {
    'config.yaml':
      'listen: 127.0.0.1:1111\nlog: {level: debug}\nchecks:\n  sysctl:\n    interval: 30s\n    timeout: 2s\n',
  });
  const { config } = await loadConfig({
    file,
    env: {
      NODE_AUDITOR_CHECKS__SYSCTL__INTERVAL: '45s',
      NODE_AUDITOR_LISTEN: '127.0.0.1:2222',
      NODE_NAME: 'k1-node01',
    },
    flags: { listen: '127.0.0.1:3333' },
  });
  assert.equal(config.listen, '127.0.0.1:3333'); // flag beats env beats file
  assert.equal(config.checks.sysctl?.interval, '45s'); // env beats file
  assert.equal(config.checks.sysctl?.timeout, '2s'); // file beats default
  assert.equal(config.log.level, 'debug');
  assert.equal(config.nodeName, 'k1-node01'); // NODE_NAME, the downward API's variable
});

test('a profile entry is merged field by field: overriding expect keeps the reason', async (t) => {
  const dir = await tempDir(t);
  await writeFiles(dir, {
    'c.json': JSON.stringify({
      checks: {
        sysctl: {
          profile: {
            'fs.inotify.max_user_watches': { expect: '>= 1048576' },
            'vm.max_map_count': { expect: '>= 262144', reason: 'Elasticsearch' },
          },
        },
      },
    }),
  });
  const { config } = await loadConfig({ file: path.join(dir, 'c.json'), env: {} });
  const profile = config.checks.sysctl?.profile as Record<
    string,
    { expect: string; reason: string; severity: string }
  >;
  assert.equal(profile['fs.inotify.max_user_watches']?.expect, '>= 1048576');
  assert.match(profile['fs.inotify.max_user_watches']?.reason ?? '', /cAdvisor/);
  assert.equal(profile['vm.max_map_count']?.severity, 'warning');
  assert.ok(profile['net.ipv4.ip_forward'], 'default keys stay');
});

test("a port list in a profile's expect may be written with spaces", async (t) => {
  const dir = await tempDir(t);
  await writeFiles(dir, {
    'c.yaml': [
      'checks:',
      '  sysctl:',
      '    profile:',
      '      net.ipv4.ip_local_reserved_ports: {expect: "includes 30000-32767, 40000"}',
      '',
    ].join('\n'),
  });
  const { config } = await loadConfig({ file: path.join(dir, 'c.yaml'), env: {} });
  const profile = config.checks.sysctl?.profile as Record<string, { expect: string }>;
  assert.equal(profile['net.ipv4.ip_local_reserved_ports']?.expect, 'includes 30000-32767, 40000');
});

test('errors name the key and the file, all of them at once', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'config.yaml');
  await writeFiles(dir, {
    'config.yaml': [
      'listen: nowhere',
      'checks:',
      '  sysctl:',
      '    intervl: 5s',
      '    timeout: 5x',
      '    profile:',
      '      fs.inotify.max_user_watches: {expect: ">= lots"}',
      '  nosuchcheck: {}',
    ].join('\n'),
  });
  const message = await configError(loadConfig({ file, env: {} }));
  assert.match(message, new RegExp(`${file}: listen: must be HOST:PORT`));
  assert.match(
    message,
    new RegExp(
      `${file}: checks\\.sysctl\\.intervl: unknown setting \\(did you mean "interval"\\?\\)`,
    ),
  );
  assert.match(message, new RegExp(`${file}: checks\\.sysctl\\.timeout: invalid duration "5x"`));
  assert.match(
    message,
    new RegExp(
      `${file}: checks\\.sysctl\\.profile\\["fs\\.inotify\\.max_user_watches"\\]\\.expect: ">=" needs an integer`,
    ),
  );
  assert.match(message, new RegExp(`${file}: checks\\.nosuchcheck: unknown setting`));
});

test('an error in a value from the environment or a flag names that variable or flag', async () => {
  assert.match(
    await configError(loadConfig({ env: { NODE_AUDITOR_LOG__LEVEL: 'loud' } })),
    /environment variable NODE_AUDITOR_LOG__LEVEL: log\.level: expected \("fatal" \| "error"/,
  );
  assert.match(
    await configError(loadConfig({ env: {}, flags: { 'node-name': 'Bad_Name' } })),
    /flag --node-name: nodeName: must be a valid Kubernetes node name/,
  );
  assert.match(
    await configError(loadConfig({ env: { NODE_AUDITOR_NOPE: '1' } })),
    /environment variable NODE_AUDITOR_NOPE: no setting "nope" \(known: hostRoot, listen/,
  );
});

test('a rule between two settings names where each value came from', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'c.yaml');
  await writeFiles(dir, { 'c.yaml': 'kubernetes:\n  leaderElection:\n    leaseDuration: 3s\n' });
  // The file set leaseDuration; retryPeriod is the default's: naming only "built-in defaults"
  // sent the operator to a file they never wrote.
  assert.equal(
    await configError(loadConfig({ file, env: {} })),
    `invalid configuration:\nbuilt-in defaults: kubernetes.leaderElection.retryPeriod (20s) and ${file}: kubernetes.leaderElection.leaseDuration (3s): retryPeriod must be shorter than two thirds of leaseDuration (the renew deadline)`,
  );
  assert.equal(
    await configError(
      loadConfig({ env: { NODE_AUDITOR_KUBERNETES__LEADER_ELECTION__RETRY_PERIOD: '50s' } }),
    ),
    'invalid configuration:\nenvironment variable NODE_AUDITOR_KUBERNETES__LEADER_ELECTION__RETRY_PERIOD: kubernetes.leaderElection.retryPeriod (50s) and built-in defaults: kubernetes.leaderElection.leaseDuration (60s): retryPeriod must be shorter than two thirds of leaseDuration (the renew deadline)',
  );
});

test('the probe or request time limit of a check must be shorter than its timeout', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'c.yaml');
  await writeFiles(dir, {
    'c.yaml': [
      'checks:',
      '  container-runtime: {timeout: 1s, probeTimeout: 5s}',
      '  kubelet-anonymous: {requestTimeout: 30s}',
      '',
    ].join('\n'),
  });
  // With probeTimeout past timeout, every slow probe failed the run ("did not finish within
  // its 1s timeout") instead of reporting the runtime.
  assert.equal(
    await configError(loadConfig({ file, env: {} })),
    [
      'invalid configuration:',
      `${file}: checks.container-runtime.probeTimeout (5s) and checks.container-runtime.timeout (1s): probeTimeout must be shorter than timeout (a run is abandoned at timeout, before a slower probe could be reported)`,
      `${file}: checks.kubelet-anonymous.requestTimeout (30s) and built-in defaults: checks.kubelet-anonymous.timeout (30s): requestTimeout must be shorter than timeout (a run is abandoned at timeout, before a slower request could be reported)`,
    ].join('\n'),
  );
});

test('a default step limit is lowered to fit a shorter timeout, with a warning', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'c.yaml');
  await writeFiles(dir, { 'c.yaml': 'checks:\n  container-runtime: {timeout: 3s}\n' });
  // Only timeout was written; probeTimeout 3s is the built-in default. Rejecting the file over
  // a value the operator never wrote crash-looped an agent whose config had worked before.
  const loaded = await loadConfig({
    file,
    env: { NODE_AUDITOR_CHECKS__KUBELET_ANONYMOUS__TIMEOUT: '5s' },
  });
  assert.equal(loaded.config.checks['container-runtime']?.probeTimeout, '1.5s');
  assert.equal(loaded.config.checks['container-runtime']?.timeout, '3s');
  assert.equal(loaded.config.checks['kubelet-anonymous']?.requestTimeout, '2.5s');
  // A default that already fits is left as it is.
  assert.equal(loaded.config.checks.cve?.probeTimeout, '5s');
  assert.deepEqual(loaded.warnings, [
    `checks.container-runtime.probeTimeout is lowered from its default 3s to 1.5s, half of checks.container-runtime.timeout (3s, from ${file}), to end before the run does; set probeTimeout to choose another value`,
    'checks.kubelet-anonymous.requestTimeout is lowered from its default 5s to 2.5s, half of checks.kubelet-anonymous.timeout (5s, from environment variable NODE_AUDITOR_CHECKS__KUBELET_ANONYMOUS__TIMEOUT), to end before the run does; set requestTimeout to choose another value',
  ]);
  // The defaults alone need no adjustment.
  assert.equal((await loadConfig({ env: { NODE_NAME: 'n1' } })).warnings, undefined);
  // A timeout so short that no step limit fits (the option's minimum is 100ms) stays an error.
  assert.match(
    await configError(
      loadConfig({ env: { NODE_AUDITOR_CHECKS__CONTAINER_RUNTIME__TIMEOUT: '150ms' } }),
    ),
    /built-in defaults: checks\.container-runtime\.probeTimeout \(3s\) and environment variable NODE_AUDITOR_CHECKS__CONTAINER_RUNTIME__TIMEOUT: checks\.container-runtime\.timeout \(150ms\): probeTimeout must be shorter than timeout/,
  );
});

test('Kubernetes service-link variables of a Service named node-auditor are not settings', async () => {
  const { config } = await loadConfig({
    env: {
      NODE_AUDITOR_SERVICE_HOST: '10.96.0.10',
      NODE_AUDITOR_SERVICE_PORT: '9746',
      NODE_AUDITOR_SERVICE_PORT_METRICS: '9746',
      NODE_AUDITOR_PORT: 'tcp://10.96.0.10:9746',
      NODE_AUDITOR_PORT_9746_TCP: 'tcp://10.96.0.10:9746',
      NODE_AUDITOR_PORT_9746_TCP_PROTO: 'tcp',
      NODE_AUDITOR_PORT_9746_TCP_PORT: '9746',
      NODE_AUDITOR_PORT_9746_TCP_ADDR: '10.96.0.10',
    },
  });
  assert.equal(config.listen, '0.0.0.0:9746');
  // a real typo is still an error
  assert.match(
    await configError(loadConfig({ env: { NODE_AUDITOR_LISTN: '1' } })),
    /no setting "listn"/,
  );
});

test('durations beyond what a timer can hold are rejected', async () => {
  assert.match(
    await configError(loadConfig({ env: { NODE_AUDITOR_CHECKS__SYSCTL__INTERVAL: '25d' } })),
    /checks\.sysctl\.interval: must be at most 24d/,
  );
  const { config } = await loadConfig({ env: { NODE_AUDITOR_CHECKS__SYSCTL__INTERVAL: '24d' } });
  assert.equal(config.checks.sysctl?.interval, '24d');
});

test('environment values are typed by the setting: booleans parse, strings stay strings', async () => {
  const { config } = await loadConfig({
    env: { NODE_AUDITOR_CHECKS__SYSCTL__ENABLED: 'false', NODE_AUDITOR_NODE_NAME: '0755' },
  });
  assert.equal(config.checks.sysctl?.enabled, false);
  assert.equal(config.nodeName, '0755');
});

test('unreadable and unparsable files are errors naming the file (and the line)', async (t) => {
  const dir = await tempDir(t);
  assert.match(
    await configError(loadConfig({ file: path.join(dir, 'missing.yaml'), env: {} })),
    /cannot read config file .*missing\.yaml: no such file/,
  );
  await writeFiles(dir, {
    'dup.yaml': 'listen: a:1\nlisten: b:2\n',
    'list.yaml': '- 1\n- 2\n',
    'bad.yaml': 'checks: [1\nx: 2',
  });
  assert.match(
    await configError(loadConfig({ file: path.join(dir, 'dup.yaml'), env: {} })),
    /cannot parse config file .*dup\.yaml: duplicated mapping key .*\(2:1\)/,
  );
  assert.match(
    await configError(loadConfig({ file: path.join(dir, 'list.yaml'), env: {} })),
    /top level must be a mapping of settings, not a list/,
  );
  assert.match(
    await configError(loadConfig({ file: path.join(dir, 'bad.yaml'), env: {} })),
    /cannot parse config file .*bad\.yaml/,
  );
});

test('a profile key that would read outside /proc/sys is rejected, and named', async () => {
  const message = await configError(
    loadConfig({
      env: {
        NODE_AUDITOR_CHECKS__SYSCTL__PROFILE: '{"kernel/../../../etc/shadow": {expect: "= x"}}',
      },
    }),
  );
  assert.match(
    message,
    /environment variable NODE_AUDITOR_CHECKS__SYSCTL__PROFILE: checks\.sysctl\.profile\["kernel\/\.\.\/\.\.\/\.\.\/etc\/shadow"\]: not a sysctl key/,
  );
});

test('an empty file means "all defaults"', async (t) => {
  const dir = await tempDir(t);
  await writeFiles(dir, { 'empty.yaml': '# nothing yet\n' });
  const { config, file } = await loadConfig({ file: path.join(dir, 'empty.yaml'), env: {} });
  assert.equal(config.listen, '0.0.0.0:9746');
  assert.equal(file, path.join(dir, 'empty.yaml'));
});

test('cron schedules are validated (node-cron syntax) and name the key', async () => {
  const { config } = await loadConfig({
    env: { NODE_AUDITOR_CHECKS__SYSCTL__CRON: '*/5 * * * *' },
  });
  assert.equal(config.checks.sysctl?.cron, '*/5 * * * *');
  assert.match(
    await configError(loadConfig({ env: { NODE_AUDITOR_CHECKS__SYSCTL__CRON: '61 * * * *' } })),
    /environment variable NODE_AUDITOR_CHECKS__SYSCTL__CRON: checks\.sysctl\.cron: invalid cron expression "61 \* \* \* \*"/,
  );
});

test('a relative host root is relative to the working directory (flag) or the config file', async (t) => {
  const fromFlag = await loadConfig({
    env: {},
    flags: { 'host-root': path.relative(process.cwd(), fixtureHost('compliant')) },
  });
  assert.equal(fromFlag.config.hostRoot, fixtureHost('compliant'));
  const dir = await tempDir(t);
  await writeFiles(dir, { 'conf/c.yaml': 'hostRoot: ../host\n', 'host/etc/.keep': '' });
  const fromFile = await loadConfig({ file: path.join(dir, 'conf/c.yaml'), env: {} });
  assert.equal(fromFile.config.hostRoot, path.join(dir, 'host'));
  assert.match(
    await configError(loadConfig({ env: {}, flags: { 'host-root': '/does/not/exist' } })),
    /flag --host-root: hostRoot: \/does\/not\/exist is not a directory/,
  );
});

test('a relative stateDir is relative to the config file that set it, as hostRoot', async (t) => {
  const dir = await tempDir(t);
  await writeFiles(dir, { 'conf/c.yaml': 'stateDir: ../state\n' });
  const fromFile = await loadConfig({ file: path.join(dir, 'conf/c.yaml'), env: {} });
  // It was relative to wherever the agent happened to be started.
  assert.equal(fromFile.config.stateDir, path.join(dir, 'state'));
  const fromFlag = await loadConfig({
    file: path.join(dir, 'conf/c.yaml'),
    env: {},
    flags: { 'state-dir': 'here' },
  });
  assert.equal(fromFlag.config.stateDir, path.resolve('here'));
});

test('the loaded configuration is frozen', async () => {
  const { config } = await loadConfig({ env: {} });
  assert.throws(() => {
    (config as { listen: string }).listen = 'x';
  }, TypeError);
  assert.throws(() => {
    (config.checks.sysctl as { interval: string }).interval = '1s';
  }, TypeError);
});
