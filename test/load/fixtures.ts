import type { ArtilleryReport } from '../../load/artillery.js';

/** An Artillery `--output` report, trimmed to what the runner reads. */
export function artilleryReport(): ArtilleryReport {
  const latency = (p95: number) => ({
    min: 1,
    max: p95 * 2,
    count: 100,
    mean: 10,
    p50: 8,
    median: 8,
    p75: 9,
    p90: 12,
    p95,
    p99: p95 + 5,
    p999: p95 + 6,
  });
  return {
    aggregate: {
      counters: {
        'http.requests': 200,
        'http.responses': 198,
        'http.codes.200': 190,
        'http.codes.503': 8,
        'errors.ETIMEDOUT': 2,
        'vusers.created': 100,
        'vusers.completed': 98,
        'vusers.failed': 2,
        'plugins.expect.failed': 1,
        'plugins.expect.ok': 197,
        'rejections.ERR_BREAKER_OPEN': 8,
        'phase.during.total': 20,
        'window.steady.ok': 150,
        'group.greedy.limited': 0,
        'plugins.metrics-by-endpoint.x': 3,
      },
      rates: { 'http.request_rate': 20 },
      summaries: {
        'http.response_time': latency(40),
        'http.response_time.2xx': latency(30),
        'http.response_time.5xx': latency(3),
        'rejection_ms.ERR_BREAKER_OPEN': latency(2),
        'window_ms.steady': latency(35),
        'vusers.session_length': latency(100),
        'plugins.metrics-by-endpoint.response_time.x': latency(1),
        'empty.summary': { count: 0 },
      },
      firstMetricAt: 1_000_000,
      lastMetricAt: 1_010_000,
      period: 1_000_000,
    },
    intermediate: [
      {
        counters: { 'http.requests': 120, 'http.responses': 120, 'http.codes.200': 120 },
        rates: { 'http.request_rate': 12 },
        summaries: { 'http.response_time': latency(20) },
        period: '1000010000',
      },
      {
        counters: {
          'http.requests': 80,
          'http.responses': 78,
          'http.codes.200': 70,
          'http.codes.503': 8,
          'vusers.failed': 2,
          'plugins.expect.failed': 1,
        },
        rates: { 'http.request_rate': 8 },
        summaries: {},
        period: '1000000000',
      },
    ],
  };
}
