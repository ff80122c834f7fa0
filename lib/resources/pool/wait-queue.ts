import type { AbortSource } from '../abort-source.js';
import type { Borrower } from './types.js';

/** Who a {@link Waiter} tells that its wait ended early. */
export interface WaiterHost<T> {
  aborted(waiter: Waiter<T>): void;
  timedOut(waiter: Waiter<T>): void;
}

/**
 * One caller waiting for a member, with its own timeout and abort signal. generic-pool's
 * queue cannot drop a request (a timed-out one stays queued, still counted by `pending`,
 * and a release dispatched to it is wasted), so callers wait here, in a list with O(1)
 * removal, while the pool's requests to generic-pool stay pending until served.
 */
export class Waiter<T> {
  prev: Waiter<T> | null = null;
  next: Waiter<T> | null = null;
  linked = false;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** Whether this waiter is a listener of `signal` (only while it waits). */
  listening = false;
  /** Set once the borrower has been told (lent, refused): later grants go back to the pool. */
  done = false;

  constructor(
    readonly host: WaiterHost<T>,
    readonly borrower: Borrower<T>,
    readonly signal: AbortSource | undefined,
    readonly timeoutMs: number,
    readonly startedAt: number,
    readonly origin: Error | undefined,
  ) {}

  /** Arms the timeout with what is left of it, and listens to the signal. */
  watch(): void {
    const left = this.timeoutMs - (Date.now() - this.startedAt);
    this.timer = setTimeout(timeWaiterOut, left > 0 ? left : 0, this);
    this.timer.unref();
    if (this.signal !== undefined) {
      this.listening = true;
      this.signal.addEventListener('abort', this);
    }
  }

  /** Clears the timeout and the abort listener. */
  unwatch(): void {
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.listening) {
      this.listening = false;
      this.signal!.removeEventListener('abort', this);
    }
  }

  /** The abort listener (an object listener: no closure per waiter). */
  handleEvent(): void {
    this.host.aborted(this);
  }
}

function timeWaiterOut<T>(waiter: Waiter<T>): void {
  waiter.timer = undefined;
  waiter.host.timedOut(waiter);
}

/** The callers waiting for a member, oldest first. */
export class WaitQueue<T> {
  head: Waiter<T> | null = null;
  #tail: Waiter<T> | null = null;
  length = 0;

  push(w: Waiter<T>): void {
    w.linked = true;
    w.prev = this.#tail;
    if (this.#tail === null) this.head = w;
    else this.#tail.next = w;
    this.#tail = w;
    this.length++;
  }

  remove(w: Waiter<T>): void {
    if (!w.linked) return;
    w.linked = false;
    if (w.prev === null) this.head = w.next;
    else w.prev.next = w.next;
    if (w.next === null) this.#tail = w.prev;
    else w.next.prev = w.prev;
    w.prev = null;
    w.next = null;
    this.length--;
  }
}
