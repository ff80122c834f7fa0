import type { BreakerPolicyConfig, PoolConfig, RetryConfig } from '../config/types.js';
import type { InvalidArgumentError } from '../errors.js';
import {
  BreakerOpenError,
  PoolClosedError,
  PoolExhaustedError,
  ResourceUnavailableError,
  TimeoutError,
  isTimeoutError,
  withoutStack,
} from '../errors.js';
import { CircuitBreaker } from '../policies/breaker.js';
import type { BreakerPermit } from '../policies/breaker.js';
import { peekDeadline, propagateDeadlines } from '../policies/deadline-context.js';
import { nextRetryDelay } from '../policies/retry.js';
import type { RetryDecision, RetryOptions, RetryOutcome } from '../policies/retry.js';
import { RetryBudget } from '../policies/retry-budget.js';
import { AttemptAbort } from './abort-source.js';
import type { AbortSource } from './abort-source.js';
import { Listeners } from '../policies/listeners.js';
import { ResourcePool } from './pool.js';
import type { Borrower, PoolFactory } from './pool.js';
import { ProbeMember } from './probe-member.js';
import type { ProbeUseOptions } from './probe-member.js';
import type { CallEvents, CallOutcome, Disposable, ManagedResource, PoolStats } from './types.js';
import { invalidOption } from '../policies/invalid-option.js';

/** Options of a {@link PooledResource}: what the HTTP and Redis resource configs share. */
export interface PooledResourceOptions {
  name: string;
  /** `http`, `redis`, or a custom kind's name. */
  kind: string;
  /** Unhealthy critical resources fail /readyz. */
  critical: boolean;
  pool: PoolConfig;
  /** attempts, backoff, budget { ratio, minPerSecond, window }, statuses, nonIdempotent. */
  retry: RetryConfig;
  /** `enabled: false` → no breaker; `enforce: false` → outcomes recorded, nothing rejected. */
  breaker: BreakerPolicyConfig;
  /** The resource's own total call timeout (all attempts and waits), in milliseconds. */
  timeoutMs: number;
  /** Jitter source for the retry backoff, in [0, 1). Default `Math.random` (tests inject). */
  random?: () => number;
}

/** Options of one {@link PooledResource.execute} call. */
export interface CallOptions<R> {
  /** false → never retried (unless `retry.nonIdempotent` is configured). */
  idempotent: boolean;
  /**
   * The caller's abort: rejects the call with `signal.reason` and aborts the attempt's signal.
   * Default: the inbound request's deadline signal ({@link currentDeadline}), which aborts on
   * the deadline and when the client disconnects.
   */
  signal?: AbortSignal | undefined;
  /**
   * Per-call total timeout, replacing the resource's `timeoutMs` (longer or shorter; still
   * capped by the inbound deadline). <= 0 fails the call at once with `TimeoutError`.
   */
  timeoutMs?: number | undefined;
  /**
   * Classifies one attempt: `'success'` (settle with it; a success for the breaker),
   * `'failure'` (settle with it, no retry; a failure for the breaker) or
   * `{ retry: true, retryAfterMs?, failure }` (retry when allowed; when not, settle with it —
   * a failure for the breaker if `failure`). Default: a rejection is
   * `{ retry: true, failure: true }`, a result `'success'`.
   *
   * It never sees what the pack decides itself: the call's timeout, the caller's abort and
   * pool errors (`PoolExhaustedError`, `ResourceUnavailableError`, `PoolClosedError`) end
   * the call without a retry.
   */
  classify?: ((outcome: { error: unknown } | { result: R }) => AttemptVerdict) | undefined;
  /** When true for an attempt's error, its member is destroyed instead of released. */
  isBroken?: ((error: unknown) => boolean) | undefined;
  /**
   * True when `fn` settles soon after its signal aborts (it hands the signal to its I/O), so
   * no borrow outlives the call's timeout by much: a lease warning is then impossible below
   * that timeout, and the acquiring stack is not captured (see `captureStack` of the pool).
   */
  settlesOnAbort?: boolean | undefined;
}

