// The systemd D-Bus client (agent/remediation/systemd.ts) and its connection
// (dbus/dbusConnection.ts) against a real dbus-daemon, with a stand-in for systemd's Manager
// built on the same connection code; busctl (systemd's own, independent D-Bus implementation)
// checks that stand-in's answers. Socket-level faults (split frames, bad auth, oversized or
// garbage frames) come from a raw unix-socket server.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';
import type { TestContext } from 'node:test';
import { DbusConnection, DbusError } from '../../agent/remediation/dbus/dbusConnection.ts';
import type { DbusMessage, DbusValue } from '../../agent/remediation/dbus/dbusConnection.ts';
import {
  marshalMessage,
  messageLength,
  unmarshalMessage,
} from '../../agent/remediation/dbus/dbusMarshal.ts';
import { connectSystemd } from '../../agent/remediation/systemd.ts';
import { MANAGER, MANAGER_PATH, startBus, startFakeSystemd } from './systemdStandIn.ts';
import type { FakeUnit } from './systemdStandIn.ts';
import { eventually, requireTool, sleep, tempDir } from '../helpers.ts';

const T0 = 1_700_000_000_000_000n;

function kubeletUnits(): Record<string, FakeUnit> {
  return {
    'kubelet.service': {
      loadState: 'loaded',
      activeState: 'active',
      subState: 'running',
      activeEnterTimestampUs: T0,
      inactiveExitTimestampUs: T0 - 2_000_000n, // two seconds to start
    },
    'broken.service': {
      loadState: 'loaded',
      activeState: 'failed',
      subState: 'failed',
      activeEnterTimestampUs: 0n,
      result: 'failed',
    },
    'quick.service': {
      loadState: 'loaded',
      activeState: 'active',
      subState: 'running',
      activeEnterTimestampUs: T0,
      jobRemovedFirst: true,
    },
    'hung.service': {
      loadState: 'loaded',
      activeState: 'active',
      subState: 'running',
      activeEnterTimestampUs: T0,
      hang: 'reply',
    },
    'stuck.service': {
      loadState: 'loaded',
      activeState: 'activating',
      subState: 'start',
      activeEnterTimestampUs: T0,
      hang: 'job',
    },
  };
}

async function rejection(promise: Promise<unknown>): Promise<DbusError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof DbusError, `not a DbusError: ${String(error)}`);
    return error;
  }
  assert.fail('did not reject');
}

/** A real bus with the systemd stand-in on it (kubeletUnits), and the agent's client to it. */
async function systemdOnBus(t: TestContext) {
  const bus = await startBus(t);
  if (bus === undefined) return undefined;
  const { calls } = await startFakeSystemd(t, bus.socket, kubeletUnits());
  const systemd = await connectSystemd(bus.socket);
  t.after(() => {
    systemd.close();
  });
  return { bus, calls, systemd };
}

function timers(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
}

test('systemd: a restart that completes resolves "done", and the unit shows its new start', async (t) => {
  const on = await systemdOnBus(t);
  if (on === undefined) return;
  const { calls, systemd } = on;

  const before = await systemd.unitState('kubelet.service');
  assert.deepEqual(before, {
    loadState: 'loaded',
    activeState: 'active',
    subState: 'running',
    activeEnterTimestampUs: T0,
    inactiveExitTimestampUs: T0 - 2_000_000n,
  });
  const timersBefore = timers();
  const restart = await systemd.restartUnit('kubelet.service');
  assert.deepEqual(restart, { job: `${MANAGER_PATH}/job/1`, result: 'done' });
  assert.equal(timers(), timersBefore, 'the restart deadline is cleared');
  const after = await systemd.unitState('kubelet.service');
  assert.ok(after.activeEnterTimestampUs > T0, 'ActiveEnterTimestamp moved on');
  assert.ok(after.inactiveExitTimestampUs > T0, 'InactiveExitTimestamp moved on');
  const restartCall = calls.find((c) => c.member === 'RestartUnit');
  assert.deepEqual(restartCall?.body, ['kubelet.service', 'replace']);
  assert.equal(
    calls.some((c) => c.member === 'Subscribe'),
    false,
    'Manager.Subscribe is not needed',
  );
});

