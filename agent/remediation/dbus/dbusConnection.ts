// One connection to a D-Bus message bus over a unix socket: SASL EXTERNAL authentication, Hello,
// method calls matched to their replies by serial, signal subscriptions (AddMatch), and the
// service side (answer method calls, emit signals, own a name) that tests build services with.
//
// Safety: every wait is bounded (a timeout and an AbortSignal); a frame that breaks the spec or
// exceeds maxMessageBytes closes the connection with an error, never throws out of a socket
// event; closing rejects every pending call.
import net from 'node:net';
import { describeError, errnoCode, fileErrorReason } from '../../errors.ts';
import { DbusError, FIXED_HEADER_BYTES, MessageFlag, MessageType } from './dbusMarshal.ts';
import { marshalMessage, messageLength, unmarshalMessage } from './dbusMarshal.ts';
import type { DbusMessage, DbusValue } from './dbusMarshal.ts';

export { DbusError, isVariant } from './dbusMarshal.ts';
export type { DbusFailure, DbusMessage, DbusValue, DbusVariant } from './dbusMarshal.ts';

const BUS = 'org.freedesktop.DBus';
const BUS_PATH = '/org/freedesktop/DBus';
/** libdbus's default for a method call. */
export const DEFAULT_CALL_TIMEOUT_MS = 25_000;
/** Far below the spec's 128 MiB: what we exchange with systemd is under a kilobyte. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
const MAX_AUTH_LINE_BYTES = 16 * 1024;

export interface MethodCall {
  destination?: string;
  path: string;
  interface?: string;
  member: string;
  signature?: string;
  body?: readonly DbusValue[];
}

export interface CallOptions {
  /** Per call; the connection's timeoutMs by default. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ConnectOptions {
  /** Bounds the connection handshake, and is the default timeout of each call. */
  timeoutMs?: number;
  signal?: AbortSignal;
  maxMessageBytes?: number;
}

/**
 * Which signals a subscription receives. The bus filters on all fields; we filter again on path,
 * interface, member and a unique-name sender (":1.42"), as a message addressed to us reaches us
 * whatever our match rules say. A well-known sender name only the bus can check.
 */
export interface SignalMatch {
  sender?: string;
  path?: string;
  interface?: string;
  member?: string;
}

export interface SignalEmission extends Omit<MethodCall, 'interface'> {
  interface: string;
}

interface PendingCall {
  /** The call, in words, for error messages. */
  what: string;
  resolve: (reply: DbusMessage) => void;
  reject: (error: DbusError) => void;
  dispose: () => void;
}

/** The error for an aborted wait: the signal's reason when it is already a DbusError (a deadline). */
export function abortError(signal: AbortSignal | undefined, what: string): DbusError {
  const reason: unknown = signal?.reason;
  if (reason instanceof DbusError) return reason;
  return new DbusError('aborted', `${what}: aborted`, { cause: reason });
}

function busCall(member: string, signature = '', body: DbusValue[] = []): MethodCall {
  return { destination: BUS, path: BUS_PATH, interface: BUS, member, signature, body };
}

/** A match rule (spec, "Match Rules"): an apostrophe is escaped outside quotes, as '\''. */
function matchRule(match: SignalMatch): string {
  const parts = ["type='signal'"];
  for (const [key, value] of Object.entries(match))
    if (typeof value === 'string') parts.push(`${key}='${value.replaceAll("'", "'\\''")}'`);
  return parts.join(',');
}

function matches(match: SignalMatch, signal: DbusMessage): boolean {
  return (
    (match.path ?? signal.path) === signal.path &&
    (match.interface ?? signal.interface) === signal.interface &&
    (match.member ?? signal.member) === signal.member &&
    (match.sender?.startsWith(':') !== true || match.sender === signal.sender)
  );
}

export class DbusConnection {
  readonly socketPath: string;
  readonly #socket: net.Socket;
  readonly #uid = process.getuid?.() ?? 0;
  readonly #callTimeoutMs: number;
  readonly #maxMessageBytes: number;
  #state: 'auth' | 'open' | 'closed' = 'auth';
  #socketConnected = false;
  #authText = '';
  readonly #authenticated = Promise.withResolvers<undefined>();
  #closedError: DbusError | undefined;
  #uniqueName = '';
  #nextSerial = 1;
  readonly #pending = new Map<number, PendingCall>();
  readonly #subscriptions = new Set<{ match: SignalMatch; listener: (m: DbusMessage) => void }>();
  readonly #closeListeners = new Set<(error: DbusError) => void>();
  #methodHandler: ((call: DbusMessage) => void) | undefined;
  // Received bytes not yet parsed, joined only once a whole frame is there: a frame split over
  // many reads costs one copy.
  #chunks: Buffer[] = [];
  #buffered = 0;
  #frameLength: number | undefined;

