// Memory: what the in-memory rate-limit store costs per key. Every measurement fills a fresh
// limiter in a fresh process (servers/memory-fill.ts), so nothing left over from an earlier
// measurement (a grown heap, a young generation already at full size) flatters or hurts it.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TASKSET } from '../../../examples/launch.js';
import { contender, fmt, type Benchmark, type Contender, type Sample } from '../harness.js';

const FILL = fileURLToPath(new URL('../servers/memory-fill.ts', import.meta.url));
const MILLION = 1_000_000;
/** Keys of a warm-up run: it only proves the child works, each measurement starts afresh. */
const WARMUP_KEYS = 10_000;
const RSS_BUDGET_MB = 150;
const CAP = 100_000;

interface Fill {
  algorithm: 'gcra' | 'fixed-window';
  maxKeys: number;
  keys: number;
  /** Times every key is consumed; from the second pass on, each consume moves a held key. */
  passes: number;
  /** IPv4 addresses, or IPv6 /56 prefixes (which the store holds as strings). */
  family: 'ipv4' | 'ipv6';
}

const CASES: readonly (Fill & { name: string; label: string })[] = [
  {
    name: 'gcra-1m',
    label: 'GCRA, 1,000,000 keys (maxKeys 1,000,000)',
    algorithm: 'gcra',
    maxKeys: MILLION,
    keys: MILLION,
    passes: 1,
    family: 'ipv4',
  },
  {
    name: 'gcra-1m-revisit',
    label: 'GCRA, 1,000,000 keys, each seen twice',
    algorithm: 'gcra',
    maxKeys: MILLION,
    keys: MILLION,
    passes: 2,
    family: 'ipv4',
  },
  {
    name: 'gcra-1m-ipv6',
    label: 'GCRA, 1,000,000 IPv6 /56 keys (maxKeys 1,000,000)',
    algorithm: 'gcra',
    maxKeys: MILLION,
    keys: MILLION,
    passes: 1,
    family: 'ipv6',
  },
  {
    name: 'fixed-window-1m',
    label: 'fixed window, 1,000,000 keys (maxKeys 1,000,000)',
    algorithm: 'fixed-window',
    maxKeys: MILLION,
    keys: MILLION,
    passes: 1,
    family: 'ipv4',
  },
  {
    name: 'cap',
    label: 'GCRA, 1,000,000 keys offered to maxKeys 100,000',
    algorithm: 'gcra',
    maxKeys: CAP,
    keys: MILLION,
    passes: 1,
    family: 'ipv4',
  },
];

/** What memory-fill.ts prints. */
interface FillResult {
  rssGrowthMB: number;
  rssGrowthMiB: number;
  heapUsedGrowthMB: number;
  arrayBuffersGrowthMB: number;
  rssAfterMB: number;
  storeKeys: number;
  denied: number;
  ms: number;
}

function fill(
  options: Fill,
  cpu: number | undefined,
  nodeArgs: readonly string[],
): Promise<FillResult> {
  const node = [
    process.execPath,
    '--expose-gc',
    ...nodeArgs,
    '--import',
    'tsx',
    FILL,
    options.algorithm,
    String(options.maxKeys),
    String(options.keys),
    String(options.passes),
    options.family,
  ];
  const command =
    cpu !== undefined && TASKSET !== undefined ? [TASKSET, '-c', String(cpu), ...node] : node;
  return new Promise((resolve, reject) => {
    execFile(command[0]!, command.slice(1), { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err !== null) {
        reject(new Error(`memory-fill failed: ${err.message}\n${stderr}`));
        return;
      }
      const last = stdout.trim().split('\n').pop() ?? '';
      try {
        resolve(JSON.parse(last) as FillResult);
      } catch {
        reject(new Error(`memory-fill printed no result:\n${stdout}\n${stderr}`));
      }
    });
  });
}

