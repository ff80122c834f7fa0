import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadConfig, resolveConfig } from '../../lib/config/load.js';
import {
  configSchema,
  httpResourceSchema,
  policyEntrySchema,
  redisResourceSchema,
} from '../../lib/config/schema.js';
import type { ResilienceConfigInput } from '../../lib/config/types.js';
import { formatOf, isLeaf } from '../../lib/config/walk.js';
import type { Branch } from '../../lib/config/walk.js';
import { isConfigError } from '../../lib/errors.js';
import { resilience } from '../../lib/middleware/resilience.js';
import { CircuitBreaker } from '../../lib/policies/breaker.js';
import { Bulkhead } from '../../lib/policies/bulkhead.js';
import { RateLimiter } from '../../lib/policies/rate-limit.js';
import { compileAllowlist } from '../../lib/policies/rate-limit/allowlist.js';
import { TempDirs, configProblems } from './helpers.js';

/**
 * `config validate` passing must mean start-up passes: every constraint the policies,
 * pools and resources enforce when `resilience()` builds them is a config problem first.
 */

const noEnv = {};
const dirs = new TempDirs();
const problemsFor = (input: unknown): string[] =>
  configProblems(() => resolveConfig(input as ResilienceConfigInput, { environment: noEnv }));

const http = (body: Record<string, unknown>) => ({
  resources: { http: { api: { origin: 'http://127.0.0.1:9', ...body } } },
});
const redis = (body: Record<string, unknown>) => ({ resources: { redis: { cache: body } } });

interface Case {
  title: string;
  input: unknown;
  problem: string;
  /** The constructor refusing the same values, where one can be called on its own. */
  refusedBy?: () => unknown;
}

const cases: Case[] = [
  {
    title: 'a breaker open longer than the default openBackoff.max (multiplier 1)',
    input: { middleware: { defaults: { breaker: { halfOpenAfter: '10m' } } } },
    problem:
      'middleware.defaults.breaker.openBackoff.max: must be at least halfOpenAfter (600000ms), got 300000ms',
    refusedBy: () =>
      new CircuitBreaker({ halfOpenAfter: 600_000, openBackoff: { multiplier: 1, max: 300_000 } }),
  },
  {
    title: 'a route breaker open longer than the inherited openBackoff.max',
    input: {
      middleware: {
        routes: [{ name: 'slow', match: 'GET /slow', breaker: { halfOpenAfter: '6m' } }],
      },
    },
    problem:
      'middleware.routes[0] (slow).breaker.openBackoff.max: must be at least halfOpenAfter (360000ms), got 300000ms',
  },
  {
    title: 'an HTTP resource breaker open longer than its openBackoff.max',
    input: http({ breaker: { halfOpenAfter: '1m', openBackoff: { max: '30s' } } }),
    problem:
      'resources.http.api.breaker.openBackoff.max: must be at least halfOpenAfter (60000ms), got 30000ms',
  },
  {
    title: 'a Redis resource breaker open longer than its openBackoff.max',
    input: redis({ breaker: { halfOpenAfter: '10m' } }),
    problem:
      'resources.redis.cache.breaker.openBackoff.max: must be at least halfOpenAfter (600000ms), got 300000ms',
  },
  {
    title: 'a Redis resource breaker with minimumCalls above its count window',
    input: redis({ breaker: { window: { type: 'count', size: 5 } } }),
    problem:
      'resources.redis.cache.breaker.minimumCalls: must be at most window.size (5) for a count window, got 20',
    refusedBy: () => new CircuitBreaker({ window: { type: 'count', size: 5 }, minimumCalls: 20 }),
  },
  {
    title: 'a breaker window too large to allocate',
    input: { middleware: { defaults: { breaker: { window: { size: 2 ** 40 } } } } },
    problem:
      'middleware.defaults.breaker.window.size: must be an integer between 1 and 1000000, got 1099511627776',
    refusedBy: () => new CircuitBreaker({ window: { type: 'count', size: 2 ** 40 } }),
  },
  {
    title: 'a count past 2^53',
    input: { middleware: { defaults: { bulkhead: { maxConcurrent: 2 ** 53 } } } },
    problem:
      'middleware.defaults.bulkhead.maxConcurrent: must be an integer >= 0, got 9007199254740992',
    refusedBy: () => new Bulkhead({ maxConcurrent: 2 ** 53 }),
  },
  {
    title: 'more than one request per microsecond',
    input: { middleware: { defaults: { rateLimit: { limit: 5000, window: '2ms' } } } },
    problem:
      'middleware.defaults.rateLimit.limit: must be at most 1000 per millisecond of window (2000 for 2ms), got 5000',
    refusedBy: () => new RateLimiter({ name: 'x', limit: 5000, windowMs: 2 }),
  },
  {
    title: 'a burst beyond the GCRA horizon',
    input: { middleware: { defaults: { rateLimit: { limit: 1, burst: 1000, window: '596h' } } } },
    problem:
      'middleware.defaults.rateLimit.burst: is too large for window 2145600000ms and limit 1: window × (limit + burst) / limit must be at most 1125899906842ms (about 35 years), got 2147745600000ms',
    refusedBy: () => new RateLimiter({ name: 'x', limit: 1, burst: 1000, windowMs: 2_145_600_000 }),
  },
  {
    title: 'a burst with the fixed-window algorithm',
    input: { middleware: { defaults: { rateLimit: { algorithm: 'fixed-window', burst: 1 } } } },
    problem:
      'middleware.defaults.rateLimit.burst: must be 0 with the fixed-window algorithm (burst is a GCRA setting), got 1',
    refusedBy: () =>
      new RateLimiter({ name: 'x', algorithm: 'fixed-window', limit: 1, windowMs: 1000, burst: 1 }),
  },
  {
    title: 'an allowlist entry that looks like a CIDR but is not one',
    input: { middleware: { defaults: { rateLimit: { allowlist: ['vip', '10.0.0.0/40'] } } } },
    problem:
      'middleware.defaults.rateLimit.allowlist[1]: is not a valid CIDR: prefix must be an integer from 0 to 32, got "10.0.0.0/40"',
    refusedBy: () => compileAllowlist(['10.0.0.0/40']),
  },
  {
    title: 'an enabled bulkhead without concurrency',
    input: { middleware: { defaults: { bulkhead: { maxConcurrent: 0, maxQueue: 0 } } } },
    problem:
      'middleware.defaults.bulkhead.maxConcurrent: must be at least 1 when the bulkhead is enabled, got 0',
    refusedBy: () => new Bulkhead({ maxConcurrent: 0 }),
  },
  {
    title: 'a Redis pool.min above pool.max',
    input: redis({ pool: { min: 3, max: 2 } }),
    problem: 'resources.redis.cache.pool.min: must be at most pool.max (2), got 3',
  },
  {
    title: 'a Redis retry backoff starting above its maximum',
    input: redis({ retry: { backoff: { initial: '2s', max: '1s' } } }),
    problem:
      'resources.redis.cache.retry.backoff.initial: must be at most retry.backoff.max (1000ms), got 2000ms',
  },
  {
    title: 'an HTTP and a Redis resource of the same name',
    input: {
      resources: { http: { shared: { origin: 'http://127.0.0.1:9' } }, redis: { shared: {} } },
    },
    problem:
      'resources.redis.shared: has the same name as resources.http.shared; resource names must be unique across kinds',
  },
];

