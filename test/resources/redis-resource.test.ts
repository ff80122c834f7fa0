import assert from 'node:assert/strict';
import type { Cluster, Redis } from 'ioredis';
import { ReplyError } from 'ioredis';
import { resolveConfig } from '../../lib/config/index.js';
import type { RedisResourceConfig, ResilienceConfigInput } from '../../lib/config/types.js';
import {
  BreakerOpenError,
  InvalidArgumentError,
  PoolExhaustedError,
  ResourceUnavailableError,
  TimeoutError,
  isResilienceError,
} from '../../lib/errors.js';
import {
  REDIS_BREAKER_DEFAULTS,
  RedisResource,
  createRedisResource,
} from '../../lib/resources/redis-resource.js';
import type { RedisResourceOptions } from '../../lib/resources/redis-resource.js';
import {
  freePort,
  redisCommand,
  redisPipeline,
  startCluster,
  startRedis,
  startSentinelTopology,
  waitFor,
} from '../helpers/redis-server.js';
import type { RedisCluster, RedisServer, SentinelTopology } from '../helpers/redis-server.js';

type RedisInput = NonNullable<NonNullable<ResilienceConfigInput['resources']>['redis']>[string];

/** The resolved config of resource `cache`; retries back off 1-5 ms unless the test says. */
function redisConfig(input: RedisInput): RedisResourceConfig {
  return resolveConfig(
    {
      resources: {
        redis: {
          cache: { ...input, retry: { backoff: { initial: 1, max: 5 }, ...input.retry } },
        },
      },
    },
    { environment: {} },
  ).resources.redis.cache!;
}

/** Every error's message along its `cause` chain. */
function messages(err: unknown): string {
  const out: string[] = [];
  for (let e = err; e instanceof Error && out.length < 10; e = e.cause) out.push(e.message);
  return out.join(' <- ');
}

/**
 * Fails the test if `promise` has not settled after `ms` — a hang detector for "never a hung
 * promise", not a speed assertion. Resolves with the settled outcome.
 */
