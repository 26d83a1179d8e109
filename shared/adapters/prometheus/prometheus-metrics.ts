/**
 * An in-process Prometheus registry: counters and fixed-bucket histograms, rendered in the text
 * exposition format. Gauges that describe state (storage used, sessions open) are computed at
 * scrape time by collectors, so they are never stale.
 */
import type { Labels, Metrics } from '../../ports/metrics.ts';

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const SIZE_BUCKETS = [1024, 65_536, 1_048_576, 16_777_216, 268_435_456, 1_073_741_824];

interface Histogram {
  buckets: number[];
  counts: number[];
  sum: number;
  count: number;
}

export interface Gauge {
  name: string;
  help: string;
  values: { labels: Labels; value: number }[];
}

const key = (labels: Labels) =>
  Object.keys(labels)
    .sort()
    .map(
      (k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`,
    )
    .join(',');

export class PrometheusMetrics implements Metrics {
  private readonly counters = new Map<string, Map<string, number>>();
  private readonly histograms = new Map<string, Map<string, Histogram>>();
  private readonly help = new Map<string, string>();
  private readonly collectors: (() => Promise<Gauge[]>)[] = [];

  describe(name: string, help: string): this {
    this.help.set(name, help);
    return this;
  }

  collect(fn: () => Promise<Gauge[]>): this {
    this.collectors.push(fn);
    return this;
  }

  count(name: string, labels: Labels = {}, value = 1): void {
    const series = this.counters.get(name) ?? new Map<string, number>();
    this.counters.set(name, series);
    const k = key(labels);
    series.set(k, (series.get(k) ?? 0) + value);
  }

  observe(name: string, value: number, labels: Labels = {}): void {
    const series = this.histograms.get(name) ?? new Map<string, Histogram>();
    this.histograms.set(name, series);
    const k = key(labels);
    let h = series.get(k);
    if (!h) {
      const buckets = name.endsWith('_bytes') ? SIZE_BUCKETS : LATENCY_BUCKETS;
      h = { buckets, counts: buckets.map(() => 0), sum: 0, count: 0 };
      series.set(k, h);
    }
    for (const [i, b] of h.buckets.entries()) if (value <= b) h.counts[i] = (h.counts[i] ?? 0) + 1;
    h.sum += value;
    h.count++;
  }

  flush(): void {}

  async render(): Promise<string> {
    const out: string[] = [];
    const head = (name: string, type: string) => {
      out.push(`# HELP ${name} ${this.help.get(name) ?? name}`, `# TYPE ${name} ${type}`);
    };
    const sel = (k: string, extra = '') => {
      const inner = [k, extra].filter(Boolean).join(',');
      return inner ? `{${inner}}` : '';
    };
    for (const [name, series] of this.counters) {
      head(name, 'counter');
      for (const [k, v] of series) out.push(`${name}${sel(k)} ${v}`);
    }
    for (const [name, series] of this.histograms) {
      head(name, 'histogram');
      for (const [k, h] of series) {
        h.buckets.forEach((b, i) => {
          out.push(`${name}_bucket${sel(k, `le="${b}"`)} ${h.counts[i]}`);
        });
        out.push(
          `${name}_bucket${sel(k, 'le="+Inf"')} ${h.count}`,
          `${name}_sum${sel(k)} ${h.sum}`,
          `${name}_count${sel(k)} ${h.count}`,
        );
      }
    }
    for (const collect of this.collectors) {
      for (const g of await collect()) {
        out.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
        for (const v of g.values) out.push(`${g.name}${sel(key(v.labels))} ${v.value}`);
      }
    }
    return `${out.join('\n')}\n`;
  }
}
