import { Redis } from 'ioredis';
import type { BreakerPolicyConfig, RedisMode, RedisResourceConfig } from '../config/types.js';
import {
  InvalidArgumentError,
  ResourceUnavailableError,
  TimeoutError,
  isResilienceError,
  isTimeoutError,
} from '../errors.js';
import { withTimeout } from '../policies/timeout.js';
import { PooledResource } from './pooled-resource.js';
import type { AttemptVerdict } from './pooled-resource.js';
import { createRedisFactory, describeRedisTarget } from './redis/connection-factory.js';
import type { RedisConnection } from './redis/connection-factory.js';
import { isReplyError, isRetryableCommand, redisFailure, toRedisError } from './redis/errors.js';

export type { RedisConnection } from './redis/connection-factory.js';
export { RETRYABLE_COMMANDS, isRetryableCommand } from './redis/errors.js';

/** A command argument, as ioredis sends it. */
export type RedisArgument = string | number | Buffer;

/** Options of one {@link RedisResource.withConnection} lease. */
export interface WithConnectionOptions {
  /** Aborting rejects the call with `signal.reason` (the lease's commands still finish). */
  signal?: AbortSignal;
  /**
   * Total timeout of the lease (acquire and `fn`), instead of the resource's; still capped by
   * the inbound request's remaining deadline.
   */
  timeoutMs?: number;
  /**
   * Per-command timeout while this lease holds the connection, instead of `commandTimeout`:
   * for blocking commands (`BLPOP key 5` needs more than 5 s). Standalone and sentinel modes
   * only (a cluster's node connections keep their own); a number of milliseconds > 0.
   */
  commandTimeoutMs?: number;
}

/** Extra options of a {@link RedisResource} that the config file does not carry. */
export interface RedisResourceOptions {
  /**
   * Overrides the resource's circuit breaker; default `resources.redis.<name>.breaker` from
   * the config (or {@link REDIS_BREAKER_DEFAULTS} for a config built by hand without one).
   */
  breaker?: BreakerPolicyConfig;
  /**
   * Total timeout of a call (all attempts, backoff waits and pool acquires), in ms. Default
   * `pool.acquireTimeout + retry.attempts × commandTimeout + (retry.attempts − 1) ×
   * retry.backoff.max`: the longest a call can legitimately take.
   */
  timeoutMs?: number;
  /** Jitter source of the retry backoff, in [0, 1). Default `Math.random`. */
  random?: () => number;
}

/**
 * The circuit breaker of a Redis resource unless {@link RedisResourceOptions.breaker} says
 * otherwise: the last 30 s, opens at 50 % failures over at least 20 calls, half-open after
 * 5 s (Redis outages are often a restart or a failover: seconds, not minutes).
 */
export const REDIS_BREAKER_DEFAULTS: BreakerPolicyConfig = Object.freeze({
  enabled: true,
  enforce: true,
  window: Object.freeze({ type: 'time' as const, size: 30 }),
  minimumCalls: 20,
  failureRate: 50,
  slowCall: Object.freeze({ duration: 2000, rate: 100 }),
  halfOpenAfter: 5000,
  halfOpenProbes: 3,
  openBackoff: Object.freeze({ multiplier: 1, max: 5000 }),
  failureStatuses: Object.freeze([]) as readonly string[],
});

const MAX_TIMEOUT = 2_147_483_647;

// A failed Redis attempt whose connection state is unknown (dropped, timed out, or talking to
// a demoted master) loses its member; an error reply leaves the connection as good as it was.
function isBroken(error: unknown): boolean {
  return redisFailure(error, true) !== undefined || isTimeoutError(error);
}

// withConnection: after any failure the connection may hold an open MULTI, a WATCH or a
// subscription; a fresh one is cheaper than finding out.
function always(): boolean {
  return true;
}

function noop(): void {}

const RETRY: AttemptVerdict = Object.freeze({ retry: true, failure: true });

