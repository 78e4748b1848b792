// Incidents, not lines. Matched lines of one group (the kubelet/runtime stack is one group, each
// kernel problem another) join the group's open incident; the highest priority rule names the
// cause, so "Failed to start cAdvisor ... inotify_add_watch ...: no space left on device" then
// "kubelet.service: Main process exited" is one InotifyWatchesExhausted incident with both lines.
// A storm of identical lines is one incident with a count. A line that arrives through two
// sources (the kernel's ring buffer and kern.log, journald and syslog) counts once.
//
// The clock is the agent's when following logs, and the lines' own when scanning saved ones, so
// "why was this node NotReady last night?" finds each episode as its own incident.
import { severityRank } from '../findings/finding.ts';
import type { CompiledRule, RuleMatch } from '../rules/ruleSet.ts';
import type { LogRecord } from '../sources/logRecord.ts';
import type { Incident } from './incident.ts';

export interface TrackerOptions {
  /** Distinct lines kept as evidence per incident. */
  maxEvidence: number;
  /** Ended incidents remembered (scan-logs prints them; the agent keeps a few). */
  maxEnded: number;
  /** A line seen again through another source within this long is the same line. */
  dedupeWindowMs?: number;
}

/** What the tracker knows about the node when it decides whether an incident is over. */
export interface NodeFacts {
  /** false: NotReady (or kubelet unhealthy); undefined: unknown (it does not hold a clear back). */
  nodeReady?: boolean;
  /** When the host last booted (ms since the epoch). */
  bootTime?: number;
}

export type TrackerChange = 'none' | 'minor' | 'major';

interface CountWindow {
  times: number[];
  lines: string[];
}

interface SeenLine {
  counts: Map<string, number>;
  at: number;
}

const DEDUPE_ENTRIES = 4096;

export class IncidentTracker {
  private readonly options: Required<TrackerOptions>;
  private readonly openByGroup = new Map<string, Incident>();
  private readonly ended: Incident[] = [];
  private readonly windows = new Map<string, CountWindow>();
  private readonly seen = new Map<string, SeenLine>();
  /** Evidence dedupe per incident: messages already shown. */
  private readonly evidenceKeys = new WeakMap<Incident, Set<string>>();
  private rulesById = new Map<string, CompiledRule>();
  /** The latest facts expire() was given: a line arriving later does not forget them. */
  private facts: NodeFacts = {};

  constructor(rules: readonly CompiledRule[], options: TrackerOptions) {
    this.options = { dedupeWindowMs: 10_000, ...options };
    this.setRules(rules);
  }

  /** New rules after a reload: incidents of rules that are gone end. */
  setRules(rules: readonly CompiledRule[], now = Date.now()): void {
    this.rulesById = new Map(rules.map((r) => [r.id, r]));
    for (const [group, incident] of this.openByGroup) {
      const rule = this.rulesById.get(incident.rule);
      if (rule === undefined) this.end(group, incident, now, 'its rule was removed');
      else refreshFromRule(incident, rule);
    }
    for (const id of this.windows.keys()) if (!this.rulesById.has(id)) this.windows.delete(id);
  }

  /**
   * One record and the rules it matched. `now` is the tracker's clock (see the file comment).
   * Returns how much changed: 'major' when an incident opened, ended or changed its cause or
   * severity; 'minor' when only counts and evidence grew.
   */
  observe(record: LogRecord, matches: readonly RuleMatch[], now: number): TrackerChange {
    if (matches.length === 0) return 'none';
    if (this.isDuplicate(record)) return 'none';
    let change: TrackerChange = this.expire(now, this.facts);
    const clears = matches.filter((m) => m.kind === 'clear');
    for (const { rule } of clears) {
      const incident = this.openByGroup.get(rule.group);
      if (incident?.rules.includes(rule.id) === true) {
        this.end(rule.group, incident, now, `cleared by: ${record.line}`);
        change = 'major';
      }
    }
    const byGroup = new Map<string, CompiledRule[]>();
    for (const { rule, kind } of matches) {
      if (kind !== 'match') continue;
      const list = byGroup.get(rule.group);
      if (list === undefined) byGroup.set(rule.group, [rule]);
      else list.push(rule);
    }
    for (const [group, rules] of byGroup) {
      change = max(change, this.observeGroup(group, rules, record, now));
    }
    return change;
  }

