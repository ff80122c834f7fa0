import genericPool from 'generic-pool';
import type { Pool as GenericPool } from 'generic-pool';
import type { PoolConfig } from '../config/types.js';
import {
  InvalidArgumentError,
  PoolClosedError,
  PoolExhaustedError,
  ResourceUnavailableError,
  withoutStack,
} from '../errors.js';
import type { AcquireErrorReason, Disposable, PoolEvents, PoolStats } from './types.js';
import { invalidOption } from '../policies/invalid-option.js';
import type { AbortSource } from './abort-source.js';

/** Creates, destroys and (optionally) validates the members of a {@link ResourcePool}. */
export interface PoolFactory<T> {
  /** Creates one member. A rejection puts the pool in its failing state (see {@link ResourcePool}). */
  create(): Promise<T>;
  /** Closes one member. A rejection is swallowed: the member is gone from the pool either way. */
  destroy(member: T): Promise<void>;
  /**
   * Validate on borrow; false → the member is destroyed and another is tried. A throw or a
   * rejection counts as false.
   */
  validate?(member: T): boolean | Promise<boolean>;
}

/** Options of a {@link ResourcePool}: the resolved {@link PoolConfig} plus a name. */
export interface ResourcePoolOptions extends PoolConfig {
  /** Names the pool in errors (`resource`) and messages. */
  name: string;
  /**
   * Backoff of member creation while the factory fails (exponential, doubling from `initial`
   * up to `max` ms, no jitter). Default `{ initial: 100, max: 5000 }`.
   */
  createBackoff?: { initial: number; max: number };
}

/** Options of {@link ResourcePool.acquire}. */
export interface AcquireOptions {
  /** Aborting removes the waiter and rejects with `signal.reason` (an AbortSignal will do). */
  signal?: AbortSource | undefined;
  /** Shortens the wait: the effective timeout is `min(acquireTimeout, timeoutMs)`. */
  timeoutMs?: number | undefined;
  /**
   * Whether a lease warning about this borrow carries the acquiring stack (default true, and
   * only when `leaseWarning` > 0). Capturing it costs several microseconds per borrow: borrowers
   * whose own timeout ends the borrow (a resource call that aborts its I/O) pass false, and
   * their warnings come without a stack.
   */
  captureStack?: boolean | undefined;
}

/** Options of {@link ResourcePool.use}. */
export interface UseOptions extends AcquireOptions {
  /** When it returns true for `fn`'s error, the member is destroyed instead of released. */
  isBroken?: ((error: unknown) => boolean) | undefined;
}

/**
 * @internal Who {@link ResourcePool.borrow} tells how a borrow ended: exactly one call, maybe
 * before `borrow` returns.
 */
export interface Borrower<T> {
  lent(member: T): void;
  refused(error: unknown): void;
}

/** setTimeout clamps larger delays to 1 ms (with a warning), which would fire at once. */
const MAX_TIMER_DELAY = 2_147_483_647;
/** Stack frames kept for lease warnings: enough to get past the pack's own frames. */
const LEASE_STACK_FRAMES = 25;

// generic-pool's internal ResourceRequest: a deferred, resolved with the member it grants.
interface PoolRequest<T> {
  readonly state: string;
  readonly promise: Promise<T>;
  resolve(member: T): void;
}

// generic-pool's internal PooledResource, as its evictor sees it.
interface PooledMember<T> {
  readonly obj: T;
  readonly lastIdleTime: number;
}

type GenericPoolConstructor = new <T>(
  Evictor: new () => {
    evict(config: unknown, resource: PooledMember<T>, available: number): boolean;
  },
  Deque: unknown,
  PriorityQueue: new (size: number) => unknown,
  factory: {
    create(): Promise<T>;
    destroy(member: T): Promise<void>;
  },
  options: Record<string, unknown>,
) => GenericPool<T>;

/** What the pool knows of one live member. */
class Member {
  /** Epoch ms when the member was borrowed, or -1 while it is not. */
  borrowedAt = -1;
  /** Where the current borrow was made (stack formatted only when a warning reads it). */
  origin: Error | undefined = undefined;
  warned = false;
  /** Epoch ms when it last came back to the pool's own idle stack. */
  idleSince = 0;
  constructor(readonly createdAt: number) {}
}

