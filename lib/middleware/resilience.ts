import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import { loadConfig, resolveConfig } from '../config/index.js';
import type { NamedPolicy, ResilienceConfig, ResilienceConfigInput } from '../config/types.js';
import { InvalidArgumentError, ShuttingDownError } from '../errors.js';
import { ResilienceMetrics } from '../metrics/metrics.js';
import { propagateDeadlines } from '../policies/deadline-context.js';
import type { RateLimitStore } from '../policies/rate-limit/store.js';
import { ResourceManager, type CustomResourceDefinition } from '../resources/manager.js';
import { compileTrust, normaliseTrust } from './client-ip.js';
import { Endpoints } from './endpoints.js';
import { forwardAsyncErrors, patchExpress4AsyncErrors } from './express4-async.js';
import { Lifecycle } from './lifecycle.js';
import {
  PolicyRuntime,
  type KeyGenerator,
  type RejectHandler,
  type RuntimeEnvironment,
} from './policy-runtime.js';
import { sendProblem } from './problem.js';
import {
  CONNECT_DISPATCH,
  ExcludeList,
  RouteTable,
  comparableReadings,
  dispatchModeOf,
  pathOf,
  type DispatchMode,
} from './route-table.js';
import { SharedStores } from './shared-stores.js';
import { warnOnce, type Logger } from './warnings.js';
import { executeUnderPolicy } from './wrapped-call.js';

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
  /** Custom pooled resources (database or queue clients), by name: `r.resources.custom(name)`. */
  resources?: Readonly<Record<string, CustomResourceDefinition<unknown>>>;
  /**
   * Builds rate-limit stores for `rateLimit.store` values other than `memory`, one per route
   * (`route` is its name). Default: `redis:<name>` stores on the configured Redis resources,
   * wrapped in the `onStoreError` failure policy.
   */
  createStore?: (
    spec: string,
    policy: ResilienceConfig['middleware']['defaults']['rateLimit'],
    route: string,
  ) => RateLimitStore;
}

/** Options of {@link ResilienceMiddleware.close}. */
export interface CloseOptions {
  /**
   * Milliseconds to keep serving, with /readyz already failing, before the attached servers
   * stop accepting (time for load balancers to stop sending); default `shutdown.delay`.
   */
  delay?: number;
  /**
   * Milliseconds in-flight requests and open connections may take to finish once the servers
   * stopped accepting; default `shutdown.grace`.
   */
  grace?: number;
}

/** The middleware `resilience()` returns, with its handles. */
export interface ResilienceMiddleware extends Middleware {
  /** The resolved, frozen configuration in use. */
  readonly config: ResilienceConfig;
  /** The pack's metrics and their registry. */
  readonly metrics: ResilienceMetrics;
  /** The pooled HTTP, Redis and custom resources: `r.resources.http('payments')`. */
  readonly resources: ResourceManager;
  /**
   * Resolves once every resource has started and has been health-checked once (the first
   * `/readyz` answer is then meaningful). Never rejects for an unreachable upstream.
   */
  ready(): Promise<void>;
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
  /**
   * Lets `close()` shut this server down too: after the delay it stops accepting, answers
   * every request on its open connections with `Connection: close`, and waits (within the
   * grace) for those connections to end. With `shutdown.handleSignals`, also closes on SIGTERM
   * and SIGINT. Returns a handle that detaches.
   */
  attach(server: Server): { dispose(): void };
  /**
   * Graceful shutdown: /readyz answers 503 at once; requests are served as usual for `delay`;
   * then attached servers stop accepting and new requests get 503 with `Connection: close`;
   * in-flight requests get up to `grace` to finish, and those still running are answered 503;
   * then resources drain and every timer and subscription stops. Idempotent: later calls
   * return the first call's promise. Throws InvalidArgumentError for a bad delay or grace.
   */
  close(options?: CloseOptions): Promise<void>;
}

/**
 * Creates the resilience middleware: `app.use(resilience(config))`.
 *
 * With no `config`, loads config/ through `loadConfig()`; with an object, validates it the
 * same way (schema defaults underneath). Throws ConfigError listing every problem,
 * ResourceUnavailableError naming a resource that could not be built, or InvalidArgumentError
 * for options that do not fit the config (an unknown key generator).
 */
