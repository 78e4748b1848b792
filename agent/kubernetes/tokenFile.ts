// A bearer token kept in a file: the in-cluster ServiceAccount token, or a kubeconfig user's
// `token-file`. As client-go's cached file token source:
// - read again once it is a minute old, so a projected token that the kubelet rotates (about
//   every hour) keeps working; the age is measured on a monotonic clock, as a wall clock stepped
//   back would stall the re-reading;
// - trimmed: `kubectl create token ... > file` ends the file with a newline, and a header
//   value with one makes node:https throw on every request;
// - a re-read that fails keeps the token read before (the kubelet replaces the file by a
//   rename, but a half-written file or a passing error must not cut the agent off).
// Read without blocking the event loop (client-node's FileAuth reads synchronously).
import * as fs from '../host/asyncFs.ts';
import { fileErrorReason } from '../errors.ts';

/** client-go's period. */
const REREAD_MS = 60_000;

export class TokenFile {
  readonly file: string;
  private readonly monotonic: () => number;
  private token: string | undefined;
  private readAt = -Infinity;
  private reading: Promise<string> | undefined;

  constructor(file: string, monotonic: () => number = () => performance.now()) {
    this.file = file;
    this.monotonic = monotonic;
  }

  /** The token, read again if a minute old. Throws when it was never read and cannot be. */
  async get(): Promise<string> {
    if (this.token !== undefined && this.monotonic() - this.readAt < REREAD_MS) return this.token;
    // one read at a time, shared by the requests that wait for it
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<string> {
    try {
      const token = (await fs.readFile(this.file, 'utf8')).trim();
      if (token === '') throw new Error('it is empty');
      this.token = token;
      this.readAt = this.monotonic();
      return token;
    } catch (error) {
      if (this.token !== undefined) {
        // keep the one we have; try again at the next request
        return this.token;
      }
      throw new Error(`cannot read the token file ${this.file}: ${fileErrorReason(error)}`, {
        cause: error,
      });
    }
  }
}
