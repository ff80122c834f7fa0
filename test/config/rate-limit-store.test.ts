import assert from 'node:assert/strict';
import { resolveConfig } from '../../lib/config/load.js';
import type { ResilienceConfigInput } from '../../lib/config/types.js';
import { isConfigError } from '../../lib/errors.js';

const noEnv = {};

function problemsFor(input: ResilienceConfigInput): string[] {
  try {
    resolveConfig(input, { environment: noEnv });
  } catch (err) {
    assert.ok(isConfigError(err), `expected a ConfigError, got ${String(err)}`);
    return [...err.problems];
  }
  assert.fail('expected a ConfigError');
}

describe('config: shared rate-limit store settings', () => {
  it('defaults: 500 ms timeout, 1 s retry interval, one instance, block cache on, rl: prefix', () => {
    const { rateLimit } = resolveConfig({}, { environment: noEnv }).middleware.defaults;
    assert.equal(rateLimit.onStoreError, 'local');
    assert.equal(rateLimit.storeTimeout, 500);
    assert.equal(rateLimit.storeRetryInterval, 1000);
    assert.equal(rateLimit.expectedInstances, 1);
    assert.equal(rateLimit.blockCache, true);
    assert.equal(rateLimit.keyPrefix, 'rl:');
    assert.equal(rateLimit.storeMaxBatch, 16);
  });

  it('routes inherit them and may override them', () => {
    const config = resolveConfig(
      {
        middleware: {
          defaults: { rateLimit: { expectedInstances: 4, storeTimeout: '20ms' } },
          routes: [
            { name: 'a', match: 'GET /a' },
            {
              name: 'b',
              match: 'GET /b',
              rateLimit: { storeRetryInterval: '250ms', blockCache: false, keyPrefix: '' },
            },
          ],
        },
      },
      { environment: noEnv },
    );
    const [a, b] = config.middleware.routes;
    assert.equal(a!.rateLimit.expectedInstances, 4);
    assert.equal(a!.rateLimit.storeTimeout, 20);
    assert.equal(b!.rateLimit.expectedInstances, 4);
    assert.equal(b!.rateLimit.storeRetryInterval, 250);
    assert.equal(b!.rateLimit.blockCache, false);
    assert.equal(b!.rateLimit.keyPrefix, '');
  });

  it('reads expectedInstances from RESILIENCE_RATE_LIMIT_EXPECTED_INSTANCES', () => {
    const config = resolveConfig(
      {},
      { environment: { RESILIENCE_RATE_LIMIT_EXPECTED_INSTANCES: '6' } },
    );
    assert.equal(config.middleware.defaults.rateLimit.expectedInstances, 6);
  });

  it('rejects impossible values, naming the key', () => {
    const problems = problemsFor({
      middleware: {
        defaults: {
          rateLimit: {
            storeTimeout: 0,
            storeRetryInterval: '-1s',
            expectedInstances: 0,
            storeMaxBatch: 0,
            blockCache: 'yes' as unknown as boolean,
            keyPrefix: 3 as unknown as string,
          },
        },
      },
    });
    for (const key of [
      'storeTimeout',
      'storeRetryInterval',
      'expectedInstances',
      'storeMaxBatch',
      'blockCache',
      'keyPrefix',
    ]) {
      assert.ok(
        problems.some((p) => p.startsWith(`middleware.defaults.rateLimit.${key}: `)),
        `no problem for ${key} in:\n  ${problems.join('\n  ')}`,
      );
    }
  });
});
