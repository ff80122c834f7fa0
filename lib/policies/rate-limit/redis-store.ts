import { Command } from 'ioredis';
import type { Cluster, Redis } from 'ioredis';
import { ResourceUnavailableError, TimeoutError, withoutStack } from '../../errors.js';
import { redisFailure } from '../../resources/redis/errors.js';
import { invalidOption } from '../invalid-option.js';
import { fixedWindowSizeUs } from './fixed-window.js';
import { gcraIntervalUs } from './gcra.js';
import { FIXED_WINDOW_SCRIPT, GCRA_SCRIPT } from './redis/scripts.js';
import type { RedisScript } from './redis/scripts.js';
import type { RateLimitDecision, RateLimitRule, RateLimitStore } from './store.js';

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  /**
   * The ioredis client: a `Redis` (standalone, or a sentinel-resolved master) or a `Cluster`.
   * The store only sends commands on it (many at once: ioredis pipelines them) and never
   * closes it. Give it `enableOfflineQueue: false` so that a command sent while it is
   * disconnected fails at once instead of waiting for the timeout.
   */
  client: Redis | Cluster;
  /** Prepended to every key, after the client's own `keyPrefix`. Default `'rl:'`. */
  keyPrefix?: string;
  /**
   * Milliseconds a decision may wait for its reply before it rejects with `TimeoutError`.
   * Default 50. A number in [1, 2147483647].
   */
  timeoutMs?: number;
}

/** What one rule sends besides the key: the script and its two rule arguments, as strings. */
interface Prepared {
  script: RedisScript;
  first: string;
  second: string;
}

const MAX_TIMEOUT = 2_147_483_647;
const NO_SCRIPT = 'NOSCRIPT';
const COMMAND_TIMED_OUT = 'Command timed out';
// Expired entries are dropped from the front of the timeout queue; the arrays are compacted
// once the dropped part is both this long and more than half of them.
const COMPACT_AFTER = 1024;

function toDecision(reply: unknown): RateLimitDecision {
  const r = reply as number[];
  return {
    allowed: r[0] === 1,
    limit: r[1] as number,
    remaining: r[2] as number,
    resetMs: r[3] as number,
    retryAfterMs: r[4] as number,
  };
}

function toVoid(): void {}

/**
 * Rate-limit counters in Redis, shared by every instance of a service: GCRA and fixed window
 * behind the {@link RateLimitStore} interface, each decision one atomic Lua script in one
 * round trip (`EVALSHA`, `EVAL` once after `NOSCRIPT`: a restarted or failed-over server has
 * lost its script cache). The scripts replay the memory store's algorithms in whole
 * microseconds on Redis's own clock (`TIME`), so instances with skewed clocks agree. Keys are
 * `keyPrefix + key` (the {@link RateLimiter} adds its name: `rl:create-order:203.0.113.7`),
 * expire when their quota is full again or their window ends, and each call touches one key,
 * so the store is correct on Redis Cluster.
 *
 * Every decision is bounded by `timeoutMs`: one timer for the whole store (the oldest pending
 * decision's deadline), not one per call; it checks in the event loop's check phase, after
 * pending replies have been read, so an event loop that was busy does not turn replies
 * already received into timeouts.
 *
 * `consume` rejects with `TimeoutError` (no reply in time), `ResourceUnavailableError` (the
 * connection is down, or the server refused because of its state: READONLY after a failover,
 * LOADING, CLUSTERDOWN…; the ioredis error is the `cause`), or the server's error reply.
 * Wrap it in a {@link ResilientStore} to turn those into fallback decisions.
 */
export class RedisStore implements RateLimitStore {
  readonly kind = 'redis';
  /** The prefix of every key this store writes. */
  readonly keyPrefix: string;
  /** The bound on each call, in milliseconds. */
  readonly timeoutMs: number;

