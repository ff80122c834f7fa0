import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { loadConfig, resolveConfig } from '../config/index.js';
import type { NamedPolicy, ResilienceConfig, ResilienceConfigInput } from '../config/types.js';
import { InvalidArgumentError } from '../errors.js';
import { ResilienceMetrics } from '../metrics/metrics.js';
import { currentDeadline, runWithDeadline } from '../policies/deadline-context.js';
import { withTimeout } from '../policies/timeout.js';
import type { RateLimitStore } from '../policies/rate-limit/store.js';
import { compileTrust, normaliseTrust } from './client-ip.js';
import { patchExpress4AsyncErrors } from './express4-async.js';
import {
  PolicyRuntime,
  type KeyGenerator,
  type RejectHandler,
  type RuntimeEnvironment,
} from './policy-runtime.js';
import { RouteTable, pathOf } from './route-table.js';
import { warnOnce, type Logger } from './warnings.js';

type Next = (err?: unknown) => void;
/** A Connect/Express middleware function. */
export type Middleware = (req: IncomingMessage, res: ServerResponse, next: Next) => void;

/** What cannot live in a config file. */
export interface ResilienceOptions {
  /** A pino-compatible logger for warnings and errors; default: `process.emitWarning`. */
  logger?: Logger;
  /** The prom-client registry to register metrics on; default: a new registry. */
  registry?: Registry;
  /** Key generators named in config as `rateLimit.key: fn:<name>`. */
  keyGenerators?: Readonly<Record<string, KeyGenerator>>;
  /** Renders rejections instead of the default problem+json. */
  onReject?: RejectHandler;
  /**
   * On Express 4, forward rejected promises of async handlers to `next(err)` (Express 5 does
   * this itself). Default true.
   */
  express4AsyncErrors?: boolean;
  /** Builds rate-limit stores for `rateLimit.store` values other than `memory`. */
  createStore?: (
    spec: string,
    policy: ResilienceConfig['middleware']['defaults']['rateLimit'],
  ) => RateLimitStore;
}

/** The middleware `resilience()` returns, with its handles. */
export interface ResilienceMiddleware extends Middleware {
  /** The resolved, frozen configuration in use. */
  readonly config: ResilienceConfig;
  /** The pack's metrics and their registry. */
  readonly metrics: ResilienceMetrics;
  /**
   * Middleware applying the named policy set `middleware.policies.<name>`:
   * `router.use(r.policy('billing'))`. Throws InvalidArgumentError for an unknown name.
   */
  policy(name: string): Middleware;
  /**
   * Wraps `fn` so every call runs under the named policy set's breaker, bulkhead and timeout
   * (rate limits need a request and do not apply). Outbound calls inside `fn` inherit the
   * deadline. Rejects with BreakerOpenError, BulkheadFullError or TimeoutError.
   */
  wrap<A extends unknown[], T>(
    name: string,
    fn: (...args: A) => Promise<T> | T,
  ): (...args: A) => Promise<T>;
  /** Stops every timer and subscription and closes stores; idempotent. */
  close(): Promise<void>;
}

/**
 * Creates the resilience middleware: `app.use(resilience(config))`.
 *
 * With no `config`, loads config/ through `loadConfig()`; with an object, validates it the
 * same way (schema defaults underneath). Throws ConfigError listing every problem, or
 * InvalidArgumentError for options that do not fit the config (an unknown key generator).
 */
