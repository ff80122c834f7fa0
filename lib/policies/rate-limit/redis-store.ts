import { ResourceUnavailableError, TimeoutError, withoutStack } from '../../errors.js';
import { redactRedisError, redisFailure } from '../../resources/redis/errors.js';
import { invalidOption } from '../invalid-option.js';
import { fixedWindowSizeUs } from './fixed-window.js';
import { gcraIntervalUs } from './gcra.js';
import { FIXED_WINDOW_SCRIPT, GCRA_SCRIPT } from './redis/scripts.js';
import type { RedisScript } from './redis/scripts.js';
import type { RateLimitDecision, RateLimitRule, RateLimitStore } from './store.js';

/**
 * What the store uses of an ioredis client (5 or 6): its public command methods only, so a
 * client from another copy or major of ioredis than the pack's own works as well.
 */
export interface RedisStoreClient {
  evalsha(sha: string, numkeys: number, ...args: string[]): Promise<unknown>;
  eval(script: string, numkeys: number, ...args: string[]): Promise<unknown>;
  del(key: string): Promise<unknown>;
  /** True on a Redis Cluster client. */
  readonly isCluster?: boolean;
}

/** Options of {@link RedisStore}. */
export interface RedisStoreOptions {
  /**
   * The ioredis client (major 5 or 6): a `Redis` (standalone, or a sentinel-resolved master)
   * or a `Cluster`. The store only sends commands on it through its public methods (many at
   * once: ioredis pipelines them) and never closes it. Give it `enableOfflineQueue: false` so
   * that a command sent while it is disconnected fails at once instead of waiting for the
   * timeout.
   */
  client: RedisStoreClient;
  /** Prepended to every key, after the client's own `keyPrefix`. Default `'rl:'`. */
  keyPrefix?: string;
  /**
   * Milliseconds of silence after which the decisions waiting for Redis reject with
   * `TimeoutError`: no reply at all came for this long while they waited. A reply that is
   * merely slow because many calls are queued ahead of it (a burst on a busy host) is not an
   * outage and still counts. A call also gives up after ten times this long whatever else
   * answers (a silent node of a cluster whose other nodes answer). Default 500. A number in
   * [1, 2147483647].
   */
  timeoutMs?: number;
  /**
   * Most decisions one script call carries: the decisions asked for in one tick under one rule
   * go together, up to this many. Default 16; an integer in [1, 1000]. Set 1 behind a
   * sharding proxy that routes a script by its first key (a Redis Cluster client always
   * sends one key per call).
   */
  maxBatch?: number;
}

/**
 * One command in flight. The timeout sweep may settle it before its reply comes; the reply is
 * then ignored.
 */
class Call {
  settled = false;
  constructor(
    readonly onReply: (reply: unknown) => void,
    readonly onError: (error: unknown) => void,
  ) {}
}

/** What one rule sends besides its keys and costs, and the decisions waiting to be sent. */
interface Prepared {
  script: RedisScript;
  /** The rule's two script arguments, as strings. */
  first: string;
  second: string;
  /** The quota reported as the decisions' `limit`. */
  limit: number;
  /** The batch being gathered this tick. */
  batch: Batch;
}

type Resolve = (decision: RateLimitDecision) => void;
type Reject = (error: unknown) => void;

/**
 * Turns a decision's outcome into what its promise resolves with, in place of a `then` on it:
 * the {@link ResilientStore}'s bookkeeping and fallback, run when the reply is read, so a
 * decision costs one promise instead of two and their callbacks.
 * @internal
 */
export interface DecisionObserver<C> {
  answered(decision: RateLimitDecision, context: C): RateLimitDecision;
  failed(error: unknown, context: C): RateLimitDecision;
}

/** A store that settles decisions through a {@link DecisionObserver}. @internal */
export interface ObservableStore {
  /**
   * Decides like `consume`, but resolves with what `observer` makes of the outcome (given
   * `context`); rejects only when the observer throws.
   */
  consumeObserved<C>(
    key: string,
    rule: RateLimitRule,
    cost: number,
    observer: DecisionObserver<C>,
    context: C,
  ): Promise<RateLimitDecision>;
}

/**
 * The decisions of one rule asked for in one tick: what the script gets (keys, costs) and who
 * waits for each answer, index by index.
 */
interface Batch {
  keys: string[];
  costs: string[];
  resolves: Resolve[];
  rejects: Reject[];
  // Undefined for plain `consume` calls.
  observers: (DecisionObserver<unknown> | undefined)[];
  contexts: unknown[];
}

