import assert from 'node:assert/strict';
import { format, inspect } from 'node:util';
import { resolveConfig } from '../../lib/config/load.js';
import { redactConfig } from '../../lib/config/redact.js';

const SECRETS = [
  'hunter2',
  'pa55',
  'sentinel-secret',
  'PRIVATE KEY',
  'Bearer tok',
  'sess=1',
  'health-token-0123456789',
  'metrics-token-0123456789',
];

function config() {
  return resolveConfig(
    {
      resources: {
        redis: {
          cache: {
            url: 'redis://app:hunter2@cache.internal:6379/1',
            password: 'pa55',
            sentinelPassword: 'sentinel-secret',
            tls: { enabled: true, key: '-----BEGIN PRIVATE KEY-----' },
          },
          plain: { url: 'redis://127.0.0.1:6379' },
        },
        http: {
          api: {
            origin: 'https://api.internal',
            headers: { Authorization: 'Bearer tok', Cookie: 'sess=1', 'X-Client': 'shop' },
            tls: { key: 'PRIVATE KEY' },
          },
        },
      },
      health: { protect: { allowlist: ['10.0.0.0/8'], token: 'health-token-0123456789' } },
    },
    { environment: { RESILIENCE_METRICS_TOKEN: 'metrics-token-0123456789' } },
  );
}

function assertNoSecret(text: string): void {
  for (const secret of SECRETS) assert.ok(!text.includes(secret), `${secret} leaked in:\n${text}`);
}

describe('redaction', () => {
  it('redactConfig replaces sensitive values and masks URL passwords', () => {
    const redacted = redactConfig(config()) as {
      health: unknown;
      metrics: { protect: unknown };
      resources: {
        redis: Record<string, Record<string, unknown>>;
        http: Record<string, Record<string, unknown>>;
      };
    };
    const cache = redacted.resources.redis.cache!;
    assert.equal(cache.url, 'redis://app:[redacted]@cache.internal:6379/1');
    assert.equal(cache.password, '[redacted]');
    assert.equal(cache.sentinelPassword, '[redacted]');
    assert.deepEqual(cache.tls, {
      enabled: true,
      ca: undefined,
      cert: undefined,
      key: '[redacted]',
      rejectUnauthorized: true,
      servername: undefined,
    });
    assert.equal(cache.host, '127.0.0.1', 'non-sensitive values stay');
    assert.equal(
      redacted.resources.redis.plain!.url,
      'redis://127.0.0.1:6379',
      'a URL without password stays',
    );
    assert.equal(redacted.resources.redis.plain!.password, undefined, 'unset stays unset');
    assert.deepEqual(redacted.resources.http.api!.headers, {
      authorization: '[redacted]',
      cookie: '[redacted]',
      'x-client': 'shop',
    });
    assert.deepEqual(redacted.health, {
      enabled: true,
      livenessPath: '/healthz',
      readinessPath: '/readyz',
      details: true,
      breakersAffectReadiness: false,
      protect: { allowlist: ['10.0.0.0/8'], token: '[redacted]' },
    });
    assert.deepEqual(redacted.metrics.protect, { allowlist: [], token: '[redacted]' });
    assertNoSecret(JSON.stringify(redacted));
  });

  it('leaves an unset endpoint token unset', () => {
    const redacted = redactConfig(resolveConfig({}, { environment: {} })) as {
      health: { protect: Record<string, unknown> };
    };
    assert.deepEqual(redacted.health.protect, { allowlist: [], token: undefined });
  });

  it('returns a plain, unfrozen copy and leaves the config untouched', () => {
    const resolved = config();
    const redacted = redactConfig(resolved);
    assert.ok(!Object.isFrozen(redacted));
    assert.equal(resolved.resources.redis.cache?.password, 'pa55');
    assert.equal(resolved.resources.http.api?.headers.authorization, 'Bearer tok');
    assert.equal(resolved.health.protect.token, 'health-token-0123456789');
    assert.equal(resolved.metrics.protect.token, 'metrics-token-0123456789');
  });

  it('works on input-shaped objects too', () => {
    const redacted = redactConfig({
      resources: { redis: { cache: { password: 'pa55', url: 'redis://:hunter2@h' } } },
      metrics: { prefix: 'x_' },
    });
    assert.deepEqual(redacted, {
      resources: { redis: { cache: { password: '[redacted]', url: 'redis://:[redacted]@h' } } },
      metrics: { prefix: 'x_' },
    });
  });

  it('JSON.stringify of the config, or of any part holding a secret, is redacted', () => {
    const resolved = config();
    for (const part of [
      resolved,
      resolved.resources,
      resolved.resources.redis,
      resolved.resources.redis.cache,
      resolved.resources.redis.cache?.tls,
      resolved.resources.http.api,
      resolved.resources.http.api?.headers,
      resolved.health,
      resolved.health.protect,
      resolved.metrics,
      resolved.metrics.protect,
    ]) {
      assertNoSecret(JSON.stringify(part));
    }
    assert.match(JSON.stringify(resolved), /redis:\/\/app:\[redacted\]@cache\.internal/);
  });

  it('util.inspect and console formatting are redacted', () => {
    const resolved = config();
    assertNoSecret(inspect(resolved, { depth: Infinity }));
    assertNoSecret(inspect(resolved.resources.redis.cache, { depth: Infinity }));
    assertNoSecret(inspect(resolved.health.protect));
    assertNoSecret(format('%o %j', resolved.metrics, resolved.health));
    assertNoSecret(format('%o %O %j', resolved, resolved.resources.http.api, resolved));
  });

  it('keeps the helpers non-enumerable', () => {
    const resolved = config();
    assert.ok(!Object.keys(resolved).includes('toJSON'));
    assert.ok(!Object.keys(resolved.resources.redis.cache ?? {}).includes('toJSON'));
    assert.deepEqual({ ...resolved.resources.redis.cache }.password, 'pa55');
  });
});
