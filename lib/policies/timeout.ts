import { InvalidArgumentError, TimeoutError, withoutStack } from '../errors.js';
import { systemClock } from './clock.js';
import type { Clock } from './clock.js';

/** Options of a {@link Deadline}. */
export interface DeadlineOptions {
  /** Milliseconds until the deadline; a number in [0, 2147483647]. */
  timeoutMs: number;
  /** Time source for `deadline` and `remaining()`. Default {@link systemClock}. */
  clock?: Clock;
  /** HTTP status of the {@link TimeoutError} raised on expiry; an integer 100-599. Default 504. */
  status?: number;
  /** Called once, with the error, when the deadline passes (before the signal aborts). */
  onExpire?: (error: TimeoutError) => void;
}

/** setTimeout clamps larger delays to 1 ms (with a warning), which would expire at once. */
const MAX_TIMER_DELAY = 2_147_483_647;

const PENDING = 0;
const EXPIRED = 1;
const ABORTED = 2;
const CLEARED = 3;
type State = typeof PENDING | typeof EXPIRED | typeof ABORTED | typeof CLEARED;

function checkTimeout(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number' || !(value >= 0 && value <= MAX_TIMER_DELAY)) {
    throw new InvalidArgumentError(
      `${name} must be a number of milliseconds in [0, ${MAX_TIMER_DELAY}], got ${String(value)}`,
    );
  }
}

function checkStatus(value: unknown): asserts value is number | undefined {
  if (
    value !== undefined &&
    !(Number.isInteger(value) && (value as number) >= 100 && (value as number) <= 599)
  ) {
    throw new InvalidArgumentError(`status must be an integer 100-599, got ${String(value)}`);
  }
}

function checkClock(value: unknown): asserts value is Clock | undefined {
  if (value !== undefined && typeof (value as Clock | null)?.now !== 'function') {
    throw new InvalidArgumentError(`clock must have a now() method, got ${String(value)}`);
  }
}

// The timer callback and the expiry lists' link/unlink, with access to the private state, so no
// deadline needs a closure of its own; assigned in Deadline's static block.
let fire: (deadline: Deadline) => void;
let link: (deadline: Deadline, list: ExpiryList) => void;
let unlink: (deadline: Deadline) => void;
let headOf: (list: ExpiryList) => Deadline | null;
let follow: (
  child: Deadline,
  parent: Deadline,
  onParentAbort: ((reason: unknown) => void) | undefined,
) => boolean;

/**
 * The system-clock deadlines of one duration. They expire in the order they were created, so
 * a FIFO list with ONE timer, armed for its head, serves them all — Node's own timer lists,
 * without a Timeout object per deadline. Written by hand because setTimeout + clearTimeout per
 * request cost ~400 ns on Node 20 (an object, a list insert, an async-hook init once
 * AsyncLocalStorage is on) where linking into a list costs a few. A cleared deadline only
 * unlinks itself: the timer fires as planned, expires what is due and re-arms for the next
 * head, so steady traffic keeps one timer per duration and an idle list removes itself.
 */
class ExpiryList {
  head: Deadline | null = null;
  tail: Deadline | null = null;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /**
   * The `deadline` (Date.now() scale) the timer was armed for. Everything due by then expires
   * when it fires, even if Date.now() reads a little earlier: the timer, not the wall clock,
   * is the authority for the head it was armed for.
   */
  armedFor = 0;
  constructor(readonly timeoutMs: number) {}
}

let expiryLists = new Map<number, ExpiryList>();
/**
 * The setTimeout the lists' timers were made with. Fake timers (tests, ours and our users')
 * swap the global; a list armed on a clock that is gone would never fire, so a new setTimeout
 * starts new lists and the old ones finish on the clock they were armed on.
 */
let listsTimerSource: typeof setTimeout = globalThis.setTimeout;

function enqueue(d: Deadline, timeoutMs: number): void {
  if (globalThis.setTimeout !== listsTimerSource) {
    listsTimerSource = globalThis.setTimeout;
    expiryLists = new Map();
  }
  let list = expiryLists.get(timeoutMs);
  if (list === undefined) {
    list = new ExpiryList(timeoutMs);
    expiryLists.set(timeoutMs, list);
  }
  link(d, list);
  if (list.timer === undefined) arm(list, d.deadline, timeoutMs);
}

function arm(list: ExpiryList, due: number, delay: number): void {
  list.armedFor = due;
  list.timer = globalThis.setTimeout(onListTimer, delay, list);
  list.timer.unref();
}

