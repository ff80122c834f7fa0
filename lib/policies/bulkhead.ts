import { BulkheadFullError, InvalidArgumentError, withoutStack } from '../errors.js';
import type { BulkheadRejectReason } from '../errors.js';
import { Listeners } from './listeners.js';
import type { Disposable } from './listeners.js';

/** Options of a {@link Bulkhead}. */
export interface BulkheadOptions {
  /** Calls allowed to run at once; an integer >= 1. */
  maxConcurrent: number;
  /** Calls allowed to wait for a slot; an integer >= 0. Default 0 (no queue). */
  maxQueue?: number;
  /**
   * Milliseconds a queued call may wait before it is rejected with reason `'queue-timeout'`;
   * 0 means no limit. Default 1000. At most 2147483647 (the largest `setTimeout` delay).
   */
  queueTimeout?: number;
}

/**
 * The right to occupy one slot of a {@link Bulkhead}. Release it when the work it guards ends;
 * a slot that is never released is lost for good.
 */
export interface BulkheadLease {
  /**
   * Gives the slot back (to the next queued caller, if any). Returns true the first time and
   * false on every later call, so racing releases (finish vs. forced release) are safe.
   */
  release(): boolean;
  /** True once {@link BulkheadLease.release} has been called. */
  readonly released: boolean;
}

export type { Disposable } from './listeners.js';

/** A snapshot of a {@link Bulkhead}'s occupancy, read by the metrics gauges. */
export interface BulkheadStats {
  active: number;
  queued: number;
  maxConcurrent: number;
  maxQueue: number;
}

/** setTimeout clamps larger delays to 1 ms (with a warning), which would reject at once. */
const MAX_TIMER_DELAY = 2_147_483_647;

/** Runs `fn` in the slot `lease` holds and gives the slot back when `fn` settles. */
function runLeased<T>(lease: BulkheadLease, fn: () => Promise<T> | T): Promise<T> {
  let result: Promise<T> | T;
  try {
    result = fn();
  } catch (err) {
    lease.release();
    return Promise.reject(err);
  }
  return Promise.resolve(result).then(
    (value) => {
      lease.release();
      return value;
    },
    (err: unknown) => {
      lease.release();
      throw err;
    },
  );
}

class Lease implements BulkheadLease {
  released = false;

  constructor(private readonly bulkhead: Bulkhead) {}

  release(): boolean {
    if (this.released) return false;
    this.released = true;
    releaseSlot(this.bulkhead);
    return true;
  }
}

/**
 * A queued caller: a node of the intrusive doubly linked wait list (O(1) enqueue, dequeue and
 * removal on timeout/abort) and, through `handleEvent`, its own abort listener, so queueing
 * allocates no closures beyond the promise's executor.
 */
class Waiter {
  prev: Waiter | null = null;
  next: Waiter | null = null;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  signal: AbortSignal | undefined = undefined;
  /** False once resolved or rejected: timer, abort and close may race to settle it. */
  queued = true;

  constructor(
    readonly bulkhead: Bulkhead,
    readonly resolve: (lease: BulkheadLease) => void,
    readonly reject: (err: BulkheadFullError) => void,
  ) {}

  handleEvent(): void {
    rejectWaiter(this.bulkhead, this, 'aborted');
  }
}

function onQueueTimeout(waiter: Waiter): void {
  waiter.timer = undefined;
  rejectWaiter(waiter.bulkhead, waiter, 'queue-timeout');
}

// Module-level functions with access to the class internals, so Lease/Waiter need no closures.
let releaseSlot: (bulkhead: Bulkhead) => void;
let rejectWaiter: (bulkhead: Bulkhead, waiter: Waiter, reason: BulkheadRejectReason) => void;

const MESSAGES: Record<BulkheadRejectReason, string> = {
  full: 'Bulkhead is full',
  'queue-timeout': 'Bulkhead queue wait timed out',
  aborted: 'Bulkhead wait was aborted',
};

