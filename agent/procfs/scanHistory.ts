// What the process checks remember between scans: a usage trend (to say when a limit will be
// reached at the current rate) and when something was first seen. Bounded: entries not seen in
// a scan are dropped, and a trend keeps at most MAX_SAMPLES samples within its window.

const MAX_SAMPLES = 240;

interface TrendSample {
  at: number;
  value: number;
}

export class UsageTrend {
  private readonly series = new Map<string, TrendSample[]>();
  private lastAt = -1;

  /** Record one scan's values (once per scan, however many checks read it). */
  record(at: number, values: ReadonlyMap<string, number>, windowMs: number): void {
    if (at === this.lastAt) return;
    this.lastAt = at;
    for (const key of this.series.keys()) if (!values.has(key)) this.series.delete(key);
    for (const [key, value] of values) {
      const samples = this.series.get(key) ?? [];
      samples.push({ at, value });
      while (samples.length > MAX_SAMPLES || (samples[0] as TrendSample).at < at - windowMs)
        samples.shift();
      this.series.set(key, samples);
    }
  }

  /**
   * Least-squares slope (per second) over the window, or undefined with fewer than 3 samples
   * spanning at least a minute: too little to call a rate.
   */
  ratePerSecond(key: string): number | undefined {
    const samples = this.series.get(key);
    if (samples === undefined || samples.length < 3) return undefined;
    const first = (samples[0] as TrendSample).at;
    const last = (samples[samples.length - 1] as TrendSample).at;
    if (last - first < 60_000) return undefined;
    let sx = 0;
    let sy = 0;
    let sxx = 0;
    let sxy = 0;
    for (const { at, value } of samples) {
      const x = (at - first) / 1000;
      sx += x;
      sy += value;
      sxx += x * x;
      sxy += x * value;
    }
    const n = samples.length;
    const denominator = n * sxx - sx * sx;
    return denominator === 0 ? undefined : (n * sxy - sx * sy) / denominator;
  }

  /** How much the value rose within the window: latest minus the lowest sample. */
  increase(key: string): number {
    const samples = this.series.get(key);
    if (samples === undefined || samples.length === 0) return 0;
    const latest = (samples[samples.length - 1] as TrendSample).value;
    return latest - Math.min(...samples.map((s) => s.value));
  }

  /** Seconds until `limit` at the current rate, when usage is rising; else undefined. */
  secondsUntil(key: string, current: number, limit: number): number | undefined {
    const rate = this.ratePerSecond(key);
    if (rate === undefined || rate <= 0) return undefined;
    return Math.max(0, (limit - current) / rate);
  }
}

export class FirstSeen {
  private readonly seen = new Map<string, number>();
  private lastAt = -1;

  /** Record the keys present in one scan; returns when each was first seen. */
  record(at: number, keys: Iterable<string>): ReadonlyMap<string, number> {
    if (at !== this.lastAt) {
      this.lastAt = at;
      const present = new Set(keys);
      for (const key of this.seen.keys()) if (!present.has(key)) this.seen.delete(key);
      for (const key of present) if (!this.seen.has(key)) this.seen.set(key, at);
    }
    return this.seen;
  }
}
