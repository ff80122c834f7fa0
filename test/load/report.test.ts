import assert from 'node:assert/strict';
import { summarize } from '../../load/artillery.js';
import { checkCounts, failureLines, renderReport, summaryTable } from '../../load/report.js';
import type { RunResult } from '../../load/result.js';
import { escapeHtml, niceScale, svgBars, svgChart } from '../../load/svg.js';
import { artilleryReport } from './fixtures.js';

function run(): RunResult {
  return {
    id: '2026-01-01T00-00-00Z',
    startedAt: 0,
    endedAt: 65_000,
    target: 'the example service',
    managed: true,
    redis: false,
    node: 'v20',
    passed: false,
    scenarios: [
      {
        name: 'breaker',
        description: 'The <upstream> fails & recovers',
        variables: { BREAKER_RATE: '20' },
        startedAt: 0,
        endedAt: 47_000,
        passed: false,
        exitCode: 1,
        checks: [
          {
            source: 'ensure',
            name: 'http.response_time.p95 < 500',
            passed: true,
            description: 'p95 latency under 500 ms',
          },
          {
            source: 'ensure',
            name: 'phase.after.ok / phase.after.total >= 0.99',
            passed: false,
            description: 'recovers',
          },
          { source: 'ensure', name: 'nice > 1', passed: false, optional: true },
          {
            source: 'runner',
            name: 'increase of c',
            passed: false,
            detail: 'grew by 0 (want >= 1)',
          },
        ],
        artillery: summarize(artilleryReport()),
        resilience: {
          served: { 'quotes/2xx': 10 },
          rejections: { 'quotes/breaker_open': 8 },
          breakerTransitions: { 'quotes/route/closed/open': 1 },
          upstreamCalls: { 'upstream/failure': 7 },
          retries: {},
          poolAcquireErrors: { 'upstream/timeout': 1 },
          pools: [
            { resource: 'upstream', max: 32, peakBorrowed: 5, peakPending: 0, borrowedAfter: 0 },
          ],
          memory: { heapFirst: 10, heapLast: 12, rssFirst: 100, rssLast: 105 },
        },
        charts: [
          {
            title: 'Latency',
            unit: 'ms',
            kind: 'line',
            series: [
              {
                name: 'p95 <x>',
                points: [
                  [0, 1],
                  [10, 30],
                ],
              },
            ],
          },
        ],
        artifacts: { artilleryJson: 'load/results/x/breaker.json' },
      },
      {
        name: 'smoke',
        description: '',
        variables: {},
        startedAt: 47_000,
        endedAt: 50_000,
        passed: false,
        error: 'resilient-service exited (1) before it was ready',
        checks: [],
        charts: [],
        artifacts: {},
      },
    ],
  };
}

describe('load/report', () => {
  it('counts checks, optional failures aside', () => {
    assert.deepEqual(checkCounts(run().scenarios[0]!.checks), { passed: 1, total: 3 });
  });

  it('prints a summary table with one row per scenario', () => {
    const lines = summaryTable(run()).split('\n');
    assert.equal(lines.length, 4);
    assert.match(
      lines[0]!,
      /^scenario +result +requests +resp\/s +p95 +p99 +unexpected +checks +time$/,
    );
    assert.match(lines[2]!, /^breaker +FAIL +200 +19\.8 +40 ms +45 ms +1\.5% +1\/3 +47 s$/);
    assert.match(lines[3]!, /^smoke +FAIL +– +– +– +– +– +0\/0 +3 s$/);
  });

  it('lists the failures: errors, then failed checks with what they mean and measured', () => {
    assert.deepEqual(failureLines(run()), [
      'breaker: FAILED recovers [ensure: phase.after.ok / phase.after.total >= 0.99]',
      'breaker: FAILED increase of c — grew by 0 (want >= 1)',
      'smoke: resilient-service exited (1) before it was ready',
    ]);
  });

  it('renders one self-contained page: no script, no external resource, everything escaped', () => {
    const html = renderReport(run());
    assert.match(html, /^<!doctype html>/);
    assert.doesNotMatch(html, /<script|<link|src=|url\(/i);
    assert.match(html, /<svg[^>]*role="img"/);
    assert.match(html, /The &lt;upstream&gt; fails &amp; recovers/);
    assert.match(html, /p95 &lt;x&gt;/);
    assert.doesNotMatch(html, /<upstream>|<x>/);
    for (const text of [
      'Breaker transitions',
      'Rejections by route and reason',
      'Pools',
      'Checks',
    ]) {
      assert.ok(html.includes(text), text);
    }
    assert.match(html, /resilient-service exited \(1\) before it was ready/);
    assert.match(html, /<a href="#breaker">breaker<\/a>/);
  });
});

describe('load/svg', () => {
  it('escapes text for HTML', () => {
    assert.equal(
      escapeHtml(`<a href="x">'&'</a>`),
      '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;',
    );
  });

  it('picks round axis bounds', () => {
    assert.deepEqual(niceScale(87), { max: 100, step: 25 });
    assert.deepEqual(niceScale(4.2), { max: 6, step: 2 });
    assert.deepEqual(niceScale(0), { max: 1, step: 0.25 });
    assert.deepEqual(niceScale(NaN), { max: 1, step: 0.25 });
  });

  it('draws one polyline per series (a dot for a single point), step charts with corners', () => {
    const svg = svgChart({
      title: 'T',
      unit: 'u',
      kind: 'step',
      series: [
        {
          name: 'a',
          points: [
            [0, 0],
            [5, 2],
            [10, 1],
          ],
        },
        { name: 'b', points: [[3, 1]] },
      ],
    });
    const polyline = /<polyline[^>]*points="([^"]+)"/.exec(svg)!;
    assert.equal(polyline[1]!.split(' ').length, 5, 'three points and two corners');
    assert.match(svg, /<circle /);
    assert.match(svg, /<figcaption>T <span class="unit">\(u\)<\/span><\/figcaption>/);
  });

  it('draws bars for counts, nothing for none', () => {
    assert.equal(svgBars('none', []), '');
    assert.equal(
      (
        svgBars('codes', [
          ['200', 10],
          ['503', 2],
        ]).match(/<rect /g) ?? []
      ).length,
      2,
    );
  });
});
