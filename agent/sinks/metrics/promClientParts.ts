// prom-client's index also loads its cluster aggregator (node:cluster, child_process, net ...)
// and Pushgateway (http/https): about 13 MiB of RSS on every node for features we do not use
// (bench/RESULTS.md). Its default process metrics cost another 8 MiB. We load the four classes
// we use directly; prom-client 15 has no "exports" map, so these paths are its public layout.
import Counter from 'prom-client/lib/counter.js';
import Gauge from 'prom-client/lib/gauge.js';
import Histogram from 'prom-client/lib/histogram.js';
import Registry from 'prom-client/lib/registry.js';

export { Counter, Gauge, Histogram, Registry };
