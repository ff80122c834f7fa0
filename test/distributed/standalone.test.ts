import assert from 'node:assert/strict';
import type { ResilienceConfigInput } from '../../lib/config/types.js';
import {
  admitted,
  assertAnswered,
  stableWindow,
  startInstances,
  statusCounts,
} from '../fixtures/distributed/instances.js';
import type { Answer, Instances } from '../fixtures/distributed/instances.js';
import { redisCommand, startRedis, waitFor } from '../helpers/redis-server.js';
import type { RedisServer } from '../helpers/redis-server.js';

const DAY = 24 * 3_600_000;
/**
 * The exactness tests run with the default store timeout (500 ms of silence): three
 * instances, Redis and the load generator sharing a CI runner's few cores answer 300
 * concurrent requests slowly, and a slow reply must not turn into a local decision. The
 * outage route keeps a timeout well below Redis's pause, so its fallback still shows.
 */
const STORE_TIMEOUT_MS = 500;
const OUTAGE_TIMEOUT_MS = 1000;
const PAUSE_MS = 5000;

describe('distributed rate limits: three instances on one Redis', function () {
  this.timeout(60_000);
  let server: RedisServer;
  let apps: Instances;

  before(async () => {
    server = await startRedis();
    const window = await stableWindow(server.port);
    const config: ResilienceConfigInput = {
      middleware: {
        defaults: {
          breaker: { enabled: false },
          bulkhead: { enabled: false },
          rateLimit: {
            key: 'header:x-client',
            store: 'redis:shared',
            expectedInstances: 3,
            storeRetryInterval: '200ms',
          },
        },
        routes: [
          {
            name: 'fixed',
            match: 'GET /fixed',
            rateLimit: { enabled: true, algorithm: 'fixed-window', limit: 50, window },
          },
          {
            name: 'gcra',
            match: 'GET /gcra',
            rateLimit: { enabled: true, algorithm: 'gcra', limit: 50, window: '1h' },
          },
          {
            // Locally each instance allows 30 / 2 = 15: a fallback shows in the totals.
            name: 'outage',
            match: 'GET /outage',
            rateLimit: {
              enabled: true,
              limit: 30,
              window: '1h',
              expectedInstances: 2,
              storeTimeout: OUTAGE_TIMEOUT_MS,
            },
          },
        ],
      },
      resources: { redis: { shared: { url: server.url } } },
      metrics: { defaultMetrics: false },
    };
    // Clocks hours and days apart: the scripts read Redis's.
    apps = await startInstances(config, { clockSkewsMs: [0, 37 * 60_000 + 11, -2 * DAY - 5] });
    await apps.warmUp(['/fixed', '/gcra', '/outage']);
  });
  after(async () => {
    await apps?.close();
    await server?.close();
  });

  it('a fixed window admits exactly its limit of 300 concurrent requests in total', async () => {
    const answers = await apps.fire('/fixed', 'c1', 300);
    assertAnswered(answers, STORE_TIMEOUT_MS);
    assert.deepEqual(statusCounts(answers), { 200: 50, 429: 250 });
    // Every instance took part, and none fell back.
    for (let i = 0; i < 3; i++) assert.ok(answers.some((a) => a.instance === i));
    assert.equal(await apps.metric('resilience_rate_limit_fallbacks_total'), 0);
    assert.equal(await redisCommand(server.port, ['EXISTS', 'rl:fixed:h:c1']), 1);
  });

  it('GCRA admits its limit of 300 concurrent requests, within one request', async () => {
    const answers = await apps.fire('/gcra', 'c1', 300);
    assertAnswered(answers, STORE_TIMEOUT_MS);
    const n = admitted(answers);
    assert.ok(n === 50 || n === 51, `admitted ${n}`);
    assert.equal(await apps.metric('resilience_rate_limit_fallbacks_total'), 0);
  });

  it('answers a flood from a client over its limit from the block cache', async () => {
    const hitsBefore = await apps.metric('resilience_rate_limit_block_cache_hits_total', {
      route: 'fixed',
    });
    const callsBefore = await apps.metric('resilience_rate_limit_store_duration_seconds_count', {
      route: 'fixed',
    });
    // Every instance saw c1 denied by Redis above: none of these needs a round trip.
    const answers = await apps.fire('/fixed', 'c1', 90);
    assert.deepEqual(statusCounts(answers), { 429: 90 });
    const hits = await apps.metric('resilience_rate_limit_block_cache_hits_total', {
      route: 'fixed',
    });
    assert.equal(hits - hitsBefore, 90);
    assert.equal(
      await apps.metric('resilience_rate_limit_store_duration_seconds_count', { route: 'fixed' }),
      callsBefore,
    );
  });

  it('Redis stops answering: the fallback decides within the store timeout', async () => {
    // Scripts write, so the server holds them all: only the store timeout ends the wait.
    await redisCommand(server.port, ['CLIENT', 'PAUSE', PAUSE_MS, 'WRITE']);
    let answers: Answer[];
    try {
      answers = await apps.fire('/outage', 'paused', 60);
    } finally {
      await redisCommand(server.port, ['CLIENT', 'UNPAUSE']);
    }
    assertAnswered(answers, OUTAGE_TIMEOUT_MS);
    // 15 per instance, decided locally.
    assert.equal(admitted(answers), 45);
    for (const app of apps.all) {
      assert.ok(
        (await app.metric('resilience_rate_limit_fallbacks_total', { route: 'outage' })) > 0,
      );
    }
    assert.ok(
      (await apps.metric('resilience_rate_limit_store_duration_seconds_count', {
        route: 'outage',
        outcome: 'timeout',
      })) > 0,
    );
  });

  it('Redis killed: every request is answered at once; back to Redis after its restart', async () => {
    await server.stop();
    const down = await apps.fire('/outage', 'killed', 60);
    assertAnswered(down, OUTAGE_TIMEOUT_MS);
    assert.equal(admitted(down), 45);
    assert.equal(await apps.metric('resilience_rate_limit_store_up', { route: 'outage' }), 0);
    // With the default storeTimeout too: a refused connection is an outage at once, and no
    // decision waited for the timeout.
    const fixedDown = await apps.fire('/fixed', 'killed', 30);
    assertAnswered(fixedDown, STORE_TIMEOUT_MS);
    assert.equal(admitted(fixedDown), 30);
    assert.equal(
      await apps.metric('resilience_rate_limit_fallbacks_total', {
        route: 'fixed',
        reason: 'timeout',
      }),
      0,
    );

    await server.restart();
    // Each instance's client reconnects (with backoff) and its store probes Redis again.
    for (const app of apps.all) {
      let n = 0;
      await waitFor(
        `instance ${app.index} to use Redis again`,
        async () => {
          const client = `probe-${app.index}-${++n}`;
          await app.get('/outage', client);
          return (
            (await redisCommand(server.port, ['EXISTS', `rl:outage:h:${client}`])) === 1 &&
            (await app.metric('resilience_rate_limit_store_up', { route: 'outage' })) === 1
          );
        },
        { timeoutMs: 15_000 },
      );
    }
    const fallbacksBefore = await apps.metric('resilience_rate_limit_fallbacks_total');
    const up = await apps.fire('/outage', 'recovered', 60);
    assertAnswered(up, OUTAGE_TIMEOUT_MS);
    // Shared again: 30 in total, not 15 per instance.
    assert.equal(admitted(up), 30);
    assert.equal(await apps.metric('resilience_rate_limit_fallbacks_total'), fallbacksBefore);
  });
});