function onListTimer(list: ExpiryList): void {
  list.timer = undefined;
  const now = Date.now();
  const limit = now > list.armedFor ? now : list.armedFor;
  let head = headOf(list);
  while (head !== null && head.deadline <= limit) {
    fire(head); // unlinks it
    head = headOf(list);
  }
  if (head === null) {
    if (expiryLists.get(list.timeoutMs) === list) expiryLists.delete(list.timeoutMs);
    return;
  }
  // Never more than one duration ahead, even if the wall clock was set back meanwhile.
  const delay = Math.min(Math.max(head.deadline - now, 1), list.timeoutMs);
  arm(list, head.deadline, delay);
}

/**
 * A point in time by which work must finish, with one unref'd timer and an `AbortSignal`
 * that is only created when someone reads it (an `AbortController` and, worse, aborting one
 * cost microseconds on Node 20 — too much for every request).
 *
 * Exactly one of three things ends a deadline, and the first one wins: it expires (the timer
 * fires: `onExpire(error)`, then the signal aborts with that {@link TimeoutError}), it is
 * aborted ({@link Deadline.abort}), or it is cleared ({@link Deadline.clear}: the work finished
 * in time; the signal never aborts). Later calls to `abort()`/`clear()` do nothing.
 */
export class Deadline {
  /** The absolute deadline on the clock's scale: `clock.now() + timeoutMs` at construction. */
  readonly deadline: number;
  /** The timeout this deadline was created with, in milliseconds. */
  readonly timeoutMs: number;
  private readonly clock: Clock;
  private readonly status: number;
  private readonly onExpire: ((error: TimeoutError) => void) | undefined;
  /** Its own timer: only for deadlines on an injected clock (system-clock ones use a list). */
  private timer: ReturnType<typeof setTimeout> | undefined;
  private list: ExpiryList | undefined = undefined;
  private prev: Deadline | null = null;
  private next: Deadline | null = null;
  private controller: AbortController | undefined = undefined;
  private state: State = PENDING;
  private reason: unknown = undefined;
  // Parent → child links (see followDeadline): an intrusive list of the pending children, so a
  // child costs no AbortController or listener on the parent, and unlinks itself in O(1).
  private parent: Deadline | null = null;
  private firstChild: Deadline | null = null;
  private prevSibling: Deadline | null = null;
  private nextSibling: Deadline | null = null;
  private onParentAbort: ((reason: unknown) => void) | undefined = undefined;

  /**
   * Starts the deadline's timer.
   * @throws InvalidArgumentError when `timeoutMs` is not a number in [0, 2147483647], `status`
   *   not an integer 100-599, `clock` has no `now()` or `onExpire` is not a function.
   */
  constructor(options: DeadlineOptions) {
    if (typeof options !== 'object' || options === null) {
      throw new InvalidArgumentError(`deadline options must be an object, got ${String(options)}`);
    }
    const { timeoutMs, clock = systemClock, status = 504, onExpire } = options;
    checkTimeout('timeoutMs', timeoutMs);
    checkStatus(status);
    checkClock(clock);
    if (onExpire !== undefined && typeof onExpire !== 'function') {
      throw new InvalidArgumentError(`onExpire must be a function, got ${String(onExpire)}`);
    }
    this.timeoutMs = timeoutMs;
    this.clock = clock;
    this.status = status;
    this.onExpire = onExpire;
    this.deadline = clock.now() + timeoutMs;
    if (clock === systemClock && timeoutMs > 0) {
      enqueue(this, timeoutMs);
    } else {
      this.timer = setTimeout(fire, timeoutMs, this);
      this.timer.unref();
    }
  }

  /** Milliseconds left before the deadline; 0 (never negative) once it has passed. */
  remaining(): number {
    if (this.state === EXPIRED) return 0;
    const left = this.deadline - this.clock.now();
    return left > 0 ? left : 0;
  }

  /**
   * Expires the deadline now when its time is up but its timer has not fired yet (a timer
   * fires on a later turn; work about to start must not run first): `onExpire`, then the
   * signal aborts, as when the timer fires. Returns true when the deadline has expired.
   */
  expireIfDue(): boolean {
    if (this.state === PENDING && this.clock.now() >= this.deadline) {
      this.stopTimer();
      fire(this);
    }
    return this.state === EXPIRED;
  }

  /** True once the deadline has passed (by the timer or by the clock), even if cleared. */
  get expired(): boolean {
    return this.state === EXPIRED || this.clock.now() >= this.deadline;
  }

