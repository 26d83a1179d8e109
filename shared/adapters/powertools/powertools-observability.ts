/**
 * Observability in AWS through Powertools for AWS Lambda: structured JSON logs (Logger) and
 * CloudWatch embedded-metric-format metrics (Metrics), behind the same Logger and Metrics ports as
 * the local profile's readable logs and Prometheus. Traces are Lambda's own (active tracing: one
 * segment per invocation); the X-Ray SDK that Powertools' Tracer wraps is in maintenance mode since
 * 2026-02-25 and cost every bundle ~120 KiB and ~40 ms of cold start, so SDK-call spans come from
 * OpenTelemetry instead (the ADOT Lambda layer, docs/deploy.md), with no code here.
 */
import { Logger as PtLogger } from '@aws-lambda-powertools/logger';
import { MetricUnit, Metrics as PtMetrics } from '@aws-lambda-powertools/metrics';
import type { Level, Logger } from '../../observability/logger.ts';
import type { Labels, Metrics } from '../../ports/metrics.ts';

const LEVEL = { debug: 'DEBUG', info: 'INFO', warn: 'WARN', error: 'ERROR', silent: 'SILENT' } as const;

function wrap(pt: PtLogger): Logger {
  return {
    debug: (m, f) => pt.debug(m, f ?? {}),
    info: (m, f) => pt.info(m, f ?? {}),
    warn: (m, f) => pt.warn(m, f ?? {}),
    error: (m, f) => pt.error(m, f ?? {}),
    child: (fields) => {
      const child = pt.createChild();
      child.appendKeys(fields as Record<string, string>);
      return wrap(child);
    },
  };
}

export function powertoolsLogger(level: Level): Logger {
  return wrap(new PtLogger({ serviceName: 'stratus', logLevel: LEVEL[level] }));
}

/**
 * Each observation is one EMF record with its labels as dimensions (only low-cardinality labels),
 * plus the service-only roll-up that the stack's alarms and dashboard read.
 */
export class PowertoolsMetrics implements Metrics {
  private readonly metrics = new PtMetrics({ namespace: 'Stratus', serviceName: 'stratus' });

  private emit(
    name: string,
    unit: (typeof MetricUnit)[keyof typeof MetricUnit],
    value: number,
    labels: Labels,
  ) {
    const single = this.metrics.singleMetric();
    if (Object.keys(labels).length) {
      single.addDimensions(labels);
      // Also a roll-up by service alone: alarms need a fixed dimension set (node names are runtime data).
      single.addDimensions({});
    }
    single.addMetric(name, unit, value);
  }

  count(name: string, labels: Labels = {}, value = 1): void {
    this.emit(name, name.includes('bytes') ? MetricUnit.Bytes : MetricUnit.Count, value, labels);
  }

  observe(name: string, value: number, labels: Labels = {}): void {
    this.emit(name, name.endsWith('_seconds') ? MetricUnit.Seconds : MetricUnit.Bytes, value, labels);
  }

  flush(): void {}
}