  private constructor(socketPath: string, options: ConnectOptions) {
    this.socketPath = socketPath;
    this.#callTimeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.#maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#authenticated.promise.catch(() => undefined); // connect() reports it
    this.#socket = net.createConnection({ path: socketPath });
    this.#socket.on('connect', () => (this.#socketConnected = true));
    this.#socket.on('data', (chunk: Buffer) => {
      this.#onData(chunk);
    });
    this.#socket.on('error', (error) => {
      this.#close(this.#socketError(error));
    });
    this.#socket.on('close', () => {
      this.#close(
        new DbusError(
          'disconnected',
          `the D-Bus connection to ${socketPath} was closed by the bus`,
        ),
      );
    });
    // EXTERNAL: the bus checks the uid we claim against the socket's peer credentials. A NUL
    // byte first (the spec's credentials byte), then the uid's decimal digits in hex.
    const uidHex = Buffer.from(String(this.#uid), 'ascii').toString('hex');
    this.#socket.write(`\0AUTH EXTERNAL ${uidHex}\r\n`);
  }

  /** Connect, authenticate and say Hello. Rejects with a DbusError naming the socket. */
  static async connect(socketPath: string, options: ConnectOptions = {}): Promise<DbusConnection> {
    const what = `connecting to D-Bus at ${socketPath}`;
    if (options.signal?.aborted === true) throw abortError(options.signal, what);
    const timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const connection = new DbusConnection(socketPath, options);
    const timer = setTimeout(() => {
      connection.#close(new DbusError('timeout', `${what}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    const onAbort = (): void => {
      connection.#close(abortError(options.signal, what));
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      await connection.#authenticated.promise;
      const [uniqueName] = (await connection.call(busCall('Hello'))).body;
      if (typeof uniqueName !== 'string')
        throw new DbusError('protocol', `${what}: bad Hello reply`);
      connection.#uniqueName = uniqueName;
      return connection;
    } catch (error) {
      connection.#close(new DbusError('disconnected', `${what} failed`, { cause: error }));
      throw error;
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Our unique name on the bus (":1.42"), from Hello. */
  get uniqueName(): string {
    return this.#uniqueName;
  }

  /** Calls waiting for a reply (for leak checks). */
  get pendingCallCount(): number {
    return this.#pending.size;
  }

  /** Called once when the connection closes, with why; at once if it already is. */
  onClose(listener: (error: DbusError) => void): () => void {
    if (this.#closedError !== undefined) listener(this.#closedError);
    else this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  /**
   * Call a method; resolves with its METHOD_RETURN. An ERROR reply rejects with a DbusError
   * whose dbusName is the error's name.
   */
  call(request: MethodCall, options: CallOptions = {}): Promise<DbusMessage> {
    const member =
      request.interface === undefined ? request.member : `${request.interface}.${request.member}`;
    const what = `D-Bus call ${member} on ${request.destination ?? '(no destination)'} ${request.path}`;
    const { signal } = options;
    return new Promise<DbusMessage>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(abortError(signal, what));
        return;
      }
      let serial: number;
      try {
        const { signature = '', body = [] } = request;
        serial = this.#send({
          type: MessageType.MethodCall,
          flags: 0,
          ...request,
          signature,
          body,
        });
      } catch (error) {
        reject(
          error instanceof DbusError
            ? error
            : new DbusError('protocol', `${what}: ${describeError(error)}`),
        );
        return;
      }
      const timeoutMs = options.timeoutMs ?? this.#callTimeoutMs;
      const timer = setTimeout(() => {
        this.#settle(serial, new DbusError('timeout', `${what}: no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      const onAbort = (): void => {
        this.#settle(serial, abortError(signal, what));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      const dispose = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      this.#pending.set(serial, { what, resolve, reject, dispose });
    });
  }

  /**
   * Receive the matching signals until the returned function is called. The listener is in place
   * before AddMatch is sent, so nothing the bus routes to us after that is missed. Listeners
   * must not throw.
   */
  async addMatch(
    match: SignalMatch,
    listener: (signal: DbusMessage) => void,
    options: CallOptions = {},
  ): Promise<() => void> {
    const rule = matchRule(match);
    const subscription = { match, listener };
    this.#subscriptions.add(subscription);
    try {
      await this.call(busCall('AddMatch', 's', [rule]), options);
    } catch (error) {
      this.#subscriptions.delete(subscription);
      throw error;
    }
    return () => {
      if (!this.#subscriptions.delete(subscription) || this.#state !== 'open') return;
      // No reply wanted: the rule goes with the connection anyway if this is lost.
      const removeMatch = { ...busCall('RemoveMatch'), signature: 's', body: [rule] };
      this.#send({
        type: MessageType.MethodCall,
        flags: MessageFlag.NoReplyExpected,
        ...removeMatch,
      });
    };
  }

  // ---- the service side ----

  /** Own a well-known name; rejects if another connection owns it. */
  async requestName(name: string, options: CallOptions = {}): Promise<void> {
    const DO_NOT_QUEUE = 4;
    const reply = await this.call(busCall('RequestName', 'su', [name, DO_NOT_QUEUE]), options);
    // 1: we are now the primary owner; 4: we already were.
    if (reply.body[0] !== 1 && reply.body[0] !== 4)
      throw new DbusError('remote', `${name} is already owned on the bus at ${this.socketPath}`, {
        dbusName: 'org.freedesktop.DBus.Error.NameHasOwner',
      });
  }

  /**
   * Receive the method calls addressed to us. The handler answers with reply() or replyError()
   * (or never, as a hung service would); a throw becomes an org.freedesktop.DBus.Error.Failed.
   */
  onMethodCall(handler: (call: DbusMessage) => void): void {
    this.#methodHandler = handler;
  }

  reply(call: DbusMessage, signature = '', body: readonly DbusValue[] = []): void {
    this.#answer(call, { type: MessageType.MethodReturn, signature, body });
  }

  replyError(call: DbusMessage, errorName: string, message: string): void {
    this.#answer(call, { type: MessageType.Error, errorName, signature: 's', body: [message] });
  }

  emitSignal(signal: SignalEmission): void {
    const { signature = '', body = [] } = signal;
    this.#send({
      type: MessageType.Signal,
      flags: MessageFlag.NoReplyExpected,
      ...signal,
      signature,
      body,
    });
  }

  /** Close the socket; pending calls reject with failure 'disconnected'. */
  close(): void {
    this.#close(
      new DbusError('disconnected', `the D-Bus connection to ${this.socketPath} was closed`),
    );
  }

  // ---- internals ----

  #answer(
    call: DbusMessage,
    answer: Pick<DbusMessage, 'type' | 'signature' | 'body' | 'errorName'>,
  ): void {
    if ((call.flags & MessageFlag.NoReplyExpected) !== 0) return;
    this.#send({
      ...answer,
      flags: MessageFlag.NoReplyExpected,
      replySerial: call.serial,
      destination: call.sender,
    });
  }

  /** Marshal and write a message under the next serial; throws if closed or invalid. */
  #send(message: Omit<DbusMessage, 'serial'>): number {
    if (this.#state !== 'open')
      throw (
        this.#closedError ??
        new DbusError('disconnected', `D-Bus at ${this.socketPath}: not connected yet`)
      );
    const serial = this.#nextSerial;
    this.#nextSerial = serial >= 0xffffffff ? 1 : serial + 1;
    this.#socket.write(marshalMessage({ ...message, serial }));
    return serial;
  }

  #settle(serial: number, outcome: DbusMessage | DbusError): void {
    const pending = this.#pending.get(serial);
    if (pending === undefined) return; // a late reply to a call that timed out or was aborted
    this.#pending.delete(serial);
    pending.dispose();
    if (outcome instanceof DbusError) pending.reject(outcome);
    else pending.resolve(outcome);
  }

  #socketError(error: Error): DbusError {
    if (this.#socketConnected)
      return new DbusError(
        'disconnected',
        `the D-Bus connection to ${this.socketPath} failed: ${describeError(error)}`,
        { cause: error },
      );
    const reason =
      errnoCode(error) === 'ECONNREFUSED' ? 'connection refused' : fileErrorReason(error);
    return new DbusError(
      'connect',
      `cannot connect to the D-Bus socket ${this.socketPath}: ${reason}`,
      { cause: error },
    );
  }

  #onData(chunk: Buffer): void {
    if (this.#state === 'auth') {
      // Before BEGIN the bus answers our AUTH with one CRLF-terminated ASCII line. latin1 keeps
      // every byte, so what follows it goes to the message parser unchanged.
      this.#authText += chunk.toString('latin1');
      const end = this.#authText.indexOf('\r\n');
      if (end < 0) {
        if (this.#authText.length > MAX_AUTH_LINE_BYTES)
          this.#close(
            new DbusError('auth', `D-Bus at ${this.socketPath}: authentication line too long`),
          );
        return;
      }
      if (!this.#onAuthLine(this.#authText.slice(0, end))) return;
      chunk = Buffer.from(this.#authText.slice(end + 2), 'latin1');
      this.#authText = '';
    }
    if (this.#state !== 'open' || chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    try {
      this.#readFrames();
    } catch (error) {
      this.#close(
        new DbusError(
          'protocol',
          `bad D-Bus message from ${this.socketPath}: ${describeError(error)}`,
          { cause: error },
        ),
      );
    }
  }

  /** True when authenticated; otherwise the connection is closed. */
  #onAuthLine(line: string): boolean {
    const [command, ...rest] = line.split(' ');
    if (command === 'OK') {
      // We ask for no unix fds, so BEGIN follows OK directly.
      this.#socket.write('BEGIN\r\n');
      this.#state = 'open';
      this.#authenticated.resolve(undefined);
      return true;
    }
    const why =
      command === 'REJECTED'
        ? `rejected EXTERNAL authentication as uid ${this.#uid} (it offers: ${rest.join(' ') || 'nothing'})`
        : `answered the authentication with "${line.slice(0, 200)}"`;
    this.#close(new DbusError('auth', `the D-Bus bus at ${this.socketPath} ${why}`));
    return false;
  }

  #readFrames(): void {
    const joined = (): Buffer => {
      if (this.#chunks.length > 1) this.#chunks = [Buffer.concat(this.#chunks, this.#buffered)];
      return this.#chunks[0] ?? Buffer.alloc(0);
    };
    while (this.#state === 'open' && this.#buffered >= FIXED_HEADER_BYTES) {
      this.#frameLength ??= messageLength(joined().subarray(0, FIXED_HEADER_BYTES));
      if (this.#frameLength > this.#maxMessageBytes)
        throw new DbusError(
          'protocol',
          `message of ${this.#frameLength} bytes exceeds our limit of ${this.#maxMessageBytes}`,
        );
      if (this.#buffered < this.#frameLength) return;
      const all = joined();
      const frame = all.subarray(0, this.#frameLength);
      this.#chunks = all.length > frame.length ? [all.subarray(frame.length)] : [];
      this.#buffered -= frame.length;
      this.#frameLength = undefined;
      const message = unmarshalMessage(frame);
      if (message !== undefined) this.#dispatch(message);
    }
  }

  #dispatch(message: DbusMessage): void {
    const serial = message.replySerial ?? 0;
    if (message.type === MessageType.MethodReturn) {
      this.#settle(serial, message);
    } else if (message.type === MessageType.Error) {
      const [text] = message.body;
      const name = message.errorName ?? '';
      const what = this.#pending.get(serial)?.what ?? 'D-Bus call';
      const detail = typeof text === 'string' ? `${name}: ${text}` : name;
      this.#settle(serial, new DbusError('remote', `${what}: ${detail}`, { dbusName: name }));
    } else if (message.type === MessageType.Signal) {
      for (const { match, listener } of [...this.#subscriptions]) {
        try {
          if (matches(match, message)) listener(message);
        } catch {
          // A listener's bug must not stop the other listeners, nor close the connection.
        }
      }
    } else if (message.interface === 'org.freedesktop.DBus.Peer' && message.member === 'Ping') {
      this.reply(message); // every connection answers Ping (spec, "org.freedesktop.DBus.Peer")
    } else if (this.#methodHandler === undefined) {
      this.replyError(message, `${BUS}.Error.UnknownMethod`, `no method ${message.member ?? ''}`);
    } else {
      try {
        this.#methodHandler(message);
      } catch (error) {
        this.replyError(message, `${BUS}.Error.Failed`, describeError(error));
      }
    }
  }

  #close(error: DbusError): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#closedError = error;
    this.#socket.destroy();
    this.#authenticated.reject(error);
    for (const serial of [...this.#pending.keys()]) this.#settle(serial, error);
    this.#subscriptions.clear();
    this.#methodHandler = undefined;
    this.#chunks = [];
    this.#buffered = 0;
    for (const listener of [...this.#closeListeners]) listener(error);
    this.#closeListeners.clear();
  }
}