/**
 * A pooled Redis resource (`resources.redis.<name>`): a pool of ioredis connections —
 * standalone, a sentinel-resolved master, or cluster clients — and calls that run through the
 * resource's breaker → retry → timeout → pool.
 *
 * - Members are validated on borrow (`status === 'ready'`), so a connection that dropped is
 *   replaced instead of handed out; reconnects run in the background with capped backoff and
 *   never block a caller.
 * - Outages give fast typed errors, never hung promises: with the offline queue off (the
 *   default, `offlineQueue: 0`) a command on a disconnected member fails at once; every
 *   command times out after `commandTimeout`; while no connection can be made the pool fails
 *   acquires at once with `ResourceUnavailableError` (cause: the connection error).
 * - Sentinel failover: a member still connected to the demoted master gets READONLY; it
 *   reconnects (through the sentinels, to the new master) and the command — which did not
 *   run — is retried on another member, so READONLY never reaches a caller. A
 *   `ResourceUnavailableError` can: for a write that may have run (INCR in flight when the
 *   sentinel cut its connection), or when no member reaches the new master within the call's
 *   time or attempts. (Writes the old master accepted after the promotion are lost, as with
 *   any Redis Sentinel client; `min-replicas-to-write` on the servers narrows that window,
 *   and its NOREPLICAS refusals are retried like READONLY.)
 * - Cluster: MOVED and ASK redirections are followed by ioredis (up to 16 per command).
 * - Errors: `ResourceUnavailableError` (connection down, offline queue off, server refusing
 *   because of its state: READONLY, LOADING, MASTERDOWN, CLUSTERDOWN, TRYAGAIN, NOREPLICAS —
 *   the ioredis error as `cause`), `TimeoutError` (`commandTimeout`, or the call's total
 *   timeout), `BreakerOpenError`, `PoolExhaustedError`, `PoolClosedError`. Redis error
 *   replies (`WRONGTYPE`, `ERR …`) reach the caller as ioredis `ReplyError`s and count as
 *   successes for the breaker: they are the caller's mistakes, not the server's.
 *
 * `offlineQueue` is on/off: ioredis cannot cap its offline queue, and since every member
 * serves one borrower at a time its queue holds at most that borrower's commands, each
 * bounded by `commandTimeout`. When on, a command issued while its member reconnects waits
 * (up to `commandTimeout`) instead of failing at once, and survives one reconnect.
 */
export class RedisResource extends PooledResource<RedisConnection> {
  /** `standalone`, `sentinel` or `cluster`. */
  readonly mode: RedisMode;
  /** Where the resource connects, without credentials (safe for logs and health details). */
  readonly target: string;
  readonly #config: RedisResourceConfig;
  readonly #retryAll: boolean;

  /**
   * Reads TLS files now; opens no connection until {@link RedisResource.start} or the first
   * call.
   * @throws ConfigError when a TLS file cannot be read.
   * @throws InvalidArgumentError when sentinel mode has no sentinels, cluster mode no nodes,
   *   `commandTimeout`, `connectTimeout` or `timeoutMs` is not a number of milliseconds > 0, or a
   *   pool, breaker or retry option is malformed (see the base).
   */
  constructor(config: RedisResourceConfig, options: RedisResourceOptions = {}) {
    checkConfig(config);
    const { attempts, backoff } = config.retry;
    const timeoutMs =
      options.timeoutMs ??
      Math.min(
        MAX_TIMEOUT,
        config.pool.acquireTimeout +
          attempts * config.commandTimeout +
          (attempts - 1) * backoff.max,
      );
    super(
      {
        name: config.name,
        kind: 'redis',
        critical: config.critical,
        pool: config.pool,
        retry: config.retry,
        breaker: options.breaker ?? config.breaker ?? REDIS_BREAKER_DEFAULTS,
        timeoutMs,
        ...(options.random !== undefined && { random: options.random }),
      },
      createRedisFactory(config),
    );
    this.mode = config.mode;
    this.target = describeRedisTarget(config);
    this.#config = config;
    this.#retryAll = config.retry.nonIdempotent;
  }

