import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { LabelFilter } from './prometheus.js';

/** Where the bundled scenarios live. */
export const SCENARIO_DIR = fileURLToPath(new URL('./scenarios/', import.meta.url));

/**
 * A check the runner makes itself, on top of Artillery's `ensure`: things only /metrics or the
 * time series can tell. Declared in a scenario's `x-runner.checks`.
 */
export type RunnerCheckSpec =
  /** A counter grew by at least `min` (and at most `max`) over the run. */
  | {
      kind: 'increase';
      metric: string;
      labels?: LabelFilter;
      min?: number;
      max?: number;
      description: string;
    }
  /** A metric's value (summed over matching series) in the scrape after the run. */
  | {
      kind: 'after';
      metric: string;
      labels?: LabelFilter;
      min?: number;
      max?: number;
      description: string;
    }
  /** The largest value a matching series took in any scrape during the run. */
  | { kind: 'max-during'; metric: string; labels?: LabelFilter; max: number; description: string }
  /**
   * A gauge stays flat: the mean of its last quarter (of the scrapes) is at most `maxGrowth`
   * (a fraction: 0.25 = 25%) above the mean of its first quarter, plus `slack` (in its unit).
   */
  | {
      kind: 'flat';
      metric: string;
      labels?: LabelFilter;
      maxGrowth: number;
      slack?: number;
      description: string;
    }
  /** Artillery's p95 (or p99) latency of the last quarter of the run against the first. */
  | {
      kind: 'latency-drift';
      percentile?: 'p95' | 'p99';
      maxGrowth: number;
      slack?: number;
      description: string;
    }
  /**
   * The highest arrival step (a phase) served within the latency objective: served rate of
   * the step, with its p95 at most `objectiveMs` and unexpected errors at most
   * `maxErrorPercent`. Passes when that rate is at least `minRps`.
   */
  | {
      kind: 'capacity';
      objectiveMs: number;
      maxErrorPercent: number;
      minRps: number;
      description: string;
    };

/** A bundled (or user-given) Artillery scenario and what the runner needs to know about it. */
export interface Scenario {
  /** The file's base name: `smoke` for smoke.yml. */
  readonly name: string;
  readonly file: string;
  readonly description: string;
  /** Variables and their defaults: passed to Artillery as environment variables. */
  readonly variables: Readonly<Record<string, string>>;
  /** True when the scenario drives the fake upstream's admin API (fault injection). */
  readonly needsUpstreamAdmin: boolean;
  /** Seconds between /metrics scrapes during the run. */
  readonly scrapeInterval: number;
  readonly checks: readonly RunnerCheckSpec[];
  /** The Artillery phases, as written (durations may be `{{ $env.NAME }}` templates). */
  readonly phases: readonly Readonly<Record<string, unknown>>[];
  /**
   * A phase whose time is also split into four windows, `q1` to `q4`, so the ensure checks can
   * compare the first quarter with the last (latency drift).
   */
  readonly quarters?: string;
  /** The `config.ensure` checks, as expressions Artillery prints, with their descriptions. */
  readonly ensure: readonly { expression: string; description?: string }[];
}

function fail(file: string, message: string): never {
  throw new Error(`${file}: ${message}`);
}

const CHECK_KINDS = new Set([
  'increase',
  'after',
  'max-during',
  'flat',
  'latency-drift',
  'capacity',
]);

/** Reads a scenario file; throws naming the file when its `x-runner` section is malformed. */
export function loadScenario(file: string): Scenario {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
    fail(file, missing ? 'no such scenario file' : `cannot be read: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    fail(file, `cannot be read as YAML: ${(err as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null) fail(file, 'is not an Artillery script');
  const script = doc as Record<string, unknown>;
  const config = script.config as Record<string, unknown> | undefined;
  if (typeof config !== 'object' || config === null || !Array.isArray(config.phases)) {
    fail(file, 'has no config.phases');
  }
  const runner = (script['x-runner'] ?? {}) as Record<string, unknown>;
  const variables: Record<string, string> = {};
  for (const [name, value] of Object.entries((runner.variables ?? {}) as Record<string, unknown>)) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(name)) fail(file, `variable ${name} must be UPPER_SNAKE_CASE`);
    if (typeof value !== 'string' && typeof value !== 'number') {
      fail(file, `variable ${name} needs a string or number default`);
    }
    variables[name] = String(value);
  }
  const checks = (runner.checks ?? []) as RunnerCheckSpec[];
  if (!Array.isArray(checks)) fail(file, 'x-runner.checks must be a list');
  for (const [i, check] of checks.entries()) {
    if (typeof check !== 'object' || check === null || !CHECK_KINDS.has(check.kind)) {
      fail(file, `x-runner.checks[${i}].kind must be one of ${[...CHECK_KINDS].join(', ')}`);
    }
    if (typeof check.description !== 'string')
      fail(file, `x-runner.checks[${i}] needs a description`);
  }
  const ensure: { expression: string; description?: string }[] = [];
  const ensureConfig = (config!.ensure ?? {}) as Record<string, unknown>;
  for (const threshold of (ensureConfig.thresholds ?? []) as Record<string, unknown>[]) {
    const metric = Object.keys(threshold)[0];
    if (metric === undefined) continue;
    ensure.push({
      expression: `${metric} < ${String(threshold[metric])}`,
      description: describeThreshold(metric, String(threshold[metric])),
    });
  }
  for (const condition of (ensureConfig.conditions ?? []) as Record<string, unknown>[]) {
    if (typeof condition.expression !== 'string')
      fail(file, 'an ensure condition has no expression');
    ensure.push({
      expression: condition.expression,
      description: typeof condition.description === 'string' ? condition.description : undefined,
    });
  }
  const scrapeInterval = Number(runner.scrapeInterval ?? 2);
  if (!(scrapeInterval > 0)) fail(file, 'x-runner.scrapeInterval must be a number of seconds > 0');
  return {
    name: basename(file).replace(/\.ya?ml$/, ''),
    file,
    description: typeof runner.description === 'string' ? runner.description.trim() : '',
    variables,
    needsUpstreamAdmin: runner.needsUpstreamAdmin === true,
    scrapeInterval,
    checks,
    phases: config!.phases as Record<string, unknown>[],
    quarters: typeof runner.quarters === 'string' ? runner.quarters : undefined,
    ensure,
  };
}

