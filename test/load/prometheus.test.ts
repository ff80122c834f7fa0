import assert from 'node:assert/strict';
import { increaseBy, max, parsePrometheus, select, sum, sumBy } from '../../load/prometheus.js';

const TEXT = `# HELP resilience_rejections_total Requests rejected.
# TYPE resilience_rejections_total counter
resilience_rejections_total{route="quotes",reason="breaker_open",mode="enforce"} 12
resilience_rejections_total{route="compute",reason="bulkhead_full",mode="enforce"} 3
resilience_rejections_total{route="compute",reason="bulkhead_queue_timeout",mode="enforce"} 2
resilience_pool_borrowed{resource="upstream",kind="http"} 0
resilience_pool_borrowed{resource="inventory",kind="http"} 4
resilience_http_request_duration_seconds_bucket{le="+Inf",route="x",method="GET",status_class="2xx"} 7
weird{label="with \\"quotes\\", commas and \\\\ slashes"} 1.5e3
no_labels 42 1700000000000
broken{label=unterminated 1
nan_value NaN
`;

describe('load/prometheus', () => {
  const samples = parsePrometheus(TEXT);

  it('parses samples, labels (escapes included), timestamps and +Inf; skips comments and junk', () => {
    assert.equal(samples.length, 8);
    assert.deepEqual(select(samples, 'weird')[0], {
      name: 'weird',
      labels: { label: 'with "quotes", commas and \\ slashes' },
      value: 1500,
    });
    assert.equal(select(samples, 'no_labels')[0]!.value, 42);
    assert.equal(
      select(samples, 'resilience_http_request_duration_seconds_bucket')[0]!.labels.le,
      '+Inf',
    );
  });

  it('selects by exact labels or a list of values, and sums, maxes and groups', () => {
    assert.equal(sum(samples, 'resilience_rejections_total'), 17);
    assert.equal(sum(samples, 'resilience_rejections_total', { route: 'compute' }), 5);
    assert.equal(
      sum(samples, 'resilience_rejections_total', { reason: ['bulkhead_full', 'breaker_open'] }),
      15,
    );
    assert.equal(sum(samples, 'nothing'), 0);
    assert.equal(max(samples, 'resilience_pool_borrowed'), 4);
    assert.equal(max(samples, 'nothing'), undefined);
    assert.deepEqual(sumBy(samples, 'resilience_rejections_total', ['route']), {
      quotes: 12,
      compute: 5,
    });
  });

  it('computes increases between scrapes; a counter that restarted counts from zero', () => {
    const before = parsePrometheus('c{k="a"} 5\nc{k="b"} 10\nc{k="c"} 1\n');
    const after = parsePrometheus('c{k="a"} 8\nc{k="b"} 3\nc{k="c"} 1\nc{k="d"} 2\n');
    assert.deepEqual(increaseBy(before, after, 'c', ['k']), { a: 3, b: 3, d: 2 });
  });
});
