import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { SeriesHistogram } from '../../lib/metrics/series-histogram.js';

describe('SeriesHistogram', () => {
  const buckets = [0.005, 0.05, 0.5, 5];
  const observations: [string, string, number][] = [
    ['a', 'GET', 0.001],
    ['a', 'GET', 0.005],
    ['a', 'GET', 0.3],
    ['b "quoted"', 'POST', 7],
    ['a', 'GET', 4.9999],
    ['b "quoted"', 'POST', 0.05],
  ];

  it('exposes exactly what a prom-client Histogram exposes for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const series = new SeriesHistogram('d_seconds', 'help', ['route', 'method'], buckets, ours);
    const reference = new Histogram({
      name: 'd_seconds',
      help: 'help',
      labelNames: ['route', 'method'],
      buckets,
      registers: [theirs],
    });
    for (const [route, method, value] of observations) {
      series.labels(route, method).observe(value);
      reference.labels(route, method).observe(value);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
    // prom-client adds an empty `exemplar` to each of its samples; otherwise the same.
    const withoutExemplars = JSON.parse(
      JSON.stringify(await theirs.getMetricsAsJSON(), (key, value: unknown) =>
        key === 'exemplar' ? undefined : value,
      ),
    ) as unknown;
    assert.deepEqual(JSON.parse(JSON.stringify(await ours.getMetricsAsJSON())), withoutExemplars);
  });

  it('hands out one series per label set, ignores non-finite values and resets', async () => {
    const registry = new Registry();
    const h = new SeriesHistogram('x_seconds', 'help', ['route'], buckets, registry);
    assert.equal(h.labels('a'), h.labels('a'));
    h.labels('a').observe(Number.NaN);
    h.labels('a').observe(Infinity);
    h.labels('a').observe(1);
    assert.match(await registry.metrics(), /x_seconds_count\{route="a"\} 1\n/);
    registry.resetMetrics();
    assert.doesNotMatch(await registry.metrics(), /x_seconds_count/);
  });

  it('refuses a second metric of the same name in one registry', () => {
    const registry = new Registry();
    new SeriesHistogram('y_seconds', 'help', ['route'], buckets, registry);
    assert.throws(() => new SeriesHistogram('y_seconds', 'help', ['route'], buckets, registry));
  });
});