  /** End incidents whose clearing rule holds. Returns 'major' when one ended. */
  expire(now: number, facts: NodeFacts): TrackerChange {
    this.facts = facts;
    let change: TrackerChange = 'none';
    for (const [group, incident] of this.openByGroup) {
      const rule = this.rulesById.get(incident.rule);
      if (rule === undefined) continue;
      const { clear } = rule;
      if (clear.onReboot && facts.bootTime !== undefined && facts.bootTime > incident.lastSeen) {
        this.end(group, incident, now, 'the host rebooted since');
        change = 'major';
        continue;
      }
      if (clear.quietMs === undefined || now - incident.lastActivity < clear.quietMs) continue;
      if (clear.requireNodeReady && facts.nodeReady === false) continue;
      this.end(
        group,
        incident,
        now,
        `no matching line for ${Math.round(clear.quietMs / 60_000)}m${clear.requireNodeReady && facts.nodeReady === true ? ' and the node is Ready' : ''}`,
      );
      change = 'major';
    }
    return change;
  }

  open(): Incident[] {
    return [...this.openByGroup.values()];
  }

  /** Every incident, ended ones first (by first line), then open ones. */
  all(): Incident[] {
    return [...this.ended, ...this.openByGroup.values()].sort((a, b) => a.firstSeen - b.firstSeen);
  }

  /** What survives a restart: open incidents and the count windows. */
  snapshot(): TrackerSnapshot {
    return {
      open: this.open().map((i) => ({ ...i })),
      windows: Object.fromEntries([...this.windows].map(([id, w]) => [id, { ...w }])),
    };
  }

  restore(snapshot: TrackerSnapshot): void {
    for (const incident of snapshot.open) {
      const rule = this.rulesById.get(incident.rule);
      if (rule === undefined || this.openByGroup.has(incident.group)) continue;
      const copy = { ...incident, evidence: [...incident.evidence] };
      refreshFromRule(copy, rule);
      this.openByGroup.set(copy.group, copy);
    }
    for (const [id, window] of Object.entries(snapshot.windows)) {
      if (this.rulesById.has(id))
        this.windows.set(id, { times: [...window.times], lines: [...window.lines] });
    }
  }

  private observeGroup(
    group: string,
    rules: readonly CompiledRule[],
    record: LogRecord,
    now: number,
  ): TrackerChange {
    // Rules with a count window take part only once they have seen enough lines in it.
    const effective: CompiledRule[] = [];
    const filled: string[][] = [];
    for (const rule of rules) {
      if (rule.count === undefined) {
        effective.push(rule);
        continue;
      }
      const window = this.windows.get(rule.id) ?? { times: [], lines: [] };
      this.windows.set(rule.id, window);
      window.times.push(record.time);
      window.lines.push(record.line);
      while (
        window.times.length > rule.count.threshold ||
        (window.times.length > 0 && record.time - (window.times[0] as number) > rule.count.windowMs)
      ) {
        window.times.shift();
        window.lines.shift();
      }
      if (window.times.length >= rule.count.threshold) {
        effective.push(rule);
        filled.push(window.lines);
      }
    }
    let incident = this.openByGroup.get(group);
    const best = pickBest(effective);
    let change: TrackerChange = 'minor';
    if (incident === undefined) {
      const opener = best;
      if (opener === undefined) return 'none';
      incident = {
        group,
        rule: opener.id,
        problem: opener.problem,
        severity: opener.severity,
        title: opener.title,
        count: 0,
        firstSeen: record.time,
        lastSeen: record.time,
        evidence: [],
        omitted: 0,
        sources: [],
        rules: [],
        lastActivity: now,
      };
      refreshFromRule(incident, opener);
      this.openByGroup.set(group, incident);
      change = 'major';
      // The lines that filled a count window belong to the incident they started (copied only
      // now: past its threshold, a window fills again with every line of a storm).
      for (const lines of filled) {
        for (const line of lines.slice(0, -1)) this.addEvidence(incident, line);
        incident.count += lines.length - 1;
      }
    } else if (best !== undefined) {
      const current = this.rulesById.get(incident.rule);
      if (current === undefined || best.priority > current.priority) {
        refreshFromRule(incident, best);
        change = 'major';
      }
    }
    for (const rule of effective) {
      if (severityRank(rule.severity) > severityRank(incident.severity)) {
        incident.severity = rule.severity;
        change = 'major';
      }
    }
    for (const rule of rules) if (!incident.rules.includes(rule.id)) incident.rules.push(rule.id);
    if (!incident.sources.includes(record.source)) incident.sources.push(record.source);
    incident.count++;
    incident.firstSeen = Math.min(incident.firstSeen, record.time);
    incident.lastSeen = Math.max(incident.lastSeen, record.time);
    incident.lastActivity = Math.max(incident.lastActivity, now);
    this.addEvidence(incident, record.line);
    return change;
  }

