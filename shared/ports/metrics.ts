/**
 * Application metrics: counters and histograms with labels. Prometheus text at /metrics in the local
 * runtime; CloudWatch EMF through Powertools in AWS. Names follow Prometheus conventions.
 */
export type Labels = Record<string, string>;

export interface Metrics {
  count(name: string, labels?: Labels, value?: number): void;
  /** A histogram observation (seconds for latencies, bytes for sizes). */
  observe(name: string, value: number, labels?: Labels): void;
  /** Called at the end of each invocation (EMF flushes; Prometheus does nothing). */
  flush(): void;
}

export const noMetrics: Metrics = { count() {}, observe() {}, flush() {} };