async function settled<T>(
  promise: Promise<T>,
  ms = 5000,
): Promise<{ value: T } | { error: unknown }> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hung = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`call still pending after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([
      promise.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      hung,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A typed, transient failure: what an outage may produce. */
function assertOutageError(error: unknown): void {
  assert.ok(
    error instanceof ResourceUnavailableError || error instanceof TimeoutError,
    `expected ResourceUnavailableError or TimeoutError, got ${String(error)}`,
  );
}

describe('RedisResource', function () {
  // Resources made in a test; each must end with nothing borrowed, then is closed.
  const resources: RedisResource[] = [];
  function resource(input: RedisInput, options?: RedisResourceOptions): RedisResource {
    const r = createRedisResource(redisConfig(input), options);
    resources.push(r);
    return r;
  }
  afterEach(async () => {
    const open = resources.splice(0);
    try {
      for (const r of open) {
        // A destroyed or released member is counted back synchronously after its call
        // settled, but give the pool's own promise callbacks a turn.
        await waitFor(`${r.name} to have nothing borrowed`, () => r.stats().borrowed === 0, {
          timeoutMs: 2000,
        });
        assert.equal(r.stats().borrowed, 0);
      }
    } finally {
      await Promise.all(open.map((r) => r.close()));
    }
  });

  describe('configuration', () => {
    it('rejects sentinel mode without sentinels and cluster mode without nodes', () => {
      const base = redisConfig({});
      assert.throws(
        () => new RedisResource({ ...base, mode: 'sentinel', sentinels: [] }),
        (err: unknown) =>
          err instanceof InvalidArgumentError && /cache\.sentinels/.test(err.message),
      );
      assert.throws(
        () => new RedisResource({ ...base, mode: 'cluster', nodes: [] }),
        (err: unknown) => err instanceof InvalidArgumentError && /cache\.nodes/.test(err.message),
      );
    });

    it('describes its target without credentials', () => {
      const r = resource({ url: 'redis://app:s3cret@10.0.0.7:6390/2' });
      assert.equal(r.target, '10.0.0.7:6390/2');
      assert.equal(r.mode, 'standalone');
      assert.equal(r.kind, 'redis');
    });

    it('rejects an empty command name and a non-function lease', async () => {
      const r = resource({ port: await freePort() });
      await assert.rejects(r.command(''), InvalidArgumentError);
      await assert.rejects(
        r.withConnection(undefined as unknown as () => Promise<void>),
        InvalidArgumentError,
      );
      await assert.rejects(
        r.withConnection(() => Promise.resolve(), { commandTimeoutMs: -1 }),
        InvalidArgumentError,
      );
    });
  });

  describe('standalone', () => {
    let server: RedisServer;
    before(async () => {
      server = await startRedis({ password: 's3cret' });
    });
    after(() => server?.close());
    const url = () => `redis://:s3cret@127.0.0.1:${server.port}`;
    const raw = (args: (string | number)[]) =>
      redisCommand(server.port, args, { password: 's3cret' });

    it('runs commands with the key prefix and password', async () => {
      const r = resource({ url: url(), keyPrefix: 'app:' });
      assert.equal(await r.command('SET', 'greeting', 'hello'), 'OK');
      assert.equal(await r.command('get', 'greeting'), 'hello');
      assert.equal(await r.command('HSET', 'h', 'a', 1, 'b', Buffer.from('2')), 2);
      // Raw replies: command() does not apply ioredis's per-method reply transformers.
      assert.deepEqual(await r.command('HGETALL', 'h'), ['a', '1', 'b', '2']);
      assert.equal(await r.command('GET', 'missing'), null);
      // The prefix is on the server's side of the key, for leases too.
      assert.equal(await raw(['GET', 'app:greeting']), 'hello');
      assert.equal(await r.withConnection((conn) => conn.call('EXISTS', 'greeting')), 1);
    });

    it('probe() answers PING', async () => {
      const r = resource({ url: url() });
      await r.probe(new AbortController().signal);
    });

    it('passes error replies through as ReplyError, not retried, not a breaker failure', async () => {
      const r = resource(
        { url: url(), pool: { min: 0, max: 1 } },
        {
          breaker: {
            ...REDIS_BREAKER_DEFAULTS,
            window: { type: 'consecutive', size: 2 },
          },
        },
      );
      const retries: number[] = [];
      r.onRetry((attempt) => retries.push(attempt));
      await r.command('SET', 'str', 'x');
      for (let i = 0; i < 4; i++) {
        await assert.rejects(r.command('LPUSH', 'str', 'y'), (err: unknown) => {
          assert.ok(err instanceof ReplyError, String(err));
          assert.match((err as Error).message, /^WRONGTYPE/);
          assert.ok(!isResilienceError(err));
          return true;
        });
      }
      assert.deepEqual(retries, []);
      assert.equal(r.breaker?.state, 'closed');
      // The connection stayed in the pool: the same single member serves the next call.
      assert.equal(r.stats().size, 1);
      assert.equal(await r.command('GET', 'str'), 'x');
    });

    it('runs MULTI/EXEC on one connection', async () => {
      const r = resource({ url: url() });
      const result = await r.withConnection((conn) =>
        conn.multi().set('tx:a', '1').incr('tx:a').get('tx:a').exec(),
      );
      assert.deepEqual(result, [
        [null, 'OK'],
        [null, 2],
        [null, '2'],
      ]);
    });

    it('WATCH: EXEC aborts when the watched key changed meanwhile', async () => {
      const r = resource({ url: url(), pool: { min: 0, max: 2 } });
      await r.command('SET', 'w:key', 'v0');
      const exec = await r.withConnection(async (conn) => {
        await conn.watch('w:key');
        // Another member writes between WATCH and EXEC.
        await r.command('SET', 'w:key', 'other');
        return conn.multi().set('w:key', 'mine').exec();
      });
      assert.equal(exec, null);
      assert.equal(await r.command('GET', 'w:key'), 'other');
    });

    it('clears a WATCH a lease left behind before the next borrower', async () => {
      const r = resource({ url: url(), pool: { min: 0, max: 1 } });
      await r.command('SET', 'w:left', 'v0');
      // An optimistic transaction abandoned before EXEC.
      await r.withConnection(async (conn) => {
        await conn.watch('w:left');
        return conn.get('w:left');
      });
      // Changed by someone else after the abandoned WATCH.
      await raw(['SET', 'w:left', 'changed']);
      // Same (only) member: without the UNWATCH its EXEC would abort (null).
      const exec = await r.withConnection((conn) => conn.multi().set('w:left', 'next').exec());
      assert.deepEqual(exec, [[null, 'OK']]);
    });

    it('lets a lease raise the command timeout for a blocking command', async () => {
      const r = resource({ url: url(), commandTimeout: '100ms' });
      // BLPOP 0.3 s on an empty list: longer than commandTimeout.
      await assert.rejects(
        r.withConnection((conn) => (conn as Redis).blpop('empty-list', 0.3)),
        (err: unknown) =>
          err instanceof TimeoutError && /command timed out after 100 ms/.test(err.message),
      );
      const popped = await r.withConnection((conn) => (conn as Redis).blpop('empty-list', 0.3), {
        commandTimeoutMs: 2000,
        timeoutMs: 3000,
      });
      assert.equal(popped, null);
      // The raised timeout ended with the lease.
      await assert.rejects(
        r.withConnection((conn) => (conn as Redis).blpop('empty-list', 0.3)),
        TimeoutError,
      );
    });

    it('a command the server does not answer in time fails with TimeoutError', async () => {
      const r = resource({ url: url(), commandTimeout: '100ms' });
      const retries: number[] = [];
      r.onRetry((attempt) => retries.push(attempt));
      await r.command('SET', 'n', 0);
      // Writes wait until unpaused; the connection itself stays up.
      assert.equal(await raw(['CLIENT', 'PAUSE', 10_000, 'WRITE']), 'OK');
      try {
        const outcome = await settled(r.command('INCR', 'n'));
        assert.ok('error' in outcome);
        assert.ok(outcome.error instanceof TimeoutError, String(outcome.error));
        assert.equal(outcome.error.timeoutMs, 100);
        // INCR may have run: not retried.
        assert.deepEqual(retries, []);
      } finally {
        await raw(['CLIENT', 'UNPAUSE']);
      }
    });
  });

  describe('server state and the offline queue', () => {
    let primary: RedisServer;
    let other: RedisServer;
    before(async () => {
      [primary, other] = await Promise.all([startRedis(), startRedis()]);
    });
    after(() => Promise.all([primary?.close(), other?.close()]));

    it('READONLY from a demoted master never reaches the caller as a reply', async () => {
      const r = resource({ port: primary.port, pool: { min: 0, max: 2 }, retry: { attempts: 3 } });
      const retries: number[] = [];
      r.onRetry((attempt) => retries.push(attempt));
      assert.equal(await r.command('INCR', 'n'), 1);
      // Demoted under the resource's feet, as a sentinel failover does to the old master.
      await redisCommand(primary.port, ['REPLICAOF', '127.0.0.1', other.port]);
      try {
        const outcome = await settled(r.command('INCR', 'n'));
        assert.ok('error' in outcome);
        assert.ok(!(outcome.error instanceof ReplyError), messages(outcome.error));
        assert.ok(outcome.error instanceof ResourceUnavailableError, messages(outcome.error));
        // INCR did not run, so even a non-idempotent command was retried.
        assert.deepEqual(retries, [2, 3]);
      } finally {
        await redisCommand(primary.port, ['REPLICAOF', 'NO', 'ONE']);
      }
      await waitFor('writes to work again', async () =>
        r.command('SET', 'w', '1').then(
          () => true,
          () => false,
        ),
      );
    });

    it('offlineQueue > 0: a command on a dropped connection waits for the reconnect', async () => {
      const queued = resource({ port: other.port, offlineQueue: 10, commandTimeout: '2s' });
      const direct = resource({ port: other.port, offlineQueue: 0, commandTimeout: '2s' });
      await queued.command('SET', 'q', 'v');
      const dropThen = (r: RedisResource) =>
        settled(
          r.withConnection(async (conn) => {
            // Kills every normal client connection, this one included.
            await redisCommand(other.port, ['CLIENT', 'KILL', 'TYPE', 'normal']);
            return conn.call('GET', 'q');
          }),
        );
      const withQueue = await dropThen(queued);
      assert.deepEqual(withQueue, { value: 'v' });
      const withoutQueue = await dropThen(direct);
      assert.ok('error' in withoutQueue);
      assert.ok(
        withoutQueue.error instanceof ResourceUnavailableError,
        messages(withoutQueue.error),
      );
    });
  });

  describe('outage: server killed and restarted', () => {
    let server: RedisServer;
    before(async () => {
      server = await startRedis();
    });
    after(() => server?.close());

    it('fails fast with typed errors, then recovers with fresh connections', async function () {
      this.timeout(30_000);
      const r = resource(
        { port: server.port, pool: { min: 2, max: 4 }, commandTimeout: '300ms' },
        { breaker: { ...REDIS_BREAKER_DEFAULTS, enabled: false } },
      );
      await r.start();
      await Promise.all([r.command('SET', 'k', 'v'), r.command('GET', 'k'), r.command('PING')]);
      const before = new Set<Redis | Cluster>();
      await Promise.all(
        [0, 1, 2].map(() =>
          r.withConnection(async (conn) => {
            before.add(conn);
            await conn.ping();
          }),
        ),
      );

      await server.stop();

      // Reads (retried), writes (not retried), leases and the probe all settle, typed.
      const outcomes = await Promise.all(
        [
          r.command('GET', 'k'),
          r.command('INCR', 'counter'),
          r.command('SET', 'k', 'v2'),
          r.withConnection((conn) => conn.multi().incr('counter').exec()),
          r.probe(new AbortController().signal),
        ].map((call) => settled(call)),
      );
      for (const outcome of outcomes) {
        assert.ok('error' in outcome, 'a call succeeded with the server down');
        assertOutageError(outcome.error);
        if (process.env.REDIS_TEST_VERBOSE) console.log(`    ${messages(outcome.error)}`);
      }
      // Later calls too, once the pool knows it cannot connect.
      for (let i = 0; i < 5; i++) {
        const outcome = await settled(r.command('GET', 'k'));
        assert.ok('error' in outcome);
        assertOutageError(outcome.error);
      }
      assert.equal(r.stats().borrowed, 0);

      await server.restart();
      // The pool retries creation with backoff: calls succeed again within a few seconds.
      await waitFor(
        'the resource to recover',
        async () => (await r.command('SET', 'k', 'after')) === 'OK',
        { timeoutMs: 15_000 },
      );
      assert.equal(await r.command('GET', 'k'), 'after');
      await r.probe(new AbortController().signal);
      const after = await Promise.all(
        [0, 1].map(() => r.withConnection(async (conn) => ({ conn, status: conn.status }))),
      );
      // The members that lived through the crash were borrowed during the outage, failed
      // validation (not ready) or their call, and were destroyed: fresh ones serve now.
      for (const { conn, status } of after) {
        assert.equal(status, 'ready');
        assert.ok(!before.has(conn), 'a member from before the crash is still in use');
      }
    });

    it('connection failures count for the breaker, which then rejects at once', async () => {
      const r = resource(
        { port: server.port, pool: { min: 0, max: 2 } },
        {
          breaker: {
            ...REDIS_BREAKER_DEFAULTS,
            window: { type: 'consecutive', size: 2 },
            halfOpenAfter: 60_000,
            openBackoff: { multiplier: 1, max: 60_000 },
          },
        },
      );
      await r.command('PING');
      await server.stop();
      try {
        for (let i = 0; i < 2; i++) {
          const outcome = await settled(r.command('INCR', 'x'));
          assert.ok('error' in outcome);
          assertOutageError(outcome.error);
        }
        await assert.rejects(r.command('GET', 'x'), BreakerOpenError);
      } finally {
        await server.restart();
      }
    });

    it('never puts credentials in errors', async () => {
      const port = await freePort();
      const r = resource({ url: `redis://app:s3cret-pw@127.0.0.1:${port}` });
      const outcome = await settled(r.command('GET', 'k'));
      assert.ok('error' in outcome);
      assertOutageError(outcome.error);
      assert.doesNotMatch(messages(outcome.error), /s3cret-pw/);
      const probe = await settled(r.probe(new AbortController().signal));
      assert.ok('error' in probe);
      assert.doesNotMatch(messages(probe.error), /s3cret-pw/);
    });
  });

  describe('sentinel', function () {
    this.timeout(40_000);
    let topology: SentinelTopology;
    before(async () => {
      topology = await startSentinelTopology();
    });
    after(() => topology?.close());

    it('follows a failover: writes keep working, no READONLY reaches the caller', async () => {
      const r = resource({
        mode: 'sentinel',
        sentinels: topology.sentinels.map(({ host, port }) => ({ host, port })),
        masterName: topology.masterName,
        pool: { min: 2, max: 4 },
        commandTimeout: '500ms',
        retry: { attempts: 3 },
      });
      await r.start();
      assert.equal(await r.command('SET', 'before', '1'), 'OK');

      const errors: unknown[] = [];
      let ok = 0;
      let stop = false;
      let seq = 0;
      const worker = async () => {
        while (!stop) {
          const i = seq++;
          const name = i % 2 === 0 ? 'SET' : 'INCR';
          const outcome = await settled(
            name === 'SET' ? r.command('SET', `loop:${i}`, i) : r.command('INCR', 'loop:count'),
          );
          if ('error' in outcome) {
            errors.push(Object.assign(outcome.error as Error, { command: name }));
            // A call refused without I/O (pool closed) must not starve the event loop.
            await new Promise((resolve) => setImmediate(resolve));
          } else {
            ok++;
          }
        }
      };
      const workers = [worker(), worker(), worker(), worker()];
      try {
        const oldMaster = topology.master.port;
        await topology.failover();
        assert.notEqual(topology.master.port, oldMaster);
        // Keep writing until a write lands on the new master.
        const marker = `after:${Date.now()}`;
        await waitFor(
          'a write to reach the new master',
          async () => {
            await r.command('SET', 'marker', marker).catch(() => undefined);
            return (await redisCommand(topology.master.port, ['GET', 'marker'])) === marker;
          },
          { timeoutMs: 15_000 },
        );
      } finally {
        stop = true;
        await Promise.all(workers);
      }

      for (const error of errors) {
        assert.ok(
          !(error instanceof ReplyError),
          `a reply error reached the caller: ${messages(error)}`,
        );
        // Typed and transient; PoolExhaustedError too: a caller can wait out acquireTimeout
        // while members are recreated through the sentinels.
        if (!(error instanceof PoolExhaustedError)) assertOutageError(error);
        assert.doesNotMatch(messages(error), /READONLY/);
      }
      // What the caller saw during the switch, for the record.
      const summary = new Map<string, number>();
      for (const error of errors) {
        const key = `${(error as { command?: string }).command} ${(error as Error).name}: ${messages(error).replace(/\d+/g, 'N')}`;
        summary.set(key, (summary.get(key) ?? 0) + 1);
      }
      if (process.env.REDIS_TEST_VERBOSE) {
        console.log(`    ${ok} writes ok, ${errors.length} failed:`, summary);
      }
      assert.ok(ok > 0);
      assert.equal(await r.command('GET', 'before'), '1');
      assert.equal(await r.command('INCR', 'after-failover'), 1);
      await r.probe(new AbortController().signal);
    });
  });

  describe('cluster', function () {
    this.timeout(30_000);
    let cluster: RedisCluster;
    before(async () => {
      cluster = await startCluster();
    });
    after(() => cluster?.close());

    function clusterResource(): RedisResource {
      return resource({
        mode: 'cluster',
        nodes: cluster.nodes.map(({ host, port }) => ({ host, port })),
        keyPrefix: 't:',
        pool: { min: 1, max: 2 },
      });
    }

    it('spreads keys over the masters and reads them back', async () => {
      const r = clusterResource();
      for (let i = 0; i < 60; i++) assert.equal(await r.command('SET', `key:${i}`, i), 'OK');
      for (let i = 0; i < 60; i++) assert.equal(await r.command('GET', `key:${i}`), String(i));
      const sizes = await Promise.all(
        cluster.nodes.map(({ port }) => redisCommand(port, ['DBSIZE'])),
      );
      for (const size of sizes)
        assert.ok(Number(size) > 0, `a master holds no keys: ${String(sizes)}`);
      await r.probe(new AbortController().signal);
    });

    it('runs multi-key commands and transactions on one hash slot', async () => {
      const r = clusterResource();
      assert.equal(await r.command('MSET', '{user:1}:name', 'ada', '{user:1}:age', 36), 'OK');
      assert.deepEqual(await r.command('MGET', '{user:1}:name', '{user:1}:age'), ['ada', '36']);
      const exec = await r.withConnection((conn) =>
        conn.multi().incr('{user:1}:visits').incr('{user:1}:visits').exec(),
      );
      assert.deepEqual(exec, [
        [null, 1],
        [null, 2],
      ]);
      await assert.rejects(
        r.withConnection(() => Promise.resolve(), { commandTimeoutMs: 1000 }),
        InvalidArgumentError,
      );
    });

    it('follows ASK during a slot migration and MOVED after it', async () => {
      const r = clusterResource();
      // Learn the slot map first, so the redirections below come from a stale map.
      await r.command('SET', '{mig}:warm', 'x');
      await r.command('DEL', '{mig}:warm');
      const slot = Number(
        await redisCommand(cluster.nodes[0]!.port, ['CLUSTER', 'KEYSLOT', 't:{mig}:k']),
      );
      const owners = (await redisCommand(cluster.nodes[0]!.port, ['CLUSTER', 'SLOTS'])) as [
        number,
        number,
        [string, number, string],
      ][];
      const range = owners.find(([from, to]) => slot >= from && slot <= to)!;
      const sourcePort = range[2][1];
      const sourceId = range[2][2];
      const targetPort = cluster.nodes.find(({ port }) => port !== sourcePort)!.port;
      const targetId = String(await redisCommand(targetPort, ['CLUSTER', 'MYID']));

      // Migration in progress: keys missing on the source are redirected with ASK.
      await redisCommand(targetPort, ['CLUSTER', 'SETSLOT', slot, 'IMPORTING', sourceId]);
      await redisCommand(sourcePort, ['CLUSTER', 'SETSLOT', slot, 'MIGRATING', targetId]);
      assert.equal(await r.command('SET', '{mig}:k', 'asked'), 'OK');
      assert.equal(await r.command('GET', '{mig}:k'), 'asked');
      const [, onTarget] = await redisPipeline(targetPort, [['ASKING'], ['GET', 't:{mig}:k']]);
      assert.equal(onTarget, 'asked');

      // Migration done: the client's map is stale, the old owner answers MOVED.
      for (const { port } of cluster.nodes) {
        await redisCommand(port, ['CLUSTER', 'SETSLOT', slot, 'NODE', targetId]);
      }
      assert.equal(await r.command('SET', '{mig}:k', 'moved'), 'OK');
      assert.equal(await r.command('GET', '{mig}:k'), 'moved');
      assert.equal(await redisCommand(targetPort, ['GET', 't:{mig}:k']), 'moved');
    });
  });
});
