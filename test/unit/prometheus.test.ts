import { describe, expect, it } from 'vitest';
import { PrometheusMetrics } from '../../shared/adapters/prometheus/prometheus-metrics.ts';

describe('Prometheus exposition', () => {
  it('renders counters, histograms and collected gauges in the text format', async () => {
    const m = new PrometheusMetrics()
      .describe('reqs_total', 'requests')
      .collect(async () => [
        { name: 'used_bytes', help: 'used', values: [{ labels: { user: 'a"b' }, value: 42 }] },
      ]);
    m.count('reqs_total', { route: 'GET /x', status: '200' });
    m.count('reqs_total', { route: 'GET /x', status: '200' }, 2);
    m.observe('latency_seconds', 0.02, { route: 'GET /x' });
    m.observe('latency_seconds', 3, { route: 'GET /x' });
    const text = await m.render();
    expect(text).toContain('# HELP reqs_total requests\n# TYPE reqs_total counter');
    expect(text).toContain('reqs_total{route="GET /x",status="200"} 3');
    expect(text).toContain('# TYPE latency_seconds histogram');
    expect(text).toContain('latency_seconds_bucket{route="GET /x",le="0.025"} 1');
    expect(text).toContain('latency_seconds_bucket{route="GET /x",le="+Inf"} 2');
    expect(text).toContain('latency_seconds_sum{route="GET /x"} 3.02');
    expect(text).toContain('latency_seconds_count{route="GET /x"} 2');
    expect(text).toContain('used_bytes{user="a\\"b"} 42');
  });
});