function describeThreshold(metric: string, value: string): string | undefined {
  const http = /^http\.response_time(?:\.(\dxx))?\.(p\d+|max|median|mean)$/.exec(metric);
  if (http !== null) {
    const of = http[1] === undefined ? '' : ` of ${http[1]} responses`;
    return `${http[2]} latency${of} under ${value} ms`;
  }
  const rejected = /^rejection_ms\.([A-Z_]+)\.(p\d+|max|median)$/.exec(metric);
  if (rejected !== null)
    return `${rejected[2]} latency of ${rejected[1]} rejections under ${value} ms`;
  return undefined;
}

/**
 * The scenario's ensure expressions as Artillery will print them (variables substituted), with
 * their descriptions.
 */
export function ensureExpressions(
  scenario: Pick<Scenario, 'ensure'>,
  values: Readonly<Record<string, string>>,
): Map<string, string> {
  const out = new Map<string, string>();
  for (const { expression, description } of scenario.ensure) {
    out.set(
      renderEnv(expression, values),
      description === undefined ? '' : renderEnv(description, values),
    );
  }
  return out;
}

/** The bundled scenarios' names, in the order a full run takes them. */
export function listScenarios(dir = SCENARIO_DIR): string[] {
  const order = ['smoke', 'load', 'spike', 'stress', 'endurance', 'chaos'];
  const names = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .map((f) => f.replace(/\.ya?ml$/, ''));
  const rank = (n: string) => (order.includes(n) ? order.indexOf(n) : order.length);
  return names.sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** The file of a scenario given by name (bundled) or as a path to a .yml file. */
export function scenarioFile(nameOrPath: string, dir = SCENARIO_DIR): string {
  if (/\.ya?ml$/.test(nameOrPath)) return nameOrPath;
  return join(dir, `${nameOrPath}.yml`);
}

/**
 * The value of each of the scenario's variables: `overrides` (from `--var`), else the
 * environment, else the scenario's default.
 */
export function resolveVariables(
  scenario: Pick<Scenario, 'variables'>,
  environment: NodeJS.ProcessEnv,
  overrides: Readonly<Record<string, string>> = {},
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, fallback] of Object.entries(scenario.variables)) {
    out[name] = overrides[name] ?? environment[name] ?? fallback;
  }
  return out;
}

/** Replaces `{{ $env.NAME }}` in `text` with the variable's value (unknown ones stay). */
export function renderEnv(text: string, values: Readonly<Record<string, string>>): string {
  return text.replace(
    /\{\{\s*\$env\.([A-Za-z0-9_]+)\s*\}\}/g,
    (whole, name: string) => values[name] ?? whole,
  );
}

/** Seconds a duration of an Artillery phase stands for: `30`, `"30"`, `"2m"`, `"1h"`. */
export function phaseSeconds(
  value: unknown,
  values: Readonly<Record<string, string>> = {},
): number {
  const text = renderEnv(String(value ?? 0), values).trim();
  const match = /^(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?$/.exec(text);
  if (match === null) return NaN;
  const unit = match[2] ?? 's';
  const factor = unit.startsWith('m') ? 60 : unit === 'h' ? 3600 : 1;
  return Number(match[1]) * factor;
}

/** The phases with their names and durations resolved: what the run's timeline will be. */
export function phasePlan(
  scenario: Pick<Scenario, 'phases'>,
  values: Readonly<Record<string, string>>,
): { name: string; seconds: number }[] {
  return scenario.phases.map((phase, i) => ({
    // The processor's counters are named after phases: keep to letters, digits, _ and -.
    name: renderEnv(String(phase.name ?? `phase-${i + 1}`), values).replace(/[^\w-]+/g, '-'),
    seconds: phaseSeconds(phase.duration ?? phase.pause ?? 0, values),
  }));
}

/**
 * The phases as time windows for the processor (LOAD_TIMELINE): `name:from-to` in seconds
 * from the start, comma-separated; the last window stays open, so late answers count in it.
 * With `quarters`, that phase is also split into windows `q1` to `q4`.
 */
export function timeline(
  plan: readonly { name: string; seconds: number }[],
  quarters?: string,
): string {
  let at = 0;
  const windows: string[] = [];
  plan.forEach((p, i) => {
    const from = at;
    const seconds = Number.isFinite(p.seconds) ? p.seconds : 0;
    at += seconds;
    const last = i === plan.length - 1;
    windows.push(`${p.name}:${from}-${last ? '' : at}`);
    if (p.name === quarters) {
      for (let q = 0; q < 4; q++) {
        const start = Math.round((from + (seconds * q) / 4) * 10) / 10;
        const end = Math.round((from + (seconds * (q + 1)) / 4) * 10) / 10;
        windows.push(`q${q + 1}:${start}-${q === 3 && last ? '' : end}`);
      }
    }
  });
  return windows.join(',');
}