/**
 * One borrow: a node of the wait queue generic-pool dispatches from, and the request
 * generic-pool resolves with a member. Unlike generic-pool's own queue it supports O(1)
 * removal, so a waiter that timed out, aborted or was failed fast is gone at once
 * (generic-pool keeps timed-out requests counted and only drops them when it dequeues them).
 * A member granted while `gp.acquire()` is still running is kept here, so that a borrow
 * served by an idle member never waits for a promise.
 */
class Waiter<T> {
  prev: Waiter<T> | null = null;
  next: Waiter<T> | null = null;
  linked = false;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  signal: AbortSource | undefined = undefined;
  /** Whether this waiter is a listener of `signal` (only while it waits). */
  listening = false;
  pool: ResourcePool<T> | undefined = undefined;
  borrower: Borrower<T> | undefined = undefined;
  /** Set once the borrower has been told (lent, refused): later grants go back to the pool. */
  done = false;
  granted = false;
  member: T | undefined = undefined;
  /** What a borrow that must start over (an invalid member) keeps. */
  startedAt = 0;
  timeoutMs = 0;
  origin: Error | undefined = undefined;
  /** generic-pool's request; none for a member taken from the pool's own idle stack. */
  constructor(readonly request: PoolRequest<T> | undefined) {}

  get state(): string {
    return this.request!.state;
  }

  /** generic-pool grants a member. */
  resolve(member: T): void {
    this.request!.resolve(member);
    this.granted = true;
    this.member = member;
  }

  /** The abort listener (an object listener: no closure per waiter). */
  handleEvent(): void {
    if (this.pool !== undefined) rejectWaiter(this.pool, this, 'aborted', this.signal?.reason);
  }
}

/**
 * The `PriorityQueue` generic-pool is built with (it takes the class as a constructor
 * argument): a doubly linked list of {@link Waiter}s. Priorities are not used.
 */
class WaitQueue<T> {
  head: Waiter<T> | null = null;
  tailNode: Waiter<T> | null = null;
  length = 0;
  /** The waiter enqueued last: `acquire()` picks its request up right after generic-pool enqueued it. */
  last: Waiter<T> | null = null;

  enqueue(request: PoolRequest<T>): void {
    const w = new Waiter(request);
    w.linked = true;
    w.prev = this.tailNode;
    if (this.tailNode === null) this.head = w;
    else this.tailNode.next = w;
    this.tailNode = w;
    this.length++;
    this.last = w;
  }

  dequeue(): Waiter<T> | undefined {
    const w = this.head;
    if (w === null) return undefined;
    this.remove(w);
    return w;
  }

  remove(w: Waiter<T>): void {
    if (!w.linked) return;
    w.linked = false;
    if (w.prev === null) this.head = w.next;
    else w.prev.next = w.next;
    if (w.next === null) this.tailNode = w.prev;
    else w.next.prev = w.prev;
    w.prev = null;
    w.next = null;
    this.length--;
  }

  /** Read by generic-pool's `drain()`. */
  get tail(): PoolRequest<T> | undefined {
    return this.tailNode?.request;
  }
}

// Module-level functions with access to the pool's private state, assigned in its static
// block: the abort listener and the acquire timer need no closure per waiter.
let rejectWaiter: <T>(
  pool: ResourcePool<T>,
  waiter: Waiter<T>,
  reason: AcquireErrorReason,
  error: unknown,
) => void;
let timeoutWaiter: <T>(pool: ResourcePool<T>, waiter: Waiter<T>, timeoutMs: number) => void;
let grantWaiter: <T>(pool: ResourcePool<T>, waiter: Waiter<T>, member: T) => void;

/** @internal A copy-on-write listener list; a throwing listener is reported once, then ignored. */
export class Listeners<A extends unknown[]> {
  #list: readonly ((...args: A) => void)[] = [];
  #warned = false;
  constructor(readonly owner: string) {}

  get size(): number {
    return this.#list.length;
  }

  add(listener: (...args: A) => void): Disposable {
    if (typeof listener !== 'function') {
      throw new InvalidArgumentError(
        `${this.owner} listener must be a function, got ${typeof listener}`,
      );
    }
    this.#list = [...this.#list, listener];
    let disposed = false;
    return {
      dispose: () => {
        if (disposed) return;
        disposed = true;
        const i = this.#list.indexOf(listener);
        if (i !== -1) this.#list = this.#list.filter((_, j) => j !== i);
      },
    };
  }