const MAX_TIMEOUT = 2_147_483_647;
// A call gives up after this many timeouts whatever else answers.
const MAX_WAIT_FACTOR = 10;
const DEFAULT_TIMEOUT = 500;
const NO_SCRIPT = 'NOSCRIPT';
const COMMAND_TIMED_OUT = 'Command timed out';
// Expired entries are dropped from the front of the timeout queue; the arrays are compacted
// once the dropped part is both this long and more than half of them.
const COMPACT_AFTER = 1024;
// Integers per decision in a script's reply: allowed, remaining, resetMs, retryAfterMs, refillMs.
const STRIDE = 5;
/**
 * Most decisions in one script call by default. A larger batch costs fewer calls, but the
 * server answers it all at once: several smaller ones, each sent as soon as it is full, keep
 * the client and the server busy at the same time (measured here: 16 beat 8 and 32).
 */
const DEFAULT_MAX_BATCH = 16;
const MAX_BATCH = 1000;

function emptyBatch(): Batch {
  return { keys: [], costs: [], resolves: [], rejects: [], observers: [], contexts: [] };
}

// The client methods the store calls.
const CLIENT_METHODS = ['evalsha', 'eval', 'del'] as const;

/** A Redis client's socket, whose writes one tick's commands share. */
interface Corkable {
  readonly writable: boolean;
  cork(): void;
  uncork(): void;
}

/**
 * Rate-limit counters in Redis, shared by every instance of a service: GCRA and fixed window
 * behind the {@link RateLimitStore} interface, as atomic Lua scripts (`EVALSHA`, `EVAL` once
 * after `NOSCRIPT`: a restarted or failed-over server has lost its script cache). The scripts
 * replay the memory store's algorithms in whole microseconds on Redis's own clock (`TIME`), so
 * instances with skewed clocks agree. Keys are `keyPrefix + key` (the {@link RateLimiter} adds
 * its name: `rl:create-order:203.0.113.7`) and expire when their quota is full again or their
 * window ends.
 *
 * The decisions asked for in one tick under one rule go to Redis as one script call (up to
 * `maxBatch`, 16 by default), so a busy service pays one command, one reply and one script run
 * for many decisions, not for each. On a Redis Cluster each call carries one key, so every
 * call stays in one slot.
 *
 * Waiting decisions time out when Redis has been silent for `timeoutMs` (no reply to any call
 * of this store while they waited), not when one reply took that long: under a burst, calls
 * queue behind each other and a reply may come late while the connection answers steadily,
 * and treating that as an outage sent decisions to the local fallback, which over-admitted.
 * One timer for the whole store, not one per call; it checks in the event loop's check phase,
 * after pending replies have been read, so an event loop that was busy does not turn replies
 * already received into timeouts. A call waits at most ten times `timeoutMs` in any case.
 *
 * `consume` rejects with `TimeoutError` (no reply in time), `ResourceUnavailableError` (the
 * connection is down, or the server refused because of its state: READONLY after a failover,
 * LOADING, CLUSTERDOWN…; the ioredis error is the `cause`), or the server's error reply for
 * its key (WRONGTYPE). Wrap it in a {@link ResilientStore} to turn those into fallback
 * decisions.
 */
export class RedisStore implements RateLimitStore, ObservableStore {
  readonly kind = 'redis';
  /** The prefix of every key this store writes. */
  readonly keyPrefix: string;
  /** The bound on each call, in milliseconds. */
  readonly timeoutMs: number;
  /** Most decisions per script call (1 on a Redis Cluster). */
  readonly maxBatch: number;
  // The longest any call waits.
  private readonly maxWaitMs: number;

  private readonly client: RedisStoreClient;
  private readonly prepared = new Map<RateLimitRule, Prepared>();
  private lastRule: RateLimitRule | undefined;
  private lastPrepared: Prepared | undefined;
  // Rules with decisions gathered this tick, sent together on the next tick.
  private readonly gathering: Prepared[] = [];
  private flushScheduled = false;
  // Set while a decision's promise is created: where its executor files resolve and reject.
  private filing: Batch | undefined;
  // Pending calls and when each was sent, oldest first.
  private pending: (Call | undefined)[] = [];
  private sentAt: number[] = [];
  private head = 0;
  // When the last reply (or failure) of any call came: silence is measured from it.
  private lastHeard = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private sweepScheduled: ReturnType<typeof setImmediate> | undefined;
  private corked: Corkable | undefined;
  private closed = false;

