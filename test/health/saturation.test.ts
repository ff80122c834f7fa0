import assert from 'node:assert/strict';
import express from 'express';
import request from 'supertest';
import { resilience, type ResilienceMiddleware } from '../../lib/index.js';
import { deferred, eventually, track } from '../helpers/deferred.js';
import type { Tracked } from '../helpers/deferred.js';
import { startRedis } from '../helpers/redis-server.js';
import { startUpstream, type Upstream } from '../helpers/upstream.js';

// Regression: health probes borrowed from the pool that serves traffic, so a pool saturated by
// slow calls failed them ("pool exhausted", or a probe timeout while queued) and /readyz
// answered 503 on every replica at once. Saturation is load, not ill health.

interface CheckBody {
  name: string;
  status: string;
  history: { at: number; ok: boolean; error?: string }[];
}

async function readiness(
  app: express.Express,
  name: string,
): Promise<{ status: number; check: CheckBody }> {
  const response = await request(app).get('/readyz');
  const check = (response.body.checks as CheckBody[]).find((c) => c.name === name)!;
  return { status: response.status, check };
}

/**
 * Waits until `name` has `count` probe results from `since` on (epoch ms) and returns them
 * (polling /readyz on the event loop, never sleeping).
 */
async function probesSince(
  app: express.Express,
  name: string,
  since: number,
  count = 3,
): Promise<{ status: number; check: CheckBody; recent: CheckBody['history'] }> {
  let last: { status: number; check: CheckBody; recent: CheckBody['history'] } | undefined;
  await eventually(async () => {
    const { status, check } = await readiness(app, name);
    last = { status, check, recent: check.history.filter((h) => h.at >= since) };
    return last.recent.length >= count;
  }, `${count} probes of ${name}`);
  return last!;
}

describe('health probes under a saturated pool', function () {
  this.timeout(20_000);
  let r: ResilienceMiddleware | undefined;
  let upstream: Upstream | undefined;

  afterEach(async () => {
    await r?.close({ grace: 0 });
    r = undefined;
    await upstream?.close();
    upstream = undefined;
  });

  for (const maxWaiting of [2, 50]) {
    // maxWaiting 2: a probe from the pool was refused as queue-full; 50: it queued behind the
    // slow calls until its own timeout.
    it(`HTTP: /readyz stays 200 while every member is leased and calls wait (maxWaiting ${maxWaiting}); a dead upstream still turns it down`, async () => {
      upstream = await startUpstream();
      upstream.setBehaviour('/slow', { fault: 'hang' });
      r = resilience({
        health: { details: true },
        resources: {
          http: {
            payments: {
              origin: upstream.origin,
              pool: { max: 2, maxWaiting, acquireTimeout: '10s' },
              timeouts: { request: '10s', headers: '10s' },
              retry: { attempts: 1 },
              health: { interval: '10ms', timeout: '200ms', unhealthyThreshold: 1 },
            },
          },
        },
      });
      await r.ready();
      const app = express();
      app.use(r);
      const payments = r.resources.http('payments');
      await eventually(async () => (await readiness(app, 'payments')).status === 200, 'ready');

      const calls: Tracked<unknown>[] = [];
      for (let i = 0; i < 2 + maxWaiting; i++) calls.push(track(payments.get('/slow')));
      await eventually(
        () => payments.stats().borrowed === 2 && payments.stats().pending === maxWaiting,
        'a saturated pool',
      );
      const saturated = await probesSince(app, 'payments', Date.now());
      assert.equal(saturated.status, 200);
      assert.notEqual(saturated.check.status, 'down');
      assert.ok(
        saturated.recent.every((h) => h.ok),
        `probes failed: ${JSON.stringify(saturated.recent)}`,
      );
      assert.ok(calls.every((c) => !c.settled));

      await upstream.close();
      await eventually(async () => (await readiness(app, 'payments')).status === 503, 'down');
      assert.equal((await readiness(app, 'payments')).check.status, 'down');
      await eventually(() => calls.every((c) => c.settled), 'the slow calls to end');
      upstream = undefined;
    });
  }

  it('custom kind: the probe runs while every member is leased and calls wait; a failing probe still turns it down', async () => {
    const hold = deferred();
    interface Member {
      id: number;
      probes: number;
    }
    const made: Member[] = [];
    let healthy = true;
    r = resilience(
      { health: { details: true } },
      {
        resources: {
          db: {
            factory: {
              create: async (): Promise<Member> => {
                const member = { id: made.length + 1, probes: 0 };
                made.push(member);
                return member;
              },
              destroy: async () => undefined,
            },
            probe: async (member: Member) => {
              member.probes++;
              if (!healthy) throw new Error('SELECT 1 failed');
            },
            pool: { max: 1, maxWaiting: 1, acquireTimeout: 10_000 },
            health: { interval: 10, timeout: 200, unhealthyThreshold: 1 },
          },
        },
      },
    );
    await r.ready();
    const app = express();
    app.use(r);
    const db = r.resources.custom<Member>('db');
    const leases = [0, 1].map(() => track(db.use(() => hold.promise, { timeoutMs: 15_000 })));
    await eventually(
      () => db.stats().borrowed === 1 && db.stats().pending === 1,
      'a saturated pool',
    );
    const saturated = await probesSince(app, 'db', Date.now());
    assert.equal(saturated.status, 200);
    assert.ok(
      saturated.recent.every((h) => h.ok),
      `probes failed: ${JSON.stringify(saturated.recent)}`,
    );
    assert.ok(made.some((m) => m.probes > 0));

    healthy = false;
    await eventually(async () => (await readiness(app, 'db')).status === 503, 'down');
    assert.equal((await readiness(app, 'db')).check.status, 'down');
    hold.resolve();
    await eventually(() => leases.every((l) => l.settled), 'the leases to end');
  });

  it('Redis: /readyz stays 200 while every connection is leased and calls wait; a stopped server still turns it down', async () => {
    const redis = await startRedis();
    const hold = deferred();
    try {
      r = resilience({
        health: { details: true },
        resources: {
          redis: {
            cache: {
              url: redis.url,
              pool: { max: 2, maxWaiting: 2, acquireTimeout: '10s' },
              health: { interval: '10ms', timeout: '200ms', unhealthyThreshold: 1 },
            },
          },
        },
      });
      await r.ready();
      const app = express();
      app.use(r);
      const cache = r.resources.redis('cache');
      await eventually(async () => (await readiness(app, 'cache')).status === 200, 'ready');
      const leases: Tracked<unknown>[] = [];
      for (let i = 0; i < 4; i++) {
        leases.push(track(cache.withConnection(() => hold.promise, { timeoutMs: 15_000 })));
      }
      await eventually(
        () => cache.stats().borrowed === 2 && cache.stats().pending === 2,
        'a saturated pool',
      );
      const saturated = await probesSince(app, 'cache', Date.now());
      assert.equal(saturated.status, 200);
      assert.notEqual(saturated.check.status, 'down');
      assert.ok(
        saturated.recent.every((h) => h.ok),
        `probes failed: ${JSON.stringify(saturated.recent)}`,
      );
      assert.ok(leases.every((l) => !l.settled));

      hold.resolve();
      await eventually(() => leases.every((l) => l.settled), 'the leases to end');
      assert.ok(leases.every((l) => l.error === undefined));

      await redis.stop();
      await eventually(async () => (await readiness(app, 'cache')).status === 503, 'down');
      assert.equal((await readiness(app, 'cache')).check.status, 'down');
    } finally {
      hold.resolve();
      await r?.close({ grace: 0 });
      r = undefined;
      await redis.close();
    }
  });
});
