// /metrics: prom-client collectors built from the catalogue table. Check values are set when a
// run is recorded, so a scrape only serialises (it never runs a check).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { ErrorCode } from '../../errors.ts';
import type { Finding } from '../../findings/finding.ts';
import type { CheckRun, RunResult } from '../../runner/runCheck.ts';
import { METRICS } from './catalogue.ts';
import type { MetricName, SampleMetricName } from './catalogue.ts';
import { Counter, Gauge, Histogram, Registry } from './promClientParts.ts';

type Labels = Record<string, string>;

const RUN_RESULTS: readonly RunResult[] = ['ok', 'problem', 'error'];

export class MetricsSink {
  readonly registry = new Registry();
  private readonly gauges = new Map<MetricName, Gauge>();
  private readonly counters = new Map<MetricName, Counter>();
  private readonly histograms = new Map<MetricName, Histogram>();
  /** Label sets each check last reported per metric, so vanished ones are removed. */
  private readonly samplesByCheck = new Map<string, Map<SampleMetricName, Map<string, Labels>>>();
  /** Every problem series ever exported: it stays, at 0, once cleared. */
  private readonly problemSeries = new Map<string, Labels>();
  private readonly loopDelay: ReturnType<typeof monitorEventLoopDelay>;
  private readonly scrapeHooks: (() => void)[] = [];

