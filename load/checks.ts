import type { ArtillerySummary, CheckResult } from './artillery.js';
import { max, sum, type LabelFilter, type Sample, type Scrape } from './prometheus.js';
import type { RunnerCheckSpec } from './scenario.js';

/** What the runner checks are evaluated against. */
export interface CheckData {
  /** /metrics just before Artillery started, and just after it finished. */
  before: readonly Sample[];
  after: readonly Sample[];
  /** The scrapes taken during the run, oldest first. */
  series: readonly Scrape[];
  artillery: ArtillerySummary;
  /** The scenario's phases, in order, with their planned length. */
  phases: readonly { name: string; seconds: number }[];
}

/** One arrival step of a capacity search. */
export interface CapacityStep {
  phase: string;
  seconds: number;
  requests: number;
  /** Requests that were served (ok) per second. */
  servedRps: number;
  /** p95 of the served requests, in ms. */
  p95: number | undefined;
  /** Requests not served (shed, failed) as a percentage. */
  errorPercent: number;
  withinObjective: boolean;
}

/** The result of {@link capacity}. */
export interface Capacity {
  objectiveMs: number;
  maxErrorPercent: number;
  /** The highest served rate of a step within the objective; 0 when none was. */
  rps: number;
  /** The step it came from. */
  phase: string | undefined;
  steps: CapacityStep[];
}

const round = (n: number, digits = 1): number => {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
};

function describeMetric(metric: string, labels: LabelFilter | undefined): string {
  const entries = Object.entries(labels ?? {});
  if (entries.length === 0) return metric;
  const text = entries
    .map(([k, v]) => `${k}=${typeof v === 'string' ? JSON.stringify(v) : `~${v.join('|')}`}`)
    .join(',');
  return `${metric}{${text}}`;
}

function bounds(value: number, min: number | undefined, maxValue: number | undefined): boolean {
  return (min === undefined || value >= min) && (maxValue === undefined || value <= maxValue);
}

function wanted(min: number | undefined, maxValue: number | undefined): string {
  if (min !== undefined && maxValue !== undefined) return `want ${min}..${maxValue}`;
  if (min !== undefined) return `want >= ${min}`;
  return `want <= ${maxValue}`;
}

/** Mean of the first and last quarter of `values` (at least one value each). */
export function quarters(values: readonly number[]): { first: number; last: number } | undefined {
  if (values.length < 4) return undefined;
  const k = Math.max(1, Math.floor(values.length / 4));
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  return { first: mean(values.slice(0, k)), last: mean(values.slice(values.length - k)) };
}

/**
 * The highest rate served within the latency objective, per arrival step (phase): from the
 * processor's per-phase windows (`window.<phase>.total/ok`, `window_ms.<phase>`).
 */
export function capacity(
  artillery: Pick<ArtillerySummary, 'counters' | 'histograms'>,
  phases: readonly { name: string; seconds: number }[],
  objectiveMs: number,
  maxErrorPercent: number,
): Capacity {
  const steps: CapacityStep[] = phases.map(({ name, seconds }) => {
    const total = artillery.counters[`window.${name}.total`] ?? 0;
    const ok = artillery.counters[`window.${name}.ok`] ?? 0;
    const p95 = artillery.histograms[`window_ms.${name}`]?.p95;
    const errorPercent = total === 0 ? 0 : round(((total - ok) / total) * 100, 2);
    return {
      phase: name,
      seconds,
      requests: total,
      servedRps: seconds > 0 ? round(ok / seconds) : 0,
      p95,
      errorPercent,
      withinObjective:
        total > 0 && p95 !== undefined && p95 <= objectiveMs && errorPercent <= maxErrorPercent,
    };
  });
  let best: CapacityStep | undefined;
  for (const step of steps) {
    if (step.withinObjective && (best === undefined || step.servedRps > best.servedRps))
      best = step;
  }
  return { objectiveMs, maxErrorPercent, rps: best?.servedRps ?? 0, phase: best?.phase, steps };
}

/** Evaluates a scenario's runner checks. */
export function runnerChecks(specs: readonly RunnerCheckSpec[], data: CheckData): CheckResult[] {
  return specs.map((spec): CheckResult => {
    const base = { source: 'runner' as const, description: spec.description };
    switch (spec.kind) {
      case 'increase': {
        const grew = Math.max(
          0,
          sum(data.after, spec.metric, spec.labels) - sum(data.before, spec.metric, spec.labels),
        );
        return {
          ...base,
          name: `increase of ${describeMetric(spec.metric, spec.labels)}`,
          passed: bounds(grew, spec.min, spec.max),
          detail: `grew by ${round(grew, 3)} (${wanted(spec.min, spec.max)})`,
        };
      }
      case 'after': {
        const value = sum(data.after, spec.metric, spec.labels);
        return {
          ...base,
          name: `${describeMetric(spec.metric, spec.labels)} after the run`,
          passed: bounds(value, spec.min, spec.max),
          detail: `${round(value, 3)} (${wanted(spec.min, spec.max)})`,
        };
      }
      case 'max-during': {
        let highest: number | undefined;
        for (const s of data.series) {
          const v = max(s.samples, spec.metric, spec.labels);
          if (v !== undefined && (highest === undefined || v > highest)) highest = v;
        }
        return {
          ...base,
          name: `largest ${describeMetric(spec.metric, spec.labels)} during the run`,
          passed: highest !== undefined && highest <= spec.max,
          detail:
            highest === undefined
              ? 'never scraped'
              : `${round(highest, 3)} over ${data.series.length} scrapes (want <= ${spec.max})`,
        };
      }
      case 'flat': {
        const values = data.series.map((s) => sum(s.samples, spec.metric, spec.labels));
        const q = quarters(values);
        const name = `${describeMetric(spec.metric, spec.labels)} stays flat`;
        if (q === undefined) {
          return { ...base, name, passed: false, detail: `only ${values.length} scrapes; need 4` };
        }
        const limit = q.first * (1 + spec.maxGrowth) + (spec.slack ?? 0);
        return {
          ...base,
          name,
          passed: q.last <= limit,
          detail: `first quarter ${round(q.first, 2)}, last quarter ${round(q.last, 2)} (want <= ${round(limit, 2)})`,
        };
      }
      case 'capacity': {
        const c = capacity(data.artillery, data.phases, spec.objectiveMs, spec.maxErrorPercent);
        return {
          ...base,
          name: `highest rate served with p95 <= ${spec.objectiveMs} ms`,
          passed: c.rps >= spec.minRps,
          detail:
            c.phase === undefined
              ? `no step was within the objective (want >= ${spec.minRps}/s)`
              : `${c.rps}/s in ${c.phase} (want >= ${spec.minRps}/s)${
                  c.phase === data.phases[data.phases.length - 1]?.name
                    ? '; even the last step was within the objective: capacity is higher (or the load generator was the limit)'
                    : ''
                }`,
        };
      }
      default:
        return {
          ...base,
          name: String((spec as { kind: unknown }).kind),
          passed: false,
          detail: 'unknown check kind',
        };
    }
  });
}

/**
 * Attaches the scenario's descriptions to Artillery's ensure verdicts, matching each printed
 * expression against the scenario's (rendered) expressions.
 */
export function describeEnsure(
  results: readonly CheckResult[],
  descriptions: ReadonlyMap<string, string>,
): CheckResult[] {
  const norm = (s: string) => s.replace(/\s+/g, ' ').trim();
  const byExpression = new Map([...descriptions].map(([k, v]) => [norm(k), v]));
  return results.map((r) => {
    const description = byExpression.get(norm(r.name));
    return description === undefined ? r : { ...r, description };
  });
}
