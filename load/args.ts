import { parseArgs } from 'node:util';

/** What `npm run load -- ...` asked for. */
export interface RunOptions {
  /** Scenario names (bundled) or paths to .yml files; empty = every bundled scenario. */
  scenarios: string[];
  /** A service that already runs: nothing is started. */
  target?: string;
  /** The fake upstream's origin (its admin API), for fault scenarios against `target`. */
  upstream?: string;
  /** `--var NAME=VALUE`: scenario variables, over the environment. */
  variables: Record<string, string>;
  /** Redis for the service's cache: tried, used when it answers; `null` = never. */
  redis: string | null;
  /** Where results/ and reports/ go. */
  outDir: string;
  /** Stream all of Artillery's output, not just phases and checks. */
  verbose: boolean;
  list: boolean;
  help: boolean;
}

/** A command-line mistake: printed with the usage, exit code 2. */
export class UsageError extends Error {}

export const USAGE = `Usage: npm run load [-- options]

Runs the Artillery scenarios of load/scenarios against the example service (started here,
with its fake upstream, unless --target is given), checks them, and writes JSON results and an
HTML report.

  --scenario NAME    a scenario to run (repeat, or comma-separate); default: all of them.
                     A path to a .yml file runs that file.
  --target URL       load a service that already runs; nothing is started.
  --upstream URL     with --target: the fake upstream's origin, for scenarios that inject
                     faults through its admin API (breaker, chaos, pool-exhaustion).
  --var NAME=VALUE   set a scenario variable (also read from the environment), e.g.
                     --var ENDURANCE_DURATION=600
  --redis URL        Redis for the service's cache, used when it answers
                     (default $REDIS_URL or redis://127.0.0.1:6379)
  --no-redis         run the service without Redis
  --out DIR          where results/ and reports/ are written (default: load)
  --verbose          show all of Artillery's output
  --list             list the scenarios and their variables
  --help             this text

Exit code: 0 when every check passed, 1 when one failed, 2 for a usage error.`;

function url(value: string, option: string): string {
  try {
    const parsed = new URL(value);
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new Error('not http');
    return value.replace(/\/+$/, '');
  } catch {
    throw new UsageError(`${option} must be an http(s) URL, got ${JSON.stringify(value)}`);
  }
}

/** Parses the runner's arguments (without `node` and the script); throws UsageError. */
export function parseRunArgs(
  argv: readonly string[],
  environment: NodeJS.ProcessEnv = {},
): RunOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: {
        scenario: { type: 'string', short: 's', multiple: true },
        target: { type: 'string' },
        upstream: { type: 'string' },
        var: { type: 'string', multiple: true },
        redis: { type: 'string' },
        'no-redis': { type: 'boolean' },
        out: { type: 'string' },
        verbose: { type: 'boolean', short: 'v' },
        list: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      allowPositionals: true,
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const { values, positionals } = parsed;
  // `npm run load smoke` (without the --) forwards the name as a positional.
  const scenarios = [...(values.scenario ?? []), ...positionals]
    .flatMap((s) => s.split(','))
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const s of scenarios) {
    if (!/^[A-Za-z0-9_./-]+$/.test(s))
      throw new UsageError(`bad scenario name ${JSON.stringify(s)}`);
  }
  const variables: Record<string, string> = {};
  for (const pair of values.var ?? []) {
    const match = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(pair);
    if (match === null)
      throw new UsageError(
        `--var takes NAME=VALUE (NAME in UPPER_CASE), got ${JSON.stringify(pair)}`,
      );
    variables[match[1]!] = match[2]!;
  }
  if (values.upstream !== undefined && values.target === undefined) {
    throw new UsageError('--upstream only makes sense with --target');
  }
  if (values.redis !== undefined && values['no-redis'] === true) {
    throw new UsageError('--redis and --no-redis contradict each other');
  }
  return {
    scenarios,
    target: values.target === undefined ? undefined : url(values.target, '--target'),
    upstream: values.upstream === undefined ? undefined : url(values.upstream, '--upstream'),
    variables,
    redis:
      values['no-redis'] === true
        ? null
        : (values.redis ?? (environment.REDIS_URL || 'redis://127.0.0.1:6379')),
    outDir: values.out ?? 'load',
    verbose: values.verbose === true,
    list: values.list === true,
    help: values.help === true,
  };
}