test('systemd: job results are told apart, also when JobRemoved comes before the reply', async (t) => {
  const on = await systemdOnBus(t);
  if (on === undefined) return;
  const { systemd } = on;
  const [failed, done, quick] = await Promise.all([
    systemd.restartUnit('broken.service'),
    systemd.restartUnit('kubelet.service'),
    systemd.restartUnit('quick.service', { timeoutMs: 2000 }),
  ]);
  assert.equal(failed.result, 'failed');
  assert.equal(done.result, 'done');
  assert.equal(quick.result, 'done');
  assert.equal(new Set([failed.job, done.job, quick.job]).size, 3);
});

test('systemd: an unknown unit rejects with the NoSuchUnit error name', async (t) => {
  const on = await systemdOnBus(t);
  if (on === undefined) return;
  const { systemd } = on;
  const error = await rejection(systemd.restartUnit('ghost.service'));
  assert.equal(error.failure, 'remote');
  assert.equal(error.dbusName, 'org.freedesktop.systemd1.NoSuchUnit');
  assert.match(
    error.message,
    /^restarting ghost\.service: .*RestartUnit.*: org\.freedesktop\.systemd1\.NoSuchUnit: Unit ghost\.service not found\.$/,
  );
  // GetUnit knows only loaded units: unitState falls back to LoadUnit, as systemctl show does.
  assert.deepEqual(await systemd.unitState('ghost.service'), {
    loadState: 'not-found',
    activeState: 'inactive',
    subState: 'dead',
    activeEnterTimestampUs: 0n,
    inactiveExitTimestampUs: 0n,
  });
});

test('systemd: a service that never answers times out clearly and leaves nothing behind', async (t) => {
  const on = await systemdOnBus(t);
  if (on === undefined) return;
  const { systemd } = on;
  const timersBefore = timers();
  for (const unit of ['hung.service', 'stuck.service']) {
    const started = Date.now();
    const error = await rejection(systemd.restartUnit(unit, { timeoutMs: 300 }));
    const elapsed = Date.now() - started;
    assert.equal(error.failure, 'timeout', unit);
    assert.equal(error.message, `restarting ${unit}: no job result from systemd within 300 ms`);
    assert.ok(elapsed >= 290 && elapsed < 2000, `${unit}: rejected after ${elapsed} ms`);
  }
  assert.equal(timers(), timersBefore, 'no timer left running');
  // The connection still serves, and a caller's abort is told apart from a timeout.
  assert.equal((await systemd.unitState('kubelet.service')).activeState, 'active');
  const aborted = await rejection(
    systemd.restartUnit('hung.service', { signal: AbortSignal.timeout(50) }),
  );
  assert.equal(aborted.failure, 'aborted');
  assert.equal(aborted.message, 'restarting hung.service: aborted by the caller');
});

test('systemd: the daemon going away mid-call rejects at once; a dead bus is named', async (t) => {
  const on = await systemdOnBus(t);
  if (on === undefined) return;
  const { bus, calls, systemd } = on;
  const started = Date.now();
  const pending = rejection(systemd.restartUnit('hung.service', { timeoutMs: 30_000 }));
  await eventually(() => (calls.some((c) => c.member === 'RestartUnit') ? true : undefined));
  await bus.kill();
  const error = await pending;
  assert.equal(error.failure, 'disconnected');
  assert.match(
    error.message,
    /^restarting hung\.service: the D-Bus connection to .* was closed by the bus$/,
  );
  assert.ok(Date.now() - started < 5000);
  const after = await rejection(systemd.unitState('kubelet.service'));
  assert.equal(after.failure, 'disconnected');

  // The socket file is still there, but nothing listens: refused, and the message says where.
  const refused = await rejection(connectSystemd(bus.socket));
  assert.equal(refused.failure, 'connect');
  assert.equal(
    refused.message,
    `no D-Bus system bus at ${bus.socket} (ECONNREFUSED): is the host /run/dbus mounted, and is dbus running?`,
  );
  const missing = path.join(path.dirname(bus.socket), 'no-such-bus');
  const absent = await rejection(connectSystemd(missing));
  assert.equal(
    absent.message,
    `no D-Bus system bus at ${missing} (ENOENT): is the host /run/dbus mounted, and is dbus running?`,
  );
});

