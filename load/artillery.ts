import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One check's outcome: an Artillery `ensure` check or one the runner made. */
export interface CheckResult {
  source: 'ensure' | 'runner';
  /** The expression (ensure) or what was measured (runner). */
  name: string;
  /** What it means, when the scenario says. */
  description?: string;
  passed: boolean;
  /** Measured values, for the report. */
  detail?: string;
  /** Optional ensure checks do not fail the run. */
  optional?: boolean;
}

/** A latency summary, in milliseconds. */
export interface Latency {
  count: number;
  min: number;
  median: number;
  p95: number;
  p99: number;
  max: number;
}

/** One of Artillery's reporting periods (10 s, aligned to the wall clock). */
export interface Period {
  /** Epoch milliseconds of the period's start. */
  at: number;
  requests: number;
  responses: number;
  /** Artillery's request rate in the period. */
  rps: number;
  codes: Record<string, number>;
  /** Statuses outside each request's expected list, plus network errors. */
  unexpected: number;
  latency?: Latency;
}

/** What the runner keeps of Artillery's JSON report. */
export interface ArtillerySummary {
  /** Epoch milliseconds of the first and last metric. */
  startedAt: number;
  endedAt: number;
  requests: number;
  responses: number;
  /** Responses per second over the whole run. */
  throughput: number;
  /** Mean of Artillery's per-period request rates. */
  requestRate: number;
  codes: Record<string, number>;
  /** Network-level errors by code (ETIMEDOUT, ECONNRESET, ...). */
  errors: Record<string, number>;
  /** Unexpected statuses (the expect plugin) plus failed virtual users (network errors). */
  unexpected: number;
  /** `unexpected` as a percentage of requests. */
  unexpectedPercent: number;
  vusers: { created: number; completed: number; failed: number };
  latency?: Latency;
  /** Latency by status class: `2xx`, `4xx`, `5xx`. */
  latencyByClass: Record<string, Latency>;
  /** The processor's counters (rejections.*, phase.*, window.*, group.*). */
  counters: Record<string, number>;
  /** The processor's histograms (rejection_ms.*, window_ms.*). */
  histograms: Record<string, Latency>;
  periods: Period[];
}

interface RawSummary {
  min?: number;
  max?: number;
  count?: number;
  median?: number;
  p50?: number;
  p95?: number;
  p99?: number;
}

interface RawPeriod {
  counters?: Record<string, number>;
  rates?: Record<string, number>;
  summaries?: Record<string, RawSummary>;
  period?: string | number;
  firstMetricAt?: number;
  lastMetricAt?: number;
}

/** The shape of `artillery run --output` files (the parts the runner reads). */
export interface ArtilleryReport {
  aggregate: RawPeriod;
  intermediate?: RawPeriod[];
}

const CUSTOM = /^(rejections|phase|window|group)\./;
const CUSTOM_HISTOGRAMS = /^(rejection_ms|window_ms)\./;

function latency(raw: RawSummary | undefined): Latency | undefined {
  if (raw === undefined || !(Number(raw.count) > 0)) return undefined;
  return {
    count: Number(raw.count),
    min: Number(raw.min ?? 0),
    median: Number(raw.median ?? raw.p50 ?? 0),
    p95: Number(raw.p95 ?? 0),
    p99: Number(raw.p99 ?? 0),
    max: Number(raw.max ?? 0),
  };
}

function codesOf(counters: Record<string, number>): Record<string, number> {
  const codes: Record<string, number> = {};
  for (const [key, value] of Object.entries(counters)) {
    if (key.startsWith('http.codes.')) codes[key.slice('http.codes.'.length)] = value;
  }
  return codes;
}

function unexpectedOf(counters: Record<string, number>): number {
  return (counters['plugins.expect.failed'] ?? 0) + (counters['vusers.failed'] ?? 0);
}

