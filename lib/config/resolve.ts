import { closest } from './walk.js';
import { isPlainObject, setOwn } from './problems.js';
import type { Path, Report } from './problems.js';
import type {
  BreakerPolicyConfig,
  HttpResourceConfig,
  MiddlewareConfig,
  NamedPolicy,
  PolicySet,
  RedisResourceConfig,
  ResilienceConfig,
  RouteMatch,
  RoutePolicy,
} from './types.js';

/**
 * Inheritance and cross-field rules, run on the coerced tree (every leaf already has the right
 * type). Routes and named policies become complete policy sets; every rule that spans fields
 * reports at the field to change.
 */

/** What the rules need besides the tree. */
export interface ResolveContext {
  readonly report: Report;
  /** True when the walker already reported the value at `path`: rules skip it. */
  isInvalid(path: Path): boolean;
}

type Tree = Record<string, unknown>;

/** Plain objects merge key by key; arrays and scalars replace; `undefined` never overrides. */
export function deepMerge<T>(base: T, own: unknown): T {
  if (!isPlainObject(base) || !isPlainObject(own)) return (own === undefined ? base : own) as T;
  const out: Tree = { ...base };
  for (const [key, value] of Object.entries(own)) {
    if (value !== undefined) setOwn(out, key, deepMerge(out[key], value));
  }
  return out as T;
}

function has(tree: unknown, path: readonly string[]): boolean {
  let node = tree;
  for (const key of path) {
    if (!isPlainObject(node) || !Object.hasOwn(node, key)) return false;
    node = node[key];
  }
  return node !== undefined;
}

/** Where a resolved set's values came from: its own path, then what it inherits from. */
interface SetOrigin {
  at: Path;
  /** The fields given for this set (entry plus named policy); `'all'` for the defaults. */
  own: unknown;
  /** Paths of every layer of inheritance, the entry first. */
  sources: readonly Path[];
}

function rule(
  ctx: ResolveContext,
  origin: SetOrigin,
  fields: readonly (readonly string[])[],
  reportAt: readonly string[],
  message: string,
): void {
  if (origin.own !== 'all' && !fields.some((f) => has(origin.own, f))) return;
  if (fields.some((f) => origin.sources.some((s) => ctx.isInvalid([...s, ...f])))) return;
  ctx.report(
    [...origin.at, ...reportAt],
    message,
    origin.sources.flatMap((s) => fields.map((f) => [...s, ...f])),
  );
}

function checkBreaker(
  breaker: BreakerPolicyConfig,
  ctx: ResolveContext,
  origin: SetOrigin,
  prefix: readonly string[],
): void {
  const f = (...path: string[]) => [...prefix, ...path];
  if (breaker.window.type === 'count' && breaker.minimumCalls > breaker.window.size) {
    rule(
      ctx,
      origin,
      [f('minimumCalls'), f('window', 'size'), f('window', 'type')],
      f('minimumCalls'),
      `must be at most window.size (${breaker.window.size}) for a count window, got ${breaker.minimumCalls}`,
    );
  }
  // The breaker refuses this whatever the multiplier (lib/policies/breaker.ts): with the
  // default max of 5m, a halfOpenAfter above it must raise max too.
  if (breaker.openBackoff.max < breaker.halfOpenAfter) {
    rule(
      ctx,
      origin,
      [f('openBackoff', 'max'), f('halfOpenAfter')],
      f('openBackoff', 'max'),
      `must be at least halfOpenAfter (${breaker.halfOpenAfter}ms), got ${breaker.openBackoff.max}ms`,
    );
  }
}

/** The rate limiter's bounds (lib/policies/rate-limit.ts): at most one request per µs... */
const MAX_RATE_PER_MS = 1000;
/** ...and a GCRA horizon (window × quota / limit) its millisecond arithmetic keeps exact. */
const MAX_HORIZON_MS = 2 ** 50 / 1000;

