import { pbkdf2 } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import express from 'express';
import type { Express, Request, Response } from 'express';
import { parse } from 'yaml';
import { loadConfig, redactConfig, resilience } from 'express-resilience';
import type { ResilienceConfigInput, ResilienceMiddleware } from 'express-resilience';
import { accessLog } from './access-log.js';
import { disabledCache, redisCache, type Cache } from './cache.js';
import { BadRequestError, errorHandler, sendProblem } from './errors.js';
import { callUpstream, ctx, ordersReport, ordersRouter } from './orders.js';

const derive = promisify(pbkdf2);

/** The service's config directory: default.yaml, <env>.yaml and redis-cache.yaml. */
export const CONFIG_DIR = fileURLToPath(new URL('./config/', import.meta.url));

/** Options of {@link createService}. */
export interface ServiceOptions {
  /** Which `<env>.yaml` to layer over default.yaml. Default: `NODE_ENV`, else `development`. */
  env?: string;
  /** Where `RESILIENCE_*` variables are read. Default: `process.env`. */
  environment?: NodeJS.ProcessEnv;
  /**
   * Use the Redis cache (config/redis-cache.yaml). Default false: decide with
   * `redisAnswers()` before, as main.ts does, so a missing Redis never fails start-up.
   */
  cache?: boolean;
  /**
   * Where the access log goes, one JSON line per request (access-log.ts). Default: no access
   * log, so the tests' output stays readable; main.ts writes it to stdout.
   */
  accessLog?: (line: string) => void;
  /** Share of /api/flaky calls that fail when the request does not say; default 0.3. */
  flakyFailureRate?: number;
}

/** The example service: the Express app and its resilience middleware. */
export interface Service {
  readonly app: Express;
  readonly r: ResilienceMiddleware;
  readonly cache: Cache;
}

const ROUTES = [
  'GET  /api/orders?offset&limit      list orders (upstream, cached when Redis is there)',
  'GET  /api/orders/:id               view an order',
  'POST /api/orders                   create an order (rate-limited per x-client-id):',
  '                                   {"customerId": "c1", "items": [{"sku": "honey", "quantity": 2, "price": 4.5}]}',
  'GET  /api/quotes/:symbol           external data, behind a breaker',
  'GET  /api/inventory/:sku           through a small pool of its own',
  'GET  /api/compute?cost=20000       CPU-heavy, tight bulkhead',
  'GET  /api/reports/orders           slow and CPU-heavy, one at a time',
  'GET  /api/flaky?failRate=0.3       fails a share of calls, behind a breaker',
  'GET  /api/cache/:key               read the Redis cache',
  'PUT  /api/cache/:key               write it: {"value": "...", "ttl": 60}',
  'GET  /api/pools                    pool and health status of every resource',
  'GET  /api/admin/config             effective configuration (the admin policy)',
  'GET  /metrics /healthz /readyz',
];

/**
 * Builds the example service from its config directory (and nothing else): the resilience
 * middleware in front of every route, the orders API on the `upstream` HTTP resource, the
 * optional Redis cache, and the error handler that renders the pack's errors as problem+json.
 *
 * @throws ConfigError when a config file is invalid.
 */