describe('config validation covers every start-up constraint', () => {
  afterEach(() => dirs.cleanup());

  for (const { title, input, problem, refusedBy } of cases) {
    it(`rejects ${title}`, () => {
      assert.deepEqual(problemsFor(input), [`${problem} (from config object)`]);
      // resilience() fails the same way, before building anything.
      assert.deepEqual(
        configProblems(() => resilience(input as ResilienceConfigInput)),
        problemsFor(input),
      );
      if (refusedBy !== undefined) assert.throws(refusedBy);
    });
  }

  it('names the file that set a value in a cross-field problem', () => {
    const dir = dirs.make({
      'default.yaml': 'middleware:\n  defaults:\n    breaker: { halfOpenAfter: 10m }\n',
    });
    assert.deepEqual(
      configProblems(() => loadConfig({ dir, environment: noEnv })),
      [
        `middleware.defaults.breaker.openBackoff.max: must be at least halfOpenAfter (600000ms), got 300000ms (from ${join(dir, 'default.yaml')})`,
      ],
    );
  });
});

// ---------------------------------------------------------------------------------------------
// property: what validation accepts, resilience() builds

/** mulberry32: a small seeded PRNG, so a failure replays from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const INTEGERS = [
  0,
  1,
  2,
  3,
  5,
  20,
  100,
  1000,
  1001,
  65_535,
  1_000_000,
  1_000_001,
  2 ** 31,
  2 ** 53 - 1,
  2 ** 53,
  1.5,
  -1,
];
const NUMBERS = [0, 0.5, 1, 1.5, 2, 50, 99.5, 100, 101, 1e9];
const DURATIONS = [
  0,
  1,
  '1ms',
  '2ms',
  '250ms',
  '1s',
  '10s',
  '5m',
  '6m',
  '10m',
  '1h',
  '24h',
  2_147_483_647,
  2_147_483_648,
];
/** Values by leaf key, for leaves whose format is not a plain number, duration or boolean. */
const BY_KEY: Record<string, readonly unknown[]> = {
  key: ['ip', 'header:x-api-key', 'fn:tenant'],
  store: ['memory', 'redis:cache', 'redis:missing'],
  allowlist: [[], ['vip', '10.0.0.0/8', '::1'], ['10.0.0.0/40'], ['1.2.3.4/']],
  failureStatuses: [['5xx'], ['4xx', '503']],
  statuses: [[502, 503], []],
  maxResponseSize: [0, '1kb', '10MiB'],
  trustProxy: [true, false, 2, 'loopback', '10.0.0.0/8, 127.0.0.1', ['loopback', '::1/128']],
  livenessPath: ['/healthz', '/readyz', '/live'],
  readinessPath: ['/readyz', '/healthz', '/ready'],
  path: ['/metrics', '/healthz', '/m'],
  prefix: ['', 'app_', 'resilience_'],
  buckets: [[0.1, 1], [1], [1, 0.5]],
  exclude: [['/healthz'], ['/a', '/b']],
  name: ['x-request-timeout-ms', 'x-deadline'],
};