  private readonly client: Redis | Cluster;
  // ioredis applies the client's own keyPrefix to the keys of commands built with it.
  private readonly commandOptions: { keyPrefix?: string };
  private readonly prepared = new Map<RateLimitRule, Prepared>();
  private lastRule: RateLimitRule | undefined;
  private lastPrepared: Prepared | undefined;
  // Pending commands and their deadlines, oldest first (every call has the same timeout).
  private pending: (Command | undefined)[] = [];
  private deadlines: number[] = [];
  private head = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private sweepScheduled: ReturnType<typeof setImmediate> | undefined;
  private corked: Redis['stream'] | undefined;
  private closed = false;

  /**
   * @throws InvalidArgumentError when `client` is not an ioredis client, `keyPrefix` is not a
   *   string, or `timeoutMs` is not a number in [1, 2147483647].
   */
  constructor(options: RedisStoreOptions) {
    const { client, keyPrefix = 'rl:', timeoutMs = 50 } = options;
    if (
      typeof client !== 'object' ||
      client === null ||
      typeof (client as { sendCommand?: unknown }).sendCommand !== 'function'
    ) {
      throw invalidOption('RedisStore', 'client', client, 'an ioredis Redis or Cluster client');
    }
    if (typeof keyPrefix !== 'string') {
      throw invalidOption('RedisStore', 'keyPrefix', keyPrefix, 'a string');
    }
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 1 && timeoutMs <= MAX_TIMEOUT)) {
      throw invalidOption(
        'RedisStore',
        'timeoutMs',
        timeoutMs,
        `a number of milliseconds in [1, ${MAX_TIMEOUT}]`,
      );
    }
    this.client = client;
    this.keyPrefix = keyPrefix;
    this.timeoutMs = timeoutMs;
    const clientPrefix = client.options.keyPrefix;
    this.commandOptions = clientPrefix ? { keyPrefix: clientPrefix } : {};
  }

  /**
   * Decides one request of `cost` (default 1) for `key` under `rule` in Redis, and counts it
   * when allowed. Rejects as described on {@link RedisStore}.
   */
  consume(key: string, rule: RateLimitRule, cost = 1): Promise<RateLimitDecision> {
    const prepared = rule === this.lastRule ? this.lastPrepared! : this.prepare(rule);
    const command = new Command(
      'evalsha',
      [
        prepared.script.sha,
        '1',
        this.keyPrefix + key,
        prepared.first,
        prepared.second,
        cost === 1 ? '1' : String(cost),
      ],
      this.commandOptions,
    );
    this.send(command);
    return command.promise.then(toDecision, (error: unknown) =>
      this.retryOrFail(error, command, prepared.script),
    );
  }

  /** Deletes `key` in Redis. Rejects like {@link RedisStore.consume}. */
  reset(key: string): Promise<void> {
    const command = new Command('del', [this.keyPrefix + key], this.commandOptions);
    this.send(command);
    return command.promise.then(toVoid, this.mapError);
  }

  /**
   * Rejects every pending call with `ResourceUnavailableError` and stops the timeout timer;
   * later calls reject at once. Does not close the client (the caller owns it). Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.sweepScheduled !== undefined) clearImmediate(this.sweepScheduled);
    this.timer = undefined;
    this.sweepScheduled = undefined;
    const error = this.closedError();
    for (let i = this.head; i < this.pending.length; i++) this.pending[i]?.reject(error);
    this.pending = [];
    this.deadlines = [];
    this.head = 0;
  }

  private prepare(rule: RateLimitRule): Prepared {
    let prepared = this.prepared.get(rule);
    if (prepared === undefined) {
      prepared =
        rule.algorithm === 'gcra'
          ? {
              script: GCRA_SCRIPT,
              first: String(gcraIntervalUs(rule)),
              second: String(rule.limit + rule.burst),
            }
          : {
              script: FIXED_WINDOW_SCRIPT,
              first: String(fixedWindowSizeUs(rule)),
              second: String(rule.limit),
            };
      this.prepared.set(rule, prepared);
    }
    this.lastRule = rule;
    this.lastPrepared = prepared;
    return prepared;
  }

  private send(command: Command): void {
    if (this.closed) {
      command.reject(this.closedError());
      return;
    }
    this.pending.push(command);
    this.deadlines.push(performance.now() + this.timeoutMs);
    if (this.timer === undefined && this.sweepScheduled === undefined) this.arm(this.timeoutMs);
    // Decisions made in the same tick leave in one write: ioredis writes each command on its
    // own, and that syscall was half the client's CPU per decision. (A Cluster has no single
    // stream; its commands are written one by one.)
    const stream = (this.client as Partial<Redis>).stream;
    if (stream !== undefined && stream !== this.corked && stream.writable) {
      stream.cork();
      this.corked = stream;
      process.nextTick(this.uncork, stream);
    }
    // The promise is the command's own; sendCommand's return value is the same promise.
    void this.client.sendCommand(command);
  }

  private readonly uncork = (stream: Redis['stream']): void => {
    if (this.corked === stream) this.corked = undefined;
    stream.uncork();
  };

  private arm(ms: number): void {
    this.timer = setTimeout(this.onTimer, ms);
    this.timer.unref();
  }

  private readonly onTimer = (): void => {
    this.timer = undefined;
    // After the poll phase: replies that arrived while the event loop was busy are read first.
    // Not unref'd: an unref'd immediate lets the loop block in poll until some I/O arrives.
    this.sweepScheduled = setImmediate(this.sweep);
  };

  private readonly sweep = (): void => {
    this.sweepScheduled = undefined;
    const { pending, deadlines } = this;
    const now = performance.now();
    let i = this.head;
    while (i < pending.length && (deadlines[i] as number) <= now) {
      const command = pending[i] as Command;
      pending[i] = undefined;
      // A command that failed is settled too; rejecting it again does nothing.
      if (!command.isResolved) command.reject(this.timeoutError());
      i++;
    }
    if (i === pending.length) {
      pending.length = 0;
      deadlines.length = 0;
      this.head = 0;
      return;
    }
    if (i >= COMPACT_AFTER && i * 2 > pending.length) {
      this.pending = pending.slice(i);
      this.deadlines = deadlines.slice(i);
      i = 0;
    }
    this.head = i;
    this.arm(Math.max(1, (this.deadlines[i] as number) - now));
  };

  // NOSCRIPT: the server lost its script cache (restart, failover, SCRIPT FLUSH, a cluster
  // node seen for the first time). EVAL runs the script and caches it again, under a timeout
  // of its own: the decision waits at most the NOSCRIPT round trip longer.
  private retryOrFail(
    error: unknown,
    command: Command,
    script: RedisScript,
  ): Promise<RateLimitDecision> {
    if (
      !(error instanceof Error) ||
      !error.message.startsWith(NO_SCRIPT) ||
      command.name !== 'evalsha' ||
      this.closed
    ) {
      return this.mapError(error);
    }
    // The key in args[2] already carries the client's keyPrefix: no options this time.
    const evalCommand = new Command('eval', [script.lua, ...command.args.slice(1)]);
    this.send(evalCommand);
    return evalCommand.promise.then(toDecision, this.mapError);
  }

  private readonly mapError = (error: unknown): never => {
    if (error instanceof TimeoutError) throw error;
    if (error instanceof Error && error.message === COMMAND_TIMED_OUT) {
      throw this.timeoutError(error);
    }
    if (redisFailure(error, true) !== undefined) {
      throw withoutStack(
        () =>
          new ResourceUnavailableError(
            `Redis rate-limit store is unavailable: ${(error as Error).message}`,
            { cause: error },
          ),
      );
    }
    throw error;
  };

  private timeoutError(cause?: unknown): TimeoutError {
    return withoutStack(
      () =>
        new TimeoutError(`Redis rate-limit store did not answer within ${this.timeoutMs} ms`, {
          timeoutMs: this.timeoutMs,
          cause,
        }),
    );
  }

  private closedError(): ResourceUnavailableError {
    return withoutStack(
      () => new ResourceUnavailableError('Redis rate-limit store is closed', { resource: 'redis' }),
    );
  }
}