/** Condenses Artillery's JSON report into what the runner reports and checks. */
export function summarize(report: ArtilleryReport): ArtillerySummary {
  const agg = report.aggregate;
  const counters = agg.counters ?? {};
  const summaries = agg.summaries ?? {};
  const startedAt = Number(agg.firstMetricAt ?? 0);
  const endedAt = Number(agg.lastMetricAt ?? startedAt);
  const requests = counters['http.requests'] ?? 0;
  const responses = counters['http.responses'] ?? 0;
  const unexpected = unexpectedOf(counters);
  const errors: Record<string, number> = {};
  const custom: Record<string, number> = {};
  for (const [key, value] of Object.entries(counters)) {
    if (key.startsWith('errors.')) errors[key.slice('errors.'.length)] = value;
    else if (CUSTOM.test(key)) custom[key] = value;
  }
  const latencyByClass: Record<string, Latency> = {};
  const histograms: Record<string, Latency> = {};
  for (const [key, raw] of Object.entries(summaries)) {
    const match = /^http\.response_time\.(\dxx)$/.exec(key);
    const l = latency(raw);
    if (l === undefined) continue;
    if (match !== null) latencyByClass[match[1]!] = l;
    else if (CUSTOM_HISTOGRAMS.test(key)) histograms[key] = l;
  }
  const periods = (report.intermediate ?? [])
    .map((p): Period => {
      const c = p.counters ?? {};
      return {
        at: Number(p.period ?? p.firstMetricAt ?? 0),
        requests: c['http.requests'] ?? 0,
        responses: c['http.responses'] ?? 0,
        rps: p.rates?.['http.request_rate'] ?? 0,
        codes: codesOf(c),
        unexpected: unexpectedOf(c),
        latency: latency(p.summaries?.['http.response_time']),
      };
    })
    .sort((a, b) => a.at - b.at);
  const seconds = Math.max(1, (endedAt - startedAt) / 1000);
  return {
    startedAt,
    endedAt,
    requests,
    responses,
    throughput: Math.round((responses / seconds) * 10) / 10,
    requestRate: agg.rates?.['http.request_rate'] ?? 0,
    codes: codesOf(counters),
    errors,
    unexpected,
    unexpectedPercent: requests === 0 ? 0 : Math.round((unexpected / requests) * 10_000) / 100,
    vusers: {
      created: counters['vusers.created'] ?? 0,
      completed: counters['vusers.completed'] ?? 0,
      failed: counters['vusers.failed'] ?? 0,
    },
    latency: latency(summaries['http.response_time']),
    latencyByClass,
    counters: custom,
    histograms,
    periods,
  };
}

// eslint-disable-next-line no-control-regex
const ANSI = /\u001b\[[0-9;]*m/g;

/**
 * The ensure plugin's verdicts from Artillery's output: after a `Checks:` line, one
 * `ok: <expression>` or `fail: <expression>` line per check, `(optional)` marking non-strict
 * ones.
 */
export function parseEnsureOutput(output: string): CheckResult[] {
  const results: CheckResult[] = [];
  let inChecks = false;
  for (const raw of output.split('\n')) {
    const line = raw.replace(ANSI, '').trim();
    if (line === 'Checks:') {
      inChecks = true;
      continue;
    }
    if (!inChecks) continue;
    const match = /^(ok|fail): (.*?)( \(optional\))?$/.exec(line);
    if (match === null) continue;
    results.push({
      source: 'ensure',
      name: match[2]!,
      passed: match[1] === 'ok',
      optional: match[3] !== undefined,
    });
  }
  return results;
}

/** A `Phase started` / `Phase completed` line, as Artillery prints it. */
export function parsePhaseLine(
  line: string,
): { event: 'started' | 'completed'; name: string; index: number } | undefined {
  const match = /^Phase (started|completed): (.+?) \(index: (\d+)/.exec(
    line.replace(ANSI, '').trim(),
  );
  if (match === null) return undefined;
  return { event: match[1] as 'started' | 'completed', name: match[2]!, index: Number(match[3]) };
}

const requireHere = createRequire(import.meta.url);

/** Options of {@link runArtillery}. */
export interface RunArtilleryOptions {
  script: string;
  /** Where Artillery writes its JSON report. */
  output: string;
  /** Added to the environment: the target, the scenario's variables. */
  env: Readonly<Record<string, string>>;
  /** Every line Artillery prints, as it prints it. */
  onLine?: (line: string) => void;
  /** Aborting kills Artillery. */
  signal?: AbortSignal;
}

/**
 * Runs `artillery run <script> --output <output>` in a child process, with telemetry disabled,
 * and resolves with its exit code and everything it printed.
 */
export function runArtillery(
  options: RunArtilleryOptions,
): Promise<{ exitCode: number; output: string }> {
  const bin = join(dirname(requireHere.resolve('artillery/package.json')), 'bin', 'run');
  const preload = fileURLToPath(new URL('./artillery-preload.cjs', import.meta.url));
  const child = spawn(
    process.execPath,
    ['--require', preload, bin, 'run', options.script, '--output', options.output],
    {
      env: {
        ...process.env,
        ...options.env,
        ARTILLERY_DISABLE_TELEMETRY: 'true',
        // Colours would only have to be stripped again.
        FORCE_COLOR: '0',
        NO_COLOR: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const onAbort = () => child.kill('SIGKILL');
  options.signal?.addEventListener('abort', onAbort, { once: true });
  let output = '';
  const lines = () => {
    let buffered = '';
    return (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output += text;
      buffered += text;
      let i: number;
      while ((i = buffered.indexOf('\n')) >= 0) {
        options.onLine?.(buffered.slice(0, i).replace(/\r$/, ''));
        buffered = buffered.slice(i + 1);
      }
    };
  };
  child.stdout.on('data', lines());
  child.stderr.on('data', lines());
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      resolve({ exitCode: code ?? (signal === null ? 1 : 128), output });
    });
  });
}
