// The benchmark harness behind `npm run bench`: every benchmark pits contenders (a baseline,
// the pack, its peers) against each other in one process tree, warms each up, then measures
// them in interleaved rounds (A B C A B C ...), so drift in the machine (thermal, other load)
// hits every contender alike. Ratios are taken within a round, then the median over rounds.
import { cpus, release, totalmem } from 'node:os';

/** One measurement of one contender. */
export interface Sample {
  /** The benchmark's measure, in its `unit`. */
  value: number;
  /** Latency percentiles in milliseconds, where the benchmark has them. */
  p50?: number;
  p99?: number;
  /** Anything else worth keeping (counts, RSS, ...), by name. */
  extra?: Record<string, number>;
  /**
   * What makes the sample untrustworthy (non-2xx answers, errors, a limiter that rejected): a
   * sample with problems fails the run, because speed bought by failing requests is no speed.
   */
  problems?: string[];
}

/** One stack under test. */
export interface Contender {
  /** Short id (`bare`, `pack`, `peers`). */
  name: string;
  /** What the table shows. */
  label: string;
  /** The contender the others are compared with; exactly one per benchmark has it. */
  baseline?: boolean;
  /** One measurement; `warmup` runs are thrown away. */
  run(phase: 'warmup' | 'measure'): Promise<Sample>;
}

/** The contenders of one benchmark, ready to run, and how to stop what they started. */
export interface BenchSession {
  contenders: Contender[];
  /** Lines for the report (what was measured, how). */
  notes?: string[];
  close(): Promise<void>;
}

/** How `npm run bench` was asked to measure. */
export interface BenchOptions {
  rounds: number;
  /** Seconds per HTTP measurement. */
  duration: number;
  /** Seconds of warm-up per contender. */
  warmup: number;
  /** HTTP connections (inbound) or concurrent calls (outbound, Redis). */
  connections: number;
  /** Write a V8 CPU profile of each server (`--cpu-prof`) into this directory. */
  profileDir: string | undefined;
  /** CPU of the process under test; the harness itself runs on `loadCpu`. */
  serverCpu: number | undefined;
  loadCpu: number | undefined;
  verbose: boolean;
}

/** What a target said about a summary. */
export interface TargetResult {
  description: string;
  met: boolean;
  /** The measured value, in words ("0.93× bare", "0.71 µs"). */
  actual: string;
}

export type Comparison = 'ratio' | 'overhead' | 'none';

export interface Benchmark {
  name: string;
  title: string;
  /** Unit of `Sample.value` ("req/s", "ns/call", "MB"). */
  unit: string;
  higherIsBetter: boolean;
  /**
   * How contenders are set against the baseline: `ratio` (value / baseline, throughput),
   * `overhead` (value - baseline, per-call cost) or `none`.
   */
  comparison: Comparison;
  /** `Sample.extra` entries shown as table columns (their medians). */
  columns?: readonly { key: string; label: string }[];
  start(options: BenchOptions): Promise<BenchSession>;
  targets(summary: BenchSummary): TargetResult[];
}

export interface ContenderSummary {
  name: string;
  label: string;
  baseline: boolean;
  values: number[];
  median: number;
  p50: number | undefined;
  p99: number | undefined;
  /** Per round, against the baseline measured in that round; then their median. */
  ratios: number[];
  ratio: number | undefined;
  overheads: number[];
  overhead: number | undefined;
  /** p99 / the baseline's p99, per round, and their median. */
  p99Ratio: number | undefined;
  extra: Record<string, number>;
  problems: string[];
}