  /**
   * @throws InvalidArgumentError when `client` is not an ioredis client (the message names
   *   the method it lacks), `keyPrefix` is not a string, `timeoutMs` is not a number in
   *   [1, 2147483647], or `maxBatch` is not an integer in [1, 1000].
   */
  constructor(options: RedisStoreOptions) {
    const {
      client,
      keyPrefix = 'rl:',
      timeoutMs = DEFAULT_TIMEOUT,
      maxBatch = DEFAULT_MAX_BATCH,
    } = options;
    if (typeof client !== 'object' || client === null) {
      throw invalidOption('RedisStore', 'client', client, 'an ioredis Redis or Cluster client');
    }
    const missing = CLIENT_METHODS.find(
      (name) => typeof (client as unknown as Record<string, unknown>)[name] !== 'function',
    );
    if (missing !== undefined) {
      throw invalidOption(
        'RedisStore',
        'client',
        client,
        `an ioredis Redis or Cluster client (major 5 or 6), with a ${missing}() method`,
      );
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
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1 || maxBatch > MAX_BATCH) {
      throw invalidOption('RedisStore', 'maxBatch', maxBatch, `an integer in [1, ${MAX_BATCH}]`);
    }
    this.client = client;
    this.keyPrefix = keyPrefix;
    this.timeoutMs = timeoutMs;
    this.maxWaitMs = Math.min(timeoutMs * MAX_WAIT_FACTOR, MAX_TIMEOUT);
    // A script's keys must share a slot on a cluster.
    this.maxBatch = client.isCluster === true ? 1 : maxBatch;
  }

  /**
   * Decides one request of `cost` (default 1) for `key` under `rule` in Redis, and counts it
   * when allowed. Rejects as described on {@link RedisStore}.
   */
  consume(key: string, rule: RateLimitRule, cost = 1): Promise<RateLimitDecision> {
    return this.consumeObserved(key, rule, cost, undefined, undefined);
  }

  /** See {@link ObservableStore}. @internal */
  consumeObserved<C>(
    key: string,
    rule: RateLimitRule,
    cost: number,
    observer: DecisionObserver<C> | undefined,
    context: C,
  ): Promise<RateLimitDecision> {
    const prepared = rule === this.lastRule ? this.lastPrepared! : this.prepare(rule);
    const batch = prepared.batch;
    batch.keys.push(this.keyPrefix + key);
    batch.costs.push(cost === 1 ? '1' : String(cost));
    batch.observers.push(observer as DecisionObserver<unknown> | undefined);
    batch.contexts.push(context);
    this.filing = batch;
    const decision = new Promise<RateLimitDecision>(this.file);
    if (batch.keys.length >= this.maxBatch) {
      // A full batch leaves now: Redis starts on it while this tick gathers the next one.
      this.sendBatch(prepared, false);
    } else if (batch.keys.length === 1) {
      this.gathering.push(prepared);
      if (!this.flushScheduled) {
        this.flushScheduled = true;
        process.nextTick(this.flush);
      }
    }
    return decision;
  }

  /** Deletes `key` in Redis. Rejects like {@link RedisStore.consume}. */
  reset(key: string): Promise<void> {
    // Decisions asked for before the reset reach Redis before it.
    this.flush();
    return new Promise<void>((resolve, reject) => {
      const call = new Call(
        () => resolve(),
        (error) => reject(this.storeError(error)),
      );
      if (this.track(call, true)) this.watch(call, this.client.del(this.keyPrefix + key));
    });
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
    const pending = this.pending;
    this.pending = [];
    this.sentAt = [];
    for (let i = this.head; i < pending.length; i++) {
      const call = pending[i];
      if (call !== undefined && !call.settled) {
        call.settled = true;
        call.onError(error);
      }
    }
    this.head = 0;
    // Decisions not sent yet are rejected when they would have been sent.
    this.flush();
  }

  // The executor of every decision's promise: one function for all of them.
  private readonly file = (resolve: Resolve, reject: Reject): void => {
    const batch = this.filing!;
    batch.resolves.push(resolve);
    batch.rejects.push(reject);
  };

