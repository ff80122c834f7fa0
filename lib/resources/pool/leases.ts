import { Listeners } from '../../policies/listeners.js';
import type { ListenerErrors } from '../../policies/listeners.js';

/** Stack frames kept for lease warnings: enough to get past the pack's own frames. */
const LEASE_STACK_FRAMES = 25;

/** What the pool knows of one live member: its age, and its current lease to a caller. */
export class Member {
  /** Epoch ms when the member was lent to a caller, or -1 while it is not. */
  borrowedAt = -1;
  /** Where the current borrow was made (stack formatted only when a warning reads it). */
  origin: Error | undefined = undefined;
  warned = false;
  /** Epoch ms when it last went onto the pool's idle stack. */
  idleSince = 0;
  constructor(readonly createdAt: number) {}
}

/** A lease held too long: how long so far, and where it was acquired. */
export interface LeaseWarning {
  heldMs: number;
  stack: string | undefined;
}

/**
 * Lease-leak tracking, which generic-pool does not do: with `leaseWarning` > 0, a member
 * lent longer than that is reported once per borrow, with the stack of the `acquire()`.
 */
export class LeaseTracker<T> {
  readonly listeners: Listeners<[info: LeaseWarning]>;
  #timer: ReturnType<typeof setInterval> | undefined = undefined;

  constructor(
    readonly name: string,
    readonly warningMs: number,
    readonly members: ReadonlyMap<T, Member>,
    errors: ListenerErrors,
  ) {
    this.listeners = new Listeners<[info: LeaseWarning]>(errors);
  }

  /**
   * Where a borrow is made, captured now, while the caller's frames are on the stack: V8
   * formats `.stack` only when a warning reads it, so a borrow pays for the capture alone.
   */
  origin(captureStack: boolean | undefined): Error | undefined {
    if (this.warningMs <= 0 || captureStack === false) return undefined;
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = LEASE_STACK_FRAMES;
    const origin = new Error(`Pool "${this.name}" member acquired here`);
    Error.stackTraceLimit = limit;
    return origin;
  }

  start(): void {
    if (this.warningMs <= 0 || this.#timer !== undefined) return;
    // Checking twice per leaseWarning (between 10 ms and 1 s) reports a leak within
    // 1.5 × leaseWarning at worst, for one pass over at most `max` members.
    const period = Math.min(1000, Math.max(10, this.warningMs / 2));
    this.#timer = setInterval(() => this.#check(), period);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #check(): void {
    const now = Date.now();
    for (const info of this.members.values()) {
      if (info.borrowedAt < 0 || info.warned) continue;
      const heldMs = now - info.borrowedAt;
      if (heldMs < this.warningMs) continue;
      info.warned = true;
      this.listeners.emit({ heldMs, stack: info.origin?.stack });
    }
  }
}
