// A real dbus-daemon on a temp socket, and a stand-in for systemd's Manager on it (built on
// the agent's own D-Bus connection; systemd.test.ts checks its answers against busctl): what
// the remediation tests that go through systemd need.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { DbusConnection } from '../../agent/remediation/dbus/dbusConnection.ts';
import type { DbusMessage } from '../../agent/remediation/dbus/dbusConnection.ts';
import { requireTool, tempDir } from '../helpers.ts';

export const MANAGER_PATH = '/org/freedesktop/systemd1';
export const MANAGER = 'org.freedesktop.systemd1.Manager';

export interface Bus {
  socket: string;
  /** SIGKILL the daemon: its socket file stays, as after a crash. */
  kill(): Promise<void>;
}

/** A real dbus-daemon on a socket in a temp dir, with a permissive policy. */
export async function startBus(t: TestContext, socketPath?: string): Promise<Bus | undefined> {
  const daemon = requireTool(t, 'dbus-daemon');
  if (daemon === undefined) return undefined;
  const dir = await tempDir(t, 'node-auditor-dbus-');
  // the socket where the test wants it (e.g. /run/dbus/system_bus_socket under a host root)
  const socket = socketPath ?? path.join(dir, 'bus');
  const config = path.join(dir, 'bus.conf');
  await writeFile(
    config,
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>custom</type>
  <listen>unix:path=${socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`,
  );
  const child = spawn(daemon, ['--nofork', '--print-address=1', `--config-file=${config}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = once(child, 'close');
  const kill = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  t.after(kill);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  // It prints its address once it listens.
  const [line] = (await Promise.race([
    once(child.stdout, 'data'),
    exited.then(() => {
      throw new Error(`dbus-daemon exited: ${stderr}`);
    }),
  ])) as [Buffer];
  assert.match(line.toString(), /^unix:path=/);
  return { socket, kill };
}

export interface FakeUnit {
  loadState: string;
  activeState: string;
  subState: string;
  activeEnterTimestampUs: bigint;
  /** When it began to start (InactiveExitTimestamp); 0 (never) if absent. */
  inactiveExitTimestampUs?: bigint;
  /** What the restart job ends with. */
  result?: string;
  /** Never answer RestartUnit, or answer but never end the job. */
  hang?: 'reply' | 'job';
  /** Send JobRemoved before the reply to RestartUnit. */
  jobRemovedFirst?: boolean;
}

/** systemd's escaping of a unit name in an object path (kubelet.service -> kubelet_2eservice). */
/** kubelet.service in a crash loop (systemd waiting to start it again), last up an hour ago. */
export function crashLoopingKubelet(): FakeUnit {
  return {
    loadState: 'loaded',
    activeState: 'activating',
    subState: 'auto-restart',
    activeEnterTimestampUs: BigInt(Date.now() - 3_600_000) * 1000n,
  };
}

export function unitPath(name: string): string {
  const escaped = name.replace(
    /[^A-Za-z0-9]/g,
    (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
  return `${MANAGER_PATH}/unit/${escaped}`;
}

/** A stand-in for PID 1 on the bus: the Manager methods and Unit properties the client uses. */
export async function startFakeSystemd(
  t: TestContext,
  socket: string,
  units: Record<string, FakeUnit>,
): Promise<{ calls: DbusMessage[] }> {
  const service = await DbusConnection.connect(socket);
  t.after(() => {
    service.close();
  });
  await service.requestName('org.freedesktop.systemd1');
  const calls: DbusMessage[] = [];
  let lastJob = 0;
  service.onMethodCall((call) => {
    calls.push(call);
    const [first, second] = call.body as string[];
    const name = first ?? '';
    const unit = units[name];
    const noSuchUnit = (why: string): void => {
      service.replyError(call, 'org.freedesktop.systemd1.NoSuchUnit', `Unit ${name} ${why}.`);
    };
    if (call.interface === MANAGER && call.member === 'RestartUnit') {
      if (unit === undefined) {
        noSuchUnit('not found');
        return;
      }
      if (unit.hang === 'reply') return;
      const id = ++lastJob;
      const job = `${MANAGER_PATH}/job/${id}`;
      const jobRemoved = (): void => {
        const result = unit.result ?? 'done';
        if (result === 'done') {
          unit.activeState = 'active';
          unit.activeEnterTimestampUs = BigInt(Date.now()) * 1000n;
          unit.inactiveExitTimestampUs = unit.activeEnterTimestampUs;
        }
        service.emitSignal({
          path: MANAGER_PATH,
          interface: MANAGER,
          member: 'JobRemoved',
          signature: 'uoss',
          body: [id, job, name, result],
        });
      };
      if (unit.jobRemovedFirst === true) jobRemoved();
      service.reply(call, 'o', [job]);
      if (unit.jobRemovedFirst !== true && unit.hang !== 'job') setTimeout(jobRemoved, 20);
      return;
    }
    if (call.interface === MANAGER && call.member === 'GetUnit') {
      if (unit?.loadState !== 'loaded') {
        noSuchUnit('not loaded');
        return;
      }
      service.reply(call, 'o', [unitPath(name)]);
      return;
    }
    if (call.interface === MANAGER && call.member === 'LoadUnit') {
      units[name] ??= {
        loadState: 'not-found',
        activeState: 'inactive',
        subState: 'dead',
        activeEnterTimestampUs: 0n,
      };
      service.reply(call, 'o', [unitPath(name)]);
      return;
    }
    const owner = Object.entries(units).find(([n]) => unitPath(n) === call.path)?.[1];
    if (
      call.interface === 'org.freedesktop.DBus.Properties' &&
      call.member === 'Get' &&
      owner !== undefined &&
      first === 'org.freedesktop.systemd1.Unit'
    ) {
      const values: Record<string, [string, string | bigint]> = {
        LoadState: ['s', owner.loadState],
        ActiveState: ['s', owner.activeState],
        SubState: ['s', owner.subState],
        ActiveEnterTimestamp: ['t', owner.activeEnterTimestampUs],
        InactiveExitTimestamp: ['t', owner.inactiveExitTimestampUs ?? 0n],
      };
      const found = values[second ?? ''];
      if (found === undefined) {
        service.replyError(call, 'org.freedesktop.DBus.Error.UnknownProperty', `no ${second}`);
        return;
      }
      service.reply(call, 'v', [{ signature: found[0], value: found[1] }]);
      return;
    }
    service.replyError(call, 'org.freedesktop.DBus.Error.UnknownMethod', `no ${call.member}`);
  });
  return { calls };
}

/**
 * Runs `then` once, `delayMs` after `restarts()` first counts a restart (what the kubelet, the
 * API or the agent does next in a test), polling every 10 ms until then or the test's end.
 */
export function afterFirstRestart(
  t: TestContext,
  restarts: () => number,
  then: () => void,
  delayMs = 0,
): void {
  const poll = setInterval(() => {
    if (restarts() === 0) return;
    clearInterval(poll);
    const timer = setTimeout(then, delayMs);
    t.after(() => {
      clearTimeout(timer);
    });
  }, 10);
  t.after(() => {
    clearInterval(poll);
  });
}