  /**
   * Aborts when the deadline expires (reason: the {@link TimeoutError}) or on
   * {@link Deadline.abort} (reason: its argument). Created on first access; never aborts after
   * {@link Deadline.clear}.
   */
  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.state === EXPIRED || this.state === ABORTED) this.controller.abort(this.reason);
    }
    return this.controller.signal;
  }

  /**
   * Ends the deadline early, e.g. when the client disconnected: clears the timer and aborts the
   * signal (if it was created) with `reason` (default: an `AbortError` DOMException).
   * `onExpire` is not called. Does nothing once the deadline has ended.
   */
  abort(reason?: unknown): void {
    if (this.state !== PENDING) return;
    this.state = ABORTED;
    this.reason = reason;
    this.stopTimer();
    try {
      this.controller?.abort(reason);
    } finally {
      this.endChildren();
    }
  }

  /**
   * The work finished in time: clears the timer. Never aborts the signal (aborting costs
   * microseconds and would wake every listener for nothing). Does nothing once ended.
   */
  clear(): void {
    if (this.state !== PENDING) return;
    this.state = CLEARED;
    this.stopTimer();
    // Children outlive a cleared parent on their own timers (fire-and-forget work).
    this.endChildren();
  }

  /** Ends (or, if this one was cleared, just lets go of) every child that follows this one. */
  private endChildren(): void {
    // From the head each time: a callback may end (and so unlink) any sibling meanwhile.
    let child: Deadline | null;
    while ((child = this.firstChild) !== null) {
      const onAbort = child.onParentAbort;
      child.unfollow();
      if (this.state === EXPIRED) fire(child);
      else if (this.state === ABORTED) child.abortFromParent(this.reason, onAbort);
    }
  }

  private abortFromParent(reason: unknown, onAbort: ((reason: unknown) => void) | undefined): void {
    if (this.state !== PENDING) return;
    this.state = ABORTED;
    this.reason = reason;
    this.stopTimer();
    // Like expiry: the owner settles its work before abort listeners run.
    try {
      onAbort?.(reason);
    } finally {
      this.controller?.abort(reason);
      this.endChildren();
    }
  }

  private unfollow(): void {
    const parent = this.parent;
    if (parent === null) return;
    if (this.prevSibling === null) parent.firstChild = this.nextSibling;
    else this.prevSibling.nextSibling = this.nextSibling;
    if (this.nextSibling !== null) this.nextSibling.prevSibling = this.prevSibling;
    this.parent = this.prevSibling = this.nextSibling = null;
    this.onParentAbort = undefined;
  }

  private stopTimer(): void {
    if (this.parent !== null) this.unfollow();
    if (this.list !== undefined) {
      unlink(this);
    } else if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  static {
    link = (d, list) => {
      d.list = list;
      d.prev = list.tail;
      if (list.tail === null) list.head = d;
      else list.tail.next = d;
      list.tail = d;
    };
    unlink = (d) => {
      const list = d.list!;
      if (d.prev === null) list.head = d.next;
      else d.prev.next = d.next;
      if (d.next === null) list.tail = d.prev;
      else d.next.prev = d.prev;
      d.list = undefined;
      d.prev = null;
      d.next = null;
    };
    headOf = (list) => list.head;
    follow = (child, parent, onParentAbort) => {
      if (child.state !== PENDING) return false;
      if (parent.state === EXPIRED) {
        fire(child);
        return false;
      }
      if (parent.state === ABORTED) {
        child.abortFromParent(parent.reason, onParentAbort);
        return false;
      }
      if (parent.state === CLEARED) return true;
      child.unfollow();
      child.parent = parent;
      child.onParentAbort = onParentAbort;
      child.nextSibling = parent.firstChild;
      if (parent.firstChild !== null) parent.firstChild.prevSibling = child;
      parent.firstChild = child;
      return true;
    };
    fire = (d) => {
      if (d.state !== PENDING) return;
      d.state = EXPIRED;
      if (d.parent !== null) d.unfollow();
      if (d.list !== undefined) unlink(d);
      d.timer = undefined;
      const error = withoutStack(
        () =>
          new TimeoutError(`Deadline of ${d.timeoutMs} ms exceeded`, {
            timeoutMs: d.timeoutMs,
            status: d.status,
          }),
      );
      d.reason = error;
      // onExpire first, so whoever answers the request (504) does so before abort listeners run.
      try {
        d.onExpire?.(error);
      } finally {
        try {
          d.controller?.abort(error);
        } finally {
          d.endChildren();
        }
      }
    };
  }
}

/**
 * Makes `child` follow `parent` until either ends: the parent's expiry expires the child (its
 * `onExpire` runs), the parent's abort aborts the child with the same reason, after calling
 * `onParentAbort` with it. A cleared parent lets go of its children. The link goes when the
 * child ends, so a long-lived parent keeps nothing of children that settled. Returns false when
 * the parent had already expired or been aborted and the child was ended that way at once.
 * Internal (not exported by the package): {@link withTimeout} and `r.wrap()` use it.
 */
