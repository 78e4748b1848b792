// The CVE table is data (kubernetes-cves.json, or an operator's replacement via
// checks.cve.feedFile): validated here once per load, then matched against running versions.
// A range is [introduced, fixed) or [introduced, lastAffected], or an exact list of versions,
// always in upstream x.y.z numbers; ranges are written oldest first and must not overlap, so a
// typo such as a fixed version below its introduced one is rejected by name, not matched wrong.
import * as v from 'valibot';
import { compareKubeVersions, coreVersion, parseKubeVersion } from '../../parsers/kubeVersion.ts';
import type { KubeVersion } from '../../parsers/kubeVersion.ts';

/** Components a table entry may name; the cve check looks at apiserver and kubelet. */
const CVE_COMPONENTS = [
  'apiserver',
  'kubelet',
  'kube-proxy',
  'kube-controller-manager',
  'kube-scheduler',
  'kubectl',
] as const;
export type CveComponent = (typeof CVE_COMPONENTS)[number];

const CVE_SEVERITIES = ['critical', 'high', 'medium', 'low'] as const;
export type CveSeverity = (typeof CVE_SEVERITIES)[number];

/**
 * Conditions, seen by the agent, under which an affected version is exploitable by anyone:
 * - anonymous-discovery: the API server answers discovery (/apis) without credentials.
 */
const CRITICAL_WHEN = ['anonymous-discovery'] as const;
export type CriticalWhen = (typeof CRITICAL_WHEN)[number];