export function createService(options: ServiceOptions = {}): Service {
  const environment = options.environment ?? process.env;
  const overrides = options.cache
    ? (parse(readFileSync(join(CONFIG_DIR, 'redis-cache.yaml'), 'utf8')) as ResilienceConfigInput)
    : undefined;
  const config = loadConfig({
    dir: CONFIG_DIR,
    env: options.env ?? (environment.NODE_ENV || 'development'),
    environment,
    overrides,
  });
  const r = resilience(config);
  const cache = options.cache ? redisCache('cache') : disabledCache;
  const flakyDefault = options.flakyFailureRate ?? 0.3;

  const app = express();
  app.disable('x-powered-by');
  // Must agree with middleware.trustProxy, or rate-limit keys and req.ip name different clients.
  app.set('trust proxy', config.middleware.trustProxy);
  // Before the resilience middleware, so its rejections (429, 503) are logged too.
  if (options.accessLog !== undefined) app.use(accessLog(options.accessLog));
  // Then the cheapest rejections (rate limit, breaker, bulkhead) happen before body parsing.
  app.use(r);
  app.use(express.json({ limit: '64kb' }));

  app.get('/', (_req, res) => {
    res.json({
      service: 'resilient-service',
      cache: cache.enabled ? 'redis' : 'disabled',
      routes: ROUTES,
    });
  });

  app.use('/api/orders', ordersRouter(cache));

  app.get('/api/quotes/:symbol', async (req, res) => {
    const symbol = req.params.symbol;
    if (!/^[A-Za-z0-9.-]{1,12}$/.test(symbol)) throw new BadRequestError(`bad symbol ${symbol}`);
    const answer = await callUpstream(req, { path: `/quotes/${encodeURIComponent(symbol)}` });
    res.status(answer.statusCode).type('json').send(answer.text());
  });

  app.get('/api/inventory/:sku', async (req, res) => {
    const sku = req.params.sku;
    if (!/^[A-Za-z0-9-]{1,32}$/.test(sku)) throw new BadRequestError(`bad sku ${sku}`);
    const answer = await callUpstream(req, { path: `/inventory/${sku}` }, 'inventory');
    res.status(answer.statusCode).type('json').send(answer.text());
  });

  app.get('/api/compute', async (req, res) => {
    const cost = numberParam(req, 'cost', 20_000, 1, 1_000_000);
    // Async key derivation runs on the libuv pool: the event loop stays free, and the
    // bulkhead, not the pool's four threads, decides how many run at once.
    const digest = await derive(String(req.query.input ?? 'input'), 'salt', cost, 32, 'sha256');
    res.json({ cost, digest: digest.toString('hex') });
  });

  app.get('/api/reports/orders', async (req, res) => {
    res.json(await ordersReport(req));
  });

  app.get('/api/flaky', (req, res) => {
    const failRate = numberParam(req, 'failRate', flakyDefault, 0, 1);
    if (Math.random() < failRate) {
      sendProblem(res, 500, {
        title: 'Internal Server Error',
        detail: 'flaky failure (on purpose)',
      });
      return;
    }
    res.json({ ok: true });
  });

  app.get('/api/cache/:key', async (req, res) => {
    if (!cacheAvailable(cache, res)) return;
    const value = await ctx(req)
      .resources.redis('cache')
      .command<string | null>('GET', `kv:${req.params.key}`);
    if (value === null) {
      sendProblem(res, 404, { title: 'Not Found', detail: `no value for ${req.params.key}` });
      return;
    }
    res.json({ key: req.params.key, value });
  });

  app.put('/api/cache/:key', async (req, res) => {
    if (!cacheAvailable(cache, res)) return;
    const { value, ttl } = (req.body ?? {}) as { value?: unknown; ttl?: unknown };
    if (typeof value !== 'string') throw new BadRequestError('value must be a string');
    const seconds = ttl === undefined ? 60 : Number(ttl);
    if (!Number.isInteger(seconds) || seconds < 1 || seconds > 86_400) {
      throw new BadRequestError('ttl must be a number of seconds from 1 to 86400');
    }
    await ctx(req)
      .resources.redis('cache')
      .command('SET', `kv:${req.params.key}`, value, 'EX', seconds);
    res.status(204).end();
  });

  app.get('/api/pools', (_req, res) => {
    const health = new Map(r.resources.monitor.reports().map((report) => [report.name, report]));
    res.json({
      cache: { enabled: cache.enabled, errors: cache.errors },
      resources: r.resources.names().map((name) => {
        const resource = r.resources.get(name)!;
        const report = health.get(name);
        return {
          name,
          kind: resource.kind,
          critical: resource.critical,
          health: report?.status ?? 'unknown',
          reason: report?.reason,
          pool: resource.stats(),
        };
      }),
    });
  });

  // A router that inherits a named policy (middleware.policies.admin) on top of the app-wide one.
  const admin = express.Router();
  admin.use(r.policy('admin'));
  admin.get('/config', (_req, res) => {
    res.json(redactConfig(r.config));
  });
  app.use('/api/admin', admin);

  app.use((req: Request, res: Response) => {
    sendProblem(res, 404, { title: 'Not Found', detail: `no route for ${req.method} ${req.path}` });
  });
  app.use(errorHandler);
  return { app, r, cache };
}

function numberParam(
  req: Request,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = req.query[name];
  if (raw === undefined) return fallback;
  const n = Number(raw);
  if (typeof raw !== 'string' || raw === '' || !(n >= min && n <= max)) {
    throw new BadRequestError(`${name} must be a number from ${min} to ${max}`);
  }
  return n;
}

function cacheAvailable(cache: Cache, res: Response): boolean {
  if (cache.enabled) return true;
  sendProblem(res, 503, {
    type: 'urn:resilient-service:problem:cache-disabled',
    title: 'Service Unavailable',
    detail: 'the cache is disabled: no Redis answered when the service started',
    code: 'ERR_CACHE_DISABLED',
  });
  return false;
}