export const benchmark: Benchmark = {
  name: 'memory',
  title: 'Memory: in-memory rate-limit store, RSS growth (MB = 10^6 bytes)',
  unit: 'MB',
  higherIsBetter: false,
  comparison: 'none',
  async start(options) {
    let profiles = 0;
    const contenders = CASES.map((c): Contender => ({
      name: c.name,
      label: c.label,
      async run(phase): Promise<Sample> {
        const keys = phase === 'warmup' ? Math.min(c.keys, WARMUP_KEYS) : c.keys;
        const nodeArgs =
          options.profileDir === undefined || phase === 'warmup'
            ? []
            : [
                '--cpu-prof',
                `--cpu-prof-dir=${options.profileDir}`,
                `--cpu-prof-name=memory-${c.name}-${++profiles}.cpuprofile`,
              ];
        const result = await fill({ ...c, keys }, options.serverCpu, nodeArgs);
        const problems: string[] = [];
        if (result.denied > 0) problems.push(`${result.denied} requests denied`);
        // Below the cap every key must still be held: a store that dropped some would look
        // cheaper than it is.
        if (c.maxKeys >= keys && result.storeKeys !== keys) {
          problems.push(`holds ${result.storeKeys} keys, expected ${keys}`);
        }
        if (result.storeKeys > c.maxKeys) {
          problems.push(`holds ${result.storeKeys} keys, above maxKeys ${c.maxKeys}`);
        }
        return {
          value: result.rssGrowthMB,
          extra: {
            rssGrowthMiB: result.rssGrowthMiB,
            heapUsedGrowthMB: result.heapUsedGrowthMB,
            arrayBuffersGrowthMB: result.arrayBuffersGrowthMB,
            storeKeys: result.storeKeys,
            bytesPerKey: (result.rssGrowthMB * 1e6) / Math.max(1, result.storeKeys),
            ms: result.ms,
            nsPerConsume: (result.ms * 1e6) / (keys * c.passes),
          },
          problems,
        };
      },
    }));
    return {
      contenders,
      notes: [
        'Each measurement is a fresh `node --expose-gc` process on the server CPU: a RateLimiter ' +
          'with its own MemoryStore (as a route with an in-memory limit gets; 100 per minute), ' +
          'then one consume per distinct client key: IPv4 addresses, or IPv6 /56 prefixes as the ' +
          '`ip` key gives them (flat strings, made one at a time as requests bring them).',
        'Value: RSS after a full GC minus RSS after a full GC before the first consume, in MB ' +
          '(10^6 bytes); extra columns in the JSON: MiB, heap and ArrayBuffer growth, keys held, ' +
          "ms and ns per consume (key generation included). About 30 MB of every value is V8's " +
          'young generation growing to its default size, as in any busy server; the heap and ' +
          'ArrayBuffer growth are what the store itself keeps.',
      ],
      close: async () => {},
    };
  },
  targets(summary) {
    const results = [];
    for (const name of ['gcra-1m', 'gcra-1m-revisit', 'gcra-1m-ipv6', 'fixed-window-1m']) {
      const c = contender(summary, name);
      results.push({
        description: `${c.label}: holds 1,000,000 keys in <= ${RSS_BUDGET_MB} MB RSS growth`,
        met: c.median <= RSS_BUDGET_MB && c.extra.storeKeys === MILLION,
        actual: `${fmt(c.median)} MB (${fmt(c.extra.rssGrowthMiB)} MiB), ${fmt(c.extra.storeKeys)} keys`,
      });
    }
    const cap = contender(summary, 'cap');
    // A sample above the cap is also a problem of that sample, so a single one fails the run.
    const held = cap.extra.storeKeys ?? Number.NaN;
    results.push({
      description: `maxKeys ${fmt(CAP)} stays within its cap under 1,000,000 distinct keys`,
      met: held <= CAP && cap.problems.length === 0,
      actual: `${fmt(held)} keys held (median), ${fmt(cap.median)} MB RSS growth, ${fmt(cap.extra.ms)} ms`,
    });
    return results;
  },
};