const VERSION = /^\d{1,4}\.\d{1,4}\.\d{1,6}$/;
const version = v.pipe(
  v.string(),
  v.regex(VERSION, 'must be an upstream version such as "1.26.0" (no "v", no suffix)'),
);
const httpUrl = v.pipe(
  v.string(),
  v.url('must be a URL'),
  v.regex(/^https?:\/\//, 'must be http(s)'),
);

const rangeSchema = v.pipe(
  v.strictObject({
    introduced: v.optional(version),
    fixed: v.optional(version),
    lastAffected: v.optional(version),
    versions: v.optional(v.pipe(v.array(version), v.minLength(1, 'must list a version'))),
  }),
  v.check(
    (r) =>
      r.versions !== undefined
        ? r.introduced === undefined && r.lastAffected === undefined
        : (r.fixed === undefined) !== (r.lastAffected === undefined),
    'give either "fixed" or "lastAffected" (with an optional "introduced"), or "versions" (with an optional "fixed")',
  ),
  v.check((r) => {
    const end = r.fixed ?? r.lastAffected;
    if (end === undefined) return true;
    const starts = r.versions ?? [r.introduced ?? '0.0.0'];
    // fixed is exclusive, lastAffected inclusive; an exact version list must precede its fix.
    return starts.every((s) => {
      const order = compareCore(s, end);
      return r.lastAffected !== undefined && r.versions === undefined ? order <= 0 : order < 0;
    });
  }, 'the affected versions must come before the fixed (or last affected) version'),
);

export type AffectedRange = v.InferOutput<typeof rangeSchema>;

export const cveId = v.pipe(
  v.string(),
  v.regex(/^CVE-\d{4}-\d{4,}$/, 'must be a CVE id such as "CVE-2018-1002105"'),
);

const entrySchema = v.pipe(
  v.strictObject({
    id: cveId,
    summary: v.pipe(v.string(), v.trim(), v.nonEmpty('must not be empty')),
    components: v.pipe(
      v.array(v.picklist(CVE_COMPONENTS)),
      v.minLength(1, 'must name a component'),
    ),
    severity: v.picklist(CVE_SEVERITIES),
    cvss: v.optional(v.pipe(v.string(), v.regex(/^CVSS:3\.[01]\//, 'must be a CVSS 3 vector'))),
    platforms: v.optional(v.pipe(v.array(v.picklist(['linux', 'windows'])), v.minLength(1))),
    affected: v.pipe(v.array(rangeSchema), v.minLength(1, 'must list an affected range')),
    criticalWhen: v.optional(v.picklist(CRITICAL_WHEN)),
    notes: v.optional(v.string()),
    url: httpUrl,
    sources: v.pipe(v.array(httpUrl), v.minLength(1, 'must list a source')),
  }),
  v.check(
    (entry) => rangesAscending(entry.affected),
    'affected ranges must be written oldest first and must not overlap',
  ),
);

const tableSchema = v.pipe(
  v.strictObject({
    snapshot: v.pipe(v.string(), v.isoDate('must be a date such as "2026-11-22"')),
    source: httpUrl,
    scope: v.optional(v.string()),
    cves: v.array(entrySchema),
  }),
  v.check(
    (table) => new Set(table.cves.map((c) => c.id)).size === table.cves.length,
    'each CVE id may appear only once',
  ),
);

export type CveTable = v.InferOutput<typeof tableSchema>;
export type CveEntry = CveTable['cves'][number];

/** A table that does not validate; the message names the first problems by path. */
export class CveTableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CveTableError';
  }
}

/** The validated table in parsed JSON. Throws CveTableError naming what is wrong and where. */
export function validateCveTable(json: unknown): CveTable {
  const result = v.safeParse(tableSchema, json);
  if (result.success) return result.output;
  const problems = result.issues.slice(0, 3).map((issue) => {
    const where = v.getDotPath(issue);
    return where === null ? issue.message : `${where}: ${issue.message}`;
  });
  const more = result.issues.length > 3 ? ` (and ${result.issues.length - 3} more)` : '';
  throw new CveTableError(`${problems.join('; ')}${more}`);
}

export type CveMatch =
  | { affected: false }
  | {
      affected: true;
      /** The range that matched, written for evidence: ">=1.12.0 <1.12.3". */
      range: string;
      /** The fixed release to upgrade to: same minor when there is one, else the next fixed. */
      fixedIn?: string;
    };

/** Whether a version falls in one of an entry's affected ranges. */
export function matchCve(entry: CveEntry, running: KubeVersion): CveMatch {
  for (const range of entry.affected) {
    if (!inRange(range, running)) continue;
    const fixedIn = fixFor(entry, running);
    return { affected: true, range: describeRange(range), ...(fixedIn ? { fixedIn } : {}) };
  }
  return { affected: false };
}

function inRange(range: AffectedRange, running: KubeVersion): boolean {
  if (range.versions !== undefined) {
    // An exact list names releases; a pre-release of one is not that release.
    return running.preRelease === undefined && range.versions.includes(coreVersion(running));
  }
  const start = parseCore(range.introduced ?? '0.0.0');
  if (compareKubeVersions(running, start) < 0) return false;
  if (range.fixed !== undefined) return compareKubeVersions(running, parseCore(range.fixed)) < 0;
  return compareKubeVersions(running, parseCore(range.lastAffected ?? '0.0.0')) <= 0;
}

/**
 * The release that fixes it for this version: the fixed release of the same minor if the table
 * has one above the running version, otherwise the lowest fixed release above it (the minor is
 * out of support and never got the fix).
 */
function fixFor(entry: CveEntry, running: KubeVersion): string | undefined {
  const fixes = entry.affected
    .map((r) => r.fixed)
    .filter((f): f is string => f !== undefined)
    .map(parseCore)
    .filter((f) => compareKubeVersions(f, running) > 0)
    .sort(compareKubeVersions);
  const sameMinor = fixes.find((f) => f.major === running.major && f.minor === running.minor);
  const chosen = sameMinor ?? fixes[0];
  return chosen === undefined ? undefined : coreVersion(chosen);
}

/** ">=1.12.0 <1.12.3", "<1.10.11", ">=1.20.0 <=1.21.14", "=1.13.6". */
export function describeRange(range: AffectedRange): string {
  if (range.versions !== undefined) return range.versions.map((x) => `=${x}`).join(', ');
  const start = range.introduced === undefined ? '' : `>=${range.introduced} `;
  return range.fixed !== undefined
    ? `${start}<${range.fixed}`
    : `${start}<=${range.lastAffected ?? ''}`;
}

/** A table version ("1.12.3"; the schema has checked its form). */
function parseCore(text: string): KubeVersion {
  const version = parseKubeVersion(text);
  if (version === undefined) throw new Error(`not a version: ${text}`);
  return version;
}

function compareCore(a: string, b: string): number {
  return compareKubeVersions(parseCore(a), parseCore(b));
}

/** Each range starts after the previous one ends (fixed is exclusive, lastAffected inclusive). */
function rangesAscending(ranges: readonly AffectedRange[]): boolean {
  let previousEnd: { at: string; inclusive: boolean } | undefined;
  for (const range of ranges) {
    const starts = range.versions ?? [range.introduced ?? '0.0.0'];
    const first = [...starts].sort(compareCore)[0] ?? '0.0.0';
    if (previousEnd !== undefined) {
      const order = compareCore(first, previousEnd.at);
      if (previousEnd.inclusive ? order <= 0 : order < 0) return false;
    }
    const last = [...starts].sort(compareCore).at(-1) ?? first;
    previousEnd =
      range.fixed !== undefined
        ? { at: range.fixed, inclusive: false }
        : range.lastAffected !== undefined
          ? { at: range.lastAffected, inclusive: true }
          : { at: last, inclusive: true };
  }
  return true;
}
