// Retry delays: exponential with "equal jitter" (half of each step fixed, the other half
// random), capped, reset after a success. Jitter matters for a DaemonSet: a thousand agents must
// not hit a recovering API server in the same second. The fixed half keeps a retry from coming
// at once (full jitter can draw 0), so the delays still grow with every failure.

export class Backoff {
  private attempt = 0;
  private readonly baseMs: number;
  private readonly maxMs: number;
  private readonly random: () => number;

  constructor(options: { baseMs?: number; maxMs?: number; random?: () => number } = {}) {
    this.baseMs = options.baseMs ?? 1000;
    this.maxMs = options.maxMs ?? 60_000;
    this.random = options.random ?? Math.random;
  }

  /** The next delay: between half and all of base * 2^attempt, at most maxMs. */
  next(atLeastMs = 0): number {
    const ceiling = Math.min(this.maxMs, this.baseMs * 2 ** this.attempt);
    this.attempt = Math.min(this.attempt + 1, 30);
    return Math.max(atLeastMs, Math.round(ceiling / 2 + (this.random() * ceiling) / 2));
  }

  reset(): void {
    this.attempt = 0;
  }
}

/** A sleep that ends early (resolving false) when the signal aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) {
      resolve(false);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
