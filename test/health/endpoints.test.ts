import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import FakeTimers from '@sinonjs/fake-timers';
import type { HealthCheck, HealthCheckOptions } from '../../lib/health/check.js';
import { isAuthorised, livenessResponse, readinessResponse } from '../../lib/health/endpoints.js';
import { HealthMonitor } from '../../lib/health/monitor.js';

type InstalledClock = ReturnType<typeof FakeTimers.install>;

const OPTIONS: HealthCheckOptions = {
  interval: 1000,
  timeout: 100,
  healthyThreshold: 1,
  unhealthyThreshold: 1,
  history: 3,
  degraded: { poolUtilisation: 90, errorRate: 50 },
};

function check(name: string, critical: boolean, fails: { value: boolean }): HealthCheck {
  return {
    name,
    kind: 'redis',
    critical,
    probe: () =>
      fails.value ? Promise.reject(new Error('redis://app:hunter2@h refused')) : Promise.resolve(),
  };
}

const NOT_SHUTTING_DOWN = { shuttingDown: false, breakersAffectReadiness: false };

describe('health endpoints', () => {
  let clock: InstalledClock;
  let monitor: HealthMonitor;
  const cacheFails = { value: false };
  const searchFails = { value: false };

  beforeEach(async () => {
    clock = FakeTimers.install({ toFake: ['setTimeout', 'clearTimeout', 'Date'], now: 5000 });
    cacheFails.value = false;
    searchFails.value = false;
    monitor = new HealthMonitor();
    monitor.add(check('cache', true, cacheFails), OPTIONS);
    monitor.add(check('search', false, searchFails), OPTIONS);
    await monitor.checkNow();
  });

  afterEach(() => {
    monitor.close();
    clock.uninstall();
  });

  it('liveness is 200 { status: ok }', () => {
    assert.deepEqual(livenessResponse(), { status: 200, body: { status: 'ok' } });
  });

  describe('readiness', () => {
    it('is 200 ready, with the status only when details are off', () => {
      assert.deepEqual(readinessResponse(monitor, { ...NOT_SHUTTING_DOWN, details: false }), {
        status: 200,
        body: { status: 'ready' },
      });
    });

    it('lists checks and breakers when details are on', () => {
      const response = readinessResponse(monitor, {
        ...NOT_SHUTTING_DOWN,
        details: true,
        breakers: [{ name: 'create-order', state: 'closed' }],
      });
      assert.equal(response.status, 200);
      assert.deepEqual(response.body, {
        status: 'ready',
        health: 'up',
        checks: [
          {
            name: 'cache',
            kind: 'redis',
            status: 'up',
            critical: true,
            history: [{ at: 5000, ok: true, latencyMs: 0 }],
            details: { consecutiveSuccesses: 1, consecutiveFailures: 0 },
          },
          {
            name: 'search',
            kind: 'redis',
            status: 'up',
            critical: false,
            history: [{ at: 5000, ok: true, latencyMs: 0 }],
            details: { consecutiveSuccesses: 1, consecutiveFailures: 0 },
          },
        ],
        breakers: [{ name: 'create-order', state: 'closed' }],
      });
    });

    it('is 503 not-ready while a critical check is down, with the reason in the details only', async () => {
      cacheFails.value = true;
      await monitor.checkNow();
      const plain = readinessResponse(monitor, { ...NOT_SHUTTING_DOWN, details: false });
      assert.deepEqual(plain, { status: 503, body: { status: 'not-ready' } });
      const detailed = readinessResponse(monitor, { ...NOT_SHUTTING_DOWN, details: true });
      assert.equal(detailed.status, 503);
      assert.equal(detailed.body.health, 'down');
      const [cache] = detailed.body.checks as { status: string; reason: string }[];
      assert.equal(cache?.status, 'down');
      assert.equal(cache?.reason, 'redis://app:***@h refused');
      assert.ok(!JSON.stringify(detailed.body).includes('hunter2'));
    });

    it('stays 200 while only a non-critical check is down', async () => {
      searchFails.value = true;
      await monitor.checkNow();
      const response = readinessResponse(monitor, { ...NOT_SHUTTING_DOWN, details: true });
      assert.equal(response.status, 200);
      assert.equal(response.body.status, 'ready');
      assert.equal(response.body.health, 'degraded');
    });

    it('is 503 not-ready before a critical check has a verdict', () => {
      const fresh = new HealthMonitor();
      fresh.add(check('db', true, { value: false }), OPTIONS);
      assert.deepEqual(readinessResponse(fresh, { ...NOT_SHUTTING_DOWN, details: false }), {
        status: 503,
        body: { status: 'not-ready' },
      });
      fresh.close();
    });

    it('is 503 shutting-down once close began, whatever the checks say', () => {
      for (const m of [monitor, undefined]) {
        assert.deepEqual(
          readinessResponse(m, {
            shuttingDown: true,
            breakersAffectReadiness: false,
            details: false,
          }),
          { status: 503, body: { status: 'shutting-down' } },
        );
      }
    });

    it('without a monitor is ready unless shutting down', () => {
      assert.deepEqual(readinessResponse(undefined, { ...NOT_SHUTTING_DOWN, details: true }), {
        status: 200,
        body: { status: 'ready', health: 'up', checks: [], breakers: [] },
      });
    });

    it('an open breaker fails readiness only when breakersAffectReadiness', () => {
      const breakers = [
        { name: 'a', state: 'closed' },
        { name: 'b', state: 'open' },
      ];
      const lenient = readinessResponse(monitor, { ...NOT_SHUTTING_DOWN, details: true, breakers });
      assert.equal(lenient.status, 200);
      assert.deepEqual(lenient.body.breakers, breakers);
      const strict = readinessResponse(monitor, {
        shuttingDown: false,
        breakersAffectReadiness: true,
        details: false,
        breakers,
      });
      assert.deepEqual(strict, { status: 503, body: { status: 'not-ready' } });
      for (const state of ['half-open', 'closed']) {
        const response = readinessResponse(monitor, {
          shuttingDown: false,
          breakersAffectReadiness: true,
          details: false,
          breakers: [{ name: 'a', state }],
        });
        assert.equal(response.status, 200, state);
      }
      const isolated = readinessResponse(monitor, {
        shuttingDown: false,
        breakersAffectReadiness: true,
        details: false,
        breakers: [{ name: 'a', state: 'isolated' }],
      });
      assert.equal(isolated.status, 503, 'a breaker held open by hand is open too');
    });
  });
});

