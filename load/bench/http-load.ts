// HTTP load for the benchmarks: autocannon, in this process (which the harness pins to its own
// core), against a server in another process.
import autocannon from 'autocannon';
import type { Sample } from './harness.js';

export interface HttpLoadOptions {
  url: string;
  connections: number;
  /** Seconds. */
  duration: number;
  method?: 'GET' | 'POST';
}

/** Requests per second (mean over the run's seconds), p50/p99 latency in ms, and any failure. */
export async function httpLoad(options: HttpLoadOptions): Promise<Sample> {
  const result = await autocannon({
    url: options.url,
    method: options.method ?? 'GET',
    connections: options.connections,
    duration: options.duration,
    pipelining: 1,
  });
  const problems: string[] = [];
  if (result.non2xx > 0) problems.push(`${result.non2xx} non-2xx answers`);
  if (result.errors > 0) problems.push(`${result.errors} errors`);
  if (result.timeouts > 0) problems.push(`${result.timeouts} timeouts`);
  return {
    value: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    extra: { requests: result.requests.total, meanLatencyMs: result.latency.average },
    problems,
  };
}