function pick<T>(random: () => number, list: readonly T[]): T {
  return list[Math.floor(random() * list.length)]!;
}

/** A random partial input for `schema`: each leaf set with probability `p`. */
function randomBranch(random: () => number, schema: Branch, p: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, node] of Object.entries(schema)) {
    // TLS material names files outside the config, read (and checked) at start-up.
    if (key === 'tls') continue;
    if (!isLeaf(node)) {
      const child = randomBranch(random, node, p);
      if (Object.keys(child).length > 0) out[key] = child;
      continue;
    }
    if (random() >= p) continue;
    const name = formatOf(node).name;
    const choices = Object.hasOwn(BY_KEY, key)
      ? BY_KEY[key]!
      : name === 'boolean'
        ? [true, false]
        : name.startsWith('integer')
          ? INTEGERS
          : name.startsWith('number')
            ? NUMBERS
            : name.startsWith('duration')
              ? DURATIONS
              : name.includes('`')
                ? [...name.matchAll(/`([^`<]+)`/g)].map((m) => m[1]!)
                : undefined;
    if (choices !== undefined && choices.length > 0) out[key] = pick(random, choices);
  }
  return out;
}

function randomConfig(random: () => number): Record<string, unknown> {
  const p = 0.06;
  const policies: Record<string, unknown> = {};
  const routes: Record<string, unknown>[] = [];
  for (let i = 0; i < Math.floor(random() * 3); i++) {
    policies[`p${i}`] = randomBranch(random, policyEntrySchema, p);
  }
  for (let i = 0; i < Math.floor(random() * 3); i++) {
    routes.push({
      name: `r${i}`,
      match: `GET /r${i}`,
      ...(random() < 0.5 && Object.keys(policies).length > 0 ? { policy: 'p0' } : {}),
      ...randomBranch(random, policyEntrySchema, p),
    });
  }
  const resources: Record<string, Record<string, unknown>> = { http: {}, redis: {} };
  if (random() < 0.3) {
    resources.http!.api = {
      ...randomBranch(random, httpResourceSchema, p),
      origin: 'http://127.0.0.1:9',
      health: { enabled: false },
    };
  }
  if (random() < 0.3) {
    resources.redis!.cache = {
      ...randomBranch(random, redisResourceSchema, p),
      mode: 'standalone',
      host: '127.0.0.1',
      port: 6379,
      health: { enabled: false },
    };
  }
  const { middleware, metrics, health, shutdown } = configSchema;
  const top = randomBranch(random, { middleware, health, shutdown, metrics } as Branch, p);
  return {
    ...top,
    middleware: {
      ...(top.middleware as object),
      defaults: randomBranch(random, policyEntrySchema, p),
      policies,
      routes,
    },
    resources,
    metrics: { ...(top.metrics as object), defaultMetrics: false },
    shutdown: { handleSignals: false },
  };
}

describe('config validation property', () => {
  // CONFIG_PROPERTY_SEED replays or explores other seeds.
  it('every random config that validates builds with resilience() (seeded)', async function () {
    this.timeout(60_000);
    const seed = Number(process.env.CONFIG_PROPERTY_SEED ?? 20261207);
    const random = prng(seed);
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < 300; i++) {
      const input = randomConfig(random);
      try {
        resolveConfig(input as ResilienceConfigInput, { environment: noEnv });
      } catch (err) {
        if (!isConfigError(err)) throw err;
        rejected++;
        continue;
      }
      accepted++;
      let r;
      try {
        r = resilience(input as ResilienceConfigInput, {
          keyGenerators: { tenant: () => 't' },
        });
      } catch (err) {
        assert.fail(
          `seed ${seed}, config ${i} validated but resilience() threw ${String(err)}\n${JSON.stringify(input)}`,
        );
      }
      await r.close({ grace: 0 });
    }
    // Both sides must be exercised, or the property says nothing.
    assert.ok(accepted >= 30, `only ${accepted} of 300 random configs validated`);
    assert.ok(rejected >= 30, `only ${rejected} of 300 random configs were rejected`);
  });
});
