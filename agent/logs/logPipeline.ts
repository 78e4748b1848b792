// The log pipeline: sources (files, journald, kmsg) -> prefilter and rules -> incidents. In the
// agent it follows the logs for as long as it runs, counts lines and matches per source, keeps
// positions and incidents across restarts, and says when incidents changed (the `logs` check
// then turns them into findings). For `node-auditor check` it reads the recent past once.
//
// Sources are independent: one that fails (journalctl missing, /dev/kmsg not mounted, a file
// unreadable) is reported in its state metric and the logs check, and the others carry on; none
// reads more than one chunk between turns of the event loop.
import type { Logger } from 'pino';
import { durationMs } from '../config/duration.ts';
import { describeError } from '../errors.ts';
import type { HostRoot } from '../host/hostRoot.ts';
import { adoptHostTimeZone } from '../host/hostTimeZone.ts';
import type { Incident } from '../incidents/incident.ts';
import { IncidentTracker } from '../incidents/incidentTracker.ts';
import type { NodeFacts, TrackerChange } from '../incidents/incidentTracker.ts';
import { selectRules } from '../rules/catalogue.ts';
import { RuleSet } from '../rules/ruleSet.ts';
import type { SourceKind } from '../rules/ruleSpec.ts';
import type { MetricsSink } from '../sinks/metrics/metricsSink.ts';
import { FileSource } from '../sources/fileSource.ts';
import type { FileEvent } from '../sources/fileSource.ts';
import { JournaldSource } from '../sources/journaldSource.ts';
import { KmsgSource, readBootTime } from '../sources/kmsgSource.ts';
import { recordFromSyslogLine } from '../sources/logRecord.ts';
import type { LogRecord } from '../sources/logRecord.ts';
import type { FileSetting, LogSettings } from './logSettings.ts';
import { loadLogState, saveLogState } from './logState.ts';
import type { LogState } from './logState.ts';

/** At first start, at most this much of each file is read back for the lookback window. */
const LOOKBACK_BYTES = 8 * 1024 * 1024;
const TICK_MS = 5_000;
const CR = 0x0d;

export type SourceState = 'following' | 'polling' | 'waiting' | 'error';

export interface SourceStatus {
  source: string;
  kind: SourceKind;
  state: SourceState;
  detail?: string;
}

export interface LogPipelineOptions {
  host: HostRoot;
  settings: LogSettings;
  log: Logger;
  /** Where positions and incidents survive restarts (undefined: they do not). */
  stateDir?: string;
  metrics?: MetricsSink;
  /** Node readiness for clearing rules (requireNodeReady). */
  facts?: () => NodeFacts;
  /** Incidents changed: 'major' (opened, ended, new cause or severity) or 'minor' (counts, evidence). */
  onChange?: (change: Exclude<TrackerChange, 'none'>) => void;
}

interface FileEntry {
  setting: Extract<FileSetting, { path: string }>;
  source: FileSource;
}

export class LogPipeline {
  private readonly options: LogPipelineOptions;
  private settings: LogSettings;
  /** settings.lookback in ms (read on every line caught up at start). */
  private lookbackMs: number;
  /** Per source, how old its latest record was when read: published with the other source metrics. */
  private readonly lag = new Map<string, number>();
  private rules: RuleSet;
  private readonly tracker: IncidentTracker;
  private readonly files = new Map<string, FileEntry>();
  private journal: JournaldSource | undefined;
  private journalKey = '';
  private kmsg: KmsgSource | undefined;
  private saved: LogState | undefined;
  private readonly startedAt = Date.now();
  private bootTime = 0;
  private tick: NodeJS.Timeout | undefined;
  private dirty = false;
  private saving: Promise<void> = Promise.resolve();
  private warnedSave = false;
  private stopped = false;
  private readonly follow: boolean;

  private constructor(options: LogPipelineOptions, rules: RuleSet, follow: boolean) {
    this.options = options;
    this.settings = options.settings;
    this.lookbackMs = durationMs(options.settings.lookback);
    this.rules = rules;
    this.follow = follow;
    this.tracker = new IncidentTracker(rules.rules, {
      maxEvidence: options.settings.maxEvidence,
      maxEnded: follow ? 50 : 1000,
    });
  }

  /** Follow the logs until stop(). Throws only for rules that do not load (a config error). */
  static async start(options: LogPipelineOptions): Promise<LogPipeline> {
    const pipeline = new LogPipeline(options, await buildRules(options.settings), true);
    await pipeline.begin();
    return pipeline;
  }

