import assert from 'node:assert/strict';
import { parseEnsureOutput, parsePhaseLine, summarize } from '../../load/artillery.js';
import { artilleryReport } from './fixtures.js';

describe('load/artillery', () => {
  it('summarizes the report: totals, unexpected errors, latency by class, the processor metrics', () => {
    const s = summarize(artilleryReport());
    assert.equal(s.requests, 200);
    assert.equal(s.responses, 198);
    assert.equal(s.throughput, 19.8);
    assert.equal(s.requestRate, 20);
    assert.deepEqual(s.codes, { '200': 190, '503': 8 });
    assert.deepEqual(s.errors, { ETIMEDOUT: 2 });
    assert.equal(s.unexpected, 3, 'failed expectations plus failed virtual users');
    assert.equal(s.unexpectedPercent, 1.5);
    assert.deepEqual(s.vusers, { created: 100, completed: 98, failed: 2 });
    assert.equal(s.latency?.p95, 40);
    assert.equal(s.latency?.median, 8);
    assert.deepEqual(Object.keys(s.latencyByClass).sort(), ['2xx', '5xx']);
    assert.deepEqual(Object.keys(s.counters).sort(), [
      'group.greedy.limited',
      'phase.during.total',
      'rejections.ERR_BREAKER_OPEN',
      'window.steady.ok',
    ]);
    assert.deepEqual(Object.keys(s.histograms).sort(), [
      'rejection_ms.ERR_BREAKER_OPEN',
      'window_ms.steady',
    ]);
  });

  it('orders the periods in time, each with its codes, rate and unexpected errors', () => {
    const { periods } = summarize(artilleryReport());
    assert.deepEqual(
      periods.map((p) => [p.at, p.requests, p.rps, p.unexpected, p.latency?.p95]),
      [
        [1_000_000_000, 80, 8, 3, undefined],
        [1_000_010_000, 120, 12, 0, 20],
      ],
    );
    assert.deepEqual(periods[0]!.codes, { '200': 70, '503': 8 });
  });

  it('copes with an empty report', () => {
    const s = summarize({ aggregate: {} });
    assert.equal(s.requests, 0);
    assert.equal(s.unexpectedPercent, 0);
    assert.equal(s.latency, undefined);
    assert.deepEqual(s.periods, []);
  });

  it("reads the ensure plugin's verdicts after the Checks: line, colours or not", () => {
    const output = [
      'ok: not a check (before the Checks line)',
      'Log file: x.json',
      '',
      'Checks:',
      '\u001b[32mok\u001b[39m: http.response_time.p95 < 200',
      'ok: (plugins.expect.failed + vusers.failed) / http.requests * 100 <= 0',
      'fail: window.after.ok / window.after.total >= 0.99',
      'fail: nice.to.have > 1 (optional)',
      'something else',
    ].join('\n');
    assert.deepEqual(parseEnsureOutput(output), [
      { source: 'ensure', name: 'http.response_time.p95 < 200', passed: true, optional: false },
      {
        source: 'ensure',
        name: '(plugins.expect.failed + vusers.failed) / http.requests * 100 <= 0',
        passed: true,
        optional: false,
      },
      {
        source: 'ensure',
        name: 'window.after.ok / window.after.total >= 0.99',
        passed: false,
        optional: false,
      },
      { source: 'ensure', name: 'nice.to.have > 1', passed: false, optional: true },
    ]);
    assert.deepEqual(parseEnsureOutput('no checks here'), []);
  });

  it('recognises the phase lines', () => {
    assert.deepEqual(
      parsePhaseLine('Phase started: rate-10 (index: 0, duration: 15s) 19:28:16(+0000)'),
      {
        event: 'started',
        name: 'rate-10',
        index: 0,
      },
    );
    assert.deepEqual(
      parsePhaseLine('Phase completed: warm up (index: 3, duration: 5s) 19:28:16(+0000)'),
      {
        event: 'completed',
        name: 'warm up',
        index: 3,
      },
    );
    assert.equal(parsePhaseLine('Phase started soon'), undefined);
  });
});
