// systemd's Manager over D-Bus (man org.freedesktop.systemd1): restart a unit and wait for the
// end of its job, and read a unit's state. What systemctl does, without systemctl in the image.
//
// Manager.Subscribe is not called. The man page says signals are only sent out once a client
// subscribed, but systemd's source (src/core/dbus.c bus_foreach_bus, dbus-job.c) sends a job's
// JobRemoved on the system bus also when the job's own requester is still connected (the job
// tracks the sender of RestartUnit), which is us. It is a broadcast, so we need the AddMatch.
// Subscribe would instead make PID 1 broadcast every unit's changes for as long as we are
// connected.
import { errnoCode } from '../errors.ts';
import { DbusConnection, DbusError, abortError, isVariant } from './dbus/dbusConnection.ts';
import type { DbusMessage, DbusValue } from './dbus/dbusConnection.ts';

const SYSTEMD = 'org.freedesktop.systemd1';
const MANAGER_PATH = '/org/freedesktop/systemd1';
const MANAGER = 'org.freedesktop.systemd1.Manager';
const UNIT = 'org.freedesktop.systemd1.Unit';
const PROPERTIES = 'org.freedesktop.DBus.Properties';
/** Long enough for a unit's default stop timeout (90 s) plus its start. */
export const DEFAULT_RESTART_TIMEOUT_MS = 120_000;

export interface UnitState {
  /** loaded, not-found, masked, error ... (org.freedesktop.systemd1.Unit LoadState). */
  loadState: string;
  activeState: string;
  subState: string;
  /** When the unit last entered the active state, µs since the epoch; 0 if never. */
  activeEnterTimestampUs: bigint;
  /** When the unit last left the inactive or failed state (began to start), µs since the epoch; 0 if never. */
  inactiveExitTimestampUs: bigint;
}