function checkPolicySet(
  set: PolicySet,
  ctx: ResolveContext,
  origin: SetOrigin,
  redisNames: readonly string[],
): void {
  checkBreaker(set.breaker, ctx, origin, ['breaker']);
  const { rateLimit, bulkhead } = set;
  if (rateLimit.algorithm === 'fixed-window' && rateLimit.burst > 0) {
    rule(
      ctx,
      origin,
      [
        ['rateLimit', 'burst'],
        ['rateLimit', 'algorithm'],
      ],
      ['rateLimit', 'burst'],
      `must be 0 with the fixed-window algorithm (burst is a GCRA setting), got ${rateLimit.burst}`,
    );
  }
  if (rateLimit.limit > rateLimit.window * MAX_RATE_PER_MS) {
    rule(
      ctx,
      origin,
      [
        ['rateLimit', 'limit'],
        ['rateLimit', 'window'],
      ],
      ['rateLimit', 'limit'],
      `must be at most ${MAX_RATE_PER_MS} per millisecond of window (${rateLimit.window * MAX_RATE_PER_MS} for ${rateLimit.window}ms), got ${rateLimit.limit}`,
    );
  }
  const horizon = (rateLimit.window * (rateLimit.limit + rateLimit.burst)) / rateLimit.limit;
  if (horizon > MAX_HORIZON_MS) {
    rule(
      ctx,
      origin,
      [
        ['rateLimit', 'burst'],
        ['rateLimit', 'limit'],
        ['rateLimit', 'window'],
      ],
      ['rateLimit', 'burst'],
      `is too large for window ${rateLimit.window}ms and limit ${rateLimit.limit}: window × (limit + burst) / limit must be at most ${Math.floor(MAX_HORIZON_MS)}ms (about 35 years), got ${Math.round(horizon)}ms`,
    );
  }
  if (rateLimit.store.startsWith('redis:')) {
    const name = rateLimit.store.slice('redis:'.length);
    if (!redisNames.includes(name)) {
      rule(
        ctx,
        origin,
        [['rateLimit', 'store']],
        ['rateLimit', 'store'],
        `names Redis resource "${name}", which is not configured under resources.redis (${
          redisNames.length === 0 ? 'none is' : `configured: ${redisNames.join(', ')}`
        })`,
      );
    }
  }
  if (bulkhead.enabled && bulkhead.maxConcurrent < 1) {
    rule(
      ctx,
      origin,
      [
        ['bulkhead', 'maxConcurrent'],
        ['bulkhead', 'enabled'],
        ['bulkhead', 'maxQueue'],
      ],
      ['bulkhead', 'maxConcurrent'],
      `must be at least 1 when the bulkhead is enabled${
        bulkhead.maxQueue > 0 ? ` (a queue of ${bulkhead.maxQueue} needs a concurrency limit)` : ''
      }, got ${bulkhead.maxConcurrent}`,
    );
  }
}

type ResourceBody<T> = Omit<T, 'name'>;

function checkResource(
  entry: ResourceBody<HttpResourceConfig> | ResourceBody<RedisResourceConfig>,
  ctx: ResolveContext,
  at: Path,
): void {
  const origin: SetOrigin = { at, own: 'all', sources: [at] };
  if (entry.pool.min > entry.pool.max) {
    rule(
      ctx,
      origin,
      [
        ['pool', 'min'],
        ['pool', 'max'],
      ],
      ['pool', 'min'],
      `must be at most pool.max (${entry.pool.max}), got ${entry.pool.min}`,
    );
  }
  const { backoff } = entry.retry;
  if (backoff.initial > backoff.max) {
    rule(
      ctx,
      origin,
      [
        ['retry', 'backoff', 'initial'],
        ['retry', 'backoff', 'max'],
      ],
      ['retry', 'backoff', 'initial'],
      `must be at most retry.backoff.max (${backoff.max}ms), got ${backoff.initial}ms`,
    );
  }
}

function checkRedis(entry: ResourceBody<RedisResourceConfig>, ctx: ResolveContext, at: Path): void {
  const origin: SetOrigin = { at, own: 'all', sources: [at] };
  if (entry.mode === 'sentinel' && entry.sentinels.length === 0) {
    rule(
      ctx,
      origin,
      [['sentinels'], ['mode']],
      ['sentinels'],
      'must list at least one sentinel in sentinel mode',
    );
  }
  if (entry.mode === 'cluster' && entry.nodes.length === 0) {
    rule(
      ctx,
      origin,
      [['nodes'], ['mode']],
      ['nodes'],
      'must list at least one node in cluster mode',
    );
  }
}

/**
 * Resolves inheritance and applies the cross-field rules. `coerced` is the walker's output for
 * the whole schema; the result has the shape of {@link ResilienceConfig} (not yet frozen).
 */
