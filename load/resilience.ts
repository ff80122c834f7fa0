import type { ArtillerySummary } from './artillery.js';
import { increaseBy, select, sum, sumBy, type Sample, type Scrape } from './prometheus.js';

/** A chart of the report: series of `[seconds since the run started, value]` points. */
export interface Chart {
  title: string;
  unit: string;
  /** `step` for states (breaker states), `line` otherwise. */
  kind: 'line' | 'step';
  series: { name: string; points: [number, number][] }[];
}

/** What the service's /metrics said about a run: the resilience side of the report. */
export interface ResilienceSummary {
  /** Responses the service sent, by route and status class (`list-orders/2xx`). */
  served: Record<string, number>;
  /** Rejections by route and reason (`quotes/breaker_open`). */
  rejections: Record<string, number>;
  /** Breaker transitions by breaker, scope, from and to (`quotes/route/closed/open`). */
  breakerTransitions: Record<string, number>;
  /** Outbound calls by resource and outcome. */
  upstreamCalls: Record<string, number>;
  retries: Record<string, number>;
  /** Pool acquire errors by resource and reason. */
  poolAcquireErrors: Record<string, number>;
  pools: {
    resource: string;
    max: number;
    /** The most borrowed (and waiting) in any scrape during the run. */
    peakBorrowed: number;
    peakPending: number;
    /** Borrowed after the run: anything but 0 is a leak. */
    borrowedAfter: number;
  }[];
  /** Heap used and resident set, first and last scrape (MB). */
  memory?: { heapFirst: number; heapLast: number; rssFirst: number; rssLast: number };
}

const mb = (bytes: number) => Math.round((bytes / 1_048_576) * 10) / 10;

/** Condenses the scrapes before, during and after a run. */
export function summarizeResilience(
  before: readonly Sample[],
  after: readonly Sample[],
  series: readonly Scrape[],
  prefix = 'resilience_',
): ResilienceSummary {
  const m = (name: string) => `${prefix}${name}`;
  const resources = Object.keys(sumBy(after, m('pool_max'), ['resource']));
  const pools = resources.map((resource) => {
    let peakBorrowed = 0;
    let peakPending = 0;
    for (const s of series) {
      peakBorrowed = Math.max(peakBorrowed, sum(s.samples, m('pool_borrowed'), { resource }));
      peakPending = Math.max(peakPending, sum(s.samples, m('pool_pending'), { resource }));
    }
    return {
      resource,
      max: sum(after, m('pool_max'), { resource }),
      peakBorrowed,
      peakPending,
      borrowedAfter: sum(after, m('pool_borrowed'), { resource }),
    };
  });
  const heap = m('nodejs_heap_size_used_bytes');
  const rss = m('process_resident_memory_bytes');
  const withMemory = series.filter((s) => select(s.samples, heap).length > 0);
  const first = withMemory[0];
  const last = withMemory[withMemory.length - 1];
  return {
    served: increaseBy(before, after, m('http_request_duration_seconds_count'), [
      'route',
      'status_class',
    ]),
    rejections: increaseBy(before, after, m('rejections_total'), ['route', 'reason']),
    breakerTransitions: increaseBy(before, after, m('breaker_transitions_total'), [
      'breaker',
      'scope',
      'from',
      'to',
    ]),
    upstreamCalls: increaseBy(before, after, m('upstream_calls_total'), ['resource', 'outcome']),
    retries: increaseBy(before, after, m('upstream_retries_total'), ['resource']),
    poolAcquireErrors: increaseBy(before, after, m('pool_acquire_errors_total'), [
      'resource',
      'reason',
    ]),
    pools,
    memory:
      first === undefined || last === undefined
        ? undefined
        : {
            heapFirst: mb(sum(first.samples, heap)),
            heapLast: mb(sum(last.samples, heap)),
            rssFirst: mb(sum(first.samples, rss)),
            rssLast: mb(sum(last.samples, rss)),
          },
  };
}

/** Per-second rates of a counter between consecutive scrapes, grouped by `by`. */
function rates(
  series: readonly Scrape[],
  t0: number,
  name: string,
  by: readonly string[],
): { name: string; points: [number, number][] }[] {
  const out = new Map<string, [number, number][]>();
  for (let i = 1; i < series.length; i++) {
    const prev = series[i - 1]!;
    const cur = series[i]!;
    const dt = (cur.at - prev.at) / 1000;
    if (dt <= 0) continue;
    const grew = increaseBy(prev.samples, cur.samples, name, by);
    const keys = new Set([...out.keys(), ...Object.keys(grew)]);
    for (const key of keys) {
      const points = out.get(key) ?? [];
      // A group seen for the first time starts from zero at the previous scrape.
      if (points.length === 0 && i > 1) points.push([(prev.at - t0) / 1000, 0]);
      points.push([(cur.at - t0) / 1000, Math.round(((grew[key] ?? 0) / dt) * 10) / 10]);
      out.set(key, points);
    }
  }
  return [...out].map(([key, points]) => ({ name: key, points }));
}

function gauges(
  series: readonly Scrape[],
  t0: number,
  name: string,
  by: readonly string[],
  keep: (points: [number, number][]) => boolean = () => true,
  scale = 1,
): { name: string; points: [number, number][] }[] {
  const out = new Map<string, [number, number][]>();
  for (const s of series) {
    for (const [key, value] of Object.entries(sumBy(s.samples, name, by))) {
      const points = out.get(key) ?? [];
      points.push([(s.at - t0) / 1000, Math.round((value / scale) * 10) / 10]);
      out.set(key, points);
    }
  }
  return [...out]
    .filter(([, points]) => keep(points))
    .map(([key, points]) => ({ name: key, points }));
}

