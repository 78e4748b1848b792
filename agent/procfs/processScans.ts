// The one /proc pass shared by the pause, zombies and inotify checks: a check asks for a scan,
// and gets the one that finished moments ago, or joins the one under way, or starts one. So the
// three checks, scheduled together, read each /proc file once between them.
import type { HostRoot } from '../host/hostRoot.ts';
import { DEFAULT_INFRA_COMMANDS } from './processOwner.ts';
import { ProcessScanner } from './processScanner.ts';
import type { ProcessScan } from './processScanner.ts';
import { FirstSeen, UsageTrend } from './scanHistory.ts';

/** A scan younger than this (from its end) is reused rather than done again. */
const SCAN_REUSE_MS = 10_000;

export class ProcessScans {
  private readonly scanner: ProcessScanner;
  private last: { scan: ProcessScan; endedAt: number } | undefined;
  private inFlight: Promise<ProcessScan> | undefined;
  private infra: ReadonlySet<string> = new Set(DEFAULT_INFRA_COMMANDS);
  /** Watches in use per UID over time (the inotify check's trend). */
  readonly inotifyTrend = new UsageTrend();
  /** Zombie children per parent over time (the zombies check's growth). */
  readonly zombieParents = new UsageTrend();
  /** When each zombie was first seen a zombie (the zombies check's ages). */
  readonly zombiesSeen = new FirstSeen();

  constructor(host: HostRoot) {
    this.scanner = new ProcessScanner(host);
  }

  /**
   * comm names of pod infra processes (checks.pause.infraCommands), whose status and cgroup
   * every scan reads afresh: set from the configuration when it is loaded, whichever process
   * checks are enabled. A new set, so a scan under way keeps the one it started with (and says
   * which, in ProcessScan.infraCommands).
   */
  setInfraCommands(names: readonly string[]): void {
    this.infra = new Set(names);
  }

  /** The last scan that finished, if any (what the scan metrics report). */
  get latest(): ProcessScan | undefined {
    return this.last?.scan;
  }

  async get(signal?: AbortSignal): Promise<ProcessScan> {
    if (this.last !== undefined && Date.now() - this.last.endedAt < SCAN_REUSE_MS)
      return this.last.scan;
    // A check that times out aborts only its wait, not the scan the others are waiting for.
    this.inFlight ??= this.scanner
      .scan({ infraCommands: this.infra })
      .then((scan) => {
        this.last = { scan, endedAt: Date.now() };
        return scan;
      })
      .finally(() => {
        this.inFlight = undefined;
      });
    if (signal === undefined) return this.inFlight;
    signal.throwIfAborted();
    return await new Promise<ProcessScan>((resolve, reject) => {
      const onAbort = () => {
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      (this.inFlight as Promise<ProcessScan>).then(resolve, reject).finally(() => {
        signal.removeEventListener('abort', onAbort);
      });
    });
  }
}
