// `npm run bench [-- NAME ... options]`: runs the benchmarks (all of them by default), prints
// each one's table as it finishes, and writes JSON and markdown into bench-results/. Exits 1
// when a sample had problems (errors, non-2xx answers) or, except in a --quick smoke run (which
// reports and does not judge: its rounds are too short to mean anything), a target was missed.
// See "Performance" in the README.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { TASKSET } from '../../examples/launch.js';
import {
  machine,
  markdown,
  runBenchmark,
  type BenchOptions,
  type BenchSummary,
  type Benchmark,
} from './harness.js';

/** Loaded on demand: `npm run bench:memory` has no business loading autocannon or ioredis. */
const BENCHMARKS: Record<string, () => Promise<{ benchmark: Benchmark }>> = {
  inbound: () => import('./benchmarks/inbound.js'),
  outbound: () => import('./benchmarks/outbound.js'),
  'per-call': () => import('./benchmarks/per-call.js'),
  redis: () => import('./benchmarks/redis.js'),
  memory: () => import('./benchmarks/memory.js'),
};

const USAGE = `Usage: npm run bench [-- [NAME ...] [options]]

Benchmarks: ${Object.keys(BENCHMARKS).join(', ')} (default: all, in that order)

Options:
  --rounds N        measured rounds per contender, interleaved (default 3)
  --duration SEC    seconds per HTTP / Redis measurement (default 10)
  --warmup SEC      seconds of warm-up per contender (default 5)
  --connections N   connections or concurrent calls (default 50)
  --quick           1 round of 3 s after 2 s of warm-up: a smoke run, not a result (missed
                    targets are reported, not judged: the exit code only says it ran cleanly)
  --profile [DIR]   write a V8 CPU profile of every server process (default bench-results/profiles)
  --out DIR         where results go (default bench-results)
  --server-cpu N    CPU for the process under test (default 0; needs taskset)
  --load-cpu N      CPU for this process, the load generator (default 1)
  --verbose         show the servers' output
`;

class UsageError extends Error {}

interface Invocation {
  names: string[];
  options: BenchOptions;
  out: string;
  /** --quick: targets are reported but a missed one does not fail the run. */
  smoke: boolean;
}

function parse(argv: readonly string[]): Invocation {
  const names: string[] = [];
  const options: BenchOptions = {
    rounds: 3,
    duration: 10,
    warmup: 5,
    connections: 50,
    profileDir: undefined,
    serverCpu: 0,
    loadCpu: 1,
    verbose: false,
  };
  let out = 'bench-results';
  let smoke = false;
  const number = (flag: string, text: string | undefined, min: number): number => {
    const value = Number(text);
    if (text === undefined || !Number.isFinite(value) || value < min) {
      throw new UsageError(`${flag} needs a number >= ${min}, got ${text ?? 'nothing'}`);
    }
    return value;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = () => argv[++i];
    switch (arg) {
      case '--rounds':
        options.rounds = Math.floor(number(arg, next(), 1));
        break;
      case '--duration':
        options.duration = number(arg, next(), 1);
        break;
      case '--warmup':
        options.warmup = number(arg, next(), 0);
        break;
      case '--connections':
        options.connections = Math.floor(number(arg, next(), 1));
        break;
      case '--quick':
        options.rounds = 1;
        options.duration = 3;
        options.warmup = 2;
        smoke = true;
        break;
      case '--profile':
        options.profileDir =
          argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-')
            ? next()
            : join(out, 'profiles');
        break;
      case '--out':
        out = next() ?? '';
        if (out === '') throw new UsageError('--out needs a directory');
        break;
      case '--server-cpu':
        options.serverCpu = Math.floor(number(arg, next(), 0));
        break;
      case '--load-cpu':
        options.loadCpu = Math.floor(number(arg, next(), 0));
        break;
      case '--verbose':
        options.verbose = true;
        break;
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        process.exit(0);
        break;
      default:
        if (arg.startsWith('-')) throw new UsageError(`unknown option ${arg}`);
        if (!(arg in BENCHMARKS)) {
          throw new UsageError(
            `unknown benchmark ${arg} (known: ${Object.keys(BENCHMARKS).join(', ')})`,
          );
        }
        names.push(arg);
    }
  }
  if (options.profileDir !== undefined) options.profileDir = resolve(options.profileDir);
  return {
    names: names.length > 0 ? names : Object.keys(BENCHMARKS),
    options,
    out: resolve(out),
    smoke,
  };
}

/**
 * Pins this process (every thread: libuv's pool, V8's workers) to the load CPU, so the server
 * under test has the other core to itself. Without taskset, or with one CPU, nothing is pinned
 * and the report says so.
 */
function pinSelf(options: BenchOptions): string {
  const cores = machine().cores as number;
  if (TASKSET === undefined || cores < 2) {
    options.serverCpu = undefined;
    options.loadCpu = undefined;
    return 'not pinned (taskset missing or one CPU): server and load generator share the CPUs';
  }
  for (const cpu of [options.serverCpu, options.loadCpu]) {
    if (cpu !== undefined && cpu >= cores)
      throw new UsageError(`CPU ${cpu} does not exist (${cores} CPUs)`);
  }
  execFileSync(TASKSET, ['-a', '-p', '-c', String(options.loadCpu), String(process.pid)], {
    stdio: 'ignore',
  });
  return `process under test on CPU ${options.serverCpu}, load generator on CPU ${options.loadCpu} (taskset)`;
}

async function main(): Promise<number> {
  const { names, options, out, smoke } = parse(process.argv.slice(2));
  const pinning = pinSelf(options);
  mkdirSync(out, { recursive: true });
  if (options.profileDir !== undefined) mkdirSync(options.profileDir, { recursive: true });
  const host = machine();
  const method =
    `${options.rounds} interleaved round(s) after warm-up; ${options.duration} s per HTTP/Redis ` +
    `measurement, ${options.warmup} s warm-up, ${options.connections} connections; ${pinning}`;
  console.log(`express-resilience benchmarks: ${names.join(', ')}`);
  console.log(
    `machine: ${Object.entries(host)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  console.log(`method: ${method}\n`);

  const summaries: BenchSummary[] = [];
  let failed = false;
  for (const name of names) {
    const { benchmark } = await BENCHMARKS[name]!();
    console.log(`${benchmark.title}`);
    const summary = await runBenchmark(benchmark, options, (line) => console.log(line));
    summaries.push(summary);
    const table = markdown(summary);
    console.log(`\n${table}\n`);
    writeFileSync(
      join(out, `${name}.json`),
      `${JSON.stringify({ machine: host, method, options, ...summary }, null, 2)}\n`,
    );
    writeFileSync(join(out, `${name}.md`), `${table}\n`);
    const missed = summary.targets.some((t) => !t.met);
    if (missed && smoke) console.log('a target was missed: not judged in a --quick smoke run');
    if ((missed && !smoke) || summary.contenders.some((c) => c.problems.length)) failed = true;
  }
  const all = [
    '## Benchmark results',
    '',
    `Machine: ${Object.entries(host)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
    `Method: ${method}.`,
    '',
    ...summaries.map((s) => `${markdown(s)}\n`),
  ].join('\n');
  writeFileSync(join(out, 'summary.md'), all);
  console.log(`results: ${join(out, 'summary.md')} and one JSON per benchmark`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      console.error(`${err.message}\n\n${USAGE}`);
      process.exit(2);
    }
    console.error(err);
    process.exit(1);
  },
);
