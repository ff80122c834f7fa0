// Redis: rate-limit decisions per second against a shared Redis, 50 in flight, 1,000 keys.
// The decisions are made in this process (pinned to the load CPU): the client side is what is
// measured, against a dedicated redis-server on the other CPU. Each limiter gets its own
// ioredis client, set up the way its documentation recommends.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

import { createServer } from 'node:net';
import { Redis } from 'ioredis';
import { RedisStore as RateLimitRedisStore } from 'rate-limit-redis';
import { RateLimiterRedis } from 'rate-limiter-flexible';
import { TASKSET } from '../../../examples/launch.js';
import { processCpuSeconds } from '../process-cpu.js';
import { RedisStore } from '../../../lib/policies/rate-limit/redis-store.js';
import { ResilientStore } from '../../../lib/policies/rate-limit/resilient-store.js';
import type { RateLimitDecision, RateLimitRule } from '../../../lib/policies/rate-limit/store.js';
import {
  contender,
  fmt,
  ratioText,
  type Benchmark,
  type Contender,
  type Sample,
} from '../harness.js';

const HOST = '127.0.0.1';
const KEYS = Array.from({ length: 1000 }, (_, i) => `client-${i}`);
// Far more than 1,000 keys see in a benchmark (about 100 decisions per key per second), so
// every decision is an allowed one that writes its key.
const NEVER_REJECTS = 1_000_000_000;
const WINDOW_MS = 60_000;
/**
 * The pack's store timeout here, instead of the config's 50 ms: on a busy machine a stall of
 * the Redis process past 50 ms sends the pack to its local fallback (a failed sample), while
 * the peers, which have no timeout, just wait. The timeout's cost per decision is the same.
 */
const PACK_STORE_TIMEOUT_MS = 1000;

/**
 * One limiter as the driver sees it: `decide` starts a decision (a promise, or the decision
 * itself when it is made locally); `allowed` reads its outcome; `denial` tells a rejection
 * that means "denied" (rate-limiter-flexible's) from a failure. Reading the outcome in the
 * driver, not in a `then` of each limiter's, keeps the driver's cost the same for all.
 */
