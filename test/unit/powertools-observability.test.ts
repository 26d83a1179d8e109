/** The AWS observability adapters write what CloudWatch reads: JSON logs and EMF metric records. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  PowertoolsMetrics,
  powertoolsLogger,
} from '../../shared/adapters/powertools/powertools-observability.ts';

const captured: string[] = [];
afterEach(() => {
  vi.restoreAllMocks();
  captured.length = 0;
});
const capture = () => {
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, 'write').mockImplementation((chunk: string | Uint8Array) => {
      captured.push(String(chunk));
      return true;
    });
  }
  vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => captured.push(a.map(String).join(' ')));
  vi.spyOn(console, 'info').mockImplementation((...a: unknown[]) => captured.push(a.map(String).join(' ')));
};

describe('Powertools adapters', () => {
  it('logs structured JSON with the service name and child context', () => {
    capture();
    const log = powertoolsLogger('info').child({ correlationId: 'abc' });
    log.info('request', { route: 'GET /health', status: 200 });
    log.debug('hidden');
    const lines = captured
      .join('')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'INFO',
      message: 'request',
      service: 'stratus',
      correlationId: 'abc',
      route: 'GET /health',
      status: 200,
    });
  });

  it('emits each observation as an embedded-metric-format record with its dimensions', () => {
    capture();
    const m = new PowertoolsMetrics();
    m.count('stratus_http_requests_total', { route: 'GET /health', status: '200' });
    m.observe('stratus_http_request_duration_seconds', 0.25, { route: 'GET /health' });
    const records = captured
      .join('\n')
      .split('\n')
      .filter((l) => l.includes('_aws'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records).toHaveLength(2);
    const first = records[0] as {
      _aws: {
        CloudWatchMetrics: {
          Namespace: string;
          Metrics: { Name: string; Unit: string }[];
          Dimensions: string[][];
        }[];
      };
      route: string;
    };
    expect(first._aws.CloudWatchMetrics[0]?.Namespace).toBe('Stratus');
    expect(first._aws.CloudWatchMetrics[0]?.Metrics[0]).toEqual({
      Name: 'stratus_http_requests_total',
      Unit: 'Count',
    });
    expect(first._aws.CloudWatchMetrics[0]?.Dimensions[0]).toEqual(
      expect.arrayContaining(['route', 'status']),
    );
    expect(first.route).toBe('GET /health');
    expect((records[1] as Record<string, unknown>).stratus_http_request_duration_seconds).toBe(0.25);
  });
});