function rejection(reason: BulkheadRejectReason): BulkheadFullError {
  return withoutStack(() => new BulkheadFullError(MESSAGES[reason], { reason }));
}

/**
 * Limits how many calls run at once, with a bounded FIFO queue whose waits are limited by
 * `queueTimeout`. A released slot is handed straight to the oldest waiter still queued, so
 * `active` never exceeds `maxConcurrent` and a waiter that timed out or was aborted never
 * receives a slot.
 *
 * Hand-written rather than cockatiel's `BulkheadPolicy`: it has no queue timeout, no lease
 * (a slot is freed only when a promise settles), and an aborted waiter keeps its queue place.
 */
export class Bulkhead {
  private readonly limit: number;
  private readonly queueLimit: number;
  private readonly queueTimeout: number;
  private activeCount = 0;
  private queuedCount = 0;
  private head: Waiter | null = null;
  private tail: Waiter | null = null;
  private closed = false;
  // Copy-on-write, so a listener that disposes itself during emit does not skip another.
  private readonly rejectListeners = new Listeners<[BulkheadRejectReason]>('bulkhead');

  /**
   * @throws InvalidArgumentError when `maxConcurrent` is not an integer >= 1, `maxQueue` not
   *   an integer >= 0, or `queueTimeout` not a number in [0, 2147483647].
   */
  constructor(options: BulkheadOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError(`bulkhead options must be an object, got ${String(options)}`);
    }
    const { maxConcurrent, maxQueue = 0, queueTimeout = 1000 } = options;
    if (!Number.isSafeInteger(maxConcurrent) || maxConcurrent < 1) {
      throw new InvalidArgumentError(
        `bulkhead maxConcurrent must be an integer >= 1, got ${String(maxConcurrent)}`,
      );
    }
    if (!Number.isSafeInteger(maxQueue) || maxQueue < 0) {
      throw new InvalidArgumentError(
        `bulkhead maxQueue must be an integer >= 0, got ${String(maxQueue)}`,
      );
    }
    if (
      typeof queueTimeout !== 'number' ||
      !(queueTimeout >= 0 && queueTimeout <= MAX_TIMER_DELAY)
    ) {
      throw new InvalidArgumentError(
        `bulkhead queueTimeout must be a number of milliseconds in [0, ${MAX_TIMER_DELAY}], got ${String(queueTimeout)}`,
      );
    }
    this.limit = maxConcurrent;
    this.queueLimit = maxQueue;
    this.queueTimeout = queueTimeout;
  }

  /** Calls currently holding a slot. */
  get active(): number {
    return this.activeCount;
  }

  /** Calls currently waiting for a slot. */
  get queued(): number {
    return this.queuedCount;
  }

  /** The configured concurrency limit. */
  get maxConcurrent(): number {
    return this.limit;
  }

  /** The configured queue bound. */
  get maxQueue(): number {
    return this.queueLimit;
  }

  /** A snapshot for metrics. */
  stats(): BulkheadStats {
    return {
      active: this.activeCount,
      queued: this.queuedCount,
      maxConcurrent: this.limit,
      maxQueue: this.queueLimit,
    };
  }

  /**
   * Synchronous fast path: a lease when a slot is free and nobody is queued, else null.
   * Never queues and never emits `onReject`; fall back to {@link Bulkhead.acquire}.
   */
  tryAcquire(): BulkheadLease | null {
    if (this.activeCount < this.limit && this.head === null) {
      this.activeCount++;
      return new Lease(this);
    }
    return null;
  }

  /**
   * Resolves with a lease at once when a slot is free, else waits in the queue.
   * Still grants free slots after {@link Bulkhead.close}, but no longer queues.
   *
   * Rejects with {@link BulkheadFullError} whose `reason` is `'full'` when the queue is full,
   * `'queue-timeout'` when `queueTimeout` passes, `'aborted'` when `signal` is or becomes
   * aborted while queued (its queue place is freed at once) or the bulkhead is closed.
   */
  acquire(signal?: AbortSignal): Promise<BulkheadLease> {
    if (signal?.aborted === true) return this.refuse('aborted');
    const lease = this.tryAcquire();
    if (lease !== null) return Promise.resolve(lease);
    if (this.closed) return this.refuse('aborted');
    if (this.queuedCount >= this.queueLimit) return this.refuse('full');
    return new Promise<BulkheadLease>((resolve, reject) => {
      const waiter = new Waiter(this, resolve, reject);
      if (this.tail === null) {
        this.head = waiter;
      } else {
        this.tail.next = waiter;
        waiter.prev = this.tail;
      }
      this.tail = waiter;
      this.queuedCount++;
      if (this.queueTimeout > 0) {
        waiter.timer = setTimeout(onQueueTimeout, this.queueTimeout, waiter);
        waiter.timer.unref();
      }
      if (signal !== undefined) {
        waiter.signal = signal;
        signal.addEventListener('abort', waiter);
      }
    });
  }

  /**
   * Runs `fn` in a slot (queueing as {@link Bulkhead.acquire} does) and releases the slot when
   * `fn` settles. Rejects like `acquire`, or with whatever `fn` throws or rejects with.
   */
  execute<T>(fn: () => Promise<T> | T, signal?: AbortSignal): Promise<T> {
    // The sync fast path skips the queue's promise on the common, uncontended call; chaining
    // rather than an async function saves another promise per call.
    const lease = signal?.aborted === true ? null : this.tryAcquire();
    if (lease === null) return this.acquire(signal).then((queued) => runLeased(queued, fn));
    return runLeased(lease, fn);
  }

  /**
   * Subscribes to rejections (`'full'`, `'queue-timeout'`, `'aborted'`), e.g. for metrics.
   * A listener that throws does not disturb the bulkhead or the process (a process warning is
   * emitted once per bulkhead).
   */
  onReject(listener: (reason: BulkheadRejectReason) => void): Disposable {
    return this.rejectListeners.add(listener);
  }

  /**
   * Rejects every queued waiter with reason `'aborted'` and clears their timers; later
   * `acquire` calls that would have to queue are rejected the same way. Leases already granted
   * stay valid and release normally. Idempotent.
   */
  close(): void {
    this.closed = true;
    while (this.head !== null) rejectWaiter(this, this.head, 'aborted');
  }

  private refuse(reason: BulkheadRejectReason): Promise<never> {
    const err = rejection(reason);
    this.emitReject(reason);
    return Promise.reject(err);
  }

  private emitReject(reason: BulkheadRejectReason): void {
    if (this.rejectListeners.size > 0) this.rejectListeners.emit(reason);
  }

  /** Unlinks a waiter and drops its timer and abort listener; it can then never settle twice. */
  private detach(waiter: Waiter): void {
    if (waiter.prev === null) this.head = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === null) this.tail = waiter.prev;
    else waiter.next.prev = waiter.prev;
    waiter.prev = waiter.next = null;
    waiter.queued = false;
    this.queuedCount--;
    if (waiter.timer !== undefined) {
      clearTimeout(waiter.timer);
      waiter.timer = undefined;
    }
    if (waiter.signal !== undefined) {
      waiter.signal.removeEventListener('abort', waiter);
      waiter.signal = undefined;
    }
  }

  static {
    releaseSlot = (bulkhead) => {
      const next = bulkhead.head;
      if (next === null) {
        bulkhead.activeCount--;
        return;
      }
      // Hand the slot over without decrementing, so no newcomer can slip in between.
      bulkhead.detach(next);
      next.resolve(new Lease(bulkhead));
    };
    rejectWaiter = (bulkhead, waiter, reason) => {
      if (!waiter.queued) return;
      bulkhead.detach(waiter);
      waiter.reject(rejection(reason));
      bulkhead.emitReject(reason);
    };
  }
}

/**
 * Creates a {@link Bulkhead}.
 * @throws InvalidArgumentError on invalid options (see the constructor).
 */
export function bulkhead(options: BulkheadOptions): Bulkhead {
  return new Bulkhead(options);
}