  /**
   * The recent past, once (`node-auditor check`): the lookback of every source, then the
   * incidents still open at the end. Nothing is saved.
   */
  static async readRecent(options: LogPipelineOptions): Promise<LogPipeline> {
    const pipeline = new LogPipeline(options, await buildRules(options.settings), false);
    await adoptHostTimeZone(options.host);
    pipeline.bootTime = await readBootTime(options.host);
    await pipeline.readOnce();
    return pipeline;
  }

  /** Incidents open now. */
  incidents(): Incident[] {
    return this.tracker.open();
  }

  sources(): SourceStatus[] {
    const out: SourceStatus[] = [];
    for (const [path, { source }] of this.files) {
      const h = source.health();
      out.push({
        source: path,
        kind: 'file',
        state: h.state === 'following' && h.mode === 'poll' ? 'polling' : h.state,
        ...(h.detail === undefined ? {} : { detail: h.detail }),
      });
    }
    if (this.journal !== undefined) {
      const h = this.journal.health();
      out.push({
        source: 'journald',
        kind: 'journald',
        state: h.state,
        ...(h.detail === undefined ? {} : { detail: h.detail }),
      });
    }
    if (this.kmsg !== undefined) {
      const h = this.kmsg.health();
      out.push({
        source: 'kmsg',
        kind: 'kmsg',
        state: h.state,
        ...(h.detail === undefined ? {} : { detail: h.detail }),
      });
    }
    return out;
  }

