import genericPool from 'generic-pool';
import type { Pool as GenericPool } from 'generic-pool';
import type { AbortSource } from '../abort-source.js';
import type { AcquireErrorReason, Disposable, PoolEvents, PoolStats } from '../types.js';
import { CreateBackoff } from './create-backoff.js';
import { closedError, queueFullError, timeoutError, unavailableError } from './errors.js';
import { LeaseTracker, Member } from './leases.js';
import type { LeaseWarning } from './leases.js';
import { ListenerErrors, Listeners } from '../../policies/listeners.js';
import { checkMillis, checkPoolArguments, invalid } from './options.js';
import type { PoolSettings } from './options.js';
import type {
  AcquireOptions,
  Borrower,
  PoolFactory,
  ResourcePoolOptions,
  UseOptions,
} from './types.js';
import { WaitQueue, Waiter } from './wait-queue.js';
import type { WaiterHost } from './wait-queue.js';
import { check, expired, validateNew } from './validation.js';

/**
 * A pool of members (connections, clients): generic-pool 3.9 through its documented API
 * (`createPool` and the options its README documents), with thin layers for
 * what it leaves to its users:
 *
 * - generic-pool creates members (`min` kept warm, never more than `max`), validates them on
 *   borrow (`testOnBorrow` with the factory's validate; throw or rejection = invalid), lends
 *   idle ones most-recently-returned first (`fifo: false`, so the surplus goes idle) and
 *   destroys members idle for `idleTimeout` while more than `min` are idle
 *   (`softIdleTimeoutMillis`; 0 = never; checked every `evictionRunIntervalMillis` =
 *   `evictionInterval`);
 * - a failing factory does not spin ({@link CreateBackoff}): creation retries back off
 *   exponentially (`createBackoff`, one probing create at a time), and while the factory is
 *   failing, acquires that no idle member can serve — queued ones included — fail at once
 *   with a `ResourceUnavailableError` whose `cause` is the factory's error; the first
 *   successful create ends the failing state;
 * - callers wait in a queue of their own ({@link WaitQueue}): acquires time out
 *   (`acquireTimeout`, shortened per call, `PoolExhaustedError` reason `acquire-timeout`),
 *   can be aborted, and the queue is bounded (`maxWaiting`; overflow → `PoolExhaustedError`
 *   reason `queue-full` at once). generic-pool cannot cancel a queued acquire: the pool keeps
 *   one generic-pool acquire per waiting caller, and a member it grants after its caller
 *   left goes to the next caller, or back;
 * - lease tracking ({@link LeaseTracker}): with `leaseWarning` > 0, a member borrowed longer
 *   than that is reported once per borrow through {@link ResourcePool.onLeaseWarning};
 * - `maxLifetime` (0 = forever): older members are destroyed on release and refused by
 *   validation on borrow; idle ones are pulled through that validation every
 *   `evictionInterval` once one of them has expired.
 *
 * Members must be distinct objects (they key the loan table).
 *
 * Fast path: a member given back while nobody waits stays on loan from generic-pool on a
 * small stack, and a borrow takes it from there synchronously (validated as generic-pool
 * would): a borrow and a release through generic-pool cost about 5 µs of promises and
 * bookkeeping, more than the rest of a pooled call. Members idle on the stack for half an
 * `evictionInterval` go back to generic-pool (`release`), whose evictor then owns their
 * idleness; with neither `idleTimeout` nor `maxLifetime` nothing needs them back before
 * close().
 */
export class ResourcePool<T> implements PoolEvents {
  /** The pool's name, from the options. */
  readonly name: string;