  private prepare(rule: RateLimitRule): Prepared {
    let prepared = this.prepared.get(rule);
    if (prepared === undefined) {
      prepared =
        rule.algorithm === 'gcra'
          ? {
              script: GCRA_SCRIPT,
              first: String(gcraIntervalUs(rule)),
              second: String(rule.limit + rule.burst),
              limit: rule.limit + rule.burst,
              batch: emptyBatch(),
            }
          : {
              script: FIXED_WINDOW_SCRIPT,
              first: String(fixedWindowSizeUs(rule)),
              second: String(rule.limit),
              limit: rule.limit,
              batch: emptyBatch(),
            };
      this.prepared.set(rule, prepared);
    }
    this.lastRule = rule;
    this.lastPrepared = prepared;
    return prepared;
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    const gathering = this.gathering;
    for (let i = 0; i < gathering.length; i++) this.sendBatch(gathering[i]!, true);
    gathering.length = 0;
  };

  /**
   * Sends the rule's gathered decisions as one script call (nothing when there are none),
   * in this tick's write when `corked`.
   */
  private sendBatch(prepared: Prepared, corked: boolean): void {
    const batch = prepared.batch;
    const count = batch.keys.length;
    if (count === 0) return;
    prepared.batch = emptyBatch();
    // Keys, then the rule's two numbers and the costs; ioredis adds the client's keyPrefix
    // to the keys.
    const args: string[] = batch.keys.slice();
    args.push(prepared.first, prepared.second);
    for (let i = 0; i < count; i++) args.push(batch.costs[i]!);
    const call = new Call(
      (reply) => this.settle(reply, batch, prepared.limit),
      (error) => this.retryOrFail(error, args, prepared, batch),
    );
    if (this.track(call, corked)) {
      this.watch(call, this.client.evalsha(prepared.script.sha, count, ...args));
    }
  }

  /** Hands each waiting decision its answer from the script's flat reply. */
  private settle(reply: unknown, batch: Batch, limit: number): void {
    const r = reply as (number | Error)[];
    const { resolves, observers } = batch;
    for (let i = 0, j = 0; i < resolves.length; i++, j += STRIDE) {
      const allowed = r[j];
      if (allowed instanceof Error) {
        this.failOne(this.storeError(allowed), batch, i);
        continue;
      }
      const decision: RateLimitDecision = {
        allowed: allowed === 1,
        limit,
        remaining: r[j + 1] as number,
        resetMs: r[j + 2] as number,
        retryAfterMs: r[j + 3] as number,
        refillMs: r[j + 4] as number,
      };
      const observer = observers[i];
      if (observer === undefined) {
        resolves[i]!(decision);
        continue;
      }
      try {
        resolves[i]!(observer.answered(decision, batch.contexts[i]));
      } catch (error) {
        batch.rejects[i]!(error);
      }
    }
  }

  private fail(error: unknown, batch: Batch): void {
    const failure = this.storeError(error);
    for (let i = 0; i < batch.resolves.length; i++) this.failOne(failure, batch, i);
  }

  private failOne(error: unknown, batch: Batch, i: number): void {
    const observer = batch.observers[i];
    if (observer === undefined) {
      batch.rejects[i]!(error);
      return;
    }
    try {
      batch.resolves[i]!(observer.failed(error, batch.contexts[i]));
    } catch (thrown) {
      batch.rejects[i]!(thrown);
    }
  }

  /**
   * Files `call` in the timeout queue before its command is sent; false (and the call failed)
   * when the store is closed.
   */
  private track(call: Call, corked: boolean): boolean {
    if (this.closed) {
      call.settled = true;
      call.onError(this.closedError());
      return false;
    }
    const now = performance.now();
    if (this.head === this.pending.length) this.lastHeard = now;
    this.pending.push(call);
    this.sentAt.push(now);
    if (this.timer === undefined && this.sweepScheduled === undefined) this.arm(this.timeoutMs);
    // Commands sent together leave in one write: ioredis writes each command on its own, and
    // a syscall per command was a large share of the client's CPU. (A Cluster has no single
    // stream; its commands are written one by one.)
    const stream = (this.client as { stream?: Partial<Corkable> }).stream;
    if (
      corked &&
      stream !== undefined &&
      stream !== this.corked &&
      stream.writable === true &&
      typeof stream.cork === 'function' &&
      typeof stream.uncork === 'function'
    ) {
      stream.cork();
      this.corked = stream as Corkable;
      process.nextTick(this.uncork, stream);
    }
    return true;
  }

