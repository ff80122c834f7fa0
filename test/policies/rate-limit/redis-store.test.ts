import assert from 'node:assert/strict';
import FakeTimers from '@sinonjs/fake-timers';
import type { Cluster, Redis } from 'ioredis';
import {
  InvalidArgumentError,
  ResourceUnavailableError,
  TimeoutError,
} from '../../../lib/errors.js';
import { rateLimitHeader, retryAfterSeconds } from '../../../lib/policies/rate-limit/headers.js';
import { MemoryStore } from '../../../lib/policies/rate-limit/memory-store.js';
import { RedisStore } from '../../../lib/policies/rate-limit/redis-store.js';
import {
  FIXED_WINDOW_SCRIPT,
  GCRA_SCRIPT,
} from '../../../lib/policies/rate-limit/redis/scripts.js';
import type { RateLimitDecision, RateLimitRule } from '../../../lib/policies/rate-limit/store.js';
import { IOREDIS_MAJORS } from '../../helpers/ioredis-majors.js';
import type { IoredisMajor } from '../../helpers/ioredis-majors.js';
import { redisCommand, startCluster, startRedis } from '../../helpers/redis-server.js';
import type { RedisCluster, RedisServer } from '../../helpers/redis-server.js';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function rule(
  algorithm: RateLimitRule['algorithm'],
  limit: number,
  windowMs: number,
  burst = 0,
): RateLimitRule {
  return Object.freeze({ algorithm, limit, windowMs, burst });
}

/** Redis's clock, in milliseconds (fractional): the time the scripts decide on. */
async function redisTime(port: number): Promise<number> {
  const reply = (await redisCommand(port, ['TIME'])) as string[];
  return Number(reply[0]) * 1000 + Number(reply[1]) / 1000;
}

/**
 * A fixed window (about an hour) that will not end within the next two minutes on Redis's
 * clock, so a test's requests all fall into one window.
 */
async function stableWindow(port: number): Promise<number> {
  const now = await redisTime(port);
  for (const w of [HOUR, HOUR - 7 * 60_000, HOUR - 13 * 60_000]) {
    if (w - (now % w) > 120_000) return w;
  }
  throw new Error('unreachable: the candidate windows end at different times');
}