export interface BenchSummary {
  name: string;
  title: string;
  unit: string;
  higherIsBetter: boolean;
  comparison: Comparison;
  columns: readonly { key: string; label: string }[];
  rounds: number;
  contenders: ContenderSummary[];
  notes: string[];
  targets: TargetResult[];
  startedAt: string;
  seconds: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function medianOrUndefined(values: readonly (number | undefined)[]): number | undefined {
  const present = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  return present.length === 0 ? undefined : median(present);
}

/** The machine, for the report: a result without it cannot be compared with another. */
export function machine(): Record<string, string | number> {
  const cores = cpus();
  return {
    cpu: cores[0]?.model.trim() ?? 'unknown',
    cores: cores.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    kernel: release(),
    platform: process.platform,
  };
}

export type Log = (line: string) => void;

/** Runs one benchmark: warm-up, then `rounds` interleaved rounds, then the summary. */
export async function runBenchmark(
  bench: Benchmark,
  options: BenchOptions,
  log: Log,
): Promise<BenchSummary> {
  const startedAt = new Date();
  const session = await bench.start(options);
  const baselines = session.contenders.filter((c) => c.baseline === true);
  if (bench.comparison !== 'none' && baselines.length !== 1) {
    await session.close();
    throw new Error(`${bench.name}: expected one baseline contender, got ${baselines.length}`);
  }
  const samples = new Map<string, Sample[]>(session.contenders.map((c) => [c.name, []]));
  try {
    for (const contender of session.contenders) {
      log(`  warm-up  ${contender.label}`);
      const sample = await contender.run('warmup');
      if (sample.problems?.length) {
        throw new Error(`${contender.label} failed its warm-up: ${sample.problems.join('; ')}`);
      }
    }
    for (let round = 1; round <= options.rounds; round++) {
      for (const contender of session.contenders) {
        const sample = await contender.run('measure');
        samples.get(contender.name)!.push(sample);
        const latency =
          sample.p99 === undefined ? '' : `  p50 ${fmt(sample.p50)} ms  p99 ${fmt(sample.p99)} ms`;
        const problems = sample.problems?.length ? `  PROBLEMS: ${sample.problems.join('; ')}` : '';
        log(
          `  round ${round}  ${contender.label.padEnd(44)} ${fmt(sample.value)} ${bench.unit}${latency}${problems}`,
        );
      }
    }
  } finally {
    await session.close();
  }

  const baselineName = baselines[0]?.name;
  const baselineSamples = baselineName === undefined ? [] : samples.get(baselineName)!;
  const contenders = session.contenders.map((c): ContenderSummary => {
    const own = samples.get(c.name)!;
    const values = own.map((s) => s.value);
    const ratios: number[] = [];
    const overheads: number[] = [];
    const p99Ratios: number[] = [];
    own.forEach((sample, i) => {
      const base = baselineSamples[i];
      if (base === undefined) return;
      ratios.push(sample.value / base.value);
      overheads.push(sample.value - base.value);
      if (sample.p99 !== undefined && base.p99 !== undefined && base.p99 > 0) {
        p99Ratios.push(sample.p99 / base.p99);
      }
    });
    const extraKeys = new Set(own.flatMap((s) => Object.keys(s.extra ?? {})));
    const extra: Record<string, number> = {};
    for (const key of extraKeys) extra[key] = median(own.map((s) => s.extra?.[key] ?? Number.NaN));
    return {
      name: c.name,
      label: c.label,
      baseline: c.baseline === true,
      values,
      median: median(values),
      p50: medianOrUndefined(own.map((s) => s.p50)),
      p99: medianOrUndefined(own.map((s) => s.p99)),
      ratios,
      ratio: bench.comparison === 'none' ? undefined : medianOrUndefined(ratios),
      overheads,
      overhead: bench.comparison === 'overhead' ? medianOrUndefined(overheads) : undefined,
      p99Ratio: medianOrUndefined(p99Ratios),
      extra,
      problems: [...new Set(own.flatMap((s) => s.problems ?? []))],
    };
  });
  const summary: BenchSummary = {
    name: bench.name,
    title: bench.title,
    unit: bench.unit,
    higherIsBetter: bench.higherIsBetter,
    comparison: bench.comparison,
    columns: bench.columns ?? [],
    rounds: options.rounds,
    contenders,
    notes: session.notes ?? [],
    targets: [],
    startedAt: startedAt.toISOString(),
    seconds: Math.round((Date.now() - startedAt.getTime()) / 1000),
  };
  summary.targets = bench.targets(summary);
  return summary;
}

/** The contender called `name`; throws when a benchmark's own targets name one it lacks. */
export function contender(summary: BenchSummary, name: string): ContenderSummary {
  const found = summary.contenders.find((c) => c.name === name);
  if (found === undefined) throw new Error(`${summary.name} has no contender ${name}`);
  return found;
}

/** A number for a table: three significant digits, thousands grouped. */
export function fmt(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '–';
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString('en-US');
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

export function ratioText(value: number | undefined): string {
  return value === undefined ? '–' : `${value.toFixed(2)}×`;
}

/** The markdown table of one benchmark, with its targets under it. */
export function markdown(summary: BenchSummary): string {
  const latency = summary.contenders.some((c) => c.p99 !== undefined);
  const header = ['Stack', `${summary.unit} (median)`];
  if (latency) header.push('p50 ms', 'p99 ms');
  if (summary.comparison === 'ratio') header.push('× baseline');
  if (summary.comparison === 'overhead') header.push(`overhead ${summary.unit}`);
  if (latency && summary.comparison !== 'none') header.push('p99 × baseline');
  for (const column of summary.columns) header.push(column.label);
  header.push('rounds');
  const lines = [
    `### ${summary.title}`,
    '',
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`,
  ];
  for (const c of summary.contenders) {
    const row = [c.baseline ? `${c.label} (baseline)` : c.label, fmt(c.median)];
    if (latency) row.push(fmt(c.p50), fmt(c.p99));
    if (summary.comparison === 'ratio') row.push(ratioText(c.ratio));
    if (summary.comparison === 'overhead') row.push(c.baseline ? '–' : fmt(c.overhead));
    if (latency && summary.comparison !== 'none') row.push(ratioText(c.p99Ratio));
    for (const column of summary.columns) row.push(fmt(c.extra[column.key]));
    row.push(c.values.map((v) => fmt(v)).join(' / '));
    lines.push(`| ${row.join(' | ')} |`);
  }
  if (summary.targets.length > 0) {
    lines.push('');
    for (const t of summary.targets) {
      lines.push(`- ${t.met ? 'met' : '**missed**'}: ${t.description} — ${t.actual}`);
    }
  }
  const problems = summary.contenders.filter((c) => c.problems.length > 0);
  for (const c of problems) lines.push(`- **${c.label} had problems**: ${c.problems.join('; ')}`);
  if (summary.notes.length > 0) {
    lines.push('');
    for (const note of summary.notes) lines.push(`> ${note}`);
  }
  return lines.join('\n');
}