export interface SystemdClient {
  /**
   * Manager.RestartUnit(unit, "replace"), then wait for that job's JobRemoved signal; resolves
   * with its result: done, failed, timeout, canceled, dependency or skipped. Rejects with a
   * DbusError: failure 'remote' with dbusName (org.freedesktop.systemd1.NoSuchUnit,
   * org.freedesktop.DBus.Error.AccessDenied ...), 'timeout' after timeoutMs (the job may still
   * run), 'aborted', or 'disconnected'.
   */
  restartUnit(
    unit: string,
    options?: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<{ job: string; result: string }>;
  /** The unit's state (Manager.GetUnit, or LoadUnit for a unit not loaded, then Properties.Get). */
  unitState(unit: string, options?: { signal?: AbortSignal }): Promise<UnitState>;
  close(): void;
}

/**
 * Connect to the system bus at socketPath (a local path: the host's /run/dbus/system_bus_socket
 * under --host-root). timeoutMs bounds the handshake and each call (25 s by default).
 */
export async function connectSystemd(
  socketPath: string,
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<SystemdClient> {
  try {
    return new SystemdManagerClient(await DbusConnection.connect(socketPath, options));
  } catch (error) {
    if (!(error instanceof DbusError) || error.failure !== 'connect') throw error;
    const code = errnoCode(error.cause);
    const hint =
      code === 'EACCES' || code === 'EPERM'
        ? 'the agent needs root to reach the system bus'
        : 'is the host /run/dbus mounted, and is dbus running?';
    throw new DbusError(
      'connect',
      `no D-Bus system bus at ${socketPath} (${code ?? error.message}): ${hint}`,
      { cause: error },
    );
  }
}

/** A failure, told in the context of what we were doing; its failure and dbusName kept. */
function inContext(what: string, error: unknown): unknown {
  if (!(error instanceof DbusError)) return error;
  const options = {
    cause: error,
    ...(error.dbusName === undefined ? {} : { dbusName: error.dbusName }),
  };
  return new DbusError(error.failure, `${what}: ${error.message}`, options);
}

interface JobRemoved {
  job: string;
  result: string;
  sender: string | undefined;
}

class SystemdManagerClient implements SystemdClient {
  readonly #connection: DbusConnection;

  constructor(connection: DbusConnection) {
    this.#connection = connection;
  }

  async restartUnit(
    unit: string,
    options: { signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<{ job: string; result: string }> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_RESTART_TIMEOUT_MS;
    // One deadline over the whole restart (subscribing, the call, the wait for the job), which
    // ends the wait early if the caller aborts or the connection closes.
    const deadline = new AbortController();
    const { signal } = deadline;
    const ended = Promise.withResolvers<string>();
    ended.promise.catch(() => undefined); // awaited only once the job is known
    const timer = setTimeout(() => {
      deadline.abort(new DbusError('timeout', `no job result from systemd within ${timeoutMs} ms`));
    }, timeoutMs);
    const onCallerAbort = (): void => {
      const cause: unknown = options.signal?.reason;
      deadline.abort(new DbusError('aborted', 'aborted by the caller', { cause }));
    };
    const onDeadline = (): void => {
      ended.reject(abortError(signal, 'waiting for the job'));
    };
    options.signal?.addEventListener('abort', onCallerAbort, { once: true });
    if (options.signal?.aborted === true) onCallerAbort();
    signal.addEventListener('abort', onDeadline, { once: true });
    const removeCloseListener = this.#connection.onClose((error) => {
      ended.reject(error);
    });

    // Subscribed before RestartUnit: a quick job's JobRemoved can arrive before the reply that
    // names the job, so each is kept until we know which one is ours. Only the connection that
    // answered RestartUnit (systemd's) can end our job: another client could send a lookalike
    // to us directly, past the bus's match rule.
    const removed: JobRemoved[] = [];
    let ours: ((entry: JobRemoved) => boolean) | undefined;
    let unsubscribe: (() => void) | undefined;
    try {
      unsubscribe = await this.#connection.addMatch(
        { sender: SYSTEMD, path: MANAGER_PATH, interface: MANAGER, member: 'JobRemoved' },
        ({ signature, body: [, job, , result], sender }) => {
          if (signature !== 'uoss' || typeof job !== 'string' || typeof result !== 'string') return;
          const entry = { job, result, sender };
          removed.push(entry);
          if (ours?.(entry) === true) ended.resolve(result);
        },
        { signal },
      );
      const reply = await this.#call(
        MANAGER_PATH,
        MANAGER,
        'RestartUnit',
        [unit, 'replace'],
        signal,
      );
      const job = reply.body[0];
      if (reply.signature !== 'o' || typeof job !== 'string') throw badReply('RestartUnit', reply);
      ours = (entry) => entry.job === job && entry.sender === reply.sender;
      const result = removed.find(ours)?.result ?? (await ended.promise);
      return { job, result };
    } catch (error) {
      throw inContext(`restarting ${unit}`, error);
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onCallerAbort);
      signal.removeEventListener('abort', onDeadline);
      removeCloseListener();
      unsubscribe?.();
    }
  }

  async unitState(unit: string, options: { signal?: AbortSignal } = {}): Promise<UnitState> {
    const { signal } = options;
    try {
      let path: string;
      try {
        path = await this.#unitPath('GetUnit', unit, signal);
      } catch (error) {
        // GetUnit knows only loaded units; LoadUnit loads one (or answers with a not-found unit).
        if (!(error instanceof DbusError) || error.dbusName !== `${SYSTEMD}.NoSuchUnit`)
          throw error;
        path = await this.#unitPath('LoadUnit', unit, signal);
      }
      const [loadState, activeState, subState, activeEnterTimestampUs, inactiveExitTimestampUs] =
        await Promise.all([
          this.#property(path, 'LoadState', 's', signal),
          this.#property(path, 'ActiveState', 's', signal),
          this.#property(path, 'SubState', 's', signal),
          this.#property(path, 'ActiveEnterTimestamp', 't', signal),
          this.#property(path, 'InactiveExitTimestamp', 't', signal),
        ]);
      return {
        loadState: loadState as string,
        activeState: activeState as string,
        subState: subState as string,
        activeEnterTimestampUs: activeEnterTimestampUs as bigint,
        inactiveExitTimestampUs: inactiveExitTimestampUs as bigint,
      };
    } catch (error) {
      throw inContext(`reading the state of ${unit}`, error);
    }
  }

  close(): void {
    this.#connection.close();
  }

  /** A method of systemd's whose arguments are all strings. */
  #call(
    path: string,
    iface: string,
    member: string,
    args: string[],
    signal?: AbortSignal,
  ): Promise<DbusMessage> {
    const signature = 's'.repeat(args.length);
    return this.#connection.call(
      { destination: SYSTEMD, path, interface: iface, member, signature, body: args },
      { signal },
    );
  }

  async #unitPath(member: string, unit: string, signal?: AbortSignal): Promise<string> {
    const reply = await this.#call(MANAGER_PATH, MANAGER, member, [unit], signal);
    const [path] = reply.body;
    if (reply.signature !== 'o' || typeof path !== 'string') throw badReply(member, reply);
    return path;
  }

  async #property(
    path: string,
    name: string,
    type: 's' | 't',
    signal?: AbortSignal,
  ): Promise<DbusValue> {
    const reply = await this.#call(path, PROPERTIES, 'Get', [UNIT, name], signal);
    const [variant] = reply.body;
    if (variant === undefined || !isVariant(variant) || variant.signature !== type)
      throw badReply(`Get ${name}`, reply);
    return variant.value;
  }
}

function badReply(member: string, reply: DbusMessage): DbusError {
  const got = reply.body[0];
  const type = got !== undefined && isVariant(got) ? `v(${got.signature})` : reply.signature;
  return new DbusError(
    'protocol',
    `systemd answered ${member} with "${type}", not what systemd sends`,
  );
}