  /**
   * Sends one command (`name` as Redis spells it, any case) on a pooled connection through the
   * breaker → retry → timeout → pool, and resolves its raw reply (strings, numbers, arrays,
   * null: `HGETALL` answers a flat `[field, value, …]` array — ioredis's per-method reply
   * transformers apply only to its named methods, e.g. inside {@link RedisResource.withConnection}).
   *
   * Retries (up to `retry.attempts`, backoff with jitter, bounded by the retry budget):
   * commands that certainly did not run (no connection, READONLY, LOADING, …) always; those
   * that may have run (dropped connection, command timeout) only when they are read-only or a
   * plain SET (see {@link RETRYABLE_COMMANDS}), or with `retry.nonIdempotent`. Error replies
   * are never retried. Rejects as described on {@link RedisResource}, and with
   * `InvalidArgumentError` when `name` is not a non-empty string.
   */
  command<T = unknown>(name: string, ...args: RedisArgument[]): Promise<T> {
    if (typeof name !== 'string' || name.length === 0) {
      return Promise.reject(
        new InvalidArgumentError(`command name must be a non-empty string, got ${String(name)}`),
      );
    }
    const retryable = this.#retryAll || isRetryableCommand(name, args);
    // Attempts see ioredis's own errors (classify and isBroken judge them; the base would not
    // retry a ResourceUnavailableError); the caller sees them mapped to typed errors.
    return this.execute<T>((conn) => conn.call(name, ...args) as Promise<T>, {
      // Retries are decided per failure by classify: even a write may be retried when it
      // certainly did not run.
      idempotent: true,
      classify: retryable ? this.#classifyRetryable : this.#classifyOnce,
      isBroken,
    }).catch(this.#mapCommandError);
  }

  /**
   * Runs `fn` with a connection of its own (a `Redis`, or a `Cluster` in cluster mode) for
   * MULTI/EXEC, WATCH, pipelines or blocking commands, through the breaker → timeout → pool;
   * never retried (`fn` may have done part of its work). Resolves what `fn` resolves.
   *
   * The connection goes back to the pool when `fn` settles: after a success a pending WATCH is
   * cleared (an `UNWATCH` is queued ahead of the next borrower's commands) and a connection
   * left in subscriber or monitor mode is closed; after any failure it is destroyed. Do not
   * `SELECT` another database or `QUIT` in `fn`. In cluster mode pair a WATCH with EXEC or
   * UNWATCH yourself.
   *
   * Rejects with `fn`'s error — connection failures and command timeouts mapped to
   * `ResourceUnavailableError` / `TimeoutError` as for {@link RedisResource.command}, error
   * replies and your own errors as they are — or `BreakerOpenError`, `PoolExhaustedError`,
   * `PoolClosedError`, `TimeoutError` (the lease's total time), the caller's `signal.reason`,
   * or `InvalidArgumentError` when `fn` is not a function or `commandTimeoutMs` is invalid
   * (or given in cluster mode).
   */
  withConnection<R>(
    fn: (conn: RedisConnection) => Promise<R>,
    options: WithConnectionOptions = {},
  ): Promise<R> {
    const commandTimeoutMs = options.commandTimeoutMs;
    try {
      if (typeof fn !== 'function') {
        throw new InvalidArgumentError(`withConnection needs a function, got ${String(fn)}`);
      }
      if (commandTimeoutMs !== undefined) {
        if (this.mode === 'cluster') {
          throw new InvalidArgumentError(
            'commandTimeoutMs is not supported in cluster mode (node connections keep commandTimeout)',
          );
        }
        if (
          typeof commandTimeoutMs !== 'number' ||
          !(commandTimeoutMs > 0 && commandTimeoutMs <= MAX_TIMEOUT)
        ) {
          throw new InvalidArgumentError(
            `commandTimeoutMs must be a number of milliseconds in (0, ${MAX_TIMEOUT}], got ${String(commandTimeoutMs)}`,
          );
        }
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.execute((conn) => this.#lease(conn, fn, commandTimeoutMs), {
      idempotent: false,
      signal: options.signal,
      timeoutMs: options.timeoutMs,
      classify: this.#classifyLease,
      isBroken: always,
    }).catch(this.#mapLeaseError);
  }

  /**
   * One health check: `PING` within `health.timeout` on the probe's own connection rather
   * than a pooled one (a saturated pool must not fail it, see
   * {@link PooledResource.probeWith}), bypassing the breaker and retries (a check must reach
   * the server even while the breaker is open). Resolves on `PONG`; rejects with
   * `TimeoutError`, `ResourceUnavailableError` (no connection can be made; the cause says
   * why) or `PoolClosedError` after close.
   */
  async probe(signal: AbortSignal): Promise<void> {
    const timeout = this.#config.health.timeout;
    let reply: unknown;
    try {
      reply = await withTimeout(timeout, (deadline) => {
        const both = AbortSignal.any([signal, deadline.signal]);
        return this.probeWith((conn) => conn.ping(), { signal: both, isBroken });
      });
    } catch (err) {
      if (isTimeoutError(err) && err.message.startsWith('Deadline')) {
        throw new TimeoutError(
          `Redis resource "${this.name}": health check PING timed out after ${timeout} ms`,
          { timeoutMs: timeout, cause: err },
        );
      }
      throw toRedisError(err, this.name, this.#config.commandTimeout, true);
    }
    if (reply !== 'PONG') {
      throw new ResourceUnavailableError(
        `Redis resource "${this.name}": health check PING answered ${JSON.stringify(reply)}`,
        { resource: this.name },
      );
    }
  }

  async #lease<R>(
    conn: RedisConnection,
    fn: (conn: RedisConnection) => Promise<R>,
    commandTimeoutMs: number | undefined,
  ): Promise<R> {
    // Exclusive use makes a per-lease timeout safe: ioredis reads options.commandTimeout on
    // every command, and no one else sends on this connection until it is released.
    const redis = conn instanceof Redis ? conn : undefined;
    const raise = redis !== undefined && commandTimeoutMs !== undefined;
    const saved = redis?.options.commandTimeout;
    if (raise) redis.options.commandTimeout = commandTimeoutMs;
    let result: R;
    try {
      result = await fn(conn);
    } finally {
      if (raise) redis.options.commandTimeout = saved;
    }
    if (redis !== undefined) {
      // Invalid on its next borrow, so the pool replaces it.
      if (redis.mode !== 'normal') redis.disconnect();
      // Queued ahead of the next borrower's commands: a WATCH left behind (a transaction
      // abandoned before EXEC) would make their EXEC fail. A failure means the connection is
      // gone, which the next borrow notices.
      else if (redis.status === 'ready') redis.call('UNWATCH').catch(noop);
    }
    return result;
  }

  readonly #mapCommandError = (error: unknown): never => {
    throw toRedisError(error, this.name, this.#config.commandTimeout, true);
  };

  readonly #mapLeaseError = (error: unknown): never => {
    throw toRedisError(error, this.name, this.#config.commandTimeout, false);
  };

  // One function per kind of command (no per-call closure): judge an attempt for the retry
  // policy and the breaker.
  readonly #classifyRetryable = (
    outcome: { error: unknown } | { result: unknown },
  ): AttemptVerdict => {
    if (!('error' in outcome)) return 'success';
    if (redisFailure(outcome.error, true) !== undefined) return RETRY;
    return isReplyError(outcome.error) ? 'success' : 'failure';
  };

  readonly #classifyOnce = (outcome: { error: unknown } | { result: unknown }): AttemptVerdict => {
    if (!('error' in outcome)) return 'success';
    const failure = redisFailure(outcome.error, true);
    if (failure === 'unsent') return RETRY;
    if (failure === 'ambiguous') return 'failure';
    return isReplyError(outcome.error) ? 'success' : 'failure';
  };

  readonly #classifyLease = (outcome: { error: unknown } | { result: unknown }): AttemptVerdict => {
    if (!('error' in outcome)) return 'success';
    const { error } = outcome;
    // Error replies and the caller's own errors say nothing about the server's health.
    return redisFailure(error, false) !== undefined || isResilienceError(error)
      ? 'failure'
      : 'success';
  };
}

