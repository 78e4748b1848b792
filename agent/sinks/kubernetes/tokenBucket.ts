// client-go's event spam filter: a token bucket per involved object (burst 25, one token back
// every 5 minutes).

export class TokenBucket {
  private tokens: number;
  private last: number;
  private readonly burst: number;
  private readonly refillMs: number;
  private readonly now: () => number;

  /** `now` must be monotonic: a wall clock stepped back would hold Events for hours. */
  constructor(burst: number, refillMs: number, now: () => number = () => performance.now()) {
    this.burst = burst;
    this.refillMs = refillMs;
    this.now = now;
    this.tokens = burst;
    this.last = now();
  }

  take(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Milliseconds until take() can succeed. */
  msUntilToken(): number {
    this.refill();
    return this.tokens >= 1 ? 0 : Math.ceil((1 - this.tokens) * this.refillMs);
  }

  private refill(): void {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + Math.max(0, now - this.last) / this.refillMs);
    this.last = now;
  }
}
