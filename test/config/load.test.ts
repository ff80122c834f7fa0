import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { ConfigError, isConfigError } from '../../lib/errors.js';
import {
  configLocation,
  isResolvedConfig,
  loadConfig,
  loadConfigWithSources,
  resolveConfig,
} from '../../lib/config/load.js';
import type { ResilienceConfigInput } from '../../lib/config/types.js';
import { resilience } from '../../lib/middleware/resilience.js';
import { resetWarnings } from '../../lib/middleware/warnings.js';
import type { Logger } from '../../lib/middleware/warnings.js';
import { TempDirs } from './helpers.js';

const dirs = new TempDirs();
const noEnv = {};

function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    assert.ok(isConfigError(err), `expected a ConfigError, got ${String(err)}`);
    assert.ok(err instanceof ConfigError);
    return [...err.problems];
  }
  assert.fail('expected a ConfigError');
}

/** Resolves `input` and returns the problem lines (there must be some). */
function problemsFor(input: unknown): string[] {
  return problemsOf(() => resolveConfig(input as ResilienceConfigInput, { environment: noEnv }));
}

function assertProblem(problems: string[], expected: string | RegExp): void {
  const found = problems.some((p) =>
    typeof expected === 'string' ? p === expected : expected.test(p),
  );
  assert.ok(found, `no problem matching ${String(expected)} in:\n  ${problems.join('\n  ')}`);
}