  /** Problems of the rules in force that set a NodeCondition, by condition type. */
  conditionProblems(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const rule of this.rules.rules) {
      if (rule.condition === undefined) continue;
      const problems = out.get(rule.condition) ?? [];
      if (!problems.includes(rule.problem)) problems.push(rule.problem);
      out.set(rule.condition, problems);
    }
    return out;
  }

  /** New settings (a reload): new rules at once; sources added, removed or restarted as needed. */
  async reconfigure(settings: LogSettings): Promise<void> {
    const rules = await buildRules(settings);
    this.settings = settings;
    this.lookbackMs = durationMs(settings.lookback);
    this.rules = rules;
    this.tracker.setRules(rules.rules);
    await this.syncSources();
    this.expire();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.tick);
    await Promise.all([
      ...[...this.files.values()].map((f) => f.source.stop()),
      this.journal?.stop(),
      this.kmsg?.stop(),
    ]);
    if (this.follow) await this.save();
  }

  private async begin(): Promise<void> {
    const zone = await adoptHostTimeZone(this.options.host);
    if (zone !== undefined) {
      this.options.log.info({ event: 'logs.timezone', zone }, `syslog times are read in ${zone}`);
    }
    this.bootTime = await readBootTime(this.options.host);
    if (this.options.stateDir !== undefined) {
      const saved = await loadLogState(this.options.stateDir);
      if (saved !== undefined && saved.hostRoot !== this.options.host.root) {
        // Positions and incidents of another host root (a stateDir shared by mistake, or
        // --host-root changed): starting from them would replay or skip, and show old incidents.
        this.options.log.warn(
          {
            event: 'logs.state.other-root',
            savedFor: saved.hostRoot ?? 'unknown',
            hostRoot: this.options.host.root,
          },
          'the saved log state is of another host root; starting afresh',
        );
      } else {
        this.saved = saved;
        if (saved?.tracker !== undefined) this.tracker.restore(saved.tracker);
      }
    }
    await this.syncSources();
    this.expire();
    this.tick = setInterval(() => {
      this.expire();
      this.publishSourceMetrics();
      if (this.dirty) void this.save();
    }, TICK_MS);
    this.tick.unref();
    this.publishSourceMetrics();
  }

  private async readOnce(): Promise<void> {
    await this.syncSources();
    await Promise.all([
      ...[...this.files.values()].map((f) => f.source.stop()),
      this.journal?.finished().then(() => this.journal?.stop()),
      this.kmsg?.readNow().then(() => this.kmsg?.stop()),
    ]);
    this.expire();
  }

  /** Make the running sources match the settings and the rules' needs. */
  private async syncSources(): Promise<void> {
    const { settings } = this;
    const wanted = new Map<string, FileEntry['setting']>();
    for (const entry of settings.files) {
      wanted.set(entry.path, entry);
    }
    for (const path of this.rules.monitorPaths()) {
      if (!wanted.has(path)) wanted.set(path, { path, format: 'syslog' });
    }
    for (const [path, entry] of this.files) {
      const want = wanted.get(path);
      if (want === undefined || JSON.stringify(want) !== JSON.stringify(entry.setting)) {
        await entry.source.stop();
        this.rememberFile(path, entry.source);
        this.files.delete(path);
        this.options.metrics?.remove('node_auditor_log_source_unread_bytes', { source: path });
        this.forgetSourceState(path);
      }
    }
    for (const [path, setting] of wanted) {
      if (this.files.has(path)) continue;
      const source = this.makeFileSource(setting);
      this.files.set(path, { setting, source });
      this.options.metrics?.inc('node_auditor_log_lines_total', { source: path }, 0);
      await source.start();
    }

    const journalKey = settings.journal.enabled
      ? JSON.stringify([
          settings.journal.directories,
          settings.journal.command,
          this.journalIdentifiers(),
          settings.journal.units,
        ])
      : '';
    if (journalKey !== this.journalKey) {
      const cursor = this.journal?.checkpoint() ?? this.saved?.journalCursor;
      await this.journal?.stop();
      this.journal = undefined;
      this.journalKey = journalKey;
      if (settings.journal.enabled) {
        this.journal = new JournaldSource({
          host: this.options.host,
          directories: settings.journal.directories,
          identifiers: this.journalIdentifiers(),
          units: settings.journal.units,
          command: settings.journal.command,
          log: this.options.log,
          maxLineBytes: settings.maxLineBytes,
          lookbackMs: durationMs(settings.lookback),
          follow: this.follow,
          ...(cursor === undefined ? {} : { savedCursor: cursor }),
          consumer: {
            record: (record, catchUp) => {
              this.count('journald', 1);
              this.handle(record, catchUp);
            },
            lineCut: () => {
              this.options.metrics?.inc('node_auditor_log_lines_cut_total', { source: 'journald' });
            },
          },
        });
        this.options.metrics?.inc('node_auditor_log_lines_total', { source: 'journald' }, 0);
        await this.journal.start();
      } else {
        this.forgetSourceState('journald');
      }
    }

    const kmsgKey = settings.kmsg.enabled ? settings.kmsg.path : '';
    if (this.kmsg !== undefined && (kmsgKey === '' || this.kmsgPath !== kmsgKey)) {
      await this.kmsg.stop();
      this.kmsg = undefined;
      this.forgetSourceState('kmsg');
    }
    if (this.kmsg === undefined && kmsgKey !== '') {
      this.kmsgPath = kmsgKey;
      const saved = this.saved?.kmsg;
      this.kmsg = new KmsgSource({
        host: this.options.host,
        path: kmsgKey,
        log: this.options.log,
        lookbackMs: durationMs(settings.lookback),
        ...(saved === undefined ? {} : { saved }),
        consumer: {
          record: (record, catchUp) => {
            this.count('kmsg', 1);
            this.handle(record, catchUp);
          },
          lineCut: () => undefined,
          lost: (n) => {
            this.options.metrics?.inc('node_auditor_log_records_lost_total', { source: 'kmsg' }, n);
          },
        },
      });
      this.options.metrics?.inc('node_auditor_log_lines_total', { source: 'kmsg' }, 0);
      this.options.metrics?.inc('node_auditor_log_records_lost_total', { source: 'kmsg' }, 0);
      await this.kmsg.start();
    }
    this.publishSourceMetrics();
  }

  private kmsgPath = '';

  private journalIdentifiers(): string[] {
    return [
      ...new Set([...this.settings.journal.identifiers, ...this.rules.journaldIdentifiers()]),
    ].sort();
  }

  private makeFileSource(setting: FileEntry['setting']): FileSource {
    const path = setting.path;
    const saved = this.saved?.files[path];
    return new FileSource({
      host: this.options.host,
      hostPath: path,
      log: this.options.log,
      maxLineBytes: this.settings.maxLineBytes,
      lookbackBytes: this.lookbackMs === 0 ? 0 : LOOKBACK_BYTES,
      follow: this.follow,
      ...(saved === undefined ? {} : { saved }),
      consumer: {
        lines: (bytes, start, end, catchUp) => {
          this.fileLines(setting, bytes, start, end, catchUp);
        },
        lineCut: () => {
          this.options.metrics?.inc('node_auditor_log_lines_cut_total', { source: path });
        },
        event: (event: FileEvent, detail: string) => {
          this.options.metrics?.inc('node_auditor_log_file_events_total', {
            source: path,
            event: event.replaceAll('-', '_'),
          });
          this.options.log.info({ event: `logs.file.${event}`, source: path }, detail);
        },
      },
    });
  }

  private fileLines(
    setting: FileEntry['setting'],
    bytes: Buffer,
    start: number,
    end: number,
    catchUp: boolean,
  ): void {
    const now = Date.now();
    const plain = setting.format === 'plain';
    const lines = this.rules.scanBytes(bytes, start, end, (lineStart, lineEnd, owners, count) => {
      const stop = lineEnd > lineStart && bytes[lineEnd - 1] === CR ? lineEnd - 1 : lineEnd;
      const record = recordFromSyslogLine(
        bytes.toString('utf8', lineStart, stop),
        setting.path,
        now,
        {
          plain,
          ...(setting.identifier === undefined ? {} : { identifier: setting.identifier }),
        },
      );
      this.handle(record, catchUp, owners, count);
    });
    this.count(setting.path, lines);
  }

  private count(source: string, lines: number): void {
    if (lines === 0) return;
    this.options.metrics?.inc('node_auditor_log_lines_total', { source }, lines);
    this.dirty = true;
  }

  private handle(record: LogRecord, catchUp: boolean, owners?: Int32Array, count?: number): void {
    const now = Date.now();
    if (catchUp) {
      // Read back at first start: only what the lookback window covers.
      if (!record.timeKnown || record.time < this.startedAt - this.lookbackMs) return;
    } else if (record.timeKnown && record.kind !== 'file') {
      this.lag.set(record.source, Math.max(0, (now - record.time) / 1000));
    }
    let matches;
    try {
      matches = this.rules.evaluate(record, owners, count);
    } catch (error) {
      // A rule must never take the pipeline down; a RegExp cannot throw, but be sure.
      this.options.log.error({ err: describeError(error) }, 'log rule evaluation failed');
      return;
    }
    if (matches.length === 0) return;
    for (const match of matches) {
      if (match.kind === 'match') {
        this.options.metrics?.inc('node_auditor_log_matches_total', {
          source: record.source,
          rule: match.rule.id,
        });
      }
    }
    // Lines read back at start-up keep their own time, so old incidents end on schedule.
    const clock = catchUp ? Math.min(now, record.time) : now;
    const change = this.tracker.observe(record, matches, clock);
    if (change !== 'none') {
      this.dirty = true;
      this.options.onChange?.(change);
    }
  }

  private expire(): void {
    const facts = { bootTime: this.bootTime, ...this.options.facts?.() };
    const change = this.tracker.expire(Date.now(), facts);
    if (change !== 'none') {
      this.dirty = true;
      this.options.onChange?.(change);
    }
  }

  private publishSourceMetrics(): void {
    const metrics = this.options.metrics;
    if (metrics === undefined) return;
    for (const status of this.sources()) {
      for (const state of ['following', 'polling', 'waiting', 'error'] as const) {
        metrics.set('node_auditor_log_source_state', status.state === state ? 1 : 0, {
          source: status.source,
          state,
        });
      }
    }
    for (const [source, seconds] of this.lag) {
      metrics.set('node_auditor_log_source_lag_seconds', seconds, { source });
    }
    for (const [path, { source }] of this.files) {
      metrics.set('node_auditor_log_source_unread_bytes', source.health().unreadBytes, {
        source: path,
      });
    }
  }

  private forgetSourceState(source: string): void {
    this.lag.delete(source);
    const metrics = this.options.metrics;
    if (metrics === undefined) return;
    for (const state of ['following', 'polling', 'waiting', 'error']) {
      metrics.remove('node_auditor_log_source_state', { source, state });
    }
    metrics.remove('node_auditor_log_source_lag_seconds', { source });
  }

  private rememberFile(path: string, source: FileSource): void {
    this.saved ??= { version: 1, files: {} };
    this.saved.files[path] = source.checkpoint();
  }

  private async save(): Promise<void> {
    const dir = this.options.stateDir;
    if (dir === undefined) return;
    this.dirty = false;
    const files: LogState['files'] = { ...this.saved?.files };
    for (const [path, { source }] of this.files) files[path] = source.checkpoint();
    const state: LogState = {
      version: 1,
      hostRoot: this.options.host.root,
      files,
      tracker: this.tracker.snapshot(),
    };
    const cursor = this.journal?.checkpoint() ?? this.saved?.journalCursor;
    if (cursor !== undefined) state.journalCursor = cursor;
    const kmsg = this.kmsg?.checkpoint() ?? this.saved?.kmsg;
    if (kmsg !== undefined) state.kmsg = kmsg;
    this.saving = this.saving.then(async () => {
      try {
        await saveLogState(dir, state);
      } catch (error) {
        if (!this.warnedSave) {
          this.options.log.warn(
            { event: 'logs.state.unsaved', err: describeError(error), stateDir: dir },
            'cannot save log positions and incidents; after a restart the lookback is read again',
          );
        }
        this.warnedSave = true;
      }
    });
    await this.saving;
    if (this.stopped) return;
  }
}

async function buildRules(settings: LogSettings): Promise<RuleSet> {
  return new RuleSet(
    await selectRules({
      disabledRules: settings.disabledRules,
      rules: settings.rules,
      npdConfigs: settings.npdConfigs,
    }),
  );
}