const BREAKER_LEVEL: Readonly<Record<string, number>> = {
  closed: 0,
  'half-open': 1,
  open: 2,
  isolated: 3,
};

/**
 * The report's charts: Artillery's latency and request rate per period, and from the scrapes
 * the service's answers and rejections per second, breaker states, pools, bulkheads, memory.
 * Series that never move (a breaker always closed, an idle pool) are left out.
 */
export function charts(
  artillery: ArtillerySummary | undefined,
  allSeries: readonly Scrape[],
  prefix = 'resilience_',
  loadStartedAt?: number,
): Chart[] {
  const m = (name: string) => `${prefix}${name}`;
  const t0 =
    loadStartedAt ?? Math.min(allSeries[0]?.at ?? Infinity, artillery?.startedAt || Infinity);
  // From just before the load started (the baseline), not from when Artillery was booting.
  const series = allSeries.filter(
    (s, i) => s.at >= t0 || allSeries[i + 1] === undefined || allSeries[i + 1]!.at >= t0,
  );
  const out: Chart[] = [];
  const moving = (points: [number, number][]) => points.some(([, v]) => v !== 0);
  if (artillery !== undefined && artillery.periods.length > 0) {
    // A period's values are plotted at its end, when they were known.
    const at = (p: { at: number }) =>
      Math.max(0, (Math.min(p.at + 10_000, artillery.endedAt) - t0) / 1000);
    const withLatency = artillery.periods.filter((p) => p.latency !== undefined);
    out.push({
      title: 'Latency seen by Artillery (per 10 s period)',
      unit: 'ms',
      kind: 'line',
      series: (['median', 'p95', 'p99', 'max'] as const).map((k) => ({
        name: k,
        points: withLatency.map((p): [number, number] => [at(p), p.latency![k]]),
      })),
    });
    out.push({
      title: 'Request rate and unexpected errors (per 10 s period)',
      unit: 'per s',
      kind: 'line',
      series: [
        {
          name: 'requests/s',
          points: artillery.periods.map((p): [number, number] => [at(p), p.rps]),
        },
        {
          name: 'unexpected/s',
          points: artillery.periods.map((p): [number, number] => [
            at(p),
            Math.round(p.unexpected / 10),
          ]),
        },
      ],
    });
  }
  if (series.length > 1 && Number.isFinite(t0)) {
    out.push({
      title: 'Service answers per second by status class (/metrics)',
      unit: 'per s',
      kind: 'line',
      series: rates(series, t0, m('http_request_duration_seconds_count'), ['status_class']),
    });
    const rejections = rates(series, t0, m('rejections_total'), ['reason']).filter((s) =>
      moving(s.points),
    );
    if (rejections.length > 0) {
      out.push({
        title: 'Rejections per second by reason',
        unit: 'per s',
        kind: 'line',
        series: rejections,
      });
    }
    const breakers = new Map<string, [number, number][]>();
    for (const s of series) {
      for (const sample of select(s.samples, m('breaker_state'))) {
        if (sample.value !== 1) continue;
        const key = `${sample.labels.scope}:${sample.labels.breaker}`;
        const points = breakers.get(key) ?? [];
        points.push([(s.at - t0) / 1000, BREAKER_LEVEL[sample.labels.state ?? ''] ?? 0]);
        breakers.set(key, points);
      }
    }
    const changed = [...breakers].filter(([, points]) => moving(points));
    if (changed.length > 0) {
      out.push({
        title: 'Breaker state (0 closed, 1 half-open, 2 open)',
        unit: 'state',
        kind: 'step',
        series: changed.map(([name, points]) => ({ name, points })),
      });
    }
    const pools = [
      ...gauges(series, t0, m('pool_borrowed'), ['resource'], moving).map((s) => ({
        ...s,
        name: `${s.name} borrowed`,
      })),
      ...gauges(series, t0, m('pool_pending'), ['resource'], moving).map((s) => ({
        ...s,
        name: `${s.name} waiting`,
      })),
    ];
    if (pools.length > 0)
      out.push({
        title: 'Pools: members borrowed and acquires waiting',
        unit: 'members',
        kind: 'line',
        series: pools,
      });
    const bulkheads = [
      ...gauges(series, t0, m('bulkhead_active'), ['route'], moving).map((s) => ({
        ...s,
        name: `${s.name} active`,
      })),
      ...gauges(series, t0, m('bulkhead_queued'), ['route'], moving).map((s) => ({
        ...s,
        name: `${s.name} queued`,
      })),
    ];
    if (bulkheads.length > 0)
      out.push({
        title: 'Bulkheads: active and queued',
        unit: 'requests',
        kind: 'line',
        series: bulkheads,
      });
    const memory = [
      ...gauges(series, t0, m('nodejs_heap_size_used_bytes'), [], undefined, 1_048_576).map(
        (s) => ({ ...s, name: 'heap used' }),
      ),
      ...gauges(series, t0, m('process_resident_memory_bytes'), [], undefined, 1_048_576).map(
        (s) => ({ ...s, name: 'resident set' }),
      ),
    ];
    if (memory.length > 0)
      out.push({ title: 'Service memory', unit: 'MB', kind: 'line', series: memory });
  }
  return out;
}