export function resolveTree(coerced: Tree, ctx: ResolveContext): ResilienceConfig {
  const middleware = coerced.middleware as Tree;
  const resources = coerced.resources as { http: Tree; redis: Tree };
  const defaults = middleware.defaults as PolicySet;
  const policyInputs = middleware.policies as Record<string, Tree>;
  const routeInputs = middleware.routes as Tree[];
  const redisNames = Object.keys(resources.redis);
  const defaultsAt: Path = ['middleware', 'defaults'];

  checkPolicySet(defaults, ctx, { at: defaultsAt, own: 'all', sources: [defaultsAt] }, redisNames);

  const policies: Record<string, NamedPolicy> = {};
  for (const [name, own] of Object.entries(policyInputs)) {
    const at: Path = ['middleware', 'policies', name];
    const set = deepMerge(defaults, own);
    checkPolicySet(set, ctx, { at, own, sources: [at, defaultsAt] }, redisNames);
    setOwn(policies, name, { name, ...set });
  }

  const routes: RoutePolicy[] = [];
  const seen = new Map<string, number>();
  routeInputs.forEach((entry, index) => {
    const { name, match, policy, ...own } = entry as Tree & {
      name?: string;
      match?: RouteMatch;
      policy?: string;
    };
    if (name === undefined) return;
    const at: Path = ['middleware', 'routes', { index, label: name }];
    const first = seen.get(name);
    if (first === undefined) seen.set(name, index);
    else
      ctx.report(
        [...at, 'name'],
        `duplicates the name of routes[${first}]; route names must be unique`,
      );

    let base = defaults;
    let named: unknown;
    const sources: Path[] = [at];
    if (policy !== undefined) {
      if (Object.hasOwn(policyInputs, policy)) {
        named = policyInputs[policy];
        base = deepMerge(defaults, named);
        sources.push(['middleware', 'policies', policy]);
      } else {
        const suggestion = closest(policy, Object.keys(policyInputs));
        ctx.report(
          [...at, 'policy'],
          `names policy "${policy}", which is not defined under middleware.policies${
            suggestion === undefined ? '' : ` (did you mean ${suggestion}?)`
          }`,
        );
      }
    }
    sources.push(defaultsAt);
    const set = deepMerge(base, own);
    checkPolicySet(set, ctx, { at, own: deepMerge(named ?? {}, own), sources }, redisNames);
    if (match !== undefined) routes.push({ name, match, ...set });
  });

  const http: Record<string, HttpResourceConfig> = {};
  for (const [name, body] of Object.entries(resources.http)) {
    const entry = body as ResourceBody<HttpResourceConfig>;
    const at: Path = ['resources', 'http', name];
    checkResource(entry, ctx, at);
    checkBreaker(entry.breaker, ctx, { at, own: 'all', sources: [at] }, ['breaker']);
    setOwn(http, name, { name, ...entry });
  }
  const redis: Record<string, RedisResourceConfig> = {};
  for (const [name, body] of Object.entries(resources.redis)) {
    const entry = body as ResourceBody<RedisResourceConfig>;
    const at: Path = ['resources', 'redis', name];
    checkResource(entry, ctx, at);
    checkRedis(entry, ctx, at);
    checkBreaker(entry.breaker, ctx, { at, own: 'all', sources: [at] }, ['breaker']);
    // One resource manager holds both kinds by name (lib/resources/manager.ts).
    if (Object.hasOwn(http, name)) {
      ctx.report(
        at,
        `has the same name as resources.http.${name}; resource names must be unique across kinds`,
      );
    }
    setOwn(redis, name, { name, ...entry });
  }

  const config = { ...coerced } as unknown as ResilienceConfig;
  const resolvedMiddleware: MiddlewareConfig = {
    ...(middleware as unknown as MiddlewareConfig),
    routes,
    policies,
  };
  const result: ResilienceConfig = {
    ...config,
    middleware: resolvedMiddleware,
    resources: { http, redis },
  };
  checkEndpoints(result, ctx);
  return result;
}

function checkEndpoints(config: ResilienceConfig, ctx: ResolveContext): void {
  const { health, metrics } = config;
  if (health.enabled && health.livenessPath === health.readinessPath) {
    ctx.report(
      ['health', 'readinessPath'],
      `must differ from livenessPath (${health.livenessPath})`,
      [
        ['health', 'readinessPath'],
        ['health', 'livenessPath'],
      ],
    );
  }
  if (
    metrics.enabled &&
    health.enabled &&
    (metrics.path === health.livenessPath || metrics.path === health.readinessPath)
  ) {
    ctx.report(['metrics', 'path'], `must differ from the health endpoints (${metrics.path})`, [
      ['metrics', 'path'],
      ['health', 'livenessPath'],
      ['health', 'readinessPath'],
    ]);
  }
}