export function resilience(
  config?: ResilienceConfigInput | ResilienceConfig,
  options: ResilienceOptions = {},
): ResilienceMiddleware {
  const resolved =
    config === undefined
      ? loadConfig({ logger: options.logger })
      : resolveConfig(config, { logger: options.logger });
  const mw = resolved.middleware;
  const metrics = new ResilienceMetrics({
    registry: options.registry,
    prefix: resolved.metrics.prefix,
    buckets: resolved.metrics.buckets,
    defaultMetrics: resolved.metrics.enabled && resolved.metrics.defaultMetrics,
  });
  const lifecycle = new Lifecycle();
  const trust = compileTrust(mw.trustProxy);
  const stores = new SharedStores(resolved.resources.redis, metrics);
  const env: RuntimeEnvironment = {
    metrics,
    logger: options.logger,
    trust,
    keyGenerators: options.keyGenerators ?? {},
    onReject: options.onReject,
    deadlineHeader: mw.deadlineHeader.enabled ? mw.deadlineHeader.name.toLowerCase() : null,
    createStore: options.createStore ?? stores.create,
    lifecycle,
  };

  const runtimes: PolicyRuntime[] = [];
  let resources: ResourceManager | undefined;
  let table: RouteTable<PolicyRuntime>;
  const named = new Map<string, PolicyRuntime>();
  try {
    resources = new ResourceManager(resolved.resources, {
      metrics,
      custom: options.resources,
      logger: options.logger,
    });
    const runtime = (name: string, policies: ResilienceConfig['middleware']['defaults']) => {
      const created = new PolicyRuntime(name, policies, env);
      runtimes.push(created);
      return created;
    };
    // A breaker protects one dependency: requests to routes no config entry names may reach
    // anything, and one breaker over all of them lets a single failing (or merely slow) route
    // turn every unlisted route away. So they get the defaults without a breaker; list a route
    // to give it one.
    const unlisted = { ...mw.defaults, breaker: { ...mw.defaults.breaker, enabled: false } };
    table = new RouteTable(runtime('default', unlisted));
    for (const route of mw.routes) table.add(route.match, runtime(route.name, route));
    for (const [name, policy] of Object.entries(mw.policies) as [string, NamedPolicy][]) {
      named.set(name, runtime(name, policy));
    }
  } catch (err) {
    // Nothing half-built may outlive a failed start-up: timers, subscriptions, pools, stores.
    for (const r of runtimes) void r.close();
    void stores.close();
    void resources?.close(0);
    metrics.close();
    throw err;
  }
  const manager = resources;
  env.resources = manager;
  const started = Promise.all([manager.start(), stores.ready()]).then(() => undefined);
  // Start-up never fails for an unreachable upstream (health says so); this only guards
  // against an unhandled rejection when nobody awaits ready().
  started.catch(() => undefined);

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

  const endpoints = new Endpoints(resolved, metrics, manager, runtimes, lifecycle, trust);
  const excluded = new ExcludeList(mw.exclude);
  const expectedTrust = normaliseTrust(mw.trustProxy);
  const patchExpress4 = options.express4AsyncErrors !== false;
  let checkedApp: unknown;
  // Whether the last app seen is an Express 4 app whose Layer forwards marked requests.
  let markRequests = false;
  // How the last app seen dispatches paths (its routing settings are read once per app).
  let mode: DispatchMode = CONNECT_DISPATCH;

  const checkApp = (req: IncomingMessage): void => {
    const app = (req as { app?: { get?: (key: string) => unknown } }).app;
    checkedApp = app;
    markRequests = false;
    mode = dispatchModeOf(app);
    if (app === undefined || typeof app.get !== 'function') return;
    const appTrust = normaliseTrust(app.get('trust proxy'));
    if (appTrust !== expectedTrust) {
      warnOnce(
        options.logger,
        'RESILIENCE_TRUST_PROXY_MISMATCH',
        `middleware.trustProxy (${expectedTrust}) disagrees with the app's 'trust proxy' (${appTrust}): rate-limit keys and req.ip will name different clients.`,
      );
    }
    if (patchExpress4) markRequests = patchExpress4AsyncErrors(req);
  };

  const rejectShuttingDown = (res: ServerResponse): void => {
    res.setHeader('Connection', 'close');
    res.setHeader('Retry-After', 1);
    sendProblem(
      res,
      new ShuttingDownError('The server is shutting down', { retryAfterMs: 1000 }),
      'shutdown',
    );
  };

  const handler = (req: IncomingMessage, res: ServerResponse, next: Next): void => {
    if ((req as { app?: unknown }).app !== checkedApp) checkApp(req);
    if (markRequests) forwardAsyncErrors(req);
    // The path as the app will route it (first), and its other readings.
    const readings = comparableReadings(pathOf(req), mode);
    if (endpoints.serve(readings[0]!, mode, req, res, next)) return;
    if (excluded.excludes(readings, mode)) return next();
    if (lifecycle.refusing) return rejectShuttingDown(res);
    table.lookup(req.method, readings, mode).handle(req, res, next);
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
  const close = (closeOptions: CloseOptions = {}): Promise<void> => {
    checkCloseOptions(closeOptions);
    lifecycle.shuttingDown = true;
    closed ??= (async () => {
      const delay = closeOptions.delay ?? resolved.shutdown.delay;
      const grace = closeOptions.grace ?? resolved.shutdown.grace;
      const deadline = Date.now() + delay + grace;
      await lifecycle.shutdown(delay, grace);
      await manager.close(Math.max(0, deadline - Date.now()));
      await Promise.all(runtimes.map((r) => r.close()));
      await stores.close();
      metrics.close();
      // Past the grace: idle keep-alive connections, responses still streaming and requests
      // outside the pipeline. Ours answered at the end of the grace have been flushed by now.
      lifecycle.closeConnections();
    })();
    return closed;
  };

  return Object.assign(handler, {
    config: resolved,
    metrics,
    resources: manager,
    ready: () => started,
    policy(name: string): Middleware {
      const rt = namedRuntime(name);
      // A nested layer reads the outer layer's deadline.
      propagateDeadlines();
      return (req: IncomingMessage, res: ServerResponse, next: Next) => {
        if (lifecycle.refusing) return rejectShuttingDown(res);
        rt.handle(req, res, next);
      };
    },
    wrap<A extends unknown[], T>(name: string, fn: (...args: A) => Promise<T> | T) {
      const rt = namedRuntime(name);
      // A wrapped call inside a request is bounded by the request's deadline.
      propagateDeadlines();
      return (...args: A): Promise<T> => executeUnderPolicy(rt, () => fn(...args));
    },
    attach(server: Server) {
      const detach = lifecycle.attach(server);
      const onSignal = (): void => {
        void close();
      };
      if (resolved.shutdown.handleSignals) {
        process.once('SIGTERM', onSignal);
        process.once('SIGINT', onSignal);
      }
      return {
        dispose: () => {
          detach();
          process.off('SIGTERM', onSignal);
          process.off('SIGINT', onSignal);
        },
      };
    },
    close,
  });
}

/**
 * Wires SIGTERM and SIGINT to a graceful shutdown of `server` and `r` (see
 * {@link ResilienceMiddleware.close}): readiness fails, requests are still served for the
 * delay, then the server stops accepting, in-flight requests finish within the grace period,
 * resources drain, and the process is left with nothing keeping it alive. `delay` and `grace`
 * default to `shutdown.delay` and `shutdown.grace`. Returns a handle that removes the handlers.
 * Throws InvalidArgumentError for a bad delay or grace.
 */
export function closeOnSignals(
  server: Server,
  r: ResilienceMiddleware,
  options: {
    signals?: readonly NodeJS.Signals[];
    delay?: number;
    grace?: number;
    onClosed?: () => void;
  } = {},
): { dispose(): void } {
  checkCloseOptions(options);
  const signals = options.signals ?? ['SIGTERM', 'SIGINT'];
  const attachment = r.attach(server);
  const onSignal = (): void => {
    dispose();
    const closeOptions = {
      delay: options.delay ?? r.config.shutdown.delay,
      grace: options.grace ?? r.config.shutdown.grace,
    };
    r.close(closeOptions).then(options.onClosed, (err) => {
      process.emitWarning(`express-resilience: shutdown failed: ${String(err)}`);
    });
  };
  const dispose = (): void => {
    for (const s of signals) process.off(s, onSignal);
  };
  for (const s of signals) process.once(s, onSignal);
  return {
    dispose: () => {
      dispose();
      attachment.dispose();
    },
  };
}

function checkCloseOptions(options: CloseOptions): void {
  for (const name of ['delay', 'grace'] as const) {
    const value = options[name];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !(value >= 0 && value <= MAX_TIMER_DELAY)) {
      throw new InvalidArgumentError(
        `${name} must be a number of milliseconds in [0, ${MAX_TIMER_DELAY}], got ${String(value)}`,
      );
    }
  }
}

/** The longest delay setTimeout honours (larger ones fire at once). */
const MAX_TIMER_DELAY = 2_147_483_647;