/** A fail-fast client like the middleware's: no offline queue, no retries. */
async function connect(
  io: IoredisMajor,
  port: number,
  options: { keyPrefix?: string } = {},
): Promise<Redis> {
  const client = new io.Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    ...options,
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

/**
 * Fails the test if `promise` has not settled after `ms`: a hang detector (the property under
 * test is "settles before Redis would have answered"), not a speed assertion.
 */
async function settledWithin<T>(promise: Promise<T>, ms: number): Promise<PromiseSettledResult<T>> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still pending after ${ms} ms`)), ms);
  });
  try {
    const [result] = await Promise.race([Promise.allSettled([promise]), hung]);
    return result as PromiseSettledResult<T>;
  } finally {
    clearTimeout(timer);
  }
}

function rejection(result: PromiseSettledResult<unknown>): unknown {
  assert.equal(result.status, 'rejected', 'expected a rejection');
  return (result as PromiseRejectedResult).reason;
}

/**
 * Asserts Redis's decisions are the memory store's on the same sequence: every field exact,
 * except the time-dependent `resetMs`/`retryAfterMs`/`refillMs`, which must lie between the
 * memory store's answers at the first and the last Redis time read around the sequence.
 */
function assertSameDecisions(
  redis: readonly RateLimitDecision[],
  atStart: readonly RateLimitDecision[],
  atEnd: readonly RateLimitDecision[],
): void {
  assert.equal(redis.length, atStart.length);
  redis.forEach((d, i) => {
    const early = atStart[i]!;
    const late = atEnd[i]!;
    assert.equal(d.allowed, early.allowed, `decision ${i}: allowed`);
    assert.equal(d.limit, early.limit, `decision ${i}: limit`);
    assert.equal(d.remaining, early.remaining, `decision ${i}: remaining`);
    assert.equal(typeof d.refillMs, 'number', `decision ${i}: refillMs`);
    for (const field of ['resetMs', 'retryAfterMs', 'refillMs'] as const) {
      const [value, lo, hi] = [d[field]!, late[field]!, early[field]!];
      assert.ok(
        value <= hi && value >= lo,
        `decision ${i}: ${field} ${value} not within [${lo}, ${hi}]`,
      );
    }
  });
}

/**
 * Runs `costs` one after the other on Redis, then replays them on memory stores frozen at the
 * Redis times read before and after (GCRA replays every call at one instant, so the later
 * replay is shifted by the elapsed time; both bracket what Redis saw).
 */
async function compareWithMemory(
  store: RedisStore,
  port: number,
  key: string,
  r: RateLimitRule,
  costs: readonly number[],
): Promise<RateLimitDecision[]> {
  const t0 = await redisTime(port);
  const decisions: RateLimitDecision[] = [];
  for (const cost of costs) decisions.push(await store.consume(key, r, cost));
  const t1 = await redisTime(port);
  const replay = (at: number, shift: number): RateLimitDecision[] => {
    const memory = new MemoryStore({ clock: { now: () => at } });
    const out = costs.map((cost) => memory.consume(key, r, cost));
    memory.close();
    return out.map((d) => ({
      ...d,
      resetMs: Math.max(0, d.resetMs - shift),
      retryAfterMs: d.allowed ? 0 : Math.max(0, d.retryAfterMs - shift),
      refillMs: Math.max(0, d.refillMs! - shift),
    }));
  };
  const elapsed = Math.ceil(t1 - t0) + 1;
  // GCRA states are relative to the first call; fixed windows to the epoch.
  const late = r.algorithm === 'gcra' ? replay(t0, elapsed) : replay(t1, 0);
  assertSameDecisions(decisions, replay(t0, 0), late);
  return decisions;
}

for (const io of IOREDIS_MAJORS)
  describe(`RedisStore (${io.name} client)`, function () {
    let server: RedisServer;
    let client: Redis;
    const stores: RedisStore[] = [];
    let n = 0;
    /** A key no other test uses. */
    const fresh = (label: string): string => `${label}-${++n}`;

    function store(options: Partial<ConstructorParameters<typeof RedisStore>[0]> = {}): RedisStore {
      const s = new RedisStore({ client, ...options });
      stores.push(s);
      return s;
    }

    before(async () => {
      server = await startRedis();
      client = await connect(io, server.port);
    });
    afterEach(() => {
      for (const s of stores.splice(0)) s.close();
    });
    after(async () => {
      client?.disconnect();
      await server?.close();
    });

    it('decides a fixed window exactly as the memory store does, on Redis time', async () => {
      const s = store();
      const windowMs = await stableWindow(server.port);
      const decisions = await compareWithMemory(
        s,
        server.port,
        fresh('fixed'),
        rule('fixed-window', 5, windowMs),
        [1, 2, 1, 2, 1, 1, 1],
      );
      assert.deepEqual(
        decisions.map((d) => [d.allowed, d.remaining]),
        [
          [true, 4],
          [true, 2],
          [true, 1],
          [false, 1],
          [true, 0],
          [false, 0],
          [false, 0],
        ],
      );
      const last = decisions.at(-1)!;
      assert.equal(last.retryAfterMs, last.resetMs);
    });

    it('decides GCRA with burst exactly as the memory store does', async () => {
      const s = store();
      const decisions = await compareWithMemory(
        s,
        server.port,
        fresh('gcra'),
        rule('gcra', 4, HOUR, 2),
        [1, 1, 3, 2, 1, 1],
      );
      assert.deepEqual(
        decisions.map((d) => [d.allowed, d.limit, d.remaining]),
        [
          [true, 6, 5],
          [true, 6, 4],
          [true, 6, 1],
          [false, 6, 1],
          [true, 6, 0],
          [false, 6, 0],
        ],
      );
      // One emission interval (an hour / 4) until the next request fits.
      const denied = decisions.at(-1)!;
      assert.ok(denied.retryAfterMs > 0 && denied.retryAfterMs <= HOUR / 4);
      assert.ok(denied.resetMs <= (HOUR / 4) * 6);
      // More quota comes back when the next request fits, long before the quota is full.
      assert.equal(denied.refillMs, denied.retryAfterMs);
    });

    it('gives the RateLimit and Retry-After values of the memory store (GCRA, fixed window)', async () => {
      const s = store();
      const windowMs = await stableWindow(server.port);
      const cases = [
        rule('gcra', 2, HOUR),
        rule('gcra', 2, HOUR, 1),
        rule('fixed-window', 2, windowMs),
      ];
      for (const r of cases) {
        const quota = r.limit + r.burst;
        const costs = Array.from({ length: quota + 1 }, () => 1);
        // Every field, refillMs included, as the memory store computes it.
        const decisions = await compareWithMemory(s, server.port, fresh('headers'), r, costs);
        const denied = decisions.at(-1)!;
        assert.equal(denied.allowed, false);
        // On a 429, RateLimit's t is Retry-After, for every item listed.
        assert.equal(denied.refillMs, denied.retryAfterMs);
        const t = retryAfterSeconds(denied);
        const items = rateLimitHeader('p', denied, r).split(', ');
        assert.equal(items.length, r.burst > 0 ? 2 : 1);
        for (const item of items) assert.match(item, new RegExp(`;r=0;t=${t}$`));
        if (r.algorithm === 'gcra') {
          // The next request fits after one emission interval, long before the quota is full.
          const last = decisions.at(-2)!;
          assert.ok(last.refillMs! <= HOUR / 2, `refillMs ${last.refillMs}`);
          assert.ok(last.resetMs > HOUR / 2, `resetMs ${last.resetMs}`);
        }
      }
    });

    for (const algorithm of ['fixed-window', 'gcra'] as const) {
      it(`admits exactly the quota of concurrent requests (${algorithm})`, async () => {
        const s = store();
        const windowMs = algorithm === 'gcra' ? HOUR : await stableWindow(server.port);
        const r = rule(algorithm, 20, windowMs, algorithm === 'gcra' ? 5 : 0);
        const quota = r.limit + r.burst;
        const key = fresh(algorithm);
        const decisions = await Promise.all(Array.from({ length: 80 }, () => s.consume(key, r)));
        const allowed = decisions.filter((d) => d.allowed);
        assert.equal(allowed.length, quota);
        // Each allowed request saw a different count: the script ran atomically.
        assert.deepEqual(
          allowed.map((d) => d.remaining).sort((a, b) => a - b),
          Array.from({ length: quota }, (_, i) => i),
        );
        for (const d of decisions.filter((x) => !x.allowed)) {
          assert.equal(d.remaining, 0);
          assert.ok(d.retryAfterMs > 0);
        }
      });
    }

    it('prefixes keys and makes them expire when their quota is full again', async () => {
      const s = store();
      const windowMs = await stableWindow(server.port);
      const g = await s.consume('k1', rule('gcra', 10, 60_000));
      const pttl = (await redisCommand(server.port, ['PTTL', 'rl:k1'])) as number;
      assert.ok(pttl > 0 && pttl <= g.resetMs, `PTTL ${pttl}, resetMs ${g.resetMs}`);
      const f = await s.consume('k2', rule('fixed-window', 10, windowMs));
      const fixedTtl = (await redisCommand(server.port, ['PTTL', 'rl:k2'])) as number;
      assert.ok(fixedTtl > 0 && fixedTtl <= f.resetMs, `PTTL ${fixedTtl}, resetMs ${f.resetMs}`);

      const prefixed = await connect(io, server.port, { keyPrefix: 'app:' });
      try {
        const custom = new RedisStore({ client: prefixed, keyPrefix: 'limits/' });
        await custom.consume('k3', rule('gcra', 10, 60_000));
        custom.close();
        assert.equal(await redisCommand(server.port, ['EXISTS', 'app:limits/k3']), 1);
      } finally {
        prefixed.disconnect();
      }
    });

    it('decides the calls of one tick together: in call order, each on its own key and rule', async () => {
      const s = store();
      const g = rule('gcra', 5, HOUR);
      const f = rule('fixed-window', 3, await stableWindow(server.port));
      const [a, b, hash] = [fresh('tick-a'), fresh('tick-b'), fresh('tick-hash')];
      await redisCommand(server.port, ['HSET', `rl:${hash}`, 'f', 'v']);
      const results = await Promise.allSettled([
        s.consume(a, g),
        s.consume(b, f, 2),
        s.consume(a, g, 3),
        s.consume(hash, g),
        s.consume(a, g, 2),
        s.consume(b, f, 2),
      ]);
      const decided = (i: number) => {
        const result = results[i]!;
        assert.equal(result.status, 'fulfilled', String((result as PromiseRejectedResult).reason));
        const d = (result as PromiseFulfilledResult<RateLimitDecision>).value;
        return [d.allowed, d.limit, d.remaining];
      };
      assert.deepEqual(decided(0), [true, 5, 4]);
      assert.deepEqual(decided(1), [true, 3, 1]);
      assert.deepEqual(decided(2), [true, 5, 1]);
      assert.deepEqual(decided(4), [false, 5, 1]);
      assert.deepEqual(decided(5), [false, 3, 1]);
      // An error reply concerns its key: the others in the same script call are decided.
      const error = rejection(results[3]!);
      assert.ok(error instanceof io.ReplyError, String(error));
      assert.match((error as Error).message, /WRONGTYPE/);
    });

    it('decides many keys of one tick, over several script calls', async () => {
      const s = store();
      const r = rule('gcra', 1, HOUR);
      const keys = Array.from({ length: 100 }, () => fresh('many'));
      const first = await Promise.all(keys.map((key) => s.consume(key, r)));
      assert.ok(first.every((d) => d.allowed && d.remaining === 0));
      const second = await Promise.all(keys.map((key) => s.consume(key, r)));
      assert.ok(second.every((d) => !d.allowed && d.retryAfterMs > 0));

      const prefixed = await connect(io, server.port, { keyPrefix: 'app:' });
      try {
        const custom = new RedisStore({ client: prefixed, keyPrefix: 'limits/' });
        await Promise.all([custom.consume('m1', r), custom.consume('m2', r)]);
        custom.close();
        assert.equal(
          await redisCommand(server.port, ['EXISTS', 'app:limits/m1', 'app:limits/m2']),
          2,
        );
      } finally {
        prefixed.disconnect();
      }
    });

    it('sends the decisions of one tick in one script call, or maxBatch at a time', async () => {
      const evalshaCalls = async (): Promise<number> => {
        const info = (await redisCommand(server.port, ['INFO', 'commandstats'])) as string;
        return Number(/cmdstat_evalsha:calls=(\d+)/.exec(info)?.[1] ?? 0);
      };
      const r = rule('gcra', 5, HOUR);
      const callsFor = async (s: RedisStore): Promise<number> => {
        // The script is cached first: a NOSCRIPT would add a call.
        await s.consume(fresh('warm'), r);
        const before = await evalshaCalls();
        const decisions = await Promise.all(
          Array.from({ length: 10 }, () => s.consume(fresh('batch'), r)),
        );
        assert.ok(decisions.every((d) => d.allowed && d.remaining === 4));
        return (await evalshaCalls()) - before;
      };
      assert.equal(await callsFor(store()), 1);
      assert.equal(await callsFor(store({ maxBatch: 4 })), 3);
      assert.equal(await callsFor(store({ maxBatch: 1 })), 10);
    });

    it('reset() reaches Redis after the decisions asked for before it', async () => {
      const s = store();
      const key = fresh('reset-order');
      const [decision] = await Promise.all([s.consume(key, rule('gcra', 1, HOUR)), s.reset(key)]);
      assert.equal(decision.allowed, true);
      assert.equal(await redisCommand(server.port, ['EXISTS', `rl:${key}`]), 0);
    });

    it('writes nothing for a denied request', async () => {
      const s = store();
      const denied = await s.consume('never', rule('fixed-window', 1, HOUR), 2);
      assert.equal(denied.allowed, false);
      assert.equal(await redisCommand(server.port, ['EXISTS', 'rl:never']), 0);
    });

    it('reset() deletes the key', async () => {
      const s = store();
      const r = rule('gcra', 1, HOUR);
      assert.equal((await s.consume('r', r)).allowed, true);
      assert.equal((await s.consume('r', r)).allowed, false);
      await s.reset('r');
      assert.equal(await redisCommand(server.port, ['EXISTS', 'rl:r']), 0);
      assert.equal((await s.consume('r', r)).allowed, true);
    });

    it('reloads its script after NOSCRIPT (SCRIPT FLUSH, a restart or a failover)', async () => {
      const s = store();
      const r = rule('gcra', 3, HOUR);
      const key = fresh('noscript');
      assert.equal((await s.consume(key, r)).remaining, 2);
      await redisCommand(server.port, ['SCRIPT', 'FLUSH']);
      assert.deepEqual(await redisCommand(server.port, ['SCRIPT', 'EXISTS', GCRA_SCRIPT.sha]), [0]);
      // Several at once: every one of them gets NOSCRIPT and falls back to EVAL.
      const decisions = await Promise.all([s.consume(key, r), s.consume(key, r)]);
      assert.deepEqual(decisions.map((d) => d.remaining).sort(), [0, 1]);
      assert.deepEqual(await redisCommand(server.port, ['SCRIPT', 'EXISTS', GCRA_SCRIPT.sha]), [1]);
      await s.consume(key, rule('fixed-window', 3, HOUR));
      assert.deepEqual(
        await redisCommand(server.port, ['SCRIPT', 'EXISTS', FIXED_WINDOW_SCRIPT.sha]),
        [1],
      );
    });

    describe('with a skewed client clock', () => {
      let clock: ReturnType<typeof FakeTimers.install> | undefined;
      afterEach(() => clock?.uninstall());

      it('decides on Redis time, not the client clock', async () => {
        const s = store();
        const windowMs = await stableWindow(server.port);
        const r = rule('fixed-window', 5, windowMs);
        const before = await redisTime(server.port);
        // Three days and 17 minutes behind: another window position entirely.
        const skew = -(3 * DAY + 17 * 60_000 + 123);
        clock = FakeTimers.install({ toFake: ['Date'], now: Date.now() + skew });
        const decision = await s.consume(fresh('skew'), r);
        const localExpectation = windowMs - (Date.now() % windowMs);
        clock.uninstall();
        clock = undefined;
        const after = await redisTime(server.port);
        const expectedMax = Math.ceil(windowMs - (before % windowMs));
        const expectedMin = Math.floor(windowMs - (after % windowMs));
        assert.ok(
          decision.resetMs >= expectedMin && decision.resetMs <= expectedMax,
          `resetMs ${decision.resetMs} not within [${expectedMin}, ${expectedMax}]`,
        );
        assert.ok(Math.abs(decision.resetMs - localExpectation) > 60_000);
      });
    });

    it('rejects with TimeoutError when Redis does not answer within timeoutMs', async () => {
      const s = store({ timeoutMs: 50 });
      const r = rule('gcra', 10, HOUR);
      // The server holds every script (they write) for 2 s; the store must not wait for it.
      await redisCommand(server.port, ['CLIENT', 'PAUSE', 2000, 'WRITE']);
      try {
        const results = await Promise.all(
          [s.consume('paused-1', r), s.consume('paused-2', r)].map((p) => settledWithin(p, 1500)),
        );
        for (const result of results) {
          const error = rejection(result);
          assert.ok(error instanceof TimeoutError, String(error));
          assert.equal(error.timeoutMs, 50);
        }
      } finally {
        await redisCommand(server.port, ['CLIENT', 'UNPAUSE']);
      }
      // The replies that come late are ignored; the store keeps working.
      assert.equal((await s.consume(fresh('after-pause'), r)).allowed, true);
    });

    it('passes error replies through (they concern the key, not the server)', async () => {
      const s = store();
      await redisCommand(server.port, ['HSET', 'rl:hash', 'f', 'v']);
      const error = rejection(await settledWithin(s.consume('hash', rule('gcra', 10, HOUR)), 5000));
      assert.ok(error instanceof io.ReplyError, String(error));
      assert.match((error as Error).message, /WRONGTYPE/);
    });

    it('close() rejects pending and later calls with ResourceUnavailableError', async () => {
      const s = store();
      const r = rule('gcra', 10, HOUR);
      await redisCommand(server.port, ['CLIENT', 'PAUSE', 2000, 'WRITE']);
      try {
        const pending = s.consume('closing', r);
        s.close();
        s.close();
        assert.ok(
          rejection(await settledWithin(pending, 1500)) instanceof ResourceUnavailableError,
        );
        const later = await settledWithin(s.consume('closing', r), 1500);
        assert.ok(rejection(later) instanceof ResourceUnavailableError);
      } finally {
        await redisCommand(server.port, ['CLIENT', 'UNPAUSE']);
      }
    });

    it('rejects at once with ResourceUnavailableError while disconnected', async () => {
      const other = await startRedis();
      const c = await connect(io, other.port);
      try {
        const s = new RedisStore({ client: c, timeoutMs: 60_000 });
        await other.stop();
        const error = rejection(await settledWithin(s.consume('x', rule('gcra', 1, HOUR)), 5000));
        assert.ok(error instanceof ResourceUnavailableError, String(error));
        assert.ok((error as Error).cause instanceof Error);
        s.close();
      } finally {
        c.disconnect();
        await other.close();
      }
    });

    it('validates its options', () => {
      assert.throws(() => new RedisStore({ client: {} as Redis }), InvalidArgumentError);
      // What is missing is named: a client the store cannot use fails here, not at a request.
      assert.throws(
        () => new RedisStore({ client: { evalsha: () => undefined } as unknown as Redis }),
        (error: unknown) => error instanceof InvalidArgumentError && /eval\(\)/.test(error.message),
      );
      assert.throws(() => new RedisStore({ client: null as unknown as Redis }), /client/);
      assert.throws(
        () => new RedisStore({ client, keyPrefix: 1 as unknown as string }),
        /keyPrefix/,
      );
      for (const timeoutMs of [0, -1, Number.NaN, 2 ** 31]) {
        assert.throws(() => new RedisStore({ client, timeoutMs }), /timeoutMs/);
      }
      for (const maxBatch of [0, 1.5, 1001, Number.NaN]) {
        assert.throws(() => new RedisStore({ client, maxBatch }), /maxBatch/);
      }
      const s = store();
      assert.equal(s.kind, 'redis');
      assert.equal(s.keyPrefix, 'rl:');
      assert.equal(s.timeoutMs, 500);
      assert.equal(s.maxBatch, 16);
    });

    describe('on a three-master cluster', function () {
      // Forming a cluster (three servers, slot assignment, gossip) is set-up, not what is
      // measured: on a loaded host it takes longer than mocha's default timeout.
      this.timeout(60_000);
      let cluster: RedisCluster;
      let clusterClient: Cluster;

      before(async () => {
        cluster = await startCluster();
        clusterClient = new io.Cluster(
          cluster.nodes.map(({ host, port }) => ({ host, port })),
          { lazyConnect: true, enableOfflineQueue: false },
        );
        clusterClient.on('error', () => undefined);
        await clusterClient.connect();
      });
      after(async () => {
        clusterClient?.disconnect();
        await cluster?.close();
      });

      it('spreads keys over every master and decides each one exactly', async () => {
        const s = new RedisStore({ client: clusterClient, timeoutMs: 2000 });
        // One key per script call: a call's keys must share a slot.
        assert.equal(s.maxBatch, 1);
        try {
          const windowMs = await stableWindow(cluster.nodes[0]!.port);
          const r = rule('fixed-window', 2, windowMs);
          const keys = Array.from({ length: 60 }, (_, i) => `client-${i}`);
          // Three requests per key, all at once: two allowed each.
          const decisions = await Promise.all(
            keys.flatMap((key) => [s.consume(key, r), s.consume(key, r), s.consume(key, r)]),
          );
          assert.equal(decisions.filter((d) => d.allowed).length, keys.length * 2);
          for (const node of cluster.nodes) {
            const size = (await redisCommand(node.port, ['DBSIZE'])) as number;
            assert.ok(size > 0, `master ${node.port} holds no key`);
          }
          const g = rule('gcra', 1, HOUR);
          const again = await Promise.all(keys.map((key) => s.consume(`g:${key}`, g)));
          assert.ok(again.every((d) => d.allowed));
        } finally {
          s.close();
        }
      });
    });
  });