/** The verdict of {@link CallOptions.classify} on one attempt. */
export type AttemptVerdict =
  'success' | 'failure' | { retry: true; retryAfterMs?: number | undefined; failure: boolean };

/** setTimeout clamps larger delays to 1 ms (with a warning), which would expire at once. */
const MAX_TIMER_DELAY = 2_147_483_647;

const RETRY_FAILURE: AttemptVerdict = Object.freeze({ retry: true, failure: true });

function defaultClassify(outcome: { error: unknown } | { result: unknown }): AttemptVerdict {
  return 'error' in outcome ? RETRY_FAILURE : 'success';
}

/** Errors of the pack's own making inside an attempt: never classified, never retried. */
function isPoolError(error: unknown): boolean {
  return (
    error instanceof PoolExhaustedError ||
    error instanceof ResourceUnavailableError ||
    error instanceof PoolClosedError
  );
}

/**
 * One attempt of a call, as {@link PooledResource.executeWithAttempt} hands it to `fn`: an
 * {@link AbortSource} that aborts, with the reason, when the call times out or its caller
 * aborts; `signal`, an AbortSignal made on first read, for I/O that only takes one; and how
 * `fn` ends the attempt — `succeed` or `fail`, once (later calls are ignored).
 */
export interface Attempt<R = unknown> extends AbortSource {
  readonly signal: AbortSignal;
  succeed(result: R): void;
  fail(error: unknown): void;
}

/** The `fn` of either execute method, as a call holds it. */
type AttemptFn<R> = (member: unknown, abort: never, options: never) => Promise<R> | void;

// Module-level functions with access to the resource's private methods, assigned in its
// static block: calls and attempts are driven from timers, listeners and the pool's
// callbacks without a closure per call.
let attemptLent: (run: AttemptRun, member: unknown) => void;
let attemptReturned: (run: AttemptRun, failed: boolean, error: unknown, result: unknown) => void;
let attemptEnded: <R>(call: Call<R>, outcome: RetryOutcome<R>) => void;
let nextAttempt: <R>(call: Call<R>) => void;
let callTimedOut: <R>(call: Call<R>) => void;
let callAborted: <R>(call: Call<R>) => void;
let retryScheduled: <R>(call: Call<R>, attempt: number, delayMs: number) => void;
let budgetExhausted: <R>(call: Call<R>) => void;

/** One attempt: its abort, the pool's borrower of its member, and how `fn` ends it. */
class AttemptRun extends AttemptAbort implements Borrower<unknown>, Attempt {
  /**
   * Set once the call has its outcome from this attempt (it may have timed out while `fn`
   * still runs: its member comes back when `fn` settles).
   */
  ended = false;
  /** The member `fn` is running on, until `fn` settles. */
  member: unknown = undefined;
  returned = false;
  constructor(readonly call: Call<unknown>) {
    super();
  }

  lent(member: unknown): void {
    attemptLent(this, member);
  }

  refused(error: unknown): void {
    if (!this.ended) attemptEnded(this.call, { error });
  }

  succeed(result: unknown): void {
    attemptReturned(this, false, undefined, result);
  }

  fail(error: unknown): void {
    attemptReturned(this, true, error, undefined);
  }
}

/**
 * The state of one {@link PooledResource.execute} call: its attempts, timer, abort listener
 * and promise, and the options of the retry steps ({@link nextRetryDelay}) — one object per
 * call, where an async retry loop would allocate closures and promises per attempt.
 */
