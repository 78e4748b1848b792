// The one interface every check implements (node_exporter's Collector, NPD's Monitor).
// A check does host I/O and maps what it saw to findings and metric samples; parsing lives in
// agent/parsers. It never throws for bad host data (that is a finding); if it throws anyway,
// the runner reports a CheckFailed finding and the other checks carry on.
import type { Logger } from 'pino';
import type * as v from 'valibot';
import type { FindingDraft } from '../findings/finding.ts';
import type { HostRoot } from '../host/hostRoot.ts';
import type { Incident } from '../incidents/incident.ts';
import type { ProbeTls } from '../kubernetes/anonymousProbe.ts';
import type { PodLookup } from '../procfs/processOwner.ts';
import type { ProcessScans } from '../procfs/processScans.ts';
import type { SourceStatus } from '../logs/logPipeline.ts';
import type { MetricSample } from '../sinks/metrics/catalogue.ts';

export interface CheckContext<Options> {
  readonly host: HostRoot;
  readonly nodeName: string;
  /** This check's own validated, frozen options (checks.<id>.*). */
  readonly options: Readonly<Options>;
  /** Aborted when the run times out or the agent stops: stop early, results are discarded. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** What the running agent keeps live; empty in `node-auditor check`. */
  readonly services: CheckServices;
}

/** Long-running parts of the agent that checks report on. */
export interface CheckServices {
  /** The log pipeline following the node's logs (the logs check reads its incidents). */
  logs?: { incidents(): Incident[]; sources(): SourceStatus[] };
  /** The shared /proc pass of the pause, zombies and inotify checks. */
  processes?: ProcessScans;
  /** Pods on this node (namespace, name, containers by UID and container ID), with an API. */
  pods?: PodLookup;
  /** The Kubernetes API, when there is one (in `run` and in `check`). */
  cluster?: ClusterService;
  /** Without one: why not ("not in a cluster ...", "no file KUBECONFIG names can be read ..."). */
  noCluster?: string;
}

/** How a skip reason says there is no API (the start-up summary shortens it to this). */
export const NO_CLUSTER = 'no Kubernetes API';

/** Why a check that needs the Kubernetes API has none, for its skip reason (at its end). */
export function noClusterReason(services: CheckServices): string {
  return `${NO_CLUSTER}: ${services.noCluster ?? 'no kubeconfig, not in a cluster'}`;
}

/** What the security checks need of the cluster. */
export interface ClusterService {
  /** An authenticated GET as the agent's own identity; the parsed JSON body. Throws KubeApiError. */
  get<T = Record<string, unknown>>(path: string, signal?: AbortSignal): Promise<T>;
  /** Every object of a collection, read page by page (verb list). Throws KubeApiError. */
  list<T = Record<string, unknown>>(path: string, signal?: AbortSignal): Promise<T[]>;
  /** The API server the agent uses and how to verify its certificate (for unauthenticated probes). */
  readonly server: ProbeTls & { url: URL; rejectUnauthorized: boolean };
  /**
   * Whether this agent runs the cluster-wide audits: in `run`, only while it holds the leader
   * Lease (or when leader election is off); in `check`, always.
   */
  isLeader(): boolean;
  /** This node's Node object (from the watch in `run`, one GET in `check`); undefined if unknown. */
  node(signal?: AbortSignal): Promise<Record<string, unknown> | undefined>;
}

export interface CheckOutcome {
  /** Every problem currently true. Anything not reported again is cleared. */
  findings: FindingDraft[];
  /** Gauge values for the metrics this check owns; label sets not reported again are removed. */
  samples?: MetricSample[];
  /**
   * Set when the check had nothing to look at this time (no API, not the leader): reported as
   * "skipped" with this reason, and its findings are cleared (someone else, or nothing, owns them).
   */
  skipped?: string;
}

export interface CheckDefaults {
  enabled: boolean;
  /** A duration such as "60s"; checks.<id>.cron replaces it with a schedule. */
  interval: string;
  timeout: string;
}

export interface Check<Options extends v.ObjectEntriesAsync = v.ObjectEntriesAsync> {
  /** Stable id (never renamed): CLI --only, config key checks.<id>, metric label. */
  readonly id: string;
  readonly title: string;
  readonly description: string;
  readonly defaults: CheckDefaults;
  /**
   * Reports on the cluster (all of it, or a part such as the API server's version) only on the
   * leader in `run` (ClusterService.isLeader): it runs again at once when this agent becomes or
   * stops being the leader, not at its next interval.
   */
  readonly clusterWide?: boolean;
  /** Schemas of the check's own options (checks.<id>.<option>), with their defaults. */
  readonly options: Options;
  run(
    context: CheckContext<v.InferOutput<v.ObjectSchemaAsync<Options, undefined>>>,
  ): Promise<CheckOutcome>;
}
