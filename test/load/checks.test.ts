import assert from 'node:assert/strict';
import { summarize } from '../../load/artillery.js';
import {
  capacity,
  describeEnsure,
  quarters,
  runnerChecks,
  type CheckData,
} from '../../load/checks.js';
import { parsePrometheus, type Scrape } from '../../load/prometheus.js';
import { artilleryReport } from './fixtures.js';

const scrapes = (values: number[], metric = 'g{resource="a"}'): Scrape[] =>
  values.map((v, i) => ({ at: i * 1000, samples: parsePrometheus(`${metric} ${v}\n`) }));

function data(extra: Partial<CheckData> = {}): CheckData {
  return {
    before: parsePrometheus('c{to="open"} 1\nc{to="closed"} 4\n'),
    after: parsePrometheus(
      'c{to="open"} 3\nc{to="closed"} 4\ng{resource="a"} 0\ng{resource="b"} 2\n',
    ),
    series: [],
    artillery: summarize(artilleryReport()),
    phases: [],
    ...extra,
  };
}

describe('load/checks', () => {
  it('increase: how much a counter grew, against min and max', () => {
    const [opened, closed] = runnerChecks(
      [
        { kind: 'increase', metric: 'c', labels: { to: 'open' }, min: 1, description: 'opened' },
        { kind: 'increase', metric: 'c', labels: { to: 'closed' }, min: 1, description: 'closed' },
      ],
      data(),
    );
    assert.equal(opened!.passed, true);
    assert.equal(opened!.detail, 'grew by 2 (want >= 1)');
    assert.equal(opened!.name, 'increase of c{to="open"}');
    assert.equal(opened!.description, 'opened');
    assert.equal(closed!.passed, false);
    assert.equal(closed!.source, 'runner');
  });

  it('after: the value in the last scrape; summed over the matching series', () => {
    const [all, one] = runnerChecks(
      [
        { kind: 'after', metric: 'g', max: 0, description: 'none borrowed' },
        { kind: 'after', metric: 'g', labels: { resource: 'a' }, max: 0, description: 'a' },
      ],
      data(),
    );
    assert.equal(all!.passed, false);
    assert.equal(all!.detail, '2 (want <= 0)');
    assert.equal(one!.passed, true);
  });

  it('max-during: the largest sampled value; a metric never seen fails', () => {
    const spec = { kind: 'max-during' as const, metric: 'g', max: 4, description: 'never above 4' };
    assert.equal(runnerChecks([spec], data({ series: scrapes([1, 4, 2]) }))[0]!.passed, true);
    assert.equal(runnerChecks([spec], data({ series: scrapes([1, 5, 2]) }))[0]!.passed, false);
    const unseen = runnerChecks([spec], data({ series: scrapes([1], 'other') }))[0]!;
    assert.equal(unseen.passed, false);
    assert.equal(unseen.detail, 'never scraped');
  });

  it('flat: the last quarter against the first, with growth and slack', () => {
    const spec = {
      kind: 'flat' as const,
      metric: 'g',
      maxGrowth: 0.5,
      slack: 1,
      description: 'flat',
    };
    const ok = runnerChecks(
      [spec],
      data({ series: scrapes([10, 10, 12, 11, 13, 15, 15, 16]) }),
    )[0]!;
    assert.equal(ok.passed, true, ok.detail);
    assert.equal(ok.detail, 'first quarter 10, last quarter 15.5 (want <= 16)');
    const leak = runnerChecks(
      [spec],
      data({ series: scrapes([10, 10, 20, 30, 40, 50, 60, 70]) }),
    )[0]!;
    assert.equal(leak.passed, false);
    const few = runnerChecks([spec], data({ series: scrapes([1, 2, 3]) }))[0]!;
    assert.equal(few.passed, false);
    assert.equal(few.detail, 'only 3 scrapes; need 4');
  });

  it('quarters: the means of the first and last quarter', () => {
    assert.deepEqual(quarters([1, 2, 3, 4]), { first: 1, last: 4 });
    assert.deepEqual(quarters([1, 1, 5, 5, 5, 5, 9, 9]), { first: 1, last: 9 });
    assert.equal(quarters([1, 2, 3]), undefined);
  });

  it('capacity: the highest served rate of a step within the latency objective', () => {
    const artillery = {
      counters: {
        'window.rate-10.total': 150,
        'window.rate-10.ok': 150,
        'window.rate-20.total': 300,
        'window.rate-20.ok': 300,
        'window.rate-40.total': 600,
        'window.rate-40.ok': 597,
        'window.rate-80.total': 1200,
        'window.rate-80.ok': 900,
      },
      histograms: {
        'window_ms.rate-10': { count: 150, min: 1, median: 5, p95: 10, p99: 12, max: 20 },
        'window_ms.rate-20': { count: 300, min: 1, median: 5, p95: 40, p99: 60, max: 90 },
        'window_ms.rate-40': { count: 597, min: 1, median: 50, p95: 150, p99: 200, max: 300 },
        'window_ms.rate-80': { count: 900, min: 1, median: 5, p95: 20, p99: 30, max: 50 },
      },
    };
    const phases = ['rate-10', 'rate-20', 'rate-40', 'rate-80', 'rate-160'].map((name) => ({
      name,
      seconds: 15,
    }));
    const c = capacity(artillery, phases, 100, 1);
    assert.equal(c.rps, 20);
    assert.equal(c.phase, 'rate-20');
    assert.deepEqual(
      c.steps.map((s) => [s.phase, s.servedRps, s.errorPercent, s.withinObjective]),
      [
        ['rate-10', 10, 0, true],
        ['rate-20', 20, 0, true],
        ['rate-40', 39.8, 0.5, false], // too slow
        ['rate-80', 60, 25, false], // shed too much
        ['rate-160', 0, 0, false], // never ran
      ],
    );
    const check = runnerChecks(
      [
        {
          kind: 'capacity',
          objectiveMs: 100,
          maxErrorPercent: 1,
          minRps: 15,
          description: 'capacity',
        },
      ],
      data({ artillery: { ...data().artillery, ...artillery }, phases }),
    )[0]!;
    assert.equal(check.passed, true);
    assert.equal(check.detail, '20/s in rate-20 (want >= 15/s)');
    assert.equal(capacity(artillery, phases, 5, 1).phase, undefined);
    const top = runnerChecks(
      [
        {
          kind: 'capacity',
          objectiveMs: 100,
          maxErrorPercent: 1,
          minRps: 15,
          description: 'capacity',
        },
      ],
      data({ artillery: { ...data().artillery, ...artillery }, phases: phases.slice(0, 2) }),
    )[0]!;
    assert.match(top.detail!, /even the last step was within the objective/);
  });

  it('describeEnsure: attaches descriptions to the printed expressions, spacing aside', () => {
    const described = describeEnsure(
      [
        { source: 'ensure', name: 'a  <  1', passed: true },
        { source: 'ensure', name: 'b > 2', passed: false },
      ],
      new Map([
        ['a < 1', 'a is small'],
        ['c', 'unused'],
      ]),
    );
    assert.equal(described[0]!.description, 'a is small');
    assert.equal(described[1]!.description, undefined);
  });
});
