import assert from 'node:assert/strict';
import {
  admitted,
  assertAnswered,
  stableWindow,
  startInstances,
  statusCounts,
} from '../fixtures/distributed/instances.js';
import type { Instances } from '../fixtures/distributed/instances.js';
import { redisCommand, startCluster } from '../helpers/redis-server.js';
import type { RedisCluster } from '../helpers/redis-server.js';

// The default: see standalone.test.ts.
const STORE_TIMEOUT_MS = 500;

describe('distributed rate limits: three instances on a three-master Redis Cluster', function () {
  this.timeout(60_000);
  let cluster: RedisCluster;
  let apps: Instances;

  before(async () => {
    cluster = await startCluster();
    const window = await stableWindow(cluster.nodes[0]!.port);
    apps = await startInstances({
      middleware: {
        defaults: {
          breaker: { enabled: false },
          bulkhead: { enabled: false },
          rateLimit: {
            key: 'header:x-client',
            store: 'redis:shared',
            expectedInstances: 3,
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
            name: 'spread',
            match: 'GET /spread',
            rateLimit: { enabled: true, algorithm: 'fixed-window', limit: 2, window },
          },
        ],
      },
      resources: {
        redis: {
          shared: {
            mode: 'cluster',
            nodes: cluster.nodes.map(({ host, port }) => ({ host, port })),
          },
        },
      },
      metrics: { defaultMetrics: false },
    });
    await apps.warmUp(['/fixed', '/gcra', '/spread']);
  });
  after(async () => {
    await apps?.close();
    await cluster?.close();
  });

  it('a fixed window admits exactly its limit of 300 concurrent requests', async () => {
    const answers = await apps.fire('/fixed', 'c1', 300);
    assertAnswered(answers, STORE_TIMEOUT_MS);
    assert.deepEqual(statusCounts(answers), { 200: 50, 429: 250 });
  });

  it('GCRA admits its limit of 300 concurrent requests, within one request', async () => {
    const answers = await apps.fire('/gcra', 'c1', 300);
    assertAnswered(answers, STORE_TIMEOUT_MS);
    const n = admitted(answers);
    assert.ok(n === 50 || n === 51, `admitted ${n}`);
  });

  it('spreads clients over every master, each limited exactly', async () => {
    const clients = Array.from({ length: 40 }, (_, i) => `client-${i}`);
    const answers = (
      await Promise.all(clients.map((client) => apps.fire('/spread', client, 3)))
    ).flat();
    assertAnswered(answers, STORE_TIMEOUT_MS);
    assert.equal(admitted(answers), clients.length * 2);
    for (const node of cluster.nodes) {
      assert.ok(((await redisCommand(node.port, ['DBSIZE'])) as number) > 0, `${node.port} empty`);
    }
    assert.equal(await apps.metric('resilience_rate_limit_fallbacks_total'), 0);
  });
});