  emit(...args: A): void {
    const list = this.#list;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!(...args);
      } catch (error) {
        if (this.#warned) continue;
        this.#warned = true;
        process.emitWarning(
          `A ${this.owner} event listener threw (further listener errors are ignored silently): ${String(error)}`,
          {
            code: 'RESILIENCE_LISTENER_ERROR',
            detail: error instanceof Error ? error.stack : undefined,
          },
        );
      }
    }
  }
}

/**
 * A pool of members (connections, clients) built on generic-pool 3.9, fixing what it leaves to
 * its users:
 *
 * - a failing factory does not spin: creation retries back off exponentially
 *   (`createBackoff`, one probing create at a time), and while the factory is failing, acquires
 *   that no idle member can serve — queued ones included — fail at once with a
 *   `ResourceUnavailableError` whose `cause` is the factory's error; the first successful
 *   create ends the failing state;
 * - acquires time out (`acquireTimeout`, `PoolExhaustedError` reason `acquire-timeout`), can
 *   be aborted, and the wait queue is bounded (`maxWaiting`; overflow → `PoolExhaustedError`
 *   reason `queue-full` at once);
 * - lease tracking: with `leaseWarning` > 0, a member borrowed longer than that is reported
 *   once per borrow through {@link ResourcePool.onLeaseWarning}, with the acquiring stack;
 * - validate on borrow, `maxLifetime` (0 = forever; older members are destroyed on release,
 *   on borrow and while idle), idle eviction above `min` (`idleTimeout`, 0 = never, checked
 *   every `evictionInterval`), `min` kept warm.
 *
 * Idle members are reused most-recently-returned first, so under light load the surplus goes
 * idle and is evicted. Members must be distinct objects (they key the loan table).
 *
 * A member given back while nobody waits stays on the pool's own idle stack (still on loan
 * from generic-pool), and the next borrow takes it from there without a promise: a borrow and
 * its release through generic-pool cost more than the rest of a pooled call. The stack is
 * checked every `evictionInterval` by generic-pool's eviction rules (`idleTimeout` above
 * `min`, `maxLifetime`), and handed back to generic-pool on close.
 */
export class ResourcePool<T> implements PoolEvents {
  /** The pool's name, from the options. */
  readonly name: string;

  readonly #factory: PoolFactory<T>;
  readonly #gp: GenericPool<T>;
  readonly #queue: WaitQueue<T>;
  readonly #members = new Map<T, Member>();
  readonly #min: number;
  readonly #max: number;
  readonly #acquireTimeout: number;
  readonly #maxWaiting: number;
  readonly #idleTimeout: number;
  readonly #evictionInterval: number;
  readonly #maxLifetime: number;
  readonly #leaseWarning: number;
  readonly #backoffInitial: number;
  readonly #backoffMax: number;

  #borrowed = 0;
  #creating = 0;
  #started = false;
  #closed = false;
  #closing: Promise<void> | undefined = undefined;
  #leaseTimer: ReturnType<typeof setInterval> | undefined = undefined;
  #idleTimer: ReturnType<typeof setInterval> | undefined = undefined;
  /** Members given back while nobody waited, most recent last (see the class comment). */
  readonly #idle: T[] = [];
  /** Set while the factory is failing: the last error. */
  #failure: Error | undefined = undefined;
  #failures = 0;
  #probing = false;
  /** Creates that wait for the probe's outcome park here; resolved on recovery or close. */
  #recovered: { promise: Promise<void>; resolve: () => void } | undefined = undefined;
  readonly #sleeps = new Set<{ timer: ReturnType<typeof setTimeout>; resolve: () => void }>();
  readonly #destroying = new Map<T, Promise<void>>();
  /** Resolved when the last borrowed member comes back during close(). */
  #allReturned: (() => void) | undefined = undefined;