test('systemd: busctl (sd-bus) gets the same answers from the stand-in as our client', async (t) => {
  const bus = await startBus(t);
  if (bus === undefined) return;
  const busctl = requireTool(t, 'busctl');
  if (busctl === undefined) return;
  await startFakeSystemd(t, bus.socket, kubeletUnits());
  // Not spawnSync: it would block the event loop that serves busctl's calls.
  const runAsync = (
    ...args: string[]
  ): Promise<{ status: number | null; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      const child = spawn(busctl, [`--address=unix:path=${bus.socket}`, ...args]);
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (status) => {
        resolve({ status, stdout, stderr });
      });
    });
  const getUnit = await runAsync(
    'call',
    'org.freedesktop.systemd1',
    MANAGER_PATH,
    MANAGER,
    'GetUnit',
    's',
    'kubelet.service',
  );
  assert.equal(getUnit.stdout, `o "${MANAGER_PATH}/unit/kubelet_2eservice"\n`, getUnit.stderr);
  const systemd = await connectSystemd(bus.socket);
  t.after(() => {
    systemd.close();
  });
  const ours = await systemd.unitState('kubelet.service');
  const timestamp = await runAsync(
    'get-property',
    'org.freedesktop.systemd1',
    `${MANAGER_PATH}/unit/kubelet_2eservice`,
    'org.freedesktop.systemd1.Unit',
    'ActiveEnterTimestamp',
  );
  assert.equal(timestamp.stdout, `t ${ours.activeEnterTimestampUs}\n`, timestamp.stderr);
  const started = await runAsync(
    'get-property',
    'org.freedesktop.systemd1',
    `${MANAGER_PATH}/unit/kubelet_2eservice`,
    'org.freedesktop.systemd1.Unit',
    'InactiveExitTimestamp',
  );
  assert.equal(started.stdout, `t ${ours.inactiveExitTimestampUs}\n`, started.stderr);
  const unknown = await runAsync(
    'call',
    'org.freedesktop.systemd1',
    MANAGER_PATH,
    MANAGER,
    'GetUnit',
    's',
    'ghost.service',
  );
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /Unit ghost\.service not loaded\./);
});

// ---- the connection against a raw socket: what a real bus never sends on purpose ----

/** A unix-socket server that plays the bus: `serve` gets each client's socket. */
async function rawBus(t: TestContext, serve: (socket: net.Socket) => void): Promise<string> {
  const dir = await tempDir(t, 'node-auditor-rawbus-');
  const socketPath = path.join(dir, 'bus');
  const server = net.createServer(serve);
  server.listen(socketPath);
  await once(server, 'listening');
  t.after(() => server.close());
  return socketPath;
}

/** Collect the client's bytes; after its AUTH line, answer with `authAnswer`. */
function speakAuth(
  socket: net.Socket,
  authAnswer: string,
  onMessage?: (m: DbusMessage) => void,
): void {
  let received = Buffer.alloc(0);
  let phase: 'auth' | 'begin' | 'messages' = 'auth';
  socket.on('data', (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    // The two lines before messages: the AUTH we answer, then BEGIN.
    while (phase !== 'messages') {
      const end = received.indexOf('\r\n');
      if (end < 0) return;
      const line = received.subarray(0, end).toString('latin1');
      received = received.subarray(end + 2);
      if (phase === 'auth') {
        const uidHex = Buffer.from(String(process.getuid?.())).toString('hex');
        assert.equal(line, `\0AUTH EXTERNAL ${uidHex}`);
        socket.write(authAnswer);
        phase = 'begin';
      } else {
        assert.equal(line, 'BEGIN');
        phase = 'messages';
      }
    }
    while (received.length >= 16 && received.length >= messageLength(received)) {
      const length = messageLength(received);
      const message = unmarshalMessage(received.subarray(0, length));
      received = received.subarray(length);
      if (message !== undefined) onMessage?.(message);
    }
  });
  socket.on('error', () => undefined);
}