  private addEvidence(incident: Incident, line: string): void {
    let keys = this.evidenceKeys.get(incident);
    if (keys === undefined) {
      keys = new Set(incident.evidence.map(evidenceKey));
      this.evidenceKeys.set(incident, keys);
    }
    // full: no key to compute (a storm's lines after the first few all end here)
    if (incident.evidence.length >= this.options.maxEvidence) {
      incident.omitted++;
      return;
    }
    const key = evidenceKey(line);
    if (keys.has(key)) {
      incident.omitted++;
      return;
    }
    keys.add(key);
    incident.evidence.push(line);
  }

  private end(group: string, incident: Incident, now: number, reason: string): void {
    this.openByGroup.delete(group);
    incident.endedAt = now;
    incident.endReason = reason;
    this.ended.push(incident);
    if (this.ended.length > this.options.maxEnded) this.ended.shift();
  }

  /**
   * The same line through a second source (kmsg and kern.log, journald and syslog): per line,
   * the count of each source; a copy is new only when its source has now seen it more often than
   * any other source has.
   */
  private isDuplicate(record: LogRecord): boolean {
    const key = `${record.identifier ?? ''}\u0000${record.message.trim()}`;
    let entry = this.seen.get(key);
    if (entry !== undefined && Math.abs(record.time - entry.at) > this.options.dedupeWindowMs) {
      entry = undefined;
    }
    if (entry === undefined) {
      entry = { counts: new Map(), at: record.time };
      if (this.seen.size >= DEDUPE_ENTRIES) {
        const oldest = this.seen.keys().next().value;
        if (oldest !== undefined) this.seen.delete(oldest);
      }
    }
    this.seen.delete(key);
    this.seen.set(key, entry);
    entry.at = record.time;
    const mine = (entry.counts.get(record.source) ?? 0) + 1;
    entry.counts.set(record.source, mine);
    for (const [source, n] of entry.counts) if (source !== record.source && n >= mine) return true;
    return false;
  }
}

export interface TrackerSnapshot {
  open: Incident[];
  windows: Record<string, CountWindow>;
}

function pickBest(rules: readonly CompiledRule[]): CompiledRule | undefined {
  let best: CompiledRule | undefined;
  for (const rule of rules) {
    if (best === undefined || rule.priority > best.priority) best = rule;
  }
  return best;
}

function refreshFromRule(incident: Incident, rule: CompiledRule): void {
  incident.rule = rule.id;
  incident.problem = rule.problem;
  incident.title = rule.title;
  if (rule.cause === undefined) delete incident.cause;
  else incident.cause = rule.cause;
  if (rule.remediation === undefined) delete incident.remediation;
  else incident.remediation = rule.remediation;
  if (rule.condition === undefined) delete incident.condition;
  else incident.condition = rule.condition;
  if (severityRank(rule.severity) > severityRank(incident.severity))
    incident.severity = rule.severity;
}

/** A storm repeats one message with new timestamps and pids: show it once. */
function evidenceKey(line: string): string {
  return line.replace(/\d+/g, '#');
}

function max(a: TrackerChange, b: TrackerChange): TrackerChange {
  const rank = { none: 0, minor: 1, major: 2 } as const;
  return rank[a] >= rank[b] ? a : b;
}