describe('loadConfig', () => {
  afterEach(() => dirs.cleanup());

  describe('layering', () => {
    const files = {
      'default.yaml':
        'middleware: { defaults: { timeout: { duration: 4s } } }\nmetrics: { prefix: app_ }\n',
      'production.yaml': 'middleware: { defaults: { timeout: { duration: 3s } } }\n',
    };
    const timeoutOf = (options: Parameters<typeof loadConfig>[0]): number =>
      loadConfig(options).middleware.defaults.timeout.duration;

    it('applies schema defaults < default file < env file < env vars < overrides', () => {
      const dir = dirs.make(files);
      const environment = { RESILIENCE_DEFAULT_TIMEOUT: '2s' };
      const overrides = { middleware: { defaults: { timeout: { duration: '1s' } } } };
      assert.equal(timeoutOf({ dir: dirs.make(), environment: noEnv }), 5000);
      assert.equal(timeoutOf({ dir, env: 'staging', environment: noEnv }), 4000);
      assert.equal(timeoutOf({ dir, env: 'production', environment: noEnv }), 3000);
      assert.equal(timeoutOf({ dir, env: 'production', environment }), 2000);
      assert.equal(timeoutOf({ dir, env: 'production', environment, overrides }), 1000);
      // Values not overridden survive every later layer.
      assert.equal(
        loadConfig({ dir, env: 'production', environment, overrides }).metrics.prefix,
        'app_',
      );
    });

    it('merges objects key by key and replaces lists', () => {
      const dir = dirs.make({
        'default.yaml': [
          'middleware:',
          '  exclude: [/healthz, /internal]',
          '  defaults: { breaker: { minimumCalls: 10, failureStatuses: ["5xx", "429"] } }',
          '  routes: [{ name: a, match: GET /a }, { name: b, match: GET /b }]',
        ].join('\n'),
        'production.yaml': [
          'middleware:',
          '  exclude: [/ping]',
          '  defaults: { breaker: { failureStatuses: ["503"] } }',
          '  routes: [{ name: c, match: GET /c }]',
        ].join('\n'),
      });
      const { middleware } = loadConfig({ dir, env: 'production', environment: noEnv });
      assert.deepEqual(middleware.exclude, ['/ping']);
      assert.equal(middleware.defaults.breaker.minimumCalls, 10);
      assert.deepEqual(middleware.defaults.breaker.failureStatuses, ['503']);
      assert.deepEqual(
        middleware.routes.map((r) => r.name),
        ['c'],
      );
    });

    it('takes the environment from NODE_ENV, else development; the env option wins', () => {
      const dir = dirs.make({
        'development.yaml': 'metrics: { prefix: dev_ }',
        'test.yaml': 'metrics: { prefix: test_ }',
        'qa.yaml': 'metrics: { prefix: qa_ }',
      });
      assert.equal(loadConfig({ dir, environment: noEnv }).metrics.prefix, 'dev_');
      assert.equal(loadConfig({ dir, environment: { NODE_ENV: '' } }).metrics.prefix, 'dev_');
      assert.equal(loadConfig({ dir, environment: { NODE_ENV: 'test' } }).metrics.prefix, 'test_');
      assert.equal(
        loadConfig({ dir, env: 'qa', environment: { NODE_ENV: 'test' } }).metrics.prefix,
        'qa_',
      );
    });

    it('takes the directory from the dir option, else RESILIENCE_CONFIG_DIR, else ./config', () => {
      const a = dirs.make({ 'default.yaml': 'metrics: { prefix: a_ }' });
      const b = dirs.make({ 'default.yaml': 'metrics: { prefix: b_ }' });
      const environment = { RESILIENCE_CONFIG_DIR: b };
      assert.equal(loadConfig({ dir: a, environment }).metrics.prefix, 'a_');
      assert.equal(loadConfig({ environment }).metrics.prefix, 'b_');
      assert.deepEqual(configLocation({ environment: noEnv }), {
        env: 'development',
        dir: resolve('config'),
      });
    });

    it('reads .yml and .json files and reports which files it used', () => {
      const dir = dirs.make({
        'default.yml': 'metrics:\n  prefix: yml_\n',
        'production.json': JSON.stringify({ health: { details: false } }),
      });
      const loaded = loadConfigWithSources({ dir, env: 'production', environment: noEnv });
      assert.equal(loaded.config.metrics.prefix, 'yml_');
      assert.equal(loaded.config.health.details, false);
      assert.deepEqual(loaded.files, [join(dir, 'default.yml'), join(dir, 'production.json')]);
      assert.equal(loaded.env, 'production');
      assert.equal(loaded.dir, dir);
    });

    it('is fine with a missing directory, missing files and empty files', () => {
      const missing = join(dirs.make(), 'nope');
      assert.deepEqual(loadConfigWithSources({ dir: missing, environment: noEnv }).files, []);
      const dir = dirs.make({ 'default.yaml': '', 'development.yaml': '# nothing yet\n' });
      assert.deepEqual(
        loadConfig({ dir, environment: noEnv }),
        resolveConfig({}, { environment: noEnv }),
      );
    });

    it('reads an emptied list or map (every entry commented out) as empty', () => {
      const dir = dirs.make({
        'default.yaml': 'middleware:\n  routes:\n  policies:\nresources:\n  http:\n  redis:\n',
      });
      const config = loadConfig({ dir, environment: noEnv });
      assert.deepEqual(config.middleware.routes, []);
      assert.deepEqual(config.middleware.policies, {});
      assert.deepEqual(config.resources, { http: {}, redis: {} });
    });

    it('does not read an empty scalar as its default', () => {
      const dir = dirs.make({ 'default.yaml': 'metrics:\n  prefix:\n' });
      assert.deepEqual(
        problemsOf(() => loadConfig({ dir, environment: noEnv })),
        [`metrics.prefix: must be a string, got null (from ${join(dir, 'default.yaml')})`],
      );
    });

    it('rejects two files for the same layer', () => {
      const dir = dirs.make({ 'default.yaml': '', 'default.json': '{}' });
      assert.deepEqual(
        problemsOf(() => loadConfig({ dir, environment: noEnv })),
        [`${dir}: only one of default.yaml, default.json may exist`],
      );
    });

    it('names the file that fails to parse', () => {
      const dir = dirs.make({
        'default.yaml': 'metrics: { prefix: a_ }',
        'production.yaml': 'metrics:\n  prefix: a\n prefix: b\n',
        'staging.json': '{ "metrics": ',
        'list.yaml': '- a\n- b\n',
      });
      const [yaml] = problemsOf(() => loadConfig({ dir, env: 'production', environment: noEnv }));
      assert.match(yaml!, new RegExp(`^${join(dir, 'production.yaml')}: invalid YAML: `));
      const [json] = problemsOf(() => loadConfig({ dir, env: 'staging', environment: noEnv }));
      assert.match(json!, new RegExp(`^${join(dir, 'staging.json')}: invalid JSON: `));
      const [list] = problemsOf(() => loadConfig({ dir, env: 'list', environment: noEnv }));
      assert.equal(
        list,
        `${join(dir, 'list.yaml')}: must hold a mapping of sections (middleware, resources, metrics, health, shutdown), got a list`,
      );
    });

    it('rejects duplicate keys in YAML', () => {
      const dir = dirs.make({ 'default.yaml': 'metrics: { prefix: a_ }\nmetrics: { path: /m }\n' });
      assert.match(problemsOf(() => loadConfig({ dir, environment: noEnv }))[0]!, /invalid YAML/);
    });

    it('rejects environment names that are not plain names', () => {
      assert.match(
        problemsOf(() => loadConfig({ env: '../secrets', environment: noEnv }))[0]!,
        /environment name/,
      );
    });
  });

  describe('environment variables', () => {
    it('sets the schema leaves that declare one, parsed by their format', () => {
      const config = resolveConfig(
        {},
        {
          environment: {
            RESILIENCE_TRUST_PROXY: '1',
            RESILIENCE_EXCLUDE: '/a, /b',
            RESILIENCE_METRICS_ENABLED: 'false',
            RESILIENCE_METRICS_PREFIX: 'svc_',
            RESILIENCE_HEALTH_DETAILS: '0',
            RESILIENCE_SHUTDOWN_GRACE: '2500',
            RESILIENCE_RATE_LIMIT_ENABLED: 'true',
            RESILIENCE_BULKHEAD_MAX_CONCURRENT: '12',
          },
        },
      );
      assert.equal(config.middleware.trustProxy, 1);
      assert.deepEqual(config.middleware.exclude, ['/a', '/b']);
      assert.equal(config.metrics.enabled, false);
      assert.equal(config.metrics.prefix, 'svc_');
      assert.equal(config.health.details, false);
      assert.equal(config.shutdown.grace, 2500);
      assert.equal(config.middleware.defaults.rateLimit.enabled, true);
      assert.equal(config.middleware.defaults.bulkhead.maxConcurrent, 12);
    });

    it('names the variable that holds a bad value', () => {
      const problems = problemsOf(() =>
        resolveConfig(
          {},
          {
            environment: { RESILIENCE_METRICS_ENABLED: 'yes', RESILIENCE_DEFAULT_TIMEOUT: '5 sec' },
          },
        ),
      );
      assert.deepEqual(problems, [
        'middleware.defaults.timeout.duration: must be a duration like "250ms", "5s", "1m", "1h" or a number of milliseconds, got "5 sec" (from environment variable RESILIENCE_DEFAULT_TIMEOUT)',
        'metrics.enabled: must be true or false, got "yes" (from environment variable RESILIENCE_METRICS_ENABLED)',
      ]);
    });

    it('sets resource origins, URLs and passwords by entry name, below overrides', () => {
      const dir = dirs.make({
        'default.yaml': [
          'resources:',
          '  http: { payments: { origin: "http://127.0.0.1:1" } }',
          '  redis: { rate-limits: { host: localhost } }',
        ].join('\n'),
      });
      const environment = {
        RESILIENCE_HTTP_PAYMENTS_ORIGIN: 'https://payments.internal',
        RESILIENCE_REDIS_RATE_LIMITS_URL: 'redis://:pw@redis.internal:6380',
        RESILIENCE_REDIS_RATE_LIMITS_PASSWORD: 's3cret',
        RESILIENCE_REDIS_UNDECLARED_URL: 'redis://x',
        RESILIENCE_HTTP_SEARCH_ORIGIN: 'http://search.internal',
      };
      const config = loadConfig({ dir, environment });
      assert.equal(config.resources.http.payments?.origin, 'https://payments.internal');
      assert.equal(config.resources.redis['rate-limits']?.url, 'redis://:pw@redis.internal:6380');
      assert.equal(config.resources.redis['rate-limits']?.password, 's3cret');
      assert.deepEqual(Object.keys(config.resources.redis), ['rate-limits']);

      // An entry declared only in overrides still gets its variables; overrides still win.
      const withOverrides = loadConfig({
        dir,
        environment,
        overrides: {
          resources: {
            http: { payments: { origin: 'http://override:1' }, search: { critical: false } },
          },
        },
      });
      assert.equal(withOverrides.resources.http.payments?.origin, 'http://override:1');
      assert.equal(withOverrides.resources.http.search?.origin, 'http://search.internal');
    });

    it('sets endpoint protection and the breaker readiness rule, over files, below overrides', () => {
      const dir = dirs.make({
        'default.yaml': [
          'health:',
          '  protect: { allowlist: [10.0.0.0/8], token: file-token-0123456789 }',
          'metrics:',
          '  protect: { allowlist: ["::1"] }',
        ].join('\n'),
      });
      const fromFiles = loadConfig({ dir, environment: noEnv });
      assert.deepEqual(fromFiles.health.protect, {
        allowlist: ['10.0.0.0/8'],
        token: 'file-token-0123456789',
      });
      assert.deepEqual(fromFiles.metrics.protect, { allowlist: ['::1'], token: undefined });

      const environment = {
        RESILIENCE_HEALTH_TOKEN: 'health-token-from-env',
        RESILIENCE_HEALTH_ALLOWLIST: '127.0.0.1, fd00::/8',
        RESILIENCE_HEALTH_BREAKERS_AFFECT_READINESS: 'true',
        RESILIENCE_METRICS_TOKEN: 'metrics-token-from-env',
        RESILIENCE_METRICS_ALLOWLIST: '["192.168.0.0/16"]',
      };
      const fromEnv = loadConfig({ dir, environment });
      assert.deepEqual(fromEnv.health.protect, {
        allowlist: ['127.0.0.1', 'fd00::/8'],
        token: 'health-token-from-env',
      });
      assert.equal(fromEnv.health.breakersAffectReadiness, true);
      assert.deepEqual(fromEnv.metrics.protect, {
        allowlist: ['192.168.0.0/16'],
        token: 'metrics-token-from-env',
      });

      const overridden = loadConfig({
        dir,
        environment,
        overrides: {
          health: { breakersAffectReadiness: false, protect: { allowlist: [] } },
          metrics: { protect: { token: 'metrics-token-override' } },
        },
      });
      assert.deepEqual(overridden.health.protect, {
        allowlist: [],
        token: 'health-token-from-env',
      });
      assert.equal(overridden.health.breakersAffectReadiness, false);
      assert.equal(overridden.metrics.protect.token, 'metrics-token-override');
    });

    it('names the variable of a bad token or allowlist without echoing the token', () => {
      const problems = problemsOf(() =>
        resolveConfig(
          {},
          {
            environment: {
              RESILIENCE_HEALTH_TOKEN: 'too-short',
              RESILIENCE_METRICS_TOKEN: 'has a space in it!',
              RESILIENCE_METRICS_ALLOWLIST: '10.0.0.1,office',
            },
          },
        ),
      );
      assert.deepEqual(problems, [
        'metrics.protect.allowlist[1]: must be an IP address or CIDR range like "10.0.0.0/8" or "2001:db8::/32", got "office" (from environment variable RESILIENCE_METRICS_ALLOWLIST)',
        'metrics.protect.token: must be a bearer token: letters, digits and - . _ ~ + / (then optional =), no spaces (from environment variable RESILIENCE_METRICS_TOKEN)',
        'health.protect.token: must be at least 16 characters long (got 9) (from environment variable RESILIENCE_HEALTH_TOKEN)',
      ]);
    });

    it('does not read process.env when an environment is given', () => {
      const saved = process.env.RESILIENCE_METRICS_PREFIX;
      process.env.RESILIENCE_METRICS_PREFIX = 'from_process_';
      try {
        assert.equal(resolveConfig({}, { environment: noEnv }).metrics.prefix, 'resilience_');
        assert.equal(resolveConfig({}).metrics.prefix, 'from_process_');
      } finally {
        if (saved === undefined) delete process.env.RESILIENCE_METRICS_PREFIX;
        else process.env.RESILIENCE_METRICS_PREFIX = saved;
      }
    });
  });

  describe('strict validation', () => {
    it('names an unknown key, suggests the closest one and names the file', () => {
      const dir = dirs.make({
        'default.yaml': 'middleware:\n  defaults:\n    bulkhead: { maxConcurent: 10 }\n',
        'production.yaml': 'metrics: { enabeld: true }\nhealth: { detail: false }\nmisc: 1\n',
      });
      const problems = problemsOf(() => loadConfig({ dir, env: 'production', environment: noEnv }));
      assert.deepEqual(problems, [
        `misc: unknown key; expected one of: middleware, resources, metrics, health, shutdown (from ${join(dir, 'production.yaml')})`,
        `middleware.defaults.bulkhead.maxConcurent: unknown key (did you mean maxConcurrent?) (from ${join(dir, 'default.yaml')})`,
        `metrics.enabeld: unknown key (did you mean enabled?) (from ${join(dir, 'production.yaml')})`,
        `health.detail: unknown key (did you mean details?) (from ${join(dir, 'production.yaml')})`,
      ]);
    });

    it('suggests the nested path for a section written one level too high', () => {
      assertProblem(
        problemsFor({ middleware: { timeout: { duration: '1s' } } }),
        'middleware.timeout: unknown key (did you mean middleware.defaults.timeout?) (from config object)',
      );
    });

    it('names a wrong type, the value and the file', () => {
      const dir = dirs.make({
        'test.yaml': 'middleware:\n  defaults:\n    timeout: { duration: soon, status: "504" }\n',
      });
      assert.deepEqual(
        problemsOf(() => loadConfig({ dir, env: 'test', environment: noEnv })),
        [
          `middleware.defaults.timeout.duration: must be a duration like "250ms", "5s", "1m", "1h" or a number of milliseconds, got "soon" (from ${join(dir, 'test.yaml')})`,
          `middleware.defaults.timeout.status: must be a 4xx or 5xx status code, got "504" (from ${join(dir, 'test.yaml')})`,
        ],
      );
    });

    it('reports a section given as a scalar', () => {
      assertProblem(
        problemsFor({ metrics: true }),
        'metrics: must be an object, got true (from config object)',
      );
      assertProblem(problemsFor('nope'), 'config object must be an object, got string');
    });

    it('lists every problem from every layer in ONE error', () => {
      const dir = dirs.make({
        'default.yaml': 'middleware: { defaults: { rateLimit: { burst: -1 } } }\n',
        'production.yaml': 'metrics: { path: metrics }\n',
      });
      const problems = problemsOf(() =>
        loadConfig({
          dir,
          env: 'production',
          environment: { RESILIENCE_SHUTDOWN_GRACE: '-1' },
          overrides: { health: { livenessPath: 'healthz' } },
        }),
      );
      assert.deepEqual(problems, [
        `middleware.defaults.rateLimit.burst: must be an integer >= 0, got -1 (from ${join(dir, 'default.yaml')})`,
        `metrics.path: must be a path starting with "/" (no spaces, query or fragment), got "metrics" (from ${join(dir, 'production.yaml')})`,
        'health.livenessPath: must be a path starting with "/" (no spaces, query or fragment), got "healthz" (from overrides)',
        'shutdown.grace: must not be negative, got "-1" (from environment variable RESILIENCE_SHUTDOWN_GRACE)',
      ]);
    });

    it('names the latest file involved in a cross-field problem', () => {
      const dir = dirs.make({
        'default.yaml': 'resources: { http: { api: { origin: "http://x", pool: { min: 5 } } } }\n',
        'production.yaml': 'resources: { http: { api: { pool: { max: 2 } } } }\n',
      });
      assert.deepEqual(
        problemsOf(() => loadConfig({ dir, env: 'production', environment: noEnv })),
        [
          `resources.http.api.pool.min: must be at most pool.max (2), got 5 (from ${join(dir, 'production.yaml')})`,
        ],
      );
      assert.equal(
        loadConfig({ dir, env: 'development', environment: noEnv }).resources.http.api?.pool.min,
        5,
      );
    });

    it('never echoes sensitive values', () => {
      const problems = problemsFor({
        resources: {
          redis: { cache: { url: 'http://u:hunter2@x', password: 12345, sentinelPassword: '' } },
        },
      });
      assert.deepEqual(problems, [
        'resources.redis.cache.url: must be a redis:// or rediss:// URL with a host (from config object)',
        'resources.redis.cache.password: must be a non-empty string (from config object)',
        'resources.redis.cache.sentinelPassword: must be a non-empty string (from config object)',
      ]);
      const tokenProblems = problemsFor({
        health: { protect: { token: 'hunter2' } },
        metrics: { protect: { token: ['hunter2-hunter2-hunter2'] } },
      });
      assert.deepEqual(tokenProblems, [
        'metrics.protect.token: must be a bearer token: letters, digits and - . _ ~ + / (then optional =), no spaces (from config object)',
        'health.protect.token: must be at least 16 characters long (got 7) (from config object)',
      ]);
    });
  });

  describe('impossible values', () => {
    const cases: [string, unknown, string][] = [
      [
        'minimumCalls above a count window',
        { middleware: { defaults: { breaker: { window: { size: 10 }, minimumCalls: 11 } } } },
        'middleware.defaults.breaker.minimumCalls: must be at most window.size (10) for a count window, got 11',
      ],
      [
        'failure rate above 100',
        { middleware: { defaults: { breaker: { failureRate: 101 } } } },
        'middleware.defaults.breaker.failureRate: must be a number between 1 and 100, got 101',
      ],
      [
        'slow-call rate below 1',
        { middleware: { defaults: { breaker: { slowCall: { rate: 0 } } } } },
        'middleware.defaults.breaker.slowCall.rate: must be a number between 1 and 100, got 0',
      ],
      [
        'no half-open probes',
        { middleware: { defaults: { breaker: { halfOpenProbes: 0 } } } },
        'middleware.defaults.breaker.halfOpenProbes: must be an integer >= 1, got 0',
      ],
      [
        'a backoff ceiling below the open period',
        {
          middleware: {
            defaults: {
              breaker: { halfOpenAfter: '10s', openBackoff: { multiplier: 2, max: '5s' } },
            },
          },
        },
        'middleware.defaults.breaker.openBackoff.max: must be at least halfOpenAfter (10000ms), got 5000ms',
      ],
      [
        'a fractional burst',
        { middleware: { defaults: { rateLimit: { burst: 1.5 } } } },
        'middleware.defaults.rateLimit.burst: must be an integer >= 0, got 1.5',
      ],
      [
        'a burst with the fixed-window algorithm',
        { middleware: { defaults: { rateLimit: { algorithm: 'fixed-window', burst: 5 } } } },
        'middleware.defaults.rateLimit.burst: must be 0 with the fixed-window algorithm (burst is a GCRA setting), got 5',
      ],
      [
        'a zero limit',
        { middleware: { defaults: { rateLimit: { limit: 0 } } } },
        'middleware.defaults.rateLimit.limit: must be an integer >= 1, got 0',
      ],
      [
        'a bad rate-limit key',
        { middleware: { defaults: { rateLimit: { key: 'user' } } } },
        'middleware.defaults.rateLimit.key: must be "ip", "header:<header name>" or "fn:<name>", got "user"',
      ],
      [
        'a store naming a missing Redis resource',
        { middleware: { defaults: { rateLimit: { store: 'redis:cache' } } } },
        'middleware.defaults.rateLimit.store: names Redis resource "cache", which is not configured under resources.redis (none is)',
      ],
      [
        'an IPv6 prefix past 128',
        { middleware: { defaults: { rateLimit: { ipv6Prefix: 129 } } } },
        'middleware.defaults.rateLimit.ipv6Prefix: must be an integer between 1 and 128, got 129',
      ],
      [
        'maxQueue without maxConcurrent',
        { middleware: { defaults: { bulkhead: { maxConcurrent: 0, maxQueue: 10 } } } },
        'middleware.defaults.bulkhead.maxConcurrent: must be at least 1 when the bulkhead is enabled (a queue of 10 needs a concurrency limit), got 0',
      ],
      [
        'a timeout status that is not an error',
        { middleware: { defaults: { timeout: { status: 200 } } } },
        'middleware.defaults.timeout.status: must be a 4xx or 5xx status code, got 200',
      ],
      [
        'a bad failure status',
        { middleware: { defaults: { breaker: { failureStatuses: ['5xx', 'server-error'] } } } },
        'middleware.defaults.breaker.failureStatuses[1]: must be a status pattern like "5xx", "4xx" or "503", got "server-error"',
      ],
      [
        'an exclude path without "/"',
        { middleware: { exclude: ['healthz'] } },
        'middleware.exclude[0]: must be a path starting with "/" (no spaces, query or fragment), got "healthz"',
      ],
      [
        'an invalid trustProxy',
        { middleware: { trustProxy: 'lookback' } },
        'middleware.trustProxy: must be true, false, a hop count, or addresses/subnets/presets (loopback, linklocal, uniquelocal) as a comma list or a list; it has an invalid address "lookback" (from config object)',
      ],
      [
        'the same path for liveness and readiness',
        { health: { readinessPath: '/healthz' } },
        'health.readinessPath: must differ from livenessPath (/healthz)',
      ],
      [
        'pool.min above pool.max',
        { resources: { http: { api: { origin: 'http://x', pool: { min: 5, max: 2 } } } } },
        'resources.http.api.pool.min: must be at most pool.max (2), got 5',
      ],
      [
        'a backoff starting above its maximum',
        {
          resources: {
            http: { api: { origin: 'http://x', retry: { backoff: { initial: '2s', max: '1s' } } } },
          },
        },
        'resources.http.api.retry.backoff.initial: must be at most retry.backoff.max (1000ms), got 2000ms',
      ],
      [
        'an HTTP resource without origin',
        { resources: { http: { api: {} } } },
        'resources.http.api.origin: is required',
      ],
      [
        'an origin with a path',
        { resources: { http: { api: { origin: 'http://x/v1' } } } },
        'resources.http.api.origin: must be an http:// or https:// origin without path, query or credentials, got "http://x/v1"',
      ],
      [
        'a resource name that cannot be a label',
        { resources: { http: { 'my api': { origin: 'http://x' } } } },
        'resources.http.my api: is not a valid name (letters, digits and _ . : - only)',
      ],
      [
        'an HTTP resource breaker with minimumCalls above its count window',
        {
          resources: {
            http: { api: { origin: 'http://x', breaker: { window: { type: 'count', size: 5 } } } },
          },
        },
        'resources.http.api.breaker.minimumCalls: must be at most window.size (5) for a count window, got 20',
      ],
      [
        'sentinel mode without sentinels',
        { resources: { redis: { cache: { mode: 'sentinel' } } } },
        'resources.redis.cache.sentinels: must list at least one sentinel in sentinel mode',
      ],
      [
        'cluster mode without nodes',
        { resources: { redis: { cache: { mode: 'cluster' } } } },
        'resources.redis.cache.nodes: must list at least one node in cluster mode',
      ],
      [
        'an empty health history',
        { resources: { http: { api: { origin: 'http://x', health: { history: 0 } } } } },
        'resources.http.api.health.history: must be an integer between 1 and 100, got 0',
      ],
      [
        'a health history past 100',
        { resources: { redis: { cache: { health: { history: 101 } } } } },
        'resources.redis.cache.health.history: must be an integer between 1 and 100, got 101',
      ],
      [
        'a degraded pool utilisation of 0%',
        {
          resources: {
            http: { api: { origin: 'http://x', health: { degraded: { poolUtilisation: 0 } } } },
          },
        },
        'resources.http.api.health.degraded.poolUtilisation: must be a number between 1 and 100, got 0',
      ],
      [
        'a degraded error rate past 100%',
        { resources: { redis: { cache: { health: { degraded: { errorRate: 150 } } } } } },
        'resources.redis.cache.health.degraded.errorRate: must be a number between 1 and 100, got 150',
      ],
      [
        'a health allowlist entry that is not an address',
        { health: { protect: { allowlist: ['10.0.0.1', 'localhost'] } } },
        'health.protect.allowlist[1]: must be an IP address or CIDR range like "10.0.0.0/8" or "2001:db8::/32", got "localhost"',
      ],
      [
        'a metrics allowlist range with a bad prefix',
        { metrics: { protect: { allowlist: ['10.0.0.0/40'] } } },
        'metrics.protect.allowlist[0]: must have a prefix length from 0 to 32, got "10.0.0.0/40"',
      ],
      [
        'a short metrics token',
        { metrics: { protect: { token: 'secret' } } },
        'metrics.protect.token: must be at least 16 characters long (got 6)',
      ],
      [
        'a breakersAffectReadiness that is not a boolean',
        { health: { breakersAffectReadiness: 'yes' } },
        'health.breakersAffectReadiness: must be true or false, got "yes"',
      ],
      [
        'a resource name that differs from its key',
        { resources: { redis: { cache: { name: 'other' } } } },
        'resources.redis.cache.name: must equal the entry\'s key "cache" when given',
      ],
    ];

    for (const [title, input, expected] of cases) {
      it(`rejects ${title}`, () => {
        const problems = problemsFor(input);
        assertProblem(
          problems,
          expected.endsWith(')') && expected.includes('(from')
            ? expected
            : `${expected} (from config object)`,
        );
      });
    }

    it('accepts sentinel and cluster modes with their addresses', () => {
      // "host:port" strings are accepted in files, though ResilienceConfigInput types objects.
      const input: unknown = {
        resources: {
          redis: {
            s: { mode: 'sentinel', sentinels: ['10.0.0.1:26379'], masterName: 'main' },
            c: { mode: 'cluster', nodes: [{ host: '10.0.0.2', port: 7000 }] },
          },
        },
      };
      const config = resolveConfig(input as ResilienceConfigInput, { environment: noEnv });
      assert.deepEqual(config.resources.redis.s?.sentinels, [{ host: '10.0.0.1', port: 26379 }]);
      assert.deepEqual(config.resources.redis.c?.nodes, [{ host: '10.0.0.2', port: 7000 }]);
    });
  });

  describe('routes and named policies', () => {
    const input: ResilienceConfigInput = {
      middleware: {
        defaults: {
          timeout: { duration: '5s' },
          breaker: { failureStatuses: ['5xx', '429'] },
          rateLimit: { limit: 100 },
        },
        policies: {
          billing: {
            bulkhead: { maxConcurrent: 10 },
            timeout: { duration: '8s' },
            breaker: { failureStatuses: ['503'] },
          },
        },
        routes: [
          {
            name: 'create-order',
            match: 'POST /orders',
            timeout: { duration: '2s' },
            rateLimit: { enabled: true, limit: 10, window: '1s', store: 'redis:cache' },
          },
          { name: 'pay', match: 'POST /pay', policy: 'billing', timeout: { duration: '9s' } },
          {
            name: 'refund',
            match: { methods: ['post'], path: '/refunds/:id' },
            policy: 'billing',
            breaker: { failureStatuses: ['500'] },
          },
        ],
      },
      resources: { redis: { cache: { url: 'redis://127.0.0.1:6379' } } },
    };

    it('resolves each route over the defaults, then its named policy, then its own fields', () => {
      const config = resolveConfig(input, { environment: noEnv });
      const { defaults, routes, policies } = config.middleware;
      const [create, pay, refund] = routes;

      assert.deepEqual(create?.match, { methods: ['POST'], path: '/orders' });
      assert.equal(create?.timeout.duration, 2000);
      assert.equal(create?.timeout.status, 504);
      assert.deepEqual(create?.rateLimit, {
        ...defaults.rateLimit,
        enabled: true,
        limit: 10,
        window: 1000,
        store: 'redis:cache',
      });
      assert.deepEqual(create?.breaker, defaults.breaker);
      assert.deepEqual(create?.bulkhead, defaults.bulkhead);

      assert.equal(pay?.timeout.duration, 9000);
      assert.equal(pay?.bulkhead.maxConcurrent, 10);
      assert.equal(pay?.bulkhead.maxQueue, defaults.bulkhead.maxQueue);
      assert.deepEqual(pay?.breaker.failureStatuses, ['503']);

      assert.deepEqual(refund?.match, { methods: ['POST'], path: '/refunds/:id' });
      assert.equal(refund?.timeout.duration, 8000);
      assert.deepEqual(refund?.breaker.failureStatuses, ['500'], 'lists replace');

      assert.deepEqual(Object.keys(create ?? {}), [
        'name',
        'match',
        'timeout',
        'breaker',
        'bulkhead',
        'rateLimit',
      ]);
      assert.equal(policies.billing?.name, 'billing');
      assert.equal(policies.billing?.timeout.duration, 8000);
      assert.equal(policies.billing?.rateLimit.limit, 100);
    });

    it('validates route entries field by field, naming the index and the route', () => {
      const problems = problemsFor({
        middleware: {
          routes: [
            { name: 'ok', match: 'GET /ok' },
            { name: 'create-order', match: 'POST /orders', rateLimit: { burst: -1, limt: 5 } },
            { match: 'GET /x' },
            { name: 'bad name', match: 'GET x' },
            'GET /y',
            { name: 'ok', match: 'GET /ok2', policy: 'biling' },
          ],
          policies: { billing: {} },
        },
      });
      assert.deepEqual(problems, [
        'middleware.routes[1] (create-order).rateLimit.limt: unknown key (did you mean limit?) (from config object)',
        'middleware.routes[1] (create-order).rateLimit.burst: must be an integer >= 0, got -1 (from config object)',
        'middleware.routes[2].name: is required (from config object)',
        'middleware.routes[3] (bad name).name: must be a name of letters, digits and _ . : - only, got "bad name" (from config object)',
        'middleware.routes[3] (bad name).match: path must start with "/", got "x" (from config object)',
        'middleware.routes[4]: must be an object with name and match, got "GET /y" (from config object)',
        'middleware.routes[5] (ok).name: duplicates the name of routes[0]; route names must be unique (from config object)',
        'middleware.routes[5] (ok).policy: names policy "biling", which is not defined under middleware.policies (did you mean billing?) (from config object)',
      ]);
    });

    it('reports a problem of the defaults once, not once per route', () => {
      const problems = problemsFor({
        middleware: {
          defaults: { rateLimit: { algorithm: 'fixed-window', burst: 3 } },
          routes: [
            { name: 'a', match: '/a' },
            { name: 'b', match: '/b', rateLimit: { limit: 5 } },
          ],
        },
      });
      assert.deepEqual(problems, [
        'middleware.defaults.rateLimit.burst: must be 0 with the fixed-window algorithm (burst is a GCRA setting), got 3 (from config object)',
      ]);
    });

    it('reports an inherited conflict at the route that creates it, naming its file', () => {
      const dir = dirs.make({
        'default.yaml': 'middleware: { defaults: { rateLimit: { burst: 3 } } }\n',
        'production.yaml': [
          'middleware:',
          '  routes:',
          '    - { name: list, match: GET /orders }',
          '    - { name: create-order, match: POST /orders, rateLimit: { algorithm: fixed-window } }',
        ].join('\n'),
      });
      assert.deepEqual(
        problemsOf(() => loadConfig({ dir, env: 'production', environment: noEnv })),
        [
          `middleware.routes[1] (create-order).rateLimit.burst: must be 0 with the fixed-window algorithm (burst is a GCRA setting), got 3 (from ${join(dir, 'production.yaml')})`,
        ],
      );
    });

    it('validates named policies like the defaults', () => {
      assert.deepEqual(
        problemsFor({
          middleware: { policies: { slow: { timeout: { duration: 0 } }, 'bad name': {} } },
        }),
        [
          'middleware.policies.bad name: is not a valid name (letters, digits and _ . : - only) (from config object)',
          'middleware.policies.slow.timeout.duration: must be at least 1ms, got 0 (from config object)',
        ],
      );
    });

    it('checks a route store against the Redis resources of every layer', () => {
      const dir = dirs.make({
        'default.yaml':
          'middleware:\n  routes: [{ name: a, match: /a, rateLimit: { store: "redis:cache" } }]\n',
        'production.yaml': 'resources: { redis: { cache: { url: "redis://127.0.0.1:6379" } } }\n',
      });
      assert.equal(
        loadConfig({ dir, env: 'production', environment: noEnv }).middleware.routes[0]?.rateLimit
          .store,
        'redis:cache',
      );
      assert.deepEqual(
        problemsOf(() => loadConfig({ dir, env: 'development', environment: noEnv })),
        [
          `middleware.routes[0] (a).rateLimit.store: names Redis resource "cache", which is not configured under resources.redis (none is) (from ${join(dir, 'default.yaml')})`,
        ],
      );
    });
  });

  describe('the result', () => {
    it('is deep-frozen', () => {
      const config = resolveConfig(
        {
          middleware: { routes: [{ name: 'a', match: 'GET /a' }] },
          resources: { redis: { c: {} } },
        },
        { environment: noEnv },
      );
      assert.ok(Object.isFrozen(config));
      assert.ok(Object.isFrozen(config.middleware.defaults.breaker.window));
      assert.ok(Object.isFrozen(config.middleware.routes));
      assert.ok(Object.isFrozen(config.middleware.routes[0]?.match.methods));
      assert.ok(Object.isFrozen(config.resources.redis.c?.pool));
      assert.throws(() => {
        (config.metrics as { prefix: string }).prefix = 'x';
      }, TypeError);
    });

    it('has the health model and protection defaults', () => {
      const config = resolveConfig(
        { resources: { http: { api: { origin: 'http://x' } }, redis: { cache: {} } } },
        { environment: noEnv },
      );
      for (const health of [
        config.resources.http.api?.health,
        config.resources.redis.cache?.health,
      ]) {
        assert.equal(health?.history, 10);
        assert.deepEqual(health?.degraded, { poolUtilisation: 90, errorRate: 50 });
      }
      assert.equal(config.health.breakersAffectReadiness, false);
      assert.deepEqual(config.health.protect, { allowlist: [], token: undefined });
      assert.deepEqual(config.metrics.protect, { allowlist: [], token: undefined });
    });

    it('is branded, and resolveConfig returns a resolved config as is', () => {
      const config = resolveConfig({}, { environment: noEnv });
      assert.equal(isResolvedConfig(config), true);
      assert.equal(resolveConfig(config), config);
      assert.equal(isResolvedConfig({ ...config }), false);
      assert.equal(isResolvedConfig(null), false);
      assert.deepEqual(Object.keys(config), [
        'middleware',
        'resources',
        'metrics',
        'health',
        'shutdown',
      ]);
    });

    it('round-trips: its JSON loads back to an equal config', () => {
      const config = resolveConfig(
        {
          middleware: {
            routes: [{ name: 'a', match: '/a/*', policy: 'p' }],
            policies: { p: { timeout: { duration: '1s' } } },
          },
          resources: {
            http: { api: { origin: 'http://x:1', headers: { accept: 'json' } } },
            redis: { c: {} },
          },
        },
        { environment: noEnv },
      );
      const copy = JSON.parse(JSON.stringify(config)) as ResilienceConfigInput;
      assert.deepEqual(resolveConfig(copy, { environment: noEnv }), config);
    });

    it('is the same with config/default.yaml as with no file at all', () => {
      const shipped = loadConfig({
        dir: resolve('config'),
        env: 'no-such-env',
        environment: noEnv,
      });
      const bare = loadConfig({ dir: dirs.make(), environment: noEnv });
      assert.deepEqual(shipped, bare);
    });

    for (const env of ['development', 'test', 'production', 'load']) {
      it(`loads the shipped ${env}.yaml`, () => {
        const { config, files } = loadConfigWithSources({
          dir: resolve('config'),
          env,
          environment: noEnv,
        });
        assert.equal(files.length, 2);
        if (env === 'production') {
          assert.equal(config.health.details, false);
          assert.ok(config.middleware.defaults.timeout.duration < 5000);
          assert.equal(config.middleware.defaults.breaker.enabled, true);
        }
        if (env === 'test') {
          assert.equal(config.metrics.defaultMetrics, false);
          assert.ok(config.middleware.defaults.timeout.duration <= 1000);
        }
        if (env === 'load') {
          assert.equal(config.middleware.defaults.rateLimit.enabled, true);
          assert.ok(config.middleware.routes.length >= 2);
        }
      });
    }
  });

  // An app that keeps its own settings in config/ (node-config's layout) must not crash the
  // pack, nor have its keys taken for the pack's.
  describe('sharing the config directory with the app', () => {
    const appDefault = 'db: { host: db.internal, port: 5432 }\nsession: { secret: s }\n';

    it("ignores an app's own default.yaml (no pack section): schema defaults, no error", () => {
      const dir = dirs.make({ 'default.yaml': appDefault, 'production.yaml': 'db: { port: 1 }\n' });
      const loaded = loadConfigWithSources({ dir, env: 'production', environment: noEnv });
      assert.deepEqual(loaded.config, loadConfig({ dir: dirs.make(), environment: noEnv }));
      assert.deepEqual(loaded.files, []);
      assert.deepEqual(loaded.warnings, []);
    });

    it("resilience() with no config starts beside an app's node-config default.yaml", async () => {
      const dir = dirs.make({ 'default.yaml': appDefault });
      const saved = process.env.RESILIENCE_CONFIG_DIR;
      process.env.RESILIENCE_CONFIG_DIR = dir;
      try {
        const logger = { warn: () => {}, error: () => {} };
        await resilience(undefined, { logger }).close({ grace: 0 });
      } finally {
        if (saved === undefined) delete process.env.RESILIENCE_CONFIG_DIR;
        else process.env.RESILIENCE_CONFIG_DIR = saved;
      }
    });

    it('reads only the resilience: section of a shared file, in both layers', () => {
      const dir = dirs.make({
        'default.yaml': `${appDefault}resilience:\n  metrics: { prefix: shop_ }\n  middleware: { defaults: { timeout: { duration: 4s } } }\n`,
        'production.yaml':
          'db: { port: 1 }\nresilience: { middleware: { defaults: { timeout: { duration: 3s } } } }\n',
      });
      const { config, files } = loadConfigWithSources({
        dir,
        env: 'production',
        environment: noEnv,
      });
      assert.equal(config.metrics.prefix, 'shop_');
      assert.equal(config.middleware.defaults.timeout.duration, 3000);
      assert.deepEqual(files, [join(dir, 'default.yaml'), join(dir, 'production.yaml')]);
    });

    it("prefers the pack's own resilience.yaml and resilience.<env>.yaml, per layer", () => {
      const dir = dirs.make({
        'default.yaml': appDefault,
        'production.yaml': 'resilience: { metrics: { prefix: shared_ } }\n',
        'resilience.yaml': 'metrics: { prefix: own_ }\n',
        'resilience.staging.yml': 'middleware: { defaults: { timeout: { duration: 2s } } }\n',
      });
      const staging = loadConfigWithSources({ dir, env: 'staging', environment: noEnv });
      assert.equal(staging.config.metrics.prefix, 'own_');
      assert.equal(staging.config.middleware.defaults.timeout.duration, 2000);
      assert.deepEqual(staging.files, [
        join(dir, 'resilience.yaml'),
        join(dir, 'resilience.staging.yml'),
      ]);
      // No resilience.production.*: the shared production.yaml is the environment layer.
      assert.equal(
        loadConfig({ dir, env: 'production', environment: noEnv }).metrics.prefix,
        'shared_',
      );
    });

    it('keeps catching typos: inside a section, beside the sections, in the own files', () => {
      const problems = problemsOf(() =>
        loadConfig({
          dir: dirs.make({
            'default.yaml': `${appDefault}resilience: { metrics: { prefx: x_ } }\n`,
          }),
          environment: noEnv,
        }),
      );
      assertProblem(problems, /^metrics\.prefx: unknown key \(did you mean prefix\?\)/);

      // Pack sections at the top level make the file the pack's: an app key beside them is an
      // unknown key, as it always was.
      const mixed = dirs.make({ 'default.yaml': 'db: { port: 1 }\nmetrics: { prefix: x_ }\n' });
      assertProblem(
        problemsOf(() => loadConfig({ dir: mixed, environment: noEnv })),
        `db: unknown key; expected one of: middleware, resources, metrics, health, shutdown (from ${join(mixed, 'default.yaml')})`,
      );

      // A misspelt section name is not taken for an app key.
      const misspelt = dirs.make({ 'default.yaml': 'middlware: { exclude: [/x] }\n' });
      assertProblem(
        problemsOf(() => loadConfig({ dir: misspelt, environment: noEnv })),
        `${join(misspelt, 'default.yaml')}: middlware: unknown key (did you mean middleware?)`,
      );
      const section = dirs.make({ 'default.yaml': 'resilence: { metrics: {} }\n' });
      assertProblem(
        problemsOf(() => loadConfig({ dir: section, environment: noEnv })),
        /resilence: unknown key \(did you mean resilience\?\)$/,
      );

      // The pack's own files are all the pack's: any unknown top-level key is an error.
      const own = dirs.make({ 'resilience.yaml': 'db: { port: 1 }\n' });
      assertProblem(
        problemsOf(() => loadConfig({ dir: own, environment: noEnv })),
        /^db: unknown key.*\(from .*resilience\.yaml\)$/,
      );

      // A pack section beside resilience: is ambiguous.
      const both = dirs.make({
        'default.yaml': 'resilience: { metrics: {} }\nhealth: { enabled: false }\n',
      });
      assertProblem(
        problemsOf(() => loadConfig({ dir: both, environment: noEnv })),
        `${join(both, 'default.yaml')}: health: belongs under resilience: (beside a resilience: section, top-level keys are the app's)`,
      );
    });
  });

  describe('warnings', () => {
    const codes = (warnings: { code: string; message: string }[]): string[] =>
      warnings.map((w) => `${w.code}: ${w.message}`);

    it('warns when NODE_ENV names an environment with no file', () => {
      const dir = dirs.make({ 'default.yaml': 'metrics: { prefix: a_ }\n' });
      assert.deepEqual(
        codes(loadConfigWithSources({ dir, environment: { NODE_ENV: 'prod' } }).warnings),
        [
          `RESILIENCE_CONFIG_NO_ENV_FILE: environment "prod" has no config file in ${dir} (looked for resilience.prod.{yaml,yml,json} and prod.{yaml,yml,json}); only the default file applies`,
        ],
      );
      // Not when NODE_ENV is unset (development by default), nor with no file at all.
      assert.deepEqual(loadConfigWithSources({ dir, environment: noEnv }).warnings, []);
      assert.deepEqual(
        loadConfigWithSources({ dir: dirs.make(), environment: { NODE_ENV: 'prod' } }).warnings,
        [],
      );
    });

    it('warns when a RESILIENCE_* variable names no option, suggesting the closest', () => {
      const dir = dirs.make({
        'default.yaml': 'resources: { http: { pay: { origin: "http://a:1" } } }\n',
      });
      const environment = {
        RESILIENCE_METRICS_ENABLD: 'false',
        RESILIENCE_NOTHING_LIKE_IT: '1',
        // Known: an option, the directory, per-entry variables (declared or not).
        RESILIENCE_METRICS_PREFIX: 'a_',
        RESILIENCE_CONFIG_DIR: dir,
        RESILIENCE_HTTP_PAY_ORIGIN: 'http://b:2',
        RESILIENCE_REDIS_CACHE_URL: '',
      };
      assert.deepEqual(codes(loadConfigWithSources({ environment }).warnings), [
        'RESILIENCE_UNKNOWN_ENV_VAR: environment variable RESILIENCE_METRICS_ENABLD names no option (did you mean RESILIENCE_METRICS_ENABLED?); it is ignored',
        'RESILIENCE_UNKNOWN_ENV_VAR: environment variable RESILIENCE_NOTHING_LIKE_IT names no option; it is ignored',
      ]);
    });

    it('gives no warning when all is fine', () => {
      const dir = dirs.make({
        'default.yaml': 'metrics: { prefix: a_ }\n',
        'production.yaml': 'health: { details: false }\n',
      });
      const environment = { NODE_ENV: 'production', RESILIENCE_METRICS_ENABLED: 'true' };
      assert.deepEqual(loadConfigWithSources({ dir, environment }).warnings, []);
    });

    it('loadConfig and resolveConfig emit them once, with their code, to the logger', () => {
      resetWarnings();
      const seen: { code: unknown; message: string }[] = [];
      const logger = {
        warn: (fields: { code: unknown }, message: string) => seen.push({ ...fields, message }),
        error: () => {},
      } as unknown as Logger;
      const environment = { NODE_ENV: 'prod', RESILIENCE_TIMEOUT: '1s' };
      const dir = dirs.make({ 'resilience.yaml': '' });
      loadConfig({ dir, environment, logger });
      loadConfig({ dir, environment, logger });
      resolveConfig({}, { environment, logger });
      assert.deepEqual(
        seen.map((w) => w.code),
        ['RESILIENCE_CONFIG_NO_ENV_FILE', 'RESILIENCE_UNKNOWN_ENV_VAR'],
      );
      resetWarnings();
    });
  });
});