  readonly #acquireListeners = new Listeners<[waitMs: number]>('pool onAcquire');
  readonly #acquireErrorListeners = new Listeners<[reason: AcquireErrorReason, error: Error]>(
    'pool onAcquireError',
  );
  readonly #leaseListeners = new Listeners<[info: { heldMs: number; stack: string | undefined }]>(
    'pool onLeaseWarning',
  );
  readonly #createErrorListeners = new Listeners<[error: Error]>('pool onCreateError');

  /**
   * Does not create members yet (see {@link ResourcePool.start}).
   * @throws InvalidArgumentError when the factory lacks `create`/`destroy` (or has a
   *   non-function `validate`), or an option is malformed: `name` not a non-empty string,
   *   `min`/`max`/`maxWaiting` not integers (`max` >= 1, 0 <= `min` <= `max`), a duration not a
   *   number of milliseconds in [0, 2147483647] (`acquireTimeout`, `evictionInterval` and
   *   `createBackoff.initial` > 0; `createBackoff.initial` <= `createBackoff.max`).
   */
  constructor(factory: PoolFactory<T>, options: ResourcePoolOptions) {
    if (typeof factory !== 'object' || factory === null) {
      throw invalid('factory', factory, 'an object { create, destroy, validate? }');
    }
    if (typeof factory.create !== 'function')
      throw invalid('factory.create', factory.create, 'a function');
    if (typeof factory.destroy !== 'function') {
      throw invalid('factory.destroy', factory.destroy, 'a function');
    }
    if (factory.validate !== undefined && typeof factory.validate !== 'function') {
      throw invalid('factory.validate', factory.validate, 'a function');
    }
    if (typeof options !== 'object' || options === null) {
      throw invalid('options', options, 'an object');
    }
    const { name, min, max, maxWaiting } = options;
    if (typeof name !== 'string' || name.length === 0)
      throw invalid('name', name, 'a non-empty string');
    checkInteger('max', max, 1);
    checkInteger('min', min, 0);
    if (min > max) throw invalid('min', min, `at most max (${max})`);
    checkInteger('maxWaiting', maxWaiting, 0);
    checkMillis('acquireTimeout', options.acquireTimeout, true);
    checkMillis('idleTimeout', options.idleTimeout, false);
    checkMillis('maxLifetime', options.maxLifetime, false);
    checkMillis('leaseWarning', options.leaseWarning, false);
    checkMillis('evictionInterval', options.evictionInterval, true);
    const backoff = options.createBackoff ?? { initial: 100, max: 5000 };
    if (typeof backoff !== 'object' || backoff === null) {
      throw invalid('createBackoff', backoff, 'an object { initial, max }');
    }
    checkMillis('createBackoff.initial', backoff.initial, true);
    checkMillis('createBackoff.max', backoff.max, true);
    if (backoff.initial > backoff.max) {
      throw invalid(
        'createBackoff.initial',
        backoff.initial,
        `at most createBackoff.max (${backoff.max})`,
      );
    }

    this.name = name;
    this.#factory = factory;
    this.#min = min;
    this.#max = max;
    this.#acquireTimeout = options.acquireTimeout;
    this.#maxWaiting = maxWaiting;
    this.#idleTimeout = options.idleTimeout;
    this.#evictionInterval = options.evictionInterval;
    this.#maxLifetime = options.maxLifetime;
    this.#leaseWarning = options.leaseWarning;
    this.#backoffInitial = backoff.initial;
    this.#backoffMax = backoff.max;

    // generic-pool builds its evictor and wait queue from the classes it is given; these
    // per-pool classes hand the instances back to us.
    let queue: WaitQueue<T> | undefined;
    const capture = (q: WaitQueue<T>): void => {
      queue = q;
    };
    const Queue = class extends WaitQueue<T> {
      constructor() {
        super();
        capture(this);
      }
    };
    const shouldEvict = (resource: PooledMember<T>): boolean => this.#shouldEvict(resource);
    const Evictor = class {
      evict(_config: unknown, resource: PooledMember<T>): boolean {
        return shouldEvict(resource);
      }
    };
    const lib = genericPool as unknown as { Pool: GenericPoolConstructor; Deque: unknown };
    this.#gp = new lib.Pool<T>(
      Evictor,
      lib.Deque,
      Queue,
      {
        create: () => this.#create(),
        destroy: (member) => this.#destroyMember(member),
      },
      {
        min,
        max,
        autostart: false,
        // LIFO: the surplus over what the load needs stays idle long enough to be evicted.
        fifo: false,
        // Validation on borrow is ours (see #check): generic-pool's makes every borrow wait
        // for promises, even when the factory's validate answers at once.
        testOnBorrow: false,
        evictionRunIntervalMillis:
          options.idleTimeout > 0 || options.maxLifetime > 0 ? options.evictionInterval : 0,
        numTestsPerEvictionRun: max,
      },
    );
    this.#queue = queue!;
  }

  /**
   * Begins keeping `min` members warm, idle eviction and lease checks; never throws (a
   * failing factory is retried with backoff and reported through `onCreateError`);
   * idempotent; does nothing after close. `acquire()` starts the pool too.
   */
  start(): void {
    if (this.#started || this.#closed) return;
    this.#started = true;
    if (this.#leaseWarning > 0) {
      // Checking twice per leaseWarning (between 10 ms and 1 s) reports a leak within
      // 1.5 × leaseWarning at worst, for one pass over at most `max` members.
      const period = Math.min(1000, Math.max(10, this.#leaseWarning / 2));
      this.#leaseTimer = setInterval(() => this.#checkLeases(), period);
      this.#leaseTimer.unref();
    }
    if (this.#idleTimeout > 0 || this.#maxLifetime > 0) {
      this.#idleTimer = setInterval(() => this.#evictIdle(), this.#evictionInterval);
      this.#idleTimer.unref();
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
      this.#refuse(borrower, 'closed', this.#closedError());
      return;
    }
    const signal = options?.signal;
    if (signal?.aborted) {
      this.#refuse(borrower, 'aborted', signal.reason);
      return;
    }
    let timeout = this.#acquireTimeout;
    const timeoutMs = options?.timeoutMs;
    if (timeoutMs !== undefined) {
      if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs)) {
        borrower.refused(invalid('timeoutMs', timeoutMs, 'a number of milliseconds'));
        return;
      }
      if (timeoutMs < timeout) timeout = timeoutMs;
    }
    if (timeout <= 0) {
      this.#refuse(borrower, 'timeout', this.#timeoutError(timeout));
      return;
    }
    if (!this.#started) this.start();
    // Captured now, while the caller's frames are on the stack; V8 formats `.stack` only
    // when a lease warning reads it, so a borrow pays for the capture alone.
    let origin: Error | undefined;
    if (this.#leaseWarning > 0 && options?.captureStack !== false) {
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = LEASE_STACK_FRAMES;
      origin = new Error(`Pool "${this.name}" member acquired here`);
      Error.stackTraceLimit = limit;
    }
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
    while (idle.length > 0 && !this.#closed) {
      const member = idle.pop()!;
      const info = this.#members.get(member)!;
      const valid = this.#check(member, info);
      if (valid === true) {
        this.#hand(member, info, borrower, startedAt, origin);
        return;
      }
      if (valid === false) {
        void this.#gp.destroy(member).catch(noop);
        continue;
      }
      // An asynchronous validate: lent (or replaced) by the general path once it answers.
      const waiter = new Waiter<T>(undefined);
      waiter.pool = this;
      waiter.borrower = borrower;
      waiter.signal = signal;
      waiter.startedAt = startedAt;
      waiter.timeoutMs = timeout;
      waiter.origin = origin;
      this.#validated(waiter, member, valid);
      return;
    }
    this.#request(borrower, signal, timeout, startedAt, origin);
  }

  /** Asks generic-pool for a member: served at once, or queued until granted or failed. */
  #request(
    borrower: Borrower<T>,
    signal: AbortSource | undefined,
    timeout: number,
    startedAt: number,
    origin: Error | undefined,
  ): void {
    // Checked again for a borrow that starts over after close() began (see #replace).
    if (this.#closed) {
      this.#refuse(borrower, 'closed', this.#closedError());
      return;
    }
    const gp = this.#gp;
    if (gp.available === 0) {
      if (this.#failure !== undefined) {
        this.#refuse(borrower, 'factory-error', this.#unavailableError(this.#failure));
        return;
      }
      // Queued callers that a member being created will serve are not waiting for a
      // borrowed one: only the rest count against maxWaiting, so that a burst on a cold pool
      // gets `max + maxWaiting` slots like a warm one. (generic-pool's size counts creates in
      // flight; available and borrowed are every member it made.)
      const creating = gp.size - gp.available - gp.borrowed;
      const waiting = this.#queue.length - (creating > 0 ? creating : 0);
      if (gp.spareResourceCapacity < 1 && waiting >= this.#maxWaiting) {
        this.#refuse(
          borrower,
          'queue-full',
          withoutStack(
            () =>
              new PoolExhaustedError(
                `Pool "${this.name}" is exhausted: ${waiting} acquires already wait`,
                { resource: this.name, reason: 'queue-full' },
              ),
          ),
        );
        return;
      }
    }
    void gp.acquire();
    const waiter = this.#queue.last!;
    this.#queue.last = null;
    waiter.pool = this;
    waiter.borrower = borrower;
    waiter.signal = signal;
    waiter.startedAt = startedAt;
    waiter.timeoutMs = timeout;
    waiter.origin = origin;
    if (waiter.granted) {
      // An idle member, dispatched while gp.acquire() ran: no timer, no listener, no promise.
      this.#lend(waiter, waiter.member!);
      return;
    }
    this.#watch(waiter);
    // Granted later, from another borrow's release (or a create): a turn later, so that the
    // borrower never runs inside generic-pool's bookkeeping.
    waiter.request!.promise.then((member) => grantWaiter(this, waiter, member), noop);
  }

  /** Arms the waiter's timeout and listens to its signal, while it waits. */
  #watch(waiter: Waiter<T>): void {
    const left = waiter.timeoutMs - (Date.now() - waiter.startedAt);
    waiter.timer = setTimeout(timeoutWaiter, left > 0 ? left : 0, this, waiter, waiter.timeoutMs);
    waiter.timer.unref();
    if (waiter.signal !== undefined) {
      waiter.listening = true;
      waiter.signal.addEventListener('abort', waiter);
    }
  }

  /**
   * A member granted to `waiter`: checked (validate on borrow, maxLifetime), then lent. An
   * invalid member is destroyed and the borrow starts over, within what is left of its timeout.
   */
  #lend(waiter: Waiter<T>, member: T, checked = false): void {
    if (waiter.done) {
      // The waiter timed out or was aborted while its member was being checked.
      this.#giveBack(member);
      return;
    }
    const info = this.#members.get(member);
    if (this.#closed || info === undefined) {
      // Granted by generic-pool in the same tick close() began: never hand it out.
      void this.#gp.destroy(member).catch(noop);
      this.#rejectWaiter(waiter, 'closed', this.#closedError());
      return;
    }
    const valid = checked || this.#check(member, info);
    if (valid === true) {
      this.#detach(waiter);
      waiter.done = true;
      this.#hand(member, info, waiter.borrower!, waiter.startedAt, waiter.origin);
    } else if (valid === false) {
      this.#replace(waiter, member);
    } else {
      this.#validated(waiter, member, valid);
    }
  }

  /** Waits for an asynchronous validate; the borrow can still time out or be aborted meanwhile. */
  #validated(waiter: Waiter<T>, member: T, valid: Promise<boolean>): void {
    if (waiter.timer === undefined) this.#watch(waiter);
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
      this.#refuse(waiter.borrower!, 'timeout', this.#timeoutError(waiter.timeoutMs));
      return;
    }
    this.#obtain(
      waiter.borrower!,
      waiter.signal,
      waiter.timeoutMs,
      waiter.startedAt,
      waiter.origin,
    );
  }

  /**
   * Validate on borrow: past `maxLifetime` is invalid; then the factory's validate, whose
   * throw or rejection counts as invalid. A promise only when the factory's validate is
   * asynchronous.
   */
  #check(member: T, info: Member): boolean | Promise<boolean> {
    if (this.#maxLifetime > 0 && Date.now() - info.createdAt >= this.#maxLifetime) return false;
    const validate = this.#factory.validate;
    if (validate === undefined) return true;
    let verdict: boolean | Promise<boolean>;
    try {
      verdict = validate.call(this.#factory, member);
    } catch {
      return false;
    }
    if (typeof verdict === 'boolean') return verdict;
    return Promise.resolve(verdict).then(
      (ok) => ok !== false,
      () => false,
    );
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
    if (this.#maxLifetime > 0 && Date.now() - info.createdAt >= this.#maxLifetime) {
      void this.#gp.destroy(member).catch(noop);
    } else {
      this.#giveBack(member, info);
    }
  }

  /** An unborrowed member (still on loan from generic-pool) goes idle. */
  #giveBack(member: T, info = this.#members.get(member)): void {
    if (this.#queue.length === 0 && !this.#closed && info !== undefined) {
      info.idleSince = Date.now();
      this.#idle.push(member);
    } else {
      // Someone waits (generic-pool hands it on), or the pool is closing.
      void this.#gp.release(member).catch(noop);
    }
  }

  /**
   * generic-pool's eviction rules for the idle stack: past `maxLifetime`, or idle for
   * `idleTimeout` while the pool holds more than `min`. Oldest first.
   */
  #evictIdle(): void {
    const idle = this.#idle;
    const now = Date.now();
    let kept = 0;
    for (let i = 0; i < idle.length; i++) {
      const member = idle[i]!;
      const info = this.#members.get(member)!;
      const expired = this.#maxLifetime > 0 && now - info.createdAt >= this.#maxLifetime;
      const stale =
        this.#idleTimeout > 0 &&
        now - info.idleSince >= this.#idleTimeout &&
        this.#members.size > this.#min;
      if (expired || stale) void this.#gp.destroy(member).catch(noop);
      else idle[kept++] = member;
    }
    idle.length = kept;
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
      creating: this.#creating,
      min: this.#min,
      max: this.#max,
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
  onLeaseWarning(
    listener: (info: { heldMs: number; stack: string | undefined }) => void,
  ): Disposable {
    return this.#leaseListeners.add(listener);
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
      this.#rejectWaiter(this.#queue.head, 'closed', this.#closedError());
    }
    clearInterval(this.#leaseTimer);
    this.#leaseTimer = undefined;
    clearInterval(this.#idleTimer);
    this.#idleTimer = undefined;
    // generic-pool's drain waits for every loan: the idle stack goes back to it, to be destroyed.
    for (const member of this.#idle.splice(0)) void this.#gp.release(member).catch(noop);
    // Parked and sleeping creates wake up, see the pool is closed and give up.
    this.#recovered?.resolve();
    for (const sleep of this.#sleeps) {
      clearTimeout(sleep.timer);
      sleep.resolve();
    }
    this.#sleeps.clear();
    this.#closing = this.#drain(graceMs);
    return this.#closing;
  }

  async #drain(graceMs: number): Promise<void> {
    // drain() stops generic-pool keeping min warm, and deschedules its evictor once every
    // loan is back; clear() then waits for creates and destroys what is idle.
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
    waiter.borrower!.refused(error);
  }

  #detach(waiter: Waiter<T>): void {
    this.#queue.remove(waiter);
    if (waiter.timer !== undefined) {
      clearTimeout(waiter.timer);
      waiter.timer = undefined;
    }
    if (waiter.listening) {
      waiter.listening = false;
      waiter.signal!.removeEventListener('abort', waiter);
    }
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

  /** generic-pool's `create`: retries the factory with backoff until it succeeds or the pool closes. */
  async #create(): Promise<T> {
    for (;;) {
      if (this.#closed) throw this.#closedError();
      let probe = false;
      if (this.#failure !== undefined) {
        // One create probes the factory after the backoff; the others wait for its outcome
        // instead of hammering a factory that is known to fail.
        if (this.#probing) {
          await this.#recovered!.promise;
          continue;
        }
        this.#probing = true;
        probe = true;
        try {
          await this.#sleep(this.#backoffDelay());
        } finally {
          this.#probing = false;
        }
        if (this.#closed) continue;
      }
      this.#creating++;
      let member: T;
      try {
        member = await this.#factory.create();
      } catch (error) {
        this.#creating--;
        this.#createFailed(error, probe);
        continue;
      }
      // A new member that fails validation is a failed create: generic-pool would destroy it
      // on borrow and create the next one at once, in a tight loop.
      if (!(await this.#runValidate(member))) {
        this.#creating--;
        void this.#destroyMember(member);
        this.#createFailed(
          new Error(`Pool "${this.name}": a newly created member failed validation`),
          probe,
        );
        continue;
      }
      this.#creating--;
      if (this.#failure !== undefined) {
        this.#failure = undefined;
        this.#failures = 0;
        const recovered = this.#recovered;
        this.#recovered = undefined;
        recovered?.resolve();
      }
      this.#members.set(member, new Member(Date.now()));
      return member;
    }
  }

  #createFailed(cause: unknown, probe: boolean): void {
    const error = toError(cause);
    // Creates that were in flight together when the factory broke count as one failure;
    // after that only probes lengthen the backoff.
    if (this.#failure === undefined) this.#failures = 1;
    else if (probe) this.#failures++;
    if (this.#failure === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#recovered = { promise, resolve };
    }
    this.#failure = error;
    this.#createErrorListeners.emit(error);
    // Waiting out acquireTimeout for a member that cannot be made helps nobody.
    while (this.#queue.head !== null) {
      this.#rejectWaiter(this.#queue.head, 'factory-error', this.#unavailableError(error));
    }
  }

  #backoffDelay(): number {
    const delay = this.#backoffInitial * Math.pow(2, this.#failures - 1);
    return delay < this.#backoffMax ? delay : this.#backoffMax;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const sleep = {
        timer: setTimeout(() => {
          this.#sleeps.delete(sleep);
          resolve();
        }, ms),
        resolve,
      };
      sleep.timer.unref();
      this.#sleeps.add(sleep);
    });
  }

  /** generic-pool's `destroy`: never rejects (generic-pool would only emit the error). */
  #destroyMember(member: T): Promise<void> {
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

  /** The factory's validate; a throw or rejection is false. */
  async #runValidate(member: T): Promise<boolean> {
    const validate = this.#factory.validate;
    if (validate === undefined) return true;
    try {
      return (await validate.call(this.#factory, member)) !== false;
    } catch {
      return false;
    }
  }

  /** Calls the factory's destroy; never rejects. */
  async #closeMember(member: T): Promise<void> {
    try {
      await this.#factory.destroy(member);
    } catch {
      // The member is gone from the pool either way; there is no one to tell.
    }
  }

  #shouldEvict(resource: PooledMember<T>): boolean {
    const info = this.#members.get(resource.obj);
    const now = Date.now();
    if (this.#maxLifetime > 0 && info !== undefined && now - info.createdAt >= this.#maxLifetime) {
      return true;
    }
    return (
      this.#idleTimeout > 0 &&
      now - resource.lastIdleTime >= this.#idleTimeout &&
      this.#members.size > this.#min
    );
  }

  #checkLeases(): void {
    if (this.#borrowed === 0) return;
    const now = Date.now();
    for (const info of this.#members.values()) {
      if (info.borrowedAt < 0 || info.warned) continue;
      const heldMs = now - info.borrowedAt;
      if (heldMs < this.#leaseWarning) continue;
      info.warned = true;
      this.#leaseListeners.emit({ heldMs, stack: info.origin?.stack });
    }
  }

  #closedError(): PoolClosedError {
    return withoutStack(() => new PoolClosedError(`Pool "${this.name}" is closed`));
  }

  #timeoutError(timeoutMs: number): PoolExhaustedError {
    return withoutStack(
      () =>
        new PoolExhaustedError(
          `Pool "${this.name}": no member became available within ${timeoutMs} ms`,
          { resource: this.name, reason: 'acquire-timeout' },
        ),
    );
  }

  #unavailableError(cause: Error): ResourceUnavailableError {
    return withoutStack(
      () =>
        new ResourceUnavailableError(
          `Pool "${this.name}" cannot create members: ${cause.message}`,
          { cause, resource: this.name, retryAfterMs: this.#backoffDelay() },
        ),
    );
  }

  static {
    rejectWaiter = (pool, waiter, reason, error) => pool.#rejectWaiter(waiter, reason, error);
    timeoutWaiter = (pool, waiter, timeoutMs) => {
      waiter.timer = undefined;
      pool.#rejectWaiter(waiter, 'timeout', pool.#timeoutError(timeoutMs));
    };
    grantWaiter = (pool, waiter, member) => pool.#lend(waiter, member);
  }
}

function noop(): void {}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

function checkInteger(option: string, value: unknown, min: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw invalid(option, value, `an integer >= ${min}`);
  }
}

function checkMillis(option: string, value: unknown, positive: boolean): asserts value is number {
  if (
    typeof value !== 'number' ||
    !(positive ? value > 0 : value >= 0) ||
    !(value <= MAX_TIMER_DELAY)
  ) {
    throw invalid(
      option,
      value,
      `a number of milliseconds in ${positive ? '(0' : '[0'}, ${MAX_TIMER_DELAY}]`,
    );
  }
}

function invalid(option: string, value: unknown, expected: string): InvalidArgumentError {
  return invalidOption('pool', option, value, expected);
}
