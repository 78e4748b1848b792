// A bearer token kept in a file: the in-cluster ServiceAccount token, or a kubeconfig user's
// `token-file`. As client-go's cached file token source:
// - read again once it is a minute old, so a projected token that the kubelet rotates (about
//   every hour) keeps working; the age is measured on a monotonic clock, as a wall clock stepped
//   back would stall the re-reading;
// - trimmed: `kubectl create token ... > file` ends the file with a newline, and a header
//   value with one makes node:https throw on every request;
// - a re-read that fails keeps the token read before (the kubelet replaces the file by a
//   rename, but a half-written file or a passing error must not cut the agent off), or the
//   kubeconfig's `token` beside the `token-file` while the file has never been read.
// Unlike client-go, which tries the file again on every request and logs "Unable to rotate
// token" each time, a failed re-read is tried again after RETRY_MS, and said once per run of
// failures (the file and why, never the token), with one line when it can be read again: when
// the kept token expires, the 401s that follow have that line to explain them.
// Read without blocking the event loop (client-node's FileAuth reads synchronously), and only
// as a regular file: a FIFO would hold start-up, and then every request, forever.
import type { Logger } from 'pino';
import * as fs from '../host/asyncFs.ts';
import { fileErrorReason } from '../errors.ts';

/** client-go's period. */
const REREAD_MS = 60_000;
/** After a failed re-read, the token kept is used this long before the file is tried again. */
export const RETRY_MS = 5000;

export interface TokenFileOptions {
  /** Monotonic milliseconds, for the token's age (tests may drive it). */
  monotonic?: () => number;
  /** Where a failing re-read is said (once per run of failures). */
  log?: Logger;
  /** The token to use until the file has been read once (a kubeconfig's `token` beside it). */
  fallback?: string;
}

export class TokenFile {
  readonly file: string;
  private readonly monotonic: () => number;
  private readonly log: Logger | undefined;
  private readonly fallback: string | undefined;
  private token: string | undefined;
  private readAt = -Infinity;
  /** After a failed re-read: not tried again before this (monotonic ms). */
  private retryAt = -Infinity;
  /** The last re-read failed (and that was said). */
  private failing = false;
  private reading: Promise<string> | undefined;

  constructor(file: string, options: TokenFileOptions = {}) {
    this.file = file;
    this.monotonic = options.monotonic ?? (() => performance.now());
    this.log = options.log;
    this.fallback = options.fallback;
  }

  /**
   * The token, read again if a minute old. Throws when the file was never read and cannot be,
   * and there is no fallback.
   */
  async get(): Promise<string> {
    const kept = this.token ?? this.fallback;
    const now = this.monotonic();
    if (kept !== undefined && (now - this.readAt < REREAD_MS || now < this.retryAt)) return kept;
    // one read at a time, shared by the requests that wait for it
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<string> {
    try {
      const token = (await fs.readRegularFile(this.file)).trim();
      if (token === '') throw new Error('it is empty');
      this.token = token;
      this.readAt = this.monotonic();
      if (this.failing) {
        this.failing = false;
        this.log?.info(
          { event: 'kube.token.readable', file: this.file },
          `the token file ${this.file} can be read again`,
        );
      }
      return token;
    } catch (error) {
      const kept = this.token ?? this.fallback;
      if (kept === undefined) {
        throw new Error(`cannot read the token file ${this.file}: ${fileErrorReason(error)}`, {
          cause: error,
        });
      }
      this.retryAt = this.monotonic() + RETRY_MS;
      if (!this.failing) {
        this.failing = true;
        const reason = fileErrorReason(error);
        const using = this.token === undefined ? "the kubeconfig's token" : 'the token read before';
        this.log?.warn(
          { event: 'kube.token.unreadable', file: this.file, reason },
          `cannot read the token file ${this.file} (${reason}); ${using} is used until it can (tried again every ${String(RETRY_MS / 1000)}s)`,
        );
      }
      return kept;
    }
  }
}
