import assert from 'node:assert/strict';
import { summarize } from '../../load/artillery.js';
import { parsePrometheus, type Scrape } from '../../load/prometheus.js';
import { charts, summarizeResilience } from '../../load/resilience.js';
import { artilleryReport } from './fixtures.js';

const scrape = (at: number, text: string): Scrape => ({ at, samples: parsePrometheus(text) });

const BEFORE = `
resilience_http_request_duration_seconds_count{route="quotes",method="GET",status_class="2xx"} 10
resilience_rejections_total{route="quotes",reason="breaker_open",mode="enforce"} 0
resilience_breaker_state{breaker="quotes",scope="route",state="closed"} 1
resilience_breaker_state{breaker="quotes",scope="route",state="open"} 0
resilience_pool_max{resource="upstream",kind="http"} 32
resilience_pool_borrowed{resource="upstream",kind="http"} 0
resilience_pool_pending{resource="upstream",kind="http"} 0
resilience_nodejs_heap_size_used_bytes 10485760
resilience_process_resident_memory_bytes 104857600
`;
const DURING = `
resilience_http_request_duration_seconds_count{route="quotes",method="GET",status_class="2xx"} 30
resilience_http_request_duration_seconds_count{route="quotes",method="GET",status_class="5xx"} 10
resilience_rejections_total{route="quotes",reason="breaker_open",mode="enforce"} 8
resilience_breaker_state{breaker="quotes",scope="route",state="closed"} 0
resilience_breaker_state{breaker="quotes",scope="route",state="open"} 1
resilience_breaker_transitions_total{breaker="quotes",scope="route",from="closed",to="open"} 1
resilience_pool_max{resource="upstream",kind="http"} 32
resilience_pool_borrowed{resource="upstream",kind="http"} 5
resilience_pool_pending{resource="upstream",kind="http"} 2
resilience_nodejs_heap_size_used_bytes 12582912
resilience_process_resident_memory_bytes 110100480
resilience_upstream_calls_total{resource="upstream",kind="http",outcome="failure"} 7
resilience_pool_acquire_errors_total{resource="upstream",kind="http",reason="timeout"} 1
`;
const AFTER = DURING.replace(
  'borrowed{resource="upstream",kind="http"} 5',
  'borrowed{resource="upstream",kind="http"} 0',
);

describe('load/resilience', () => {
  it('summarizes what /metrics said: answers, rejections, breakers, calls, pools, memory', () => {
    const series = [scrape(0, BEFORE), scrape(1000, DURING), scrape(2000, AFTER)];
    const r = summarizeResilience(parsePrometheus(BEFORE), parsePrometheus(AFTER), series);
    assert.deepEqual(r.served, { 'quotes/2xx': 20, 'quotes/5xx': 10 });
    assert.deepEqual(r.rejections, { 'quotes/breaker_open': 8 });
    assert.deepEqual(r.breakerTransitions, { 'quotes/route/closed/open': 1 });
    assert.deepEqual(r.upstreamCalls, { 'upstream/failure': 7 });
    assert.deepEqual(r.poolAcquireErrors, { 'upstream/timeout': 1 });
    assert.deepEqual(r.pools, [
      { resource: 'upstream', max: 32, peakBorrowed: 5, peakPending: 2, borrowedAfter: 0 },
    ]);
    assert.deepEqual(r.memory, { heapFirst: 10, heapLast: 12, rssFirst: 100, rssLast: 105 });
  });

  it('charts latency, rates, breaker states, pools and memory; leaves out what never moved', () => {
    const series = [scrape(1_000_000, BEFORE), scrape(1_002_000, DURING), scrape(1_004_000, AFTER)];
    const list = charts(summarize(artilleryReport()), series, 'resilience_', 1_000_000);
    const titles = list.map((c) => c.title);
    assert.deepEqual(titles, [
      'Latency seen by Artillery (per 10 s period)',
      'Request rate and unexpected errors (per 10 s period)',
      'Service answers per second by status class (/metrics)',
      'Rejections per second by reason',
      'Breaker state (0 closed, 1 half-open, 2 open)',
      'Pools: members borrowed and acquires waiting',
      'Service memory',
    ]);
    const answers = list[2]!;
    assert.deepEqual(
      answers.series.map((s) => [s.name, s.points]),
      [
        [
          '2xx',
          [
            [2, 10],
            [4, 0],
          ],
        ],
        [
          '5xx',
          [
            [2, 5],
            [4, 0],
          ],
        ],
      ],
    );
    assert.deepEqual(list[4]!.series, [
      {
        name: 'route:quotes',
        points: [
          [0, 0],
          [2, 2],
          [4, 2],
        ],
      },
    ]);
    assert.equal(list[4]!.kind, 'step');
    assert.deepEqual(
      list[5]!.series.map((s) => s.name),
      ['upstream borrowed', 'upstream waiting'],
    );
  });

  it('has nothing to chart without data', () => {
    assert.deepEqual(charts(undefined, []), []);
  });
});