class Call<R> implements RetryOptions {
  /** The verdict on the last attempt: true when it counts as a failure for the breaker. */
  failed = false;
  /** The last attempt ended in a verdict that asked for a retry. */
  wantedRetry = false;
  budgetRefused = false;
  /** Set when the pack itself ended the call (timeout, abort, pool error). */
  final = false;
  /** The TimeoutError of the attempt that ran out of time, if any. */
  timeout: TimeoutError | undefined = undefined;
  /** Attempts made so far. */
  attempt = 0;
  /** The attempt in progress, if any. */
  run: AttemptRun | undefined = undefined;
  /** Fires at the call's deadline. */
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** The backoff wait before the next attempt. */
  wait: ReturnType<typeof setTimeout> | undefined = undefined;
  settled = false;
  resolve!: (value: R) => void;
  reject!: (error: unknown) => void;
  readonly deadline: { remaining(): number } = this;

  constructor(
    readonly resource: PooledResource<unknown>,
    // Typed over `unknown` members, so that PooledResource<T> stays assignable to
    // PooledResource<unknown> (the manager holds every kind that way).
    readonly fn: AttemptFn<R>,
    /** Whether `fn` takes the {@link Attempt} (else its AbortSignal). */
    readonly withAttempt: boolean,
    readonly options: CallOptions<R>,
    readonly signal: AbortSignal | undefined,
    readonly startedAt: number,
    readonly totalMs: number,
    readonly permit: BreakerPermit | null,
    readonly attempts: number,
    readonly backoff: RetryOptions['backoff'],
    readonly budget: RetryBudget,
    readonly random: () => number,
  ) {}

  remaining(): number {
    const left = this.startedAt + this.totalMs - Date.now();
    return left > 0 ? left : 0;
  }

  onRetry(attempt: number, delayMs: number): void {
    retryScheduled(this, attempt, delayMs);
  }

  onBudgetExhausted(): void {
    this.budgetRefused = true;
    budgetExhausted(this);
  }

  /** The caller's signal aborted (an object listener: no closure per call). */
  handleEvent(): void {
    callAborted(this);
  }
}

function onCallTimer<R>(call: Call<R>): void {
  call.timer = undefined;
  callTimedOut(call);
}

function onWaitTimer<R>(call: Call<R>): void {
  call.wait = undefined;
  nextAttempt(call);
}

/**
 * The base of every pooled resource kind (HTTP, Redis, custom): a {@link ResourcePool}, an
 * optional {@link CircuitBreaker}, a {@link RetryBudget}, call events for the metrics, and
 * {@link PooledResource.execute}, which runs a call through breaker → retry → timeout →
 * pool acquire → fn → release. Kinds differ only in their factory, their call methods (built
 * on `execute`) and their {@link PooledResource.probe}.
 */
export abstract class PooledResource<T> implements ManagedResource, CallEvents {
  readonly name: string;
  readonly kind: string;
  readonly critical: boolean;
  readonly pool: ResourcePool<T>;
  /** Undefined when `breaker.enabled` is false. */
  readonly breaker: CircuitBreaker | undefined;
  readonly budget: RetryBudget;