describe('isAuthorised', () => {
  const TOKEN = 'scrape-token-0123456789';
  const req = (authorization?: string): IncomingMessage =>
    ({ headers: authorization === undefined ? {} : { authorization } }) as IncomingMessage;

  it('allows everyone when neither allowlist nor token is set', () => {
    assert.equal(isAuthorised(req(), { allowlist: [] }, '203.0.113.9'), true);
    assert.equal(isAuthorised(req(), { allowlist: [], token: undefined }, undefined), true);
  });

  it('allows addresses in the allowlist: IPv4, IPv6, CIDR ranges, IPv4-mapped clients', () => {
    const protect = { allowlist: ['127.0.0.1', '10.0.0.0/8', '::1', '2001:db8::/32'] };
    for (const ip of ['127.0.0.1', '10.20.30.40', '::1', '2001:db8:1::5', '::ffff:10.1.1.1']) {
      assert.equal(isAuthorised(req(), protect, ip), true, ip);
    }
    for (const ip of ['11.0.0.1', '::2', '2001:db9::1', 'not-an-ip', '', undefined]) {
      assert.equal(isAuthorised(req(), protect, ip), false, String(ip));
    }
  });

  it('allows the right bearer token, and no other', () => {
    const protect = { allowlist: [], token: TOKEN };
    assert.equal(isAuthorised(req(`Bearer ${TOKEN}`), protect, '203.0.113.9'), true);
    assert.equal(
      isAuthorised(req(`bearer ${TOKEN}`), protect, undefined),
      true,
      'scheme is case-insensitive',
    );
    for (const header of [
      undefined,
      '',
      TOKEN,
      `Basic ${TOKEN}`,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(1)}`,
      `Bearer ${TOKEN.toUpperCase()}`,
      'Bearer',
      `Bearer ${TOKEN} extra`,
    ]) {
      assert.equal(isAuthorised(req(header), protect, '127.0.0.1'), false, String(header));
    }
  });

  it('allows either an allowlisted address or the token when both are set', () => {
    const protect = { allowlist: ['10.0.0.0/8'], token: TOKEN };
    assert.equal(isAuthorised(req(), protect, '10.0.0.1'), true);
    assert.equal(isAuthorised(req(`Bearer ${TOKEN}`), protect, '192.0.2.1'), true);
    assert.equal(isAuthorised(req('Bearer wrong-token-0123456789'), protect, '192.0.2.1'), false);
    assert.equal(isAuthorised(req(), protect, '192.0.2.1'), false);
  });
});