  readonly #factory: PoolFactory<T>;
  readonly #settings: PoolSettings;
  readonly #gp: GenericPool<T>;
  readonly #creator: CreateBackoff<T>;
  readonly #leases: LeaseTracker<T>;
  readonly #members = new Map<T, Member>();
  readonly #queue = new WaitQueue<T>();
  readonly #host: WaiterHost<T>;
  /** Members given back while nobody waited, most recent last (see the class comment). */
  readonly #idle: T[] = [];
  #flushTimer: ReturnType<typeof setInterval> | undefined = undefined;
  /** generic-pool acquires not served yet: at least one per waiting caller. */
  #requests = 0;
  #borrowed = 0;
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined = undefined;
  #lifetimeTimer: ReturnType<typeof setInterval> | undefined = undefined;
  /** Set while a lifetime sweep borrows idle members: their validation checks the age only. */
  #sweeping = false;
  /** What a closed pool gives generic-pool instead of a member (see #create). */
  readonly #placeholders = new Set<unknown>();
  readonly #destroying = new Map<T, Promise<void>>();
  /** Resolved when the last borrowed member comes back during close(). */
  #allReturned: (() => void) | undefined = undefined;

  /** One warning for a throwing listener of any of the pool's events. */
  readonly #listenerErrors = new ListenerErrors('pool');
  readonly #acquireListeners = new Listeners<[waitMs: number]>(this.#listenerErrors);
  readonly #acquireErrorListeners = new Listeners<[reason: AcquireErrorReason, error: Error]>(
    this.#listenerErrors,
  );
  readonly #createErrorListeners = new Listeners<[error: Error]>(this.#listenerErrors);

  /**
   * Does not create members yet (see {@link ResourcePool.start}).
   * @throws InvalidArgumentError when the factory lacks `create`/`destroy` (or has a
   *   non-function `validate`), or an option is malformed: `name` not a non-empty string,
   *   `min`/`max`/`maxWaiting` not integers (`max` >= 1, 0 <= `min` <= `max`), a duration not a
   *   number of milliseconds in [0, 2147483647] (`acquireTimeout`, `evictionInterval` and
   *   `createBackoff.initial` > 0; `createBackoff.initial` <= `createBackoff.max`).
   */
  constructor(factory: PoolFactory<T>, options: ResourcePoolOptions) {
    const settings = checkPoolArguments(factory, options);
    this.name = settings.name;
    this.#factory = factory;
    this.#settings = settings;
    this.#creator = new CreateBackoff<T>(
      settings.name,
      settings.backoffInitial,
      settings.backoffMax,
      {
        create: () => factory.create(),
        validate: (member) => validateNew(factory, member),
        discard: (member) => void this.#destroyMember(member),
        failed: (error) => this.#createFailed(error),
        closedError: () => closedError(this.name),
      },
    );
    this.#leases = new LeaseTracker<T>(
      settings.name,
      settings.leaseWarning,
      this.#members,
      this.#listenerErrors,
    );
    this.#host = {
      aborted: (waiter) => this.#rejectWaiter(waiter, 'aborted', waiter.signal!.reason),
      timedOut: (waiter) =>
        this.#rejectWaiter(waiter, 'timeout', timeoutError(this.name, waiter.timeoutMs)),
    };
    const testOnBorrow = factory.validate !== undefined || settings.maxLifetime > 0;
    this.#gp = genericPool.createPool<T>(
      {
        create: () => this.#create(),
        destroy: (member) => this.#destroyMember(member),
        ...(testOnBorrow ? { validate: (member: T) => this.#validateForPool(member) } : {}),
      },
      {
        min: settings.min,
        max: settings.max,
        autostart: false,
        // LIFO: the surplus over what the load needs stays idle long enough to be evicted.
        fifo: false,
        testOnBorrow,
        evictionRunIntervalMillis: settings.idleTimeout > 0 ? settings.evictionInterval : 0,
        // Soft: idleness never evicts below `min` idle members. The hard limit is off.
        softIdleTimeoutMillis: settings.idleTimeout > 0 ? settings.idleTimeout : -1,
        idleTimeoutMillis: Number.POSITIVE_INFINITY,
        numTestsPerEvictionRun: settings.max,
        // acquireTimeoutMillis and maxWaitingClients stay unset: a request generic-pool timed
        // out stays in its queue, and a release dispatched to it is lost until the next one
        // (see WaitQueue); maxWaiting counts differently (see #request).
      },
    );
  }

  /**
   * Begins keeping `min` members warm, idle eviction and lease checks; never throws (a
   * failing factory is retried with backoff and reported through `onCreateError`);
   * idempotent; does nothing after close. `acquire()` starts the pool too.
   */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    this.#leases.start();
    const { idleTimeout, maxLifetime, evictionInterval } = this.#settings;
    if (idleTimeout > 0 || maxLifetime > 0) {
      // Twice per evictionInterval: generic-pool's evictor sees a member idle at most one
      // evictionInterval after it went idle here.
      this.#flushTimer = setInterval(() => this.#flush(evictionInterval / 2), evictionInterval / 2);
      this.#flushTimer.unref();
    }
    if (maxLifetime > 0) {
      this.#lifetimeTimer = setInterval(() => this.#sweep(), this.#settings.evictionInterval);
      this.#lifetimeTimer.unref();
    }
    this.#gp.start();
  }

  /**
   * Borrows a member; give it back with {@link ResourcePool.release} (or
   * {@link ResourcePool.destroy} when broken), or use {@link ResourcePool.use}.
   *
   * Rejects with:
   * - `PoolExhaustedError` reason `queue-full` at once when the pool is at `max`, no member is
   *   idle and `maxWaiting` acquires already wait beyond those that members being created will
   *   serve (a cold pool admits `max + maxWaiting`); reason `acquire-timeout` after
   *   `min(acquireTimeout, options.timeoutMs)` ms (at once when that is <= 0);
   * - `ResourceUnavailableError` (`cause`: the factory's error) at once while the factory is
   *   failing and no member is idle — including acquires that were already waiting;
   * - `PoolClosedError` after {@link ResourcePool.close} (waiters are rejected by close);
   * - `options.signal.reason` when it aborts (the waiter is removed);
   * - `InvalidArgumentError` when `options.timeoutMs` is not a number.
   */
  acquire(options?: AcquireOptions): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.borrow({ lent: resolve, refused: reject }, options);
    });
  }

  /**
   * @internal {@link ResourcePool.acquire} without a promise, for the pack's own hot path:
   * tells `borrower` once, synchronously when an idle member is at hand (or the borrow is
   * refused at once), later otherwise. Never throws.
   */
  borrow(borrower: Borrower<T>, options?: AcquireOptions): void {
    if (this.#closed) {
      this.#refuse(borrower, 'closed', closedError(this.name));
      return;
    }
    const signal = options?.signal;
    if (signal?.aborted) {
      this.#refuse(borrower, 'aborted', signal.reason);
      return;
    }
    let timeout = this.#settings.acquireTimeout;
    const timeoutMs = options?.timeoutMs;
    if (timeoutMs !== undefined) {
      if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs)) {
        borrower.refused(invalid('timeoutMs', timeoutMs, 'a number of milliseconds'));
        return;
      }
      if (timeoutMs < timeout) timeout = timeoutMs;
    }
    if (timeout <= 0) {
      this.#refuse(borrower, 'timeout', timeoutError(this.name, timeout));
      return;
    }
    if (!this.#started) this.start();
    const origin = this.#leases.origin(options?.captureStack);
    this.#obtain(borrower, signal, timeout, Date.now(), origin);
  }

  /** A member from the idle stack if one is valid, else from generic-pool. */
  #obtain(
    borrower: Borrower<T>,
    signal: AbortSource | undefined,
    timeout: number,
    startedAt: number,
    origin: Error | undefined,
  ): void {
    const idle = this.#idle;
    while (idle.length > 0) {
      const member = idle.pop()!;
      const info = this.#members.get(member)!;
      const valid = check(this.#factory, member, info, this.#settings.maxLifetime);
      if (valid === true) {
        this.#hand(member, info, borrower, startedAt, origin);
        return;
      }
      if (valid === false) {
        void this.#gp.destroy(member).catch(noop);
        continue;
      }
      // An asynchronous validate: lent (or replaced) once it answers.
      const waiter = new Waiter<T>(this.#host, borrower, signal, timeout, startedAt, origin);
      waiter.watch();
      this.#validated(waiter, member, valid);
      return;
    }
    this.#request(borrower, signal, timeout, startedAt, origin);
  }

  /** Queues the caller, with a generic-pool acquire to serve it. */
  #request(
    borrower: Borrower<T>,
    signal: AbortSource | undefined,
    timeout: number,
    startedAt: number,
    origin: Error | undefined,
  ): void {
    // Checked again for a borrow that starts over after close() began (see #replace).
    if (this.#closed) {
      this.#refuse(borrower, 'closed', closedError(this.name));
      return;
    }
    const gp = this.#gp;
    if (gp.available === 0) {
      const failure = this.#creator.failure;
      if (failure !== undefined) {
        this.#refuse(
          borrower,
          'factory-error',
          unavailableError(this.name, failure, this.#creator.delay()),
        );
        return;
      }
      // Queued callers that a member being created (or validated) will serve are not waiting
      // for a borrowed one: only the rest count against maxWaiting, so that a burst on a cold
      // pool gets `max + maxWaiting` slots like a warm one. (generic-pool's size counts
      // creates in flight; available and borrowed are the members it made.)
      const creating = gp.size - gp.available - gp.borrowed;
      const waiting = this.#queue.length - (creating > 0 ? creating : 0);
      if (gp.spareResourceCapacity < 1 && waiting >= this.#settings.maxWaiting) {
        this.#refuse(borrower, 'queue-full', queueFullError(this.name, waiting));
        return;
      }
    }
    const waiter = new Waiter<T>(this.#host, borrower, signal, timeout, startedAt, origin);
    this.#queue.push(waiter);
    waiter.watch();
    if (this.#queue.length > this.#requests) this.#ask();
  }

  /** One generic-pool acquire; whoever waits longest when it is served gets the member. */
  #ask(): void {
    this.#requests++;
    this.#gp.acquire().then(this.#served, this.#unserved);
  }

  // Typed over `unknown`: a field of type (member: T) => void would make ResourcePool<T>
  // invariant, and PooledResource<T> no longer assignable to PooledResource<unknown>.
  readonly #served = (granted: unknown): void => {
    const member = granted as T;
    this.#requests--;
    const waiter = this.#closed ? null : this.#queue.head;
    if (waiter === null) this.#giveBack(member);
    else this.#lend(waiter, member, true);
  };

  // generic-pool rejects acquires only once drained, after close().
  readonly #unserved = (): void => {
    this.#requests--;
  };

  /**
   * A member granted to `waiter`: checked (validate on borrow, maxLifetime) unless
   * generic-pool did, then lent. An invalid member is destroyed and the borrow starts over,
   * within what is left of its timeout.
   */
  #lend(waiter: Waiter<T>, member: T, checked: boolean): void {
    if (waiter.done) {
      // The waiter timed out or was aborted while its member was being checked.
      this.#giveBack(member);
      return;
    }
    const info = this.#members.get(member);
    if (this.#closed || info === undefined) {
      void this.#gp.release(member).catch(noop);
      this.#rejectWaiter(waiter, 'closed', closedError(this.name));
      return;
    }
    const valid = checked || check(this.#factory, member, info, this.#settings.maxLifetime);
    if (valid === true) {
      this.#detach(waiter);
      waiter.done = true;
      this.#hand(member, info, waiter.borrower, waiter.startedAt, waiter.origin);
    } else if (valid === false) {
      this.#replace(waiter, member);
    } else {
      this.#validated(waiter, member, valid);
    }
  }

  /** Waits for an asynchronous validate; the borrow can still time out or be aborted meanwhile. */
  #validated(waiter: Waiter<T>, member: T, valid: Promise<boolean>): void {
    valid.then(
      (ok) => (ok ? this.#lend(waiter, member, true) : this.#replace(waiter, member)),
      () => this.#replace(waiter, member),
    );
  }

  /** Lends a checked member. */
  #hand(
    member: T,
    info: Member,
    borrower: Borrower<T>,
    startedAt: number,
    origin: Error | undefined,
  ): void {
    info.borrowedAt = Date.now();
    info.origin = origin;
    info.warned = false;
    this.#borrowed++;
    this.#acquireListeners.emit(info.borrowedAt - startedAt);
    borrower.lent(member);
  }

  /** Destroys an invalid member and starts the borrow over with the time it has left. */
  #replace(waiter: Waiter<T>, member: T): void {
    void this.#gp.destroy(member).catch(noop);
    if (waiter.done) return;
    this.#detach(waiter);
    waiter.done = true;
    const left = waiter.timeoutMs - (Date.now() - waiter.startedAt);
    if (left <= 0) {
      this.#refuse(waiter.borrower, 'timeout', timeoutError(this.name, waiter.timeoutMs));
      return;
    }
    this.#obtain(waiter.borrower, waiter.signal, waiter.timeoutMs, waiter.startedAt, waiter.origin);
  }

  /** generic-pool's `validate` (testOnBorrow): never rejects (it would leak the member). */
  #validateForPool(member: T): Promise<boolean> {
    const info = this.#members.get(member);
    if (info === undefined) return Promise.resolve(true);
    if (this.#sweeping) return Promise.resolve(!expired(info, this.#settings.maxLifetime));
    return Promise.resolve(check(this.#factory, member, info, this.#settings.maxLifetime));
  }

  /**
   * Gives a borrowed member back (a member past `maxLifetime` is destroyed instead).
   * Idempotent per borrow; a member that is not borrowed is ignored. (A release racing a
   * later borrow of the same member cannot be told apart from that borrow's own release:
   * {@link ResourcePool.use} avoids the question.)
   */
  release(member: T): void {
    const info = this.#members.get(member);
    if (info === undefined || info.borrowedAt < 0) return;
    this.#endLease(info);
    if (expired(info, this.#settings.maxLifetime)) void this.#gp.destroy(member).catch(noop);
    else this.#giveBack(member);
  }

  /**
   * A member on loan from generic-pool that nobody holds: to generic-pool when someone waits
   * (it serves the oldest request) or the pool is closing, else onto the idle stack.
   */
  #giveBack(member: T): void {
    if (this.#closed || this.#queue.length > 0) {
      void this.#gp.release(member).catch(noop);
      return;
    }
    this.#members.get(member)!.idleSince = Date.now();
    this.#idle.push(member);
  }

  /**
   * Gives generic-pool back the members idle here for `minIdleMs` or more (0: all of them),
   * oldest first (it lends most recent first), so that its evictor owns their idleness.
   */
  #flush(minIdleMs: number): void {
    const idle = this.#idle;
    const before = Date.now() - minIdleMs;
    let n = 0;
    while (n < idle.length && this.#members.get(idle[n]!)!.idleSince <= before) n++;
    if (n === 0) return;
    const gp = this.#gp;
    for (let i = 0; i < n; i++) void gp.release(idle[i]!).catch(noop);
    idle.splice(0, n);
  }

  /**
   * `maxLifetime` for idle members: generic-pool's evictor only knows idleness, and it cannot
   * be told to drop one idle member. Once one has expired, every idle member is borrowed
   * through generic-pool's validation (which then checks the age only): it destroys the
   * expired ones (and recreates `min`), the others come back to the pool.
   */
  #sweep(): void {
    this.#flush(0);
    const gp = this.#gp;
    const available = gp.available;
    if (available === 0 || this.#closed) return;
    let due = false;
    for (const [member, info] of this.#members) {
      if (
        expired(info, this.#settings.maxLifetime) &&
        info.borrowedAt < 0 &&
        !gp.isBorrowedResource(member)
      ) {
        due = true;
        break;
      }
    }
    if (!due) return;
    this.#sweeping = true;
    try {
      for (let i = 0; i < available; i++) this.#ask();
    } finally {
      this.#sweeping = false;
    }
  }

  /**
   * Destroys a broken borrowed member (a new one is created if the pool falls under `min`).
   * Resolves once the factory's destroy has finished (never rejects). A member that is not
   * borrowed is ignored.
   */
  destroy(member: T): Promise<void> {
    const info = this.#members.get(member);
    if (info === undefined || info.borrowedAt < 0) return Promise.resolve();
    this.#endLease(info);
    void this.#gp.destroy(member).catch(noop);
    return this.#destroying.get(member) ?? Promise.resolve();
  }

  /**
   * Borrows a member, runs `fn` with it and always gives it back: released when `fn`
   * settles, destroyed instead when `fn` rejects and `options.isBroken(error)` is true (or
   * throws). Rejects as {@link ResourcePool.acquire} does, or as `fn` does.
   */
  async use<R>(fn: (member: T) => Promise<R>, options?: UseOptions): Promise<R> {
    const member = await this.acquire(options);
    let result: R;
    try {
      result = await fn(member);
    } catch (error) {
      const isBroken = options?.isBroken;
      let broken = false;
      if (isBroken !== undefined) {
        try {
          broken = isBroken(error) === true;
        } catch {
          broken = true;
        }
      }
      if (broken) void this.destroy(member);
      else this.release(member);
      throw error;
    }
    this.release(member);
    return result;
  }

  /** A snapshot for the gauges. `size` counts live members (available, borrowed, validating). */
  stats(): PoolStats {
    return {
      size: this.#members.size,
      // generic-pool's clear() leaves destroyed members in its idle list; after close none are.
      available: this.#closed
        ? this.#members.size - this.#borrowed
        : this.#gp.available + this.#idle.length,
      borrowed: this.#borrowed,
      pending: this.#queue.length,
      creating: this.#creator.creating,
      min: this.#settings.min,
      max: this.#settings.max,
    };
  }

  /** Every successful acquire, with the milliseconds it waited. */
  onAcquire(listener: (waitMs: number) => void): Disposable {
    return this.#acquireListeners.add(listener);
  }

  /**
   * Every failed acquire: `timeout`, `queue-full`, `factory-error` (ResourceUnavailableError),
   * `closed` or `aborted` (the error is then the signal's reason, wrapped in an Error if it
   * is not one).
   */
  onAcquireError(listener: (reason: AcquireErrorReason, error: Error) => void): Disposable {
    return this.#acquireErrorListeners.add(listener);
  }

  /**
   * A member borrowed longer than `leaseWarning` (once per borrow): `heldMs` so far and the
   * stack of the `acquire()` call (captured only when `leaseWarning` > 0).
   */
  onLeaseWarning(listener: (info: LeaseWarning) => void): Disposable {
    return this.#leases.listeners.add(listener);
  }

  /** Every failed `factory.create()` (the pool retries with backoff). */
  onCreateError(listener: (error: Error) => void): Disposable {
    return this.#createErrorListeners.add(listener);
  }

  /**
   * Closes the pool; idempotent (later calls return the same promise). Rejects every waiter
   * with `PoolClosedError` at once, refuses new acquires, waits up to `graceMs` (default 0)
   * for borrowed members to come back, destroys them and every other member, waits for
   * in-flight creates (a hanging `factory.create()` delays it: bound creation in the factory)
   * and destroys, and clears every timer. Rejects only with InvalidArgumentError when
   * `graceMs` is not a number of milliseconds in [0, 2147483647] (nothing is closed then).
   */
  close(graceMs = 0): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    try {
      checkMillis('graceMs', graceMs, false);
    } catch (error) {
      return Promise.reject(error);
    }
    this.#closed = true;
    while (this.#queue.head !== null) {
      this.#rejectWaiter(this.#queue.head, 'closed', closedError(this.name));
    }
    this.#leases.stop();
    clearInterval(this.#lifetimeTimer);
    this.#lifetimeTimer = undefined;
    clearInterval(this.#flushTimer);
    this.#flushTimer = undefined;
    // generic-pool's drain waits for every loan: the idle stack goes back to it.
    this.#flush(0);
    // Parked and sleeping creates wake up, see the pool is closed and give up.
    this.#creator.close();
    this.#closing = this.#drain(graceMs);
    return this.#closing;
  }

  async #drain(graceMs: number): Promise<void> {
    // drain() stops generic-pool keeping min warm, and deschedules its evictor once every
    // request is served and every loan is back; clear() then waits for creates and destroys
    // what is idle.
    const drained = this.#gp.drain();
    if (this.#borrowed > 0 && graceMs > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        this.#allReturned = resolve;
        timer = setTimeout(resolve, graceMs);
        timer.unref();
      });
      clearTimeout(timer);
      this.#allReturned = undefined;
    }
    for (const [member, info] of this.#members) {
      if (info.borrowedAt >= 0) void this.destroy(member);
    }
    await drained;
    await this.#gp.clear();
    await Promise.all(this.#destroying.values());
  }

  #rejectWaiter(waiter: Waiter<T>, reason: AcquireErrorReason, error: unknown): void {
    this.#detach(waiter);
    if (waiter.done) return;
    waiter.done = true;
    this.#acquireErrorListeners.emit(reason, toError(error));
    waiter.borrower.refused(error);
  }

  #detach(waiter: Waiter<T>): void {
    this.#queue.remove(waiter);
    waiter.unwatch();
  }

  #refuse(borrower: Borrower<T>, reason: AcquireErrorReason, error: unknown): void {
    this.#acquireErrorListeners.emit(reason, toError(error));
    borrower.refused(error);
  }

  #endLease(info: Member): void {
    info.borrowedAt = -1;
    info.origin = undefined;
    this.#borrowed--;
    if (this.#borrowed === 0) this.#allReturned?.();
  }

  /** generic-pool's `create`: a member once the factory makes one (see CreateBackoff). */
  async #create(): Promise<T> {
    let member: T;
    try {
      member = await this.#creator.create();
    } catch (error) {
      // Closed. generic-pool answers a failed create by creating again at once while it
      // holds requests: those get a placeholder instead, which close() never lends and
      // whose destroy does nothing, so that generic-pool's drain() can finish.
      if (this.#requests === 0) throw error;
      const placeholder = {} as T;
      this.#placeholders.add(placeholder);
      return placeholder;
    }
    this.#members.set(member, new Member(Date.now()));
    return member;
  }

  #createFailed(error: Error): void {
    this.#createErrorListeners.emit(error);
    // Waiting out acquireTimeout for a member that cannot be made helps nobody.
    while (this.#queue.head !== null) {
      this.#rejectWaiter(
        this.#queue.head,
        'factory-error',
        unavailableError(this.name, error, this.#creator.delay()),
      );
    }
  }

  /** generic-pool's `destroy`: never rejects (generic-pool would only emit the error). */
  #destroyMember(member: T): Promise<void> {
    if (this.#placeholders.delete(member)) return Promise.resolve();
    const info = this.#members.get(member);
    if (info !== undefined) {
      this.#members.delete(member);
      if (info.borrowedAt >= 0) this.#endLease(info);
    }
    const done = this.#closeMember(member);
    this.#destroying.set(member, done);
    void done.then(() => {
      if (this.#destroying.get(member) === done) this.#destroying.delete(member);
    });
    return done;
  }

  /** Calls the factory's destroy; never rejects. */
  async #closeMember(member: T): Promise<void> {
    try {
      await this.#factory.destroy(member);
    } catch {
      // The member is gone from the pool either way; there is no one to tell.
    }
  }
}

function noop(): void {}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}
