// Every metric the agent exports, in one table (names are a contract: dashboards, alerts and
// acceptance checks use them). Pure data: checks refer to names from here without touching
// prom-client; the metrics sink builds the collectors from it.

export interface MetricDefinition {
  name: string;
  type: 'gauge' | 'counter' | 'histogram';
  help: string;
  labels: readonly string[];
  buckets?: readonly number[];
}

export const METRICS = [
  {
    name: 'node_auditor_build_info',
    type: 'gauge',
    help: 'Always 1; the version label says which node-auditor is running.',
    labels: ['version'],
  },
  {
    name: 'node_auditor_check_duration_seconds',
    type: 'histogram',
    help: 'Time one run of a check took, including runs that failed or timed out.',
    labels: ['check'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  },
  {
    name: 'node_auditor_check_runs_total',
    type: 'counter',
    help: 'Runs of a check by result: ok (no problem), problem (warning or critical findings), error (the check failed or timed out).',
    labels: ['check', 'result'],
  },
  {
    name: 'node_auditor_check_last_success_timestamp_seconds',
    type: 'gauge',
    help: 'Unix time of the last run of a check that did not fail.',
    labels: ['check'],
  },
  {
    name: 'node_auditor_problem',
    type: 'gauge',
    help: 'A problem a check reports: 1 while active, 0 once cleared.',
    labels: ['check', 'problem', 'severity'],
  },
  {
    name: 'node_auditor_sysctl',
    type: 'gauge',
    help: 'Current value of a profiled sysctl (numeric single-value keys only).',
    labels: ['key'],
  },
  {
    name: 'node_auditor_sysctl_compliant',
    type: 'gauge',
    help: "1 when a profiled sysctl's runtime value meets the node profile, else 0.",
    labels: ['key'],
  },
  {
    name: 'node_auditor_sysctl_persisted',
    type: 'gauge',
    help: 'Whether a profiled sysctl will still meet the profile after a reboot or sysctl --system: 1 yes (persisted, or the boot default already meets it), 0 no.',
    labels: ['key'],
  },
  {
    name: 'node_auditor_notready_cause',
    type: 'gauge',
    help: 'NotReady root cause attribution: 1 while the node is NotReady (or its kubelet unhealthy) and this cause is attributed, or while a live fact says the cause is in effect now (NotReady is imminent); else 0.',
    labels: ['cause'],
  },
  {
    name: 'node_auditor_log_lines_total',
    type: 'counter',
    help: 'Log lines (or journal entries, kernel records) read, by source: a file path, journald or kmsg.',
    labels: ['source'],
  },
  {
    name: 'node_auditor_log_matches_total',
    type: 'counter',
    help: 'Lines a log rule matched, by source and rule id.',
    labels: ['source', 'rule'],
  },
  {
    name: 'node_auditor_log_source_state',
    type: 'gauge',
    help: 'State of a log source: 1 for the current state (following; polling: following a file without inotify; waiting: the file, journal or device does not exist; error: it cannot be read), 0 for the others.',
    labels: ['source', 'state'],
  },
  {
    name: 'node_auditor_log_source_lag_seconds',
    type: 'gauge',
    help: 'How old the latest line of a source was when the agent read it (its own timestamp to now), updated every 5 s: grows when reading falls behind.',
    labels: ['source'],
  },
  {
    name: 'node_auditor_log_source_unread_bytes',
    type: 'gauge',
    help: 'Bytes written to a followed file that the agent has not read yet.',
    labels: ['source'],
  },
  {
    name: 'node_auditor_log_lines_cut_total',
    type: 'counter',
    help: 'Lines longer than checks.logs.maxLineBytes, cut to that length.',
    labels: ['source'],
  },
  {
    name: 'node_auditor_log_records_lost_total',
    type: 'counter',
    help: 'Kernel log records overwritten in the ring buffer before the agent read them.',
    labels: ['source'],
  },
  {
    name: 'node_auditor_log_file_events_total',
    type: 'counter',
    help: 'What happened to a followed file: rotated (renamed away), truncated (no rotated copy held the unread lines), recovered_from_copy (copytruncate: the unread lines were read from the copy), deleted, created.',
    labels: ['source', 'event'],
  },
  {
    name: 'node_auditor_kubelet_client_cert_expiry_timestamp_seconds',
    type: 'gauge',
    help: "When the kubelet's client certificate expires (Unix time, seconds): alert on it minus time() being small.",
    labels: [],
  },
  {
    name: 'node_auditor_container_runtime_up',
    type: 'gauge',
    help: 'Whether a container runtime found on the node answers on its socket: 1 it answered, 0 it refused or did not answer in time.',
    labels: ['runtime'],
  },
  {
    name: 'node_auditor_inotify_watches',
    type: 'gauge',
    help: 'inotify watches held by the processes of a user (effective UID, the one the kernel charges), against fs.inotify.max_user_watches.',
    labels: ['uid'],
  },
  {
    name: 'node_auditor_inotify_instances',
    type: 'gauge',
    help: 'inotify instances held by the processes of a user (effective UID), against fs.inotify.max_user_instances.',
    labels: ['uid'],
  },
  {
    name: 'node_auditor_inotify_max_user_watches',
    type: 'gauge',
    help: 'fs.inotify.max_user_watches: the most inotify watches one user may hold.',
    labels: [],
  },
  {
    name: 'node_auditor_inotify_max_user_instances',
    type: 'gauge',
    help: 'fs.inotify.max_user_instances: the most inotify instances one user may hold.',
    labels: [],
  },
  {
    name: 'node_auditor_inotify_top_consumer_watches',
    type: 'gauge',
    help: 'inotify watches of the top holders (checks.inotify.topConsumers processes), by pod, container and process name; host processes have empty pod labels.',
    labels: ['namespace', 'pod', 'container', 'comm'],
  },
  {
    name: 'node_auditor_inotify_watches_limit_eta_seconds',
    type: 'gauge',
    help: "Seconds until a user's inotify watches reach fs.inotify.max_user_watches at the rate they grew over checks.inotify.trendWindow; only while they grow.",
    labels: ['uid'],
  },
  {
    name: 'node_auditor_zombie_processes',
    type: 'gauge',
    help: 'Zombie processes (exited, not yet reaped by their parent), by pod and container; host processes have empty pod labels.',
    labels: ['namespace', 'pod', 'container'],
  },
  {
    name: 'node_auditor_pid_usage_ratio',
    type: 'gauge',
    help: "PIDs in use over the limit: the node's tasks over kernel.pid_max (empty pod labels), or a pod's pids.current over its cgroup's pids.max (pods with a limit only).",
    labels: ['namespace', 'pod'],
  },
  {
    name: 'node_auditor_pod_sandboxes',
    type: 'gauge',
    help: "Pod sandboxes by the state of their infra (pause) process: ok, not_pid1 (not PID 1 of the pod's PID namespace), no_sigchld_handler (does not catch SIGCHLD, so it reaps nothing), not_reaping (catches SIGCHLD but has zombie children), no_term_handler (does not catch SIGINT or SIGTERM), zombie (exited, not reaped).",
    labels: ['state'],
  },
  {
    name: 'node_auditor_process_scan_duration_seconds',
    type: 'gauge',
    help: 'Wall time of the last /proc pass (every process and its file descriptors) the pause, zombies and inotify checks share.',
    labels: [],
  },
  {
    name: 'node_auditor_process_scan_processes',
    type: 'gauge',
    help: 'Processes the last /proc pass read.',
    labels: [],
  },
  {
    name: 'node_auditor_anonymous_auth_enabled',
    type: 'gauge',
    help: 'Whether a target authenticates requests without credentials as system:anonymous (1) or refuses them with 401 (0): kubelet (port 10250), kubelet-readonly (port 10255, no authentication at all), apiserver. Absent while the target cannot be reached.',
    labels: ['target'],
  },
  {
    name: 'node_auditor_anonymous_access_allowed',
    type: 'gauge',
    help: 'Whether a request without credentials to this path of the target is answered with 200 (1) or refused (0).',
    labels: ['target', 'path'],
  },
  {
    name: 'node_auditor_vulnerable',
    type: 'gauge',
    help: 'Whether the running version of a component (apiserver, kubelet) is affected by a known CVE (1) or not (0), from the CVE table checks.cve uses.',
    labels: ['cve', 'component'],
  },
  {
    name: 'node_auditor_node_ready',
    type: 'gauge',
    help: "1 when this node is Ready: its Node's Ready condition, or with no Kubernetes API the local kubelet's healthz. 0 otherwise.",
    labels: [],
  },
  {
    name: 'node_auditor_kube_api_errors_total',
    type: 'counter',
    help: 'Kubernetes API calls that failed (unreachable, refused, 429, 5xx), by verb.',
    labels: ['verb'],
  },
  {
    name: 'node_auditor_kube_watch_healthy',
    type: 'gauge',
    help: '1 while the watch of a resource (node, pods) is working, 0 while it retries.',
    labels: ['resource'],
  },
  {
    name: 'node_auditor_kube_events_sent_total',
    type: 'counter',
    help: 'Kubernetes Events written, by operation: create (a new Event) or patch (count and lastTimestamp of an existing one).',
    labels: ['operation'],
  },
  {
    name: 'node_auditor_remediation_actions_total',
    type: 'counter',
    help: 'Remediation decisions by action and outcome: applied (the host was changed and verified), dry_run (what enforce would have done, nothing changed), skipped (a safety gate said no; the Event says which) or failed (rolled back).',
    labels: ['action', 'outcome'],
  },
  {
    name: 'node_auditor_kube_events_dropped_total',
    type: 'counter',
    help: 'Kubernetes Events given up: rate_limited (the spam filter: a new Event beyond the burst), queue_full (the API was down too long; the oldest pending go first) or rejected (the API server refused it).',
    labels: ['reason'],
  },
  {
    name: 'node_auditor_kube_events_pending',
    type: 'gauge',
    help: 'Kubernetes Events waiting to be sent (the API is down, or the spam filter holds them).',
    labels: [],
  },
  {
    name: 'node_auditor_node_condition_foreign',
    type: 'gauge',
    help: "1 while another writer (node-problem-detector) holds this NodeCondition type, whose reason is not one of the agent's: the agent leaves it alone. 0 once the agent writes it again.",
    labels: ['type'],
  },
  {
    name: 'node_auditor_node_condition_contested',
    type: 'gauge',
    help: "1 while another writer keeps changing this NodeCondition type of the agent's (a second agent on the node that sees otherwise, a tool correcting it): the agent rewrites it less and less often, at most once per heartbeat period. 0 once it has kept the agent's value for two periods.",
    labels: ['type'],
  },
  {
    name: 'node_auditor_leader',
    type: 'gauge',
    help: 'Whether this agent holds the leader Lease and runs the cluster-scoped audits (1) or not (0).',
    labels: [],
  },
  {
    name: 'node_auditor_internal_errors_total',
    type: 'counter',
    help: 'Errors that escaped every handler (a bug): uncaught exceptions, unhandled rejections, a failed first pass, a log pipeline that could not start. The agent logs them and keeps running.',
    labels: ['kind'],
  },
  {
    name: 'node_auditor_config_reloads_total',
    type: 'counter',
    help: 'Configuration reloads by result: applied, or rejected (the old configuration is kept).',
    labels: ['result'],
  },
  {
    name: 'node_auditor_config_last_reload_successful',
    type: 'gauge',
    help: '1 if the last configuration reload was applied (or none was tried), 0 if it was rejected.',
    labels: [],
  },
  // The agent's own health, under the names every exporter uses (prom-client's default set costs
  // 8 MiB of RSS; these few are what an operator looks at).
  {
    name: 'process_resident_memory_bytes',
    type: 'gauge',
    help: 'Resident memory size of the agent in bytes.',
    labels: [],
  },
  {
    name: 'process_cpu_seconds_total',
    type: 'counter',
    help: 'User and system CPU time the agent has spent, in seconds.',
    labels: [],
  },
  {
    name: 'process_start_time_seconds',
    type: 'gauge',
    help: 'Start time of the agent since the Unix epoch, in seconds.',
    labels: [],
  },
  {
    name: 'nodejs_heap_size_used_bytes',
    type: 'gauge',
    help: 'V8 heap in use by the agent, in bytes.',
    labels: [],
  },
  {
    name: 'nodejs_eventloop_lag_p99_seconds',
    type: 'gauge',
    help: "99th percentile of the agent's event-loop delay since the previous scrape, in seconds.",
    labels: [],
  },
  {
    name: 'nodejs_eventloop_lag_max_seconds',
    type: 'gauge',
    help: 'Longest event-loop delay of the agent since the previous scrape, in seconds.',
    labels: [],
  },
] as const satisfies readonly MetricDefinition[];

export type MetricName = (typeof METRICS)[number]['name'];

/** Metrics a check may report values for in its outcome (gauges keyed by labels). */
export type SampleMetricName = Extract<
  MetricName,
  | 'node_auditor_sysctl'
  | 'node_auditor_sysctl_compliant'
  | 'node_auditor_sysctl_persisted'
  | 'node_auditor_kubelet_client_cert_expiry_timestamp_seconds'
  | 'node_auditor_container_runtime_up'
  | 'node_auditor_inotify_watches'
  | 'node_auditor_inotify_instances'
  | 'node_auditor_inotify_max_user_watches'
  | 'node_auditor_inotify_max_user_instances'
  | 'node_auditor_inotify_top_consumer_watches'
  | 'node_auditor_inotify_watches_limit_eta_seconds'
  | 'node_auditor_zombie_processes'
  | 'node_auditor_pid_usage_ratio'
  | 'node_auditor_pod_sandboxes'
  | 'node_auditor_anonymous_auth_enabled'
  | 'node_auditor_anonymous_access_allowed'
  | 'node_auditor_vulnerable'
>;

/** One gauge value a check measured. Labels are bounded: no PIDs, timestamps or free text. */
export interface MetricSample {
  metric: SampleMetricName;
  labels: Record<string, string>;
  value: number;
}
