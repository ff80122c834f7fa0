import assert from 'node:assert/strict';
import {
  admitted,
  assertAnswered,
  stableWindow,
  startInstances,
  statusCounts,
} from '../fixtures/distributed/instances.js';
import type { Answer, Instances } from '../fixtures/distributed/instances.js';
import { redisCommand, startSentinelTopology, waitFor } from '../helpers/redis-server.js';
import type { SentinelTopology } from '../helpers/redis-server.js';

// Raised, so these tests count only the shared counters; standalone.test.ts runs the default.
const STORE_TIMEOUT_MS = 5000;

describe('distributed rate limits: three instances through a Sentinel failover', function () {
  this.timeout(60_000);
  let topology: SentinelTopology;
  let apps: Instances;

  before(async () => {
    topology = await startSentinelTopology();
    const window = await stableWindow(topology.master.port);
    apps = await startInstances({
      middleware: {
        defaults: {
          breaker: { enabled: false },
          bulkhead: { enabled: false },
          rateLimit: {
            enabled: true,
            algorithm: 'fixed-window',
            limit: 50,
            window,
            key: 'header:x-client',
            store: 'redis:shared',
            // Locally each instance would allow 25: a fallback shows in the totals.
            expectedInstances: 2,
            storeTimeout: STORE_TIMEOUT_MS,
            storeRetryInterval: '200ms',
          },
        },
      },
      resources: {
        redis: {
          shared: {
            mode: 'sentinel',
            sentinels: topology.sentinels.map(({ host, port }) => ({ host, port })),
            masterName: topology.masterName,
          },
        },
      },
      metrics: { defaultMetrics: false },
    });
    await apps.warmUp(['/']);
  });
  after(async () => {
    await apps?.close();
    await topology?.close();
  });

  it('admits exactly the limit before, keeps answering during, and shares again after', async () => {
    const before = await apps.fire('/', 'before', 150);
    assertAnswered(before, STORE_TIMEOUT_MS);
    assert.deepEqual(statusCounts(before), { 200: 50, 429: 100 });
    const oldMaster = topology.master;

    // Requests keep coming while the sentinels promote the replica: the old master demotes
    // itself (READONLY), the clients reconnect through the sentinels, and meanwhile the
    // fallback decides. No error may reach a client.
    let failingOver = true;
    const during: Answer[] = [];
    const traffic = (async () => {
      for (let batch = 0; failingOver; batch++) {
        during.push(...(await apps.fire('/', `during-${batch}`, 15)));
      }
    })();
    try {
      await topology.failover();
    } finally {
      failingOver = false;
      await traffic;
    }
    assert.ok(during.length > 0);
    assertAnswered(during, STORE_TIMEOUT_MS);
    assert.notEqual(topology.master.port, oldMaster.port);

    // Each instance goes back to Redis, now the new master, on its own.
    for (const app of apps.all) {
      let n = 0;
      await waitFor(
        `instance ${app.index} to decide on the new master`,
        async () => {
          const client = `probe-${app.index}-${++n}`;
          const answer = await app.get('/', client);
          assert.ok(answer.status === 200 || answer.status === 429, `status ${answer.status}`);
          return (
            (await redisCommand(topology.master.port, ['EXISTS', `rl:default:h:${client}`])) === 1
          );
        },
        { timeoutMs: 20_000 },
      );
    }
    const fallbacks = await apps.metric('resilience_rate_limit_fallbacks_total');
    const after = await apps.fire('/', 'after', 150);
    assertAnswered(after, STORE_TIMEOUT_MS);
    assert.equal(admitted(after), 50);
    assert.equal(await apps.metric('resilience_rate_limit_fallbacks_total'), fallbacks);
  });
});