export interface Limiter {
  decide(key: string): unknown;
  allowed(result: unknown): boolean;
  denial?(reason: unknown): boolean;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface RedisProcess {
  port: number;
  /** CPU seconds the server has used so far (user + system), from /proc. */
  cpuSeconds(): number | undefined;
  stop(): Promise<void>;
}

/** A redis-server of its own, on a free loopback port, persistence off, pinned to `cpu`. */
export async function startRedisServer(cpu: number | undefined): Promise<RedisProcess> {
  const port = await freePort();
  const server = [
    'redis-server',
    '--port',
    String(port),
    '--bind',
    HOST,
    '--save',
    '',
    '--appendonly',
    'no',
    '--protected-mode',
    'no',
    '--daemonize',
    'no',
  ];
  const command =
    cpu !== undefined && TASKSET !== undefined ? [TASKSET, '-c', String(cpu), ...server] : server;
  const child: ChildProcess = spawn(command[0]!, command.slice(1), {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const collect = (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const stop = async () => {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
  };
  // taskset execs redis-server: the pid is the server's own.
  const cpuSeconds = () => processCpuSeconds(child.pid!);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const probe = new Redis({ host: HOST, port, lazyConnect: true, retryStrategy: () => null });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      return { port, cpuSeconds, stop };
    } catch {
      probe.disconnect();
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`redis-server on port ${port} did not start:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Decision latencies, in whole microseconds up to a second; cheap enough to record them all. */
class LatencyHistogram {
  private readonly counts = new Uint32Array(1_000_001);
  private total = 0;

  record(ms: number): void {
    const us = Math.round(ms * 1000);
    this.counts[us < 1_000_000 ? us : 1_000_000]!++;
    this.total++;
  }

  /** The `q` quantile (0..1), in milliseconds. */
  quantile(q: number): number | undefined {
    if (this.total === 0) return undefined;
    const rank = Math.ceil(q * this.total);
    let seen = 0;
    for (let us = 0; us < this.counts.length; us++) {
      seen += this.counts[us]!;
      if (seen >= rank) return us / 1000;
    }
    return undefined;
  }
}

/**
 * Keeps `concurrency` decisions in flight, round-robin over the keys, for `seconds`. Each lane
 * starts its next decision as soon as its last one settles; the lanes' callbacks are made once,
 * so the driver itself allocates nothing per decision.
 */
export function drive(
  limiter: Limiter,
  concurrency: number,
  seconds: number,
  redisCpuSeconds: () => number | undefined,
): Promise<Sample> {
  return new Promise((resolve) => {
    const histogram = new LatencyHistogram();
    let running = true;
    let next = 0;
    let allowed = 0;
    let denied = 0;
    let errors = 0;
    let firstError = '';
    let active = concurrency;
    let counted = 0;
    const startedAt = performance.now();
    const cpuAtStart = process.cpuUsage();
    const redisAtStart = redisCpuSeconds();
    let elapsedMs = 0;
    let clientCpuMs = 0;
    let redisCpu: number | undefined;

    const finish = () => {
      resolve({
        value: counted / (elapsedMs / 1000),
        p50: histogram.quantile(0.5),
        p99: histogram.quantile(0.99),
        extra: {
          decisions: counted,
          clientCpuPercent: (clientCpuMs / elapsedMs) * 100,
          clientCpuUsPerDecision: (clientCpuMs * 1000) / counted,
          ...(redisCpu === undefined ? {} : { redisCpuPercent: redisCpu }),
        },
        problems: [
          ...(denied > 0 ? [`${denied} decisions denied`] : []),
          ...(errors > 0 ? [`${errors} decisions failed (${firstError})`] : []),
        ],
      });
    };

    const timer = setTimeout(() => {
      running = false;
      elapsedMs = performance.now() - startedAt;
      counted = allowed;
      const cpu = process.cpuUsage(cpuAtStart);
      clientCpuMs = (cpu.user + cpu.system) / 1000;
      const redisNow = redisCpuSeconds();
      if (redisAtStart !== undefined && redisNow !== undefined) {
        redisCpu = ((redisNow - redisAtStart) * 1000 * 100) / elapsedMs;
      }
    }, seconds * 1000);

    class Lane {
      private sentAt = 0;
      start(): void {
        if (!running) {
          if (--active === 0) {
            clearTimeout(timer);
            finish();
          }
          return;
        }
        const key = KEYS[next]!;
        next = next + 1 === KEYS.length ? 0 : next + 1;
        this.sentAt = performance.now();
        const result = limiter.decide(key);
        if (result instanceof Promise) result.then(this.settled, this.failed);
        // Made locally (the pack's fallback or block cache: a failed sample). Settled in a later
        // macrotask: a chain of microtasks would starve the timer that ends the run.
        else setImmediate(this.settled, result);
      }
      private readonly settled = (result: unknown): void => {
        if (running) {
          histogram.record(performance.now() - this.sentAt);
          if (limiter.allowed(result)) allowed++;
          else denied++;
        }
        this.start();
      };
      private readonly failed = (reason: unknown): void => {
        if (running) {
          if (limiter.denial?.(reason) === true) {
            histogram.record(performance.now() - this.sentAt);
            denied++;
          } else if (errors++ === 0) {
            firstError = reason instanceof Error ? reason.message : String(reason);
          }
        }
        this.start();
      };
    }
    for (let i = 0; i < concurrency; i++) new Lane().start();
  });
}

/** rate-limiter-flexible's documented setup: ioredis with the offline queue off. */
export async function rateLimiterFlexible(port: number): Promise<Limiter> {
  const client = new Redis({ host: HOST, port, enableOfflineQueue: false, lazyConnect: true });
  await client.connect();
  const limiter = new RateLimiterRedis({
    storeClient: client,
    keyPrefix: 'bench-rlflx',
    points: NEVER_REJECTS,
    duration: WINDOW_MS / 1000,
  });
  return {
    decide: (key) => limiter.consume(key),
    allowed: () => true,
    // It rejects with a RateLimiterRes when over the limit, with an Error when Redis fails.
    denial: (reason) => !(reason instanceof Error),
    close: async () => {
      client.disconnect();
    },
  };
}

/** rate-limit-redis through express-rate-limit's store interface, on ioredis (its README's). */
export async function rateLimitRedis(port: number): Promise<Limiter> {
  const client = new Redis({ host: HOST, port, lazyConnect: true });
  await client.connect();
  const store = new RateLimitRedisStore({
    sendCommand: (command: string, ...args: string[]) =>
      client.call(command, ...args) as Promise<number>,
    prefix: 'bench-rlr:',
  });
  // express-rate-limit calls init with its resolved options; the store reads windowMs.
  await store.init({ windowMs: WINDOW_MS } as Parameters<typeof store.init>[0]);
  return {
    decide: (key) => store.increment(key),
    // express-rate-limit compares the hits with its limit itself.
    allowed: (info) => (info as { totalHits: number }).totalHits <= NEVER_REJECTS,
    close: async () => {
      client.disconnect();
    },
  };
}

/**
 * The pack's store as the middleware builds it for `rateLimit.store: redis:<name>`
 * (SharedStores): a ResilientStore (defaults: local fallback, block cache) around a RedisStore
 * with the config's defaults (`rl:` prefix; the timeout is PACK_STORE_TIMEOUT_MS) on a
 * dedicated fail-fast client. The
 * key is what the RateLimiter passes: `<route name>:<client key>`. A decision made by the
 * fallback is not a Redis decision, so it fails the sample.
 */
export async function packStore(
  port: number,
  timeoutMs = PACK_STORE_TIMEOUT_MS,
): Promise<Limiter & { fallbacks(): number }> {
  const client = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    connectionName: 'express-resilience:rate-limit',
  });
  client.on('error', () => undefined);
  await client.connect();
  const store = new ResilientStore({
    store: new RedisStore({ client, keyPrefix: 'rl:', timeoutMs }),
    onStoreError: 'local',
    expectedInstances: 1,
    retryIntervalMs: 1000,
    blockCache: true,
    maxKeys: 100_000,
  });
  let fallbacks = 0;
  store.onFallback(() => {
    fallbacks++;
  });
  const rule: RateLimitRule = Object.freeze({
    algorithm: 'gcra',
    limit: NEVER_REJECTS,
    windowMs: WINDOW_MS,
    burst: 0,
  });
  const routeKeys = new Map(KEYS.map((key) => [key, `bench:${key}`]));
  return {
    decide: (key) => store.consume(routeKeys.get(key)!, rule),
    allowed: (decision) => (decision as RateLimitDecision).allowed,
    fallbacks: () => fallbacks,
    close: async () => {
      await store.close();
      client.disconnect();
    },
  };
}

export const benchmark: Benchmark = {
  name: 'redis',
  title: 'Redis: rate-limit decisions, 1,000 keys, a limit that never rejects',
  unit: 'decisions/s',
  higherIsBetter: true,
  comparison: 'ratio',
  async start(options) {
    const redis = await startRedisServer(options.serverCpu);
    const limiters: Limiter[] = [];
    const close = async () => {
      await Promise.all(limiters.map((l) => l.close()));
      await redis.stop();
    };
    let pack: Awaited<ReturnType<typeof packStore>>;
    try {
      limiters.push(await rateLimiterFlexible(redis.port));
      limiters.push(await rateLimitRedis(redis.port));
      pack = await packStore(redis.port);
      limiters.push(pack);
    } catch (err) {
      await close();
      throw err;
    }
    const run = (limiter: Limiter) => (phase: 'warmup' | 'measure') =>
      drive(
        limiter,
        options.connections,
        phase === 'warmup' ? options.warmup : options.duration,
        redis.cpuSeconds,
      );
    const packRun = run(pack);
    const contenders: Contender[] = [
      {
        name: 'rlflx',
        label: 'rate-limiter-flexible RateLimiterRedis (ioredis)',
        run: run(limiters[0]!),
      },
      {
        name: 'rlr',
        label: 'rate-limit-redis RedisStore (ioredis)',
        baseline: true,
        run: run(limiters[1]!),
      },
      {
        name: 'pack',
        label: 'express-resilience Redis GCRA store',
        run: async (phase) => {
          const before = pack.fallbacks();
          const sample = await packRun(phase);
          const fallbacks = pack.fallbacks() - before;
          if (fallbacks > 0) sample.problems!.push(`${fallbacks} decisions made by the fallback`);
          return sample;
        },
      },
    ];
    return {
      contenders,
      notes: [
        `${options.connections} decisions in flight, 1,000 keys round-robin, run in the harness process ` +
          `(the client side is measured); a dedicated redis-server (persistence off)` +
          (options.serverCpu === undefined ? '.' : ` on CPU ${options.serverCpu}.`),
        'Each limiter on its own ioredis client; extra columns in the JSON: client and Redis CPU %, client CPU µs per decision.',
        `The pack: ResilientStore + RedisStore as rateLimit.store redis:<name> builds them (the decisions of one tick go as one script call), store timeout ${PACK_STORE_TIMEOUT_MS} ms: a stall of a busy machine waits, as for the peers, instead of failing the sample through the fallback.`,
      ],
      close,
    };
  },
  targets(summary) {
    const pack = contender(summary, 'pack');
    const rlflx = contender(summary, 'rlflx');
    const rlr = contender(summary, 'rlr');
    const faster = rlflx.median > rlr.median ? rlflx : rlr;
    const ratio = pack.median / faster.median;
    return [
      {
        description:
          'Redis GCRA store >= 1.2× the faster of rate-limiter-flexible and rate-limit-redis',
        met: ratio >= 1.2,
        actual: `${ratioText(ratio)} ${faster.label} (${fmt(pack.median)} vs ${fmt(faster.median)} decisions/s)`,
      },
    ];
  },
};