function checkConfig(config: RedisResourceConfig): void {
  if (typeof config !== 'object' || config === null) {
    throw new InvalidArgumentError(
      `Redis resource config must be an object, got ${String(config)}`,
    );
  }
  const at = `resources.redis.${String(config.name)}`;
  if (config.mode === 'sentinel' && config.sentinels.length === 0) {
    throw new InvalidArgumentError(
      `${at}.sentinels must list at least one sentinel in sentinel mode`,
    );
  }
  if (config.mode === 'cluster' && config.nodes.length === 0) {
    throw new InvalidArgumentError(`${at}.nodes must list at least one node in cluster mode`);
  }
  for (const field of ['commandTimeout', 'connectTimeout'] as const) {
    const value = config[field];
    if (typeof value !== 'number' || !(value > 0 && value <= MAX_TIMEOUT)) {
      throw new InvalidArgumentError(
        `${at}.${field} must be a number of milliseconds in (0, ${MAX_TIMEOUT}], got ${String(value)}`,
      );
    }
  }
}

/**
 * Creates a {@link RedisResource} from its resolved config.
 * @throws as the {@link RedisResource} constructor.
 */
export function createRedisResource(
  config: RedisResourceConfig,
  options?: RedisResourceOptions,
): RedisResource {
  return new RedisResource(config, options);
}