export function followDeadline(
  child: Deadline,
  parent: Deadline,
  onParentAbort?: (reason: unknown) => void,
): boolean {
  return follow(child, parent, onParentAbort);
}

/**
 * Creates a {@link Deadline}.
 * @throws InvalidArgumentError on invalid options (see the constructor).
 */
export function deadline(options: DeadlineOptions): Deadline {
  return new Deadline(options);
}

/** Options of {@link withTimeout}. */
export interface WithTimeoutOptions {
  /** HTTP status of the {@link TimeoutError}; default 504. */
  status?: number;
  /** Time source; default {@link systemClock}. */
  clock?: Clock;
  /**
   * An enclosing deadline: the effective timeout is `min(timeoutMs, parent.remaining())`, and
   * when the parent is aborted (the client went away, say) `deadline.signal` aborts and the
   * call rejects, both with the parent's reason. The parent keeps no reference to the call once
   * it has settled.
   */
  parent?: Deadline;
}

function timeoutError(timeoutMs: number, status: number | undefined): TimeoutError {
  return withoutStack(
    () => new TimeoutError(`Deadline of ${timeoutMs} ms exceeded`, { timeoutMs, status }),
  );
}

/**
 * Runs `fn` under a timeout: settles as `fn` does, or rejects with a {@link TimeoutError}
 * after `timeoutMs` (then `deadline.signal`, if `fn` read it, aborts). `fn` gets the
 * {@link Deadline}; read `.signal` only when needed. When `fn` finishes in time the timer is
 * cleared and nothing is aborted. With no time left (`timeoutMs` 0, or a parent deadline that
 * has passed) it rejects at once without calling `fn`; so it does, with the parent's reason,
 * when the parent has been aborted.
 *
 * Rejects with InvalidArgumentError when `timeoutMs` is not a number in [0, 2147483647],
 * `fn` is not a function or an option is invalid.
 */
export function withTimeout<T>(
  timeoutMs: number,
  fn: (deadline: Deadline) => Promise<T> | T,
  options?: WithTimeoutOptions,
): Promise<T> {
  let effective: number;
  let parent: Deadline | undefined;
  try {
    checkTimeout('timeoutMs', timeoutMs);
    if (typeof fn !== 'function') {
      throw new InvalidArgumentError(`withTimeout fn must be a function, got ${String(fn)}`);
    }
    checkStatus(options?.status);
    checkClock(options?.clock);
    parent = options?.parent;
    if (parent !== undefined && !(parent instanceof Deadline)) {
      throw new InvalidArgumentError(`parent must be a Deadline, got ${String(parent)}`);
    }
    effective = parent === undefined ? timeoutMs : Math.min(timeoutMs, parent.remaining());
  } catch (err) {
    return Promise.reject(err);
  }
  if (effective <= 0) return Promise.reject(timeoutError(effective, options?.status));

  return new Promise<T>((resolve, reject) => {
    const d = new Deadline({
      timeoutMs: effective,
      clock: options?.clock,
      status: options?.status,
      onExpire: reject,
    });
    if (parent !== undefined && !follow(d, parent, reject)) return;
    let result: Promise<T> | T;
    try {
      result = fn(d);
    } catch (err) {
      d.clear();
      reject(err);
      return;
    }
    if (typeof (result as PromiseLike<T> | null | undefined)?.then !== 'function') {
      d.clear();
      resolve(result);
      return;
    }
    (result as PromiseLike<T>).then(
      (value) => {
        d.clear();
        resolve(value);
      },
      (err: unknown) => {
        d.clear();
        reject(err);
      },
    );
  });
}

/**
 * Parses an incoming deadline header (an integer number of milliseconds, digits only) and
 * returns `min(value, capMs)`. Returns `capMs` for a missing, empty, repeated (array of more
 * than one value), negative, fractional, non-numeric or overflowing value, so a client can
 * shorten its deadline but never lengthen it.
 * @throws InvalidArgumentError when `capMs` is not a number in [0, 2147483647].
 */
export function parseDeadlineHeader(
  value: string | readonly string[] | undefined,
  capMs: number,
): number {
  checkTimeout('capMs', capMs);
  let text: string | undefined;
  if (typeof value === 'string') text = value;
  else if (Array.isArray(value) && value.length === 1) text = (value as readonly string[])[0];
  if (typeof text !== 'string' || text.length === 0) return capMs;
  let ms = 0;
  for (let i = 0; i < text.length; i++) {
    const digit = text.charCodeAt(i) - 48;
    if (digit < 0 || digit > 9) return capMs;
    ms = ms * 10 + digit;
    // Past the cap the answer is capMs whatever follows; stopping keeps `ms` exact.
    if (ms > capMs) return capMs;
  }
  return ms < capMs ? ms : capMs;
}