  constructor(options: { version: string; checkIds: readonly string[] }) {
    for (const def of METRICS) {
      const config = {
        name: def.name,
        help: def.help,
        labelNames: [...def.labels],
        registers: [this.registry],
      };
      if (def.type === 'counter') this.counters.set(def.name, new Counter(config));
      else if (def.type === 'gauge') {
        const gauge = new Gauge(config);
        // prom-client starts a gauge without labels at 0: absent until set is the truth (a
        // node with no kubelet certificate must not export an expiry time of 0, i.e. 1970)
        if (def.labels.length === 0) gauge.remove({});
        this.gauges.set(def.name, gauge);
      } else this.histograms.set(def.name, new Histogram({ ...config, buckets: [...def.buckets] }));
    }
    this.gauge('node_auditor_build_info').set({ version: options.version }, 1);
    this.gauge('node_auditor_config_last_reload_successful').set(1);
    // Zero every counter series up front so rate() works from the first scrape.
    for (const check of options.checkIds) {
      for (const result of RUN_RESULTS)
        this.counter('node_auditor_check_runs_total').inc({ check, result }, 0);
    }
    for (const kind of [
      'uncaught_exception',
      'unhandled_rejection',
      'first_pass',
      'log_pipeline',
    ]) {
      this.counter('node_auditor_internal_errors_total').inc({ kind }, 0);
    }
    for (const verb of ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']) {
      this.counter('node_auditor_kube_api_errors_total').inc({ verb }, 0);
    }
    for (const operation of ['create', 'patch'])
      this.counter('node_auditor_kube_events_sent_total').inc({ operation }, 0);
    for (const reason of ['rate_limited', 'queue_full', 'rejected'])
      this.counter('node_auditor_kube_events_dropped_total').inc({ reason }, 0);
    this.gauge('node_auditor_leader').set(0);
    for (const result of ['applied', 'rejected'])
      this.counter('node_auditor_config_reloads_total').inc({ result }, 0);

    this.gauge('process_start_time_seconds').set(Math.round(Date.now() / 1000 - process.uptime()));
    this.loopDelay = monitorEventLoopDelay({ resolution: 10 });
    this.loopDelay.enable();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** A gauge value from the catalogue (labels as the catalogue names them). */
  set(name: MetricName, value: number, labels: Labels = {}): void {
    this.gauge(name).set(labels, value);
  }

  /** A counter from the catalogue goes up by `by` (default one; zero creates the series). */
  inc(name: MetricName, labels: Labels = {}, by = 1): void {
    this.counter(name).inc(labels, by);
  }

  /** A gauge series that is no longer true goes away. */
  remove(name: MetricName, labels: Labels): void {
    this.gauge(name).remove(labels);
  }

  /** Something to read at scrape time (a queue length, say). */
  onScrape(hook: () => void): void {
    this.scrapeHooks.push(hook);
  }

  async render(): Promise<string> {
    this.updateProcessMetrics();
    for (const hook of this.scrapeHooks) {
      try {
        hook();
      } catch {
        /* a broken hook must not break the scrape */
      }
    }
    return this.registry.metrics();
  }

  recordRun(run: CheckRun): void {
    // A run refused because the previous one is hung did not run: it has no duration.
    if (run.error?.code !== ErrorCode.CheckStillRunning) {
      this.histogram('node_auditor_check_duration_seconds').observe(
        { check: run.check },
        run.durationMs / 1000,
      );
    }
    this.counter('node_auditor_check_runs_total').inc({ check: run.check, result: run.result });
    if (run.result === 'error' || run.outcome === undefined) return; // keep the last good values
    this.gauge('node_auditor_check_last_success_timestamp_seconds').set(
      { check: run.check },
      (run.startedAt.getTime() + run.durationMs) / 1000,
    );
    this.replaceSamples(run.check, run.outcome.samples ?? []);
  }

  /** A disabled check's measurements are no longer true: remove them. */
  forgetCheck(check: string): void {
    this.replaceSamples(check, []);
  }

  /** node_auditor_problem from the current findings: 1 while active, 0 once cleared. */
  syncProblems(active: readonly Finding[]): void {
    const now = new Set<string>();
    for (const f of active) {
      const labels = { check: f.check, problem: f.problem, severity: f.severity };
      const key = JSON.stringify(labels);
      now.add(key);
      this.problemSeries.set(key, labels);
    }
    const gauge = this.gauge('node_auditor_problem');
    for (const [key, labels] of this.problemSeries) gauge.set(labels, now.has(key) ? 1 : 0);
  }

  recordInternalError(
    kind: 'uncaught_exception' | 'unhandled_rejection' | 'first_pass' | 'log_pipeline',
  ): void {
    this.counter('node_auditor_internal_errors_total').inc({ kind });
  }

  recordReload(applied: boolean): void {
    this.counter('node_auditor_config_reloads_total').inc({
      result: applied ? 'applied' : 'rejected',
    });
    this.gauge('node_auditor_config_last_reload_successful').set(applied ? 1 : 0);
  }

  stop(): void {
    this.loopDelay.disable();
  }

  private updateProcessMetrics(): void {
    const cpu = process.cpuUsage();
    const cpuTotal = this.counter('process_cpu_seconds_total');
    cpuTotal.reset();
    cpuTotal.inc((cpu.user + cpu.system) / 1e6);
    this.gauge('process_resident_memory_bytes').set(process.memoryUsage.rss());
    this.gauge('nodejs_heap_size_used_bytes').set(process.memoryUsage().heapUsed);
    // The histogram is in nanoseconds; it restarts each scrape so the values are "since last scrape".
    this.gauge('nodejs_eventloop_lag_p99_seconds').set(this.loopDelay.percentile(99) / 1e9);
    this.gauge('nodejs_eventloop_lag_max_seconds').set(this.loopDelay.max / 1e9);
    this.loopDelay.reset();
  }

  private replaceSamples(
    check: string,
    samples: readonly { metric: SampleMetricName; labels: Labels; value: number }[],
  ): void {
    const previous =
      this.samplesByCheck.get(check) ?? new Map<SampleMetricName, Map<string, Labels>>();
    const next = new Map<SampleMetricName, Map<string, Labels>>();
    for (const sample of samples) {
      this.gauge(sample.metric).set(sample.labels, sample.value);
      let series = next.get(sample.metric);
      if (series === undefined) next.set(sample.metric, (series = new Map<string, Labels>()));
      series.set(JSON.stringify(sample.labels), sample.labels);
    }
    for (const [metric, series] of previous) {
      for (const [key, labels] of series) {
        if (next.get(metric)?.has(key) !== true) this.gauge(metric).remove(labels);
      }
    }
    this.samplesByCheck.set(check, next);
  }

  // The catalogue is a constant table: a name missing here is a programming error.
  private gauge(name: MetricName): Gauge {
    return must(this.gauges.get(name), name);
  }

  private counter(name: MetricName): Counter {
    return must(this.counters.get(name), name);
  }

  private histogram(name: MetricName): Histogram {
    return must(this.histograms.get(name), name);
  }
}

function must<T>(collector: T | undefined, name: string): T {
  if (collector === undefined)
    throw new Error(`metric ${name} is not in the catalogue with that type`);
  return collector;
}