export function resilience(
  config?: ResilienceConfigInput | ResilienceConfig,
  options: ResilienceOptions = {},
): ResilienceMiddleware {
  const resolved = config === undefined ? loadConfig() : resolveConfig(config);
  const mw = resolved.middleware;
  const metrics = new ResilienceMetrics({
    registry: options.registry,
    prefix: resolved.metrics.prefix,
    buckets: resolved.metrics.buckets,
    defaultMetrics: resolved.metrics.enabled && resolved.metrics.defaultMetrics,
  });
  const env: RuntimeEnvironment = {
    metrics,
    logger: options.logger,
    trust: compileTrust(mw.trustProxy),
    keyGenerators: options.keyGenerators ?? {},
    onReject: options.onReject,
    deadlineHeader: mw.deadlineHeader.enabled ? mw.deadlineHeader.name.toLowerCase() : null,
    createStore: options.createStore,
  };

  const runtimes: PolicyRuntime[] = [];
  const runtime = (
    name: string,
    policies: ResilienceConfig['middleware']['defaults'],
  ): PolicyRuntime => {
    const created = new PolicyRuntime(name, policies, env);
    runtimes.push(created);
    return created;
  };
  let table: RouteTable<PolicyRuntime>;
  const named = new Map<string, PolicyRuntime>();
  try {
    table = new RouteTable(runtime('default', mw.defaults));
    for (const route of mw.routes) table.add(route.match, runtime(route.name, route));
    for (const [name, policy] of Object.entries(mw.policies) as [string, NamedPolicy][]) {
      named.set(name, runtime(name, policy));
    }
  } catch (err) {
    // Nothing half-built may outlive a failed start-up: timers, subscriptions, stores.
    for (const r of runtimes) void r.close();
    metrics.close();
    throw err;
  }

  const usesIpKeys = runtimes.some(
    (r) => r.policies.rateLimit.enabled && r.policies.rateLimit.key === 'ip',
  );
  if (mw.trustProxy === true && usesIpKeys) {
    warnOnce(
      options.logger,
      'RESILIENCE_PERMISSIVE_TRUST_PROXY',
      "middleware.trustProxy is true and rate limits key by ip: any client can pick its own key with X-Forwarded-For. Trust a hop count or your proxies' addresses instead.",
    );
  }

  const excluded = compileExclude(mw.exclude);
  const metricsPath = resolved.metrics.enabled ? resolved.metrics.path : null;
  const health = resolved.health;
  const expectedTrust = normaliseTrust(mw.trustProxy);
  const patchExpress4 = options.express4AsyncErrors !== false;
  let checkedApp: unknown;
  let closing = false;

  const checkApp = (req: IncomingMessage): void => {
    const app = (req as { app?: { get?: (key: string) => unknown } }).app;
    checkedApp = app;
    if (app === undefined || typeof app.get !== 'function') return;
    const appTrust = normaliseTrust(app.get('trust proxy'));
    if (appTrust !== expectedTrust) {
      warnOnce(
        options.logger,
        'RESILIENCE_TRUST_PROXY_MISMATCH',
        `middleware.trustProxy (${expectedTrust}) disagrees with the app's 'trust proxy' (${appTrust}): rate-limit keys and req.ip will name different clients.`,
      );
    }
    if (patchExpress4) patchExpress4AsyncErrors(req);
  };

  const handler = (req: IncomingMessage, res: ServerResponse, next: Next): void => {
    if ((req as { app?: unknown }).app !== checkedApp) checkApp(req);
    const path = pathOf(req.url);
    const method = req.method;
    if (method === 'GET' || method === 'HEAD') {
      if (path === metricsPath) return serveMetrics(metrics, res, next);
      if (health.enabled) {
        if (path === health.livenessPath) return sendJson(res, 200, { status: 'ok' });
        if (path === health.readinessPath) {
          return closing
            ? sendJson(res, 503, { status: 'shutting-down' })
            : sendJson(res, 200, { status: 'ready' });
        }
      }
    }
    if (excluded(path)) return next();
    table.lookup(method, path).handle(req, res, next);
  };

  const namedRuntime = (name: string): PolicyRuntime => {
    const found = named.get(name);
    if (found === undefined) {
      const known = [...named.keys()];
      throw new InvalidArgumentError(
        `unknown policy ${JSON.stringify(name)}; middleware.policies has ${known.length > 0 ? known.map((k) => JSON.stringify(k)).join(', ') : 'no entries'}`,
      );
    }
    return found;
  };

  let closed: Promise<void> | undefined;
  return Object.assign(handler, {
    config: resolved,
    metrics,
    policy(name: string): Middleware {
      const rt = namedRuntime(name);
      return (req, res, next) => rt.handle(req, res, next);
    },
    wrap<A extends unknown[], T>(name: string, fn: (...args: A) => Promise<T> | T) {
      const rt = namedRuntime(name);
      return (...args: A): Promise<T> => executeUnderPolicy(rt, () => fn(...args));
    },
    close(): Promise<void> {
      closing = true;
      closed ??= (async () => {
        await Promise.all(runtimes.map((r) => r.close()));
        metrics.close();
      })();
      return closed;
    },
  });
}

/** `.wrap()`: breaker → bulkhead → timeout around a plain function. */
async function executeUnderPolicy<T>(rt: PolicyRuntime, fn: () => Promise<T> | T): Promise<T> {
  const { breaker, bulkhead, policies } = rt;
  const permit = breaker === undefined ? null : breaker.tryAcquire();
  if (breaker !== undefined && permit === null) {
    if (policies.breaker.enforce) {
      rt.countRejection('breaker_open', true);
      throw rt.breakerOpenError();
    }
    rt.countRejection('breaker_open', false);
  }
  let lease;
  if (bulkhead !== undefined) {
    lease = bulkhead.tryAcquire();
    if (lease === null) {
      if (policies.bulkhead.enforce) {
        try {
          lease = await bulkhead.acquire(currentDeadline()?.signal);
        } catch (err) {
          permit?.release();
          const reason = (err as { reason?: string }).reason;
          rt.countRejection(
            reason === 'queue-timeout' ? 'bulkhead_queue_timeout' : 'bulkhead_full',
            true,
          );
          throw err;
        }
      } else {
        rt.countRejection('bulkhead_full', false);
      }
    }
  }
  try {
    const result = policies.timeout.enabled
      ? await withTimeout(policies.timeout.duration, (deadline) => runWithDeadline(deadline, fn), {
          status: policies.timeout.status,
          parent: currentDeadline(),
        })
      : await fn();
    permit?.success();
    return result;
  } catch (err) {
    permit?.failure();
    if ((err as { code?: string } | null)?.code === 'ERR_TIMEOUT')
      rt.countRejection('timeout', true);
    throw err;
  } finally {
    lease?.release();
  }
}

function compileExclude(paths: readonly string[]): (path: string) => boolean {
  const exact = new Set<string>();
  const prefixes: string[] = [];
  for (const p of paths) {
    if (p.endsWith('/*')) prefixes.push(p.slice(0, -1));
    else exact.add(p);
  }
  if (prefixes.length === 0) return (path) => exact.has(path);
  return (path) =>
    exact.has(path) ||
    prefixes.some((prefix) => path.startsWith(prefix) || path === prefix.slice(0, -1));
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(payload));
  res.setHeader('Cache-Control', 'no-store');
  res.end(payload);
}

function serveMetrics(metrics: ResilienceMetrics, res: ServerResponse, next: Next): void {
  metrics.registry.metrics().then((text) => {
    res.statusCode = 200;
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.end(text);
  }, next);
}