  readonly #timeoutMs: number;
  readonly #enforce: boolean;
  readonly #attempts: number;
  readonly #backoff: RetryConfig['backoff'];
  readonly #nonIdempotent: boolean;
  readonly #random: () => number;
  readonly #probeMember: ProbeMember<T>;
  #closed = false;
  #closing: Promise<void> | undefined = undefined;
  readonly #callListeners = new Listeners<[outcome: CallOutcome, durationMs: number]>(
    'resource onCall',
  );
  readonly #retryListeners = new Listeners<[attempt: number, delayMs: number]>('resource onRetry');
  readonly #budgetListeners = new Listeners<[]>('resource onBudgetExhausted');

  /**
   * @throws InvalidArgumentError on malformed options (see {@link ResourcePool},
   *   {@link CircuitBreaker}, {@link RetryBudget}): `name`/`kind` not non-empty strings,
   *   `timeoutMs` not a number in [0, 2147483647], `retry.attempts` not an integer >= 1,
   *   `retry.backoff` not `{ initial <= max, multiplier >= 1 }`, `random` not a function.
   */
  protected constructor(options: PooledResourceOptions, factory: PoolFactory<T>) {
    if (typeof options !== 'object' || options === null) {
      throw invalid('options', options, 'an object');
    }
    const { name, kind, critical, timeoutMs, retry: retryConfig, breaker } = options;
    // Calls made inside a request inherit its remaining deadline.
    propagateDeadlines();
    if (typeof name !== 'string' || name.length === 0) {
      throw invalid('name', name, 'a non-empty string');
    }
    if (typeof kind !== 'string' || kind.length === 0) {
      throw invalid('kind', kind, 'a non-empty string');
    }
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0 && timeoutMs <= MAX_TIMER_DELAY)) {
      throw invalid('timeoutMs', timeoutMs, `a number of milliseconds in [0, ${MAX_TIMER_DELAY}]`);
    }
    if (typeof retryConfig !== 'object' || retryConfig === null) {
      throw invalid('retry', retryConfig, 'an object');
    }
    const { attempts, backoff } = retryConfig;
    if (typeof attempts !== 'number' || !Number.isSafeInteger(attempts) || attempts < 1) {
      throw invalid('retry.attempts', attempts, 'an integer >= 1');
    }
    if (
      typeof backoff !== 'object' ||
      backoff === null ||
      !(backoff.initial >= 0 && backoff.initial <= backoff.max && Number.isFinite(backoff.max)) ||
      !(backoff.multiplier >= 1 && Number.isFinite(backoff.multiplier))
    ) {
      throw invalid(
        'retry.backoff',
        backoff,
        '{ initial, max, multiplier } with 0 <= initial <= max and a finite multiplier >= 1',
      );
    }
    if (options.random !== undefined && typeof options.random !== 'function') {
      throw invalid('random', options.random, 'a function');
    }
    if (typeof breaker !== 'object' || breaker === null) {
      throw invalid('breaker', breaker, 'an object');
    }

    this.name = name;
    this.kind = kind;
    this.critical = critical === true;
    this.#timeoutMs = timeoutMs;
    this.#attempts = attempts;
    this.#backoff = { initial: backoff.initial, max: backoff.max, multiplier: backoff.multiplier };
    this.#nonIdempotent = retryConfig.nonIdempotent === true;
    this.#random = options.random ?? Math.random;
    this.budget = new RetryBudget({
      ratio: retryConfig.budget?.ratio,
      minPerSecond: retryConfig.budget?.minPerSecond,
      window: retryConfig.budget?.window,
    } as { ratio: number; minPerSecond: number; window: number });
    this.breaker = breaker.enabled
      ? new CircuitBreaker({
          window: breaker.window,
          minimumCalls: breaker.minimumCalls,
          failureRate: breaker.failureRate,
          slowCall: breaker.slowCall,
          halfOpenAfter: breaker.halfOpenAfter,
          halfOpenProbes: breaker.halfOpenProbes,
          openBackoff: breaker.openBackoff,
        })
      : undefined;
    this.#enforce = breaker.enforce !== false;
    // Last: the pool validates its own options, and nothing above holds resources.
    this.pool = new ResourcePool<T>(factory, { ...options.pool, name });
    this.#probeMember = new ProbeMember(factory, name);
  }

  /**
   * One health probe; resolves when healthy, rejects with the reason otherwise. Kinds run it
   * through {@link PooledResource.probeWith}, not the pool.
   */
  abstract probe(signal: AbortSignal): Promise<void>;

  /**
   * Runs a health probe's `fn` on a member of its own, made by the pool's factory outside the
   * pool (one kept between probes, see {@link ProbeMember}): a pool saturated by traffic
   * neither delays nor fails the probe. Bypasses the breaker, retries and call events.
   * Rejects with `signal.reason` when it aborts before a member is ready,
   * `ResourceUnavailableError` when no member can be created, `PoolClosedError` after close,
   * or as `fn` does.
   */
  protected probeWith<R>(fn: (member: T) => Promise<R>, options: ProbeUseOptions): Promise<R> {
    return this.#probeMember.use(fn, options);
  }

  /** Starts the pool (warming `min` members); idempotent; never rejects. */
  start(): Promise<void> {
    this.pool.start();
    return Promise.resolve();
  }

  /** The pool's snapshot. */
  stats(): PoolStats {
    return this.pool.stats();
  }

  /**
   * Stops new calls (they reject with `PoolClosedError`), waits up to `graceMs` (default 0)
   * for borrowed members, destroys everything; idempotent (later calls return the first
   * call's promise). Subclasses that hold more (timers, agents) override it and call
   * `super.close(graceMs)`.
   */
  close(graceMs?: number): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closed = true;
    const probe = this.#probeMember.close();
    this.#closing = this.pool.close(graceMs).finally(() => probe);
    return this.#closing;
  }

  /** Every finished {@link PooledResource.execute} (all attempts): outcome and duration. */
  onCall(listener: (outcome: CallOutcome, durationMs: number) => void): Disposable {
    return this.#callListeners.add(listener);
  }

  /** Every retry scheduled: the attempt about to be made (2 = first retry) and its delay. */
  onRetry(listener: (attempt: number, delayMs: number) => void): Disposable {
    return this.#retryListeners.add(listener);
  }

  /** Every retry refused because the retry budget was spent. */
  onBudgetExhausted(listener: () => void): Disposable {
    return this.#budgetListeners.add(listener);
  }

  /**
   * Runs one call: breaker → retry → timeout → pool acquire → `fn` → release.
   *
   * - With no time left ({@link PooledResource.effectiveTimeout} is 0) it rejects at once
   *   with `TimeoutError` (outcome `timeout`), touching neither the breaker nor the pool.
   * - The breaker (if any, and enforced) rejects with `BreakerOpenError` (outcome
   *   `breaker-open`); otherwise it records the call's final outcome once: a failure for
   *   failures and timeouts, a success otherwise, nothing (permit released) when the caller
   *   aborted for another reason than a timeout or the pool turned the call away
   *   (`PoolExhaustedError`, `PoolClosedError`). A `ResourceUnavailableError` (the factory
   *   cannot reach the dependency) is a failure.
   * - Every attempt runs under the time left of the call's total timeout (fixed when the
   *   call starts) and borrows a member for `fn`; `fn`'s `signal` (one per attempt) aborts
   *   when that time runs out or the caller aborts — pass it to the I/O. The
   *   member is given back when `fn` settles (destroyed if `isBroken` says so), which may be
   *   after the call has already rejected with the timeout.
   * - `classify` judges each attempt. A retry needs an idempotent call (or
   *   `retry.nonIdempotent`), attempts left, time left for the backoff wait, and a grant from
   *   the retry budget (every call deposits into it).
   *
   * Rejects with the last attempt's error (a `TimeoutError` when time ran out — outcome
   * `timeout`), the pool's errors (outcome `rejected`, `failure` for
   * `ResourceUnavailableError`), the caller's `signal.reason` (outcome `timeout` when it is a
   * `TimeoutError`, else `rejected`), or resolves the last attempt's result. Emits `onCall`
   * once, `onRetry` per retry, `onBudgetExhausted` when the budget refused one (outcome
   * `budget-exhausted` when that leaves the call failed).
   */
  protected execute<R>(
    fn: (member: T, signal: AbortSignal) => Promise<R>,
    options: CallOptions<R>,
  ): Promise<R> {
    return this.#start(fn as AttemptFn<R>, false, options);
  }

  /**
   * {@link PooledResource.execute} for kinds whose I/O can report to an {@link Attempt}: `fn`
   * gets the attempt instead of an AbortSignal and ends it with `attempt.succeed(result)` or
   * `attempt.fail(error)` instead of returning a promise (a throw fails it); it gets `options`
   * back, so that a kind can carry its call's state in them and pass a function that closes
   * over nothing. No AbortSignal is made unless `fn` reads `attempt.signal`, and no promise
   * per attempt: on the hot path of a pooled call both cost more than the rest of its
   * bookkeeping.
   */
  protected executeWithAttempt<R, O extends CallOptions<R>>(
    fn: (member: T, attempt: Attempt<R>, options: O) => void,
    options: O,
  ): Promise<R> {
    return this.#start(fn as AttemptFn<R>, true, options);
  }

  #start<R>(fn: AttemptFn<R>, withAttempt: boolean, options: CallOptions<R>): Promise<R> {
    const startedAt = Date.now();
    if (this.#closed) {
      this.#callListeners.emit('rejected', 0);
      return Promise.reject(
        withoutStack(() => new PoolClosedError(`Resource "${this.name}" is closed`)),
      );
    }
    const total = this.effectiveTimeout(options.timeoutMs);
    if (total <= 0) {
      this.#callListeners.emit('timeout', 0);
      return Promise.reject(
        withoutStack(
          () =>
            new TimeoutError(`No time left for a call to resource "${this.name}"`, {
              timeoutMs: 0,
            }),
        ),
      );
    }
    const signal = options.signal ?? peekDeadline()?.signal;
    if (signal?.aborted) {
      this.#callListeners.emit(isTimeoutError(signal.reason) ? 'timeout' : 'rejected', 0);
      return Promise.reject(signal.reason);
    }
    let permit: BreakerPermit | null = null;
    if (this.breaker !== undefined) {
      permit = this.breaker.tryAcquire();
      if (permit === null && this.#enforce) {
        this.#callListeners.emit('breaker-open', 0);
        const retryAfterMs = this.breaker.retryAfterMs();
        return Promise.reject(
          withoutStack(
            () =>
              new BreakerOpenError(`Circuit breaker of resource "${this.name}" is open`, {
                retryAfterMs,
              }),
          ),
        );
      }
    }
    this.budget.recordRequest();
    const call = new Call<R>(
      this as PooledResource<unknown>,
      fn,
      withAttempt,
      options,
      signal,
      startedAt,
      total,
      permit,
      options.idempotent || this.#nonIdempotent ? this.#attempts : 1,
      this.#backoff,
      this.budget,
      this.#random,
    );
    const promise = new Promise<R>((resolve, reject) => {
      call.resolve = resolve;
      call.reject = reject;
    });
    // One timer for the whole call (all attempts and waits), not one per attempt.
    call.timer = setTimeout(onCallTimer, total, call);
    call.timer.unref();
    signal?.addEventListener('abort', call);
    this.#attempt(call);
    return promise;
  }

  /**
   * The call timeout now: `min(timeoutMs ?? this.timeoutMs, currentDeadline()?.remaining())`.
   * 0 means no time is left: {@link PooledResource.execute} then fails at once with
   * `TimeoutError` without touching the pool.
   */
  protected effectiveTimeout(timeoutMs?: number): number {
    let ms = this.#timeoutMs;
    if (typeof timeoutMs === 'number' && !Number.isNaN(timeoutMs)) {
      ms = timeoutMs <= 0 ? 0 : timeoutMs < MAX_TIMER_DELAY ? timeoutMs : MAX_TIMER_DELAY;
    }
    const deadline = peekDeadline();
    if (deadline !== undefined) {
      const left = deadline.remaining();
      if (left < ms) ms = left;
    }
    return ms;
  }

  /** Starts an attempt: borrows a member for `fn` within the time the call has left. */
  #attempt<R>(call: Call<R>): void {
    call.attempt++;
    const left = call.remaining();
    if (left <= 0) {
      call.timeout = this.#timeoutError(call.totalMs);
      this.#attemptEnded(call, { error: call.timeout });
      return;
    }
    const run = new AttemptRun(call as Call<unknown>);
    call.run = run;
    this.pool.borrow(run as Borrower<T>, {
      signal: run,
      timeoutMs: left,
      captureStack: call.options.settlesOnAbort !== true,
    });
  }

  #lent(run: AttemptRun, member: T): void {
    if (run.ended) {
      this.pool.release(member);
      return;
    }
    run.member = member;
    const call = run.call;
    if (call.withAttempt) {
      try {
        call.fn(member, run as never, call.options as never);
      } catch (error) {
        run.fail(error);
      }
      return;
    }
    let pending: Promise<unknown>;
    try {
      pending = call.fn(member, run.signal as never, undefined as never) as Promise<unknown>;
    } catch (error) {
      pending = Promise.reject(error);
    }
    pending.then(
      (result) => run.succeed(result),
      (error: unknown) => run.fail(error),
    );
  }

  /** `fn` settled: its member goes back (or is destroyed), then the attempt has its outcome. */
  #returned(run: AttemptRun, failed: boolean, error: unknown, result: unknown): void {
    if (run.returned) return;
    run.returned = true;
    const member = run.member as T;
    run.member = undefined;
    if (failed && this.#isBroken(run.call, error)) void this.pool.destroy(member);
    else this.pool.release(member);
    if (run.ended) return;
    // From undici's callbacks, a retry at once would dispatch inside them: it waits a turn.
    this.#attemptEnded(run.call, failed ? { error } : { result }, true);
  }

  #isBroken(call: Call<unknown>, error: unknown): boolean {
    const isBroken = call.options.isBroken;
    if (isBroken === undefined) return false;
    try {
      return isBroken(error) === true;
    } catch {
      return true;
    }
  }

  /**
   * An attempt's outcome: settles the call, or retries it after a backoff wait — or at once,
   * but a microtask later when `deferRetry` (the outcome came from inside the I/O's callbacks).
   */
  #attemptEnded<R>(call: Call<R>, outcome: RetryOutcome<R>, deferRetry = false): void {
    if (call.run !== undefined) {
      call.run.ended = true;
      call.run = undefined;
    }
    if (call.settled) return;
    let delay: number;
    try {
      delay = nextRetryDelay(outcome, this.#judge(call, outcome), call.attempt, call);
    } catch (error) {
      // The caller's signal aborted (it is heard first, so this is a safety net).
      this.#settle(call, true, error, undefined);
      return;
    }
    if (delay < 0) {
      if ('error' in outcome) this.#settle(call, true, outcome.error, undefined);
      else this.#settle(call, false, undefined, outcome.result);
    } else if (delay > 0) {
      call.wait = setTimeout(onWaitTimer, delay, call);
      call.wait.unref();
    } else if (deferRetry) {
      queueMicrotask(() => {
        if (!call.settled) this.#attempt(call);
      });
    } else {
      this.#attempt(call);
    }
  }

  /** The call's deadline: the attempt in progress (or the wait) ends with a TimeoutError. */
  #timedOut<R>(call: Call<R>): void {
    if (call.settled) return;
    const error = this.#timeoutError(call.totalMs);
    call.timeout = error;
    this.#abandon(call, error);
  }

  /** The caller's signal aborted: the call rejects with its reason. */
  #aborted<R>(call: Call<R>): void {
    if (call.settled) return;
    this.#abandon(call, call.signal!.reason);
  }

  /** Ends the call with `error` at once, aborting its attempt (the pack's own decision). */
  #abandon<R>(call: Call<R>, error: unknown): void {
    const run = call.run;
    call.final = true;
    call.wantedRetry = false;
    this.#settle(call, true, error, undefined);
    if (run !== undefined) run.abort(error);
  }

  #settle<R>(call: Call<R>, rejected: boolean, error: unknown, result: R | undefined): void {
    if (call.settled) return;
    call.settled = true;
    if (call.run !== undefined) {
      call.run.ended = true;
      call.run = undefined;
    }
    if (call.timer !== undefined) {
      clearTimeout(call.timer);
      call.timer = undefined;
    }
    if (call.wait !== undefined) {
      clearTimeout(call.wait);
      call.wait = undefined;
    }
    call.signal?.removeEventListener('abort', call);
    this.#finish(call, error, rejected);
    if (rejected) call.reject(error);
    else call.resolve(result as R);
  }

  /** The retry decision on one attempt (also remembers the verdict for the breaker). */
  #judge<R>(call: Call<R>, outcome: { error: unknown } | { result: R }): RetryDecision {
    call.wantedRetry = false;
    if ('error' in outcome) {
      const error = outcome.error;
      const signal = call.signal;
      if (
        (call.timeout !== undefined && error === call.timeout) ||
        (signal?.aborted === true && error === signal.reason) ||
        isPoolError(error)
      ) {
        call.final = true;
        return false;
      }
    }
    const classify = call.options.classify;
    let verdict: AttemptVerdict;
    try {
      verdict = classify === undefined ? defaultClassify(outcome) : classify(outcome);
    } catch {
      // A classifier bug must not turn a failed call into a success, nor retry it.
      verdict = 'failure';
    }
    if (verdict === 'success') {
      call.failed = false;
      return false;
    }
    if (verdict === 'failure' || typeof verdict !== 'object' || verdict === null) {
      call.failed = true;
      return false;
    }
    call.failed = verdict.failure === true;
    call.wantedRetry = true;
    const after = verdict.retryAfterMs;
    return typeof after === 'number' && after > 0 ? { retryAfterMs: after } : true;
  }

  #finish<R>(call: Call<R>, error: unknown, rejected: boolean): void {
    const { permit, startedAt } = call;
    let outcome: CallOutcome;
    let failure: boolean | undefined; // undefined: release the permit
    const signal = call.signal;
    if (rejected && signal?.aborted === true && error === signal.reason) {
      // The caller gave up (during an attempt or a backoff wait). Only a deadline says
      // anything about the dependency; a disconnect or cancel does not.
      if (isTimeoutError(error)) {
        outcome = 'timeout';
        failure = true;
      } else {
        outcome = 'rejected';
      }
    } else if (rejected && call.final) {
      if (error === call.timeout || isTimeoutError(error)) {
        outcome = 'timeout';
        failure = true;
      } else if (error instanceof ResourceUnavailableError) {
        outcome = 'failure';
        failure = true;
      } else {
        outcome = 'rejected';
      }
    } else if (call.failed) {
      // A kind's own timeouts (undici's headers/body) are classified as failures but are
      // still timeouts in the metrics.
      if (rejected && isTimeoutError(error)) outcome = 'timeout';
      else outcome = call.budgetRefused && call.wantedRetry ? 'budget-exhausted' : 'failure';
      failure = true;
    } else {
      outcome = 'success';
      failure = false;
    }
    if (permit !== null) {
      if (failure === undefined) permit.release();
      else if (failure) permit.failure();
      else permit.success();
    }
    this.#callListeners.emit(outcome, Date.now() - startedAt);
  }

  #timeoutError(timeoutMs: number): TimeoutError {
    return withoutStack(
      () =>
        new TimeoutError(`Call to resource "${this.name}" exceeded ${timeoutMs} ms`, {
          timeoutMs,
        }),
    );
  }

  static {
    attemptLent = (run, member) => run.call.resource.#lent(run, member);
    attemptReturned = (run, failed, error, result) =>
      run.call.resource.#returned(run, failed, error, result);
    attemptEnded = (call, outcome) => call.resource.#attemptEnded(call, outcome);
    nextAttempt = (call) => call.resource.#attempt(call);
    callTimedOut = (call) => call.resource.#timedOut(call);
    callAborted = (call) => call.resource.#aborted(call);
    retryScheduled = (call, attempt, delayMs) =>
      call.resource.#retryListeners.emit(attempt, delayMs);
    budgetExhausted = (call) => call.resource.#budgetListeners.emit();
  }
}

function invalid(option: string, value: unknown, expected: string): InvalidArgumentError {
  return invalidOption('resource', option, value, expected);
}