/** The bytes of a message from the raw bus (serial 99: the client does not care). */
function fromBus(message: Partial<DbusMessage> & Pick<DbusMessage, 'type'>): Buffer {
  return marshalMessage({ flags: 0, serial: 99, signature: '', body: [], ...message });
}

test('dbusConnection: frames split across reads and coalesced in one are all read', async (t) => {
  let pingAnswered = false;
  const socketPath = await rawBus(t, (socket) => {
    speakAuth(socket, 'OK 0123456789abcdef0123456789abcdef\r\n', (m) => {
      const returning = (signature = '', body: DbusValue[] = []): Buffer =>
        fromBus({ type: 2, replySerial: m.serial, signature, body });
      if (m.member === 'Hello') {
        // In 3-byte pieces, each its own write after a pause.
        const reply = returning('s', [':1.7']);
        void (async () => {
          for (let at = 0; at < reply.length; at += 3) {
            socket.write(reply.subarray(at, at + 3));
            await sleep(1);
          }
        })();
      } else if (m.member === 'AddMatch') {
        socket.write(returning());
      } else if (m.member === 'Echo') {
        // A method call to the client, a signal and the reply, in one write.
        socket.write(
          Buffer.concat([
            fromBus({
              type: 1,
              path: '/',
              interface: 'org.freedesktop.DBus.Peer',
              member: 'Ping',
              sender: ':1.0',
            }),
            fromBus({
              type: 4,
              path: '/x',
              interface: 'org.example.X',
              member: 'Changed',
              signature: 'u',
              body: [1],
            }),
            returning('as', [[m.body[0] as string, 'back']]),
          ]),
        );
      } else if (m.type === 2 && m.replySerial === 99) {
        pingAnswered = true;
      }
    });
  });
  const connection = await DbusConnection.connect(socketPath);
  t.after(() => {
    connection.close();
  });
  assert.equal(connection.uniqueName, ':1.7');
  const signals: DbusValue[][] = [];
  await connection.addMatch({ interface: 'org.example.X' }, (signal) =>
    signals.push([...signal.body]),
  );
  const reply = await connection.call({
    destination: 'org.example.Bus',
    path: '/',
    interface: 'org.example.Bus',
    member: 'Echo',
    signature: 's',
    body: ['there'],
  });
  assert.deepEqual(reply.body, [['there', 'back']]);
  assert.deepEqual(signals, [[1]]);
  await eventually(() => (pingAnswered ? true : undefined), 2000, 'the answer to Ping');
  assert.equal(connection.pendingCallCount, 0);
});

test('dbusConnection: bad auth, a garbage or oversized frame and silence each fail by name', async (t) => {
  const cases: [string, (socket: net.Socket) => void, RegExp, string][] = [
    [
      'rejected',
      (s) => {
        speakAuth(s, 'REJECTED DBUS_COOKIE_SHA1\r\n');
      },
      /rejected EXTERNAL authentication as uid \d+ \(it offers: DBUS_COOKIE_SHA1\)/,
      'auth',
    ],
    [
      'garbage',
      (s) => {
        speakAuth(s, 'OK 0123\r\n', () => s.write('x'.repeat(64)));
      },
      /bad D-Bus message from .*: bad byte-order mark 0x78/,
      'protocol',
    ],
    [
      'oversized',
      (s) => {
        speakAuth(s, 'OK 0123\r\n', () =>
          s.write(Buffer.from('6c020001000000020100000000000000', 'hex')),
        );
      },
      /message of 33554448 bytes exceeds our limit of 1048576/,
      'protocol',
    ],
    ['silent', (s) => s.on('data', () => undefined), /no answer within 300 ms/, 'timeout'],
  ];
  for (const [what, serve, message, failure] of cases) {
    const socketPath = await rawBus(t, serve);
    const error = await rejection(DbusConnection.connect(socketPath, { timeoutMs: 300 }));
    assert.equal(error.failure, failure, what);
    assert.match(error.message, message, what);
  }
});