  /** Settles `call` with the outcome of its command, unless the sweep settled it already. */
  private watch(call: Call, reply: Promise<unknown>): void {
    reply.then(
      (value: unknown) => {
        this.lastHeard = performance.now();
        if (call.settled) return;
        call.settled = true;
        this.release(call);
        call.onReply(value);
      },
      (error: unknown) => {
        this.lastHeard = performance.now();
        if (call.settled) return;
        call.settled = true;
        this.release(call);
        call.onError(error);
      },
    );
  }

  private readonly uncork = (stream: Corkable): void => {
    if (this.corked === stream) this.corked = undefined;
    stream.uncork();
  };

  /**
   * Drops settled commands from the front of the timeout queue. Replies come in the order the
   * commands were sent, so the settled one is nearly always the oldest: the queue holds only
   * the calls in flight, not every call of the last `timeoutMs`, and the garbage collector
   * does not copy answered commands around until their deadline.
   */
  private release(call: Call): void {
    const pending = this.pending;
    let i = this.head;
    if (pending[i] !== call) return;
    pending[i] = undefined;
    i++;
    while (i < pending.length) {
      const next = pending[i];
      if (next !== undefined && !next.settled) break;
      pending[i] = undefined;
      i++;
    }
    this.advance(i);
  }

  /** Moves the front of the timeout queue to `i`, compacting the arrays now and then. */
  private advance(i: number): void {
    const pending = this.pending;
    if (i === pending.length) {
      pending.length = 0;
      this.sentAt.length = 0;
      this.head = 0;
      return;
    }
    if (i >= COMPACT_AFTER && i * 2 > pending.length) {
      pending.splice(0, i);
      this.sentAt.splice(0, i);
      i = 0;
    }
    this.head = i;
  }

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
    const { pending, sentAt, timeoutMs } = this;
    const now = performance.now();
    let i = this.head;
    if (i === pending.length) return;
    // Silent since the last reply, or since the oldest call was sent if that is later.
    const quietSince = Math.max(this.lastHeard, sentAt[i] as number);
    // Silence times out every waiting call; otherwise only those that waited the longest.
    const end = now - quietSince >= timeoutMs ? pending.length : 0;
    const longest = now - this.maxWaitMs;
    while (i < pending.length && (i < end || (sentAt[i] as number) <= longest)) {
      const call = pending[i];
      pending[i] = undefined;
      if (call !== undefined && !call.settled) {
        call.settled = true;
        call.onError(this.timeoutError());
      }
      i++;
    }
    this.advance(i);
    if (this.pending.length === 0) return;
    const next = Math.min(
      Math.max(this.lastHeard, sentAt[this.head] as number) + timeoutMs,
      (sentAt[this.head] as number) + this.maxWaitMs,
    );
    this.arm(Math.max(1, next - now));
  };

  // NOSCRIPT: the server lost its script cache (restart, failover, SCRIPT FLUSH, a cluster
  // node seen for the first time). EVAL runs the script and caches it again, under a timeout
  // of its own: the decisions wait at most the NOSCRIPT round trip longer.
  // Recognised by the reply's text, not by class: the client may come from another copy or
  // major of ioredis than the pack's own.
  private retryOrFail(error: unknown, args: string[], prepared: Prepared, batch: Batch): void {
    if (
      typeof (error as Error | null)?.message === 'string' &&
      (error as Error).message.startsWith(NO_SCRIPT) &&
      !this.closed
    ) {
      const call = new Call(
        (reply) => this.settle(reply, batch, prepared.limit),
        (evalError) => this.fail(evalError, batch),
      );
      if (this.track(call, true)) {
        this.watch(call, this.client.eval(prepared.script.lua, batch.keys.length, ...args));
      }
      return;
    }
    this.fail(error, batch);
  }

  /** What a caller sees of a failed call: ours for timeouts and outages, else Redis's own. */
  private storeError(error: unknown): unknown {
    if (error instanceof TimeoutError) return error;
    redactRedisError(error);
    if (error instanceof Error && error.message === COMMAND_TIMED_OUT) {
      return this.timeoutError(error);
    }
    if (redisFailure(error, true) !== undefined) {
      return withoutStack(
        () =>
          new ResourceUnavailableError(
            `Redis rate-limit store is unavailable: ${(error as Error).message}`,
            { cause: error },
          ),
      );
    }
    return error;
  }

  private timeoutError(cause?: unknown): TimeoutError {
    return withoutStack(
      () =>
        new TimeoutError(`Redis rate-limit store did not answer for ${this.timeoutMs} ms`, {
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
