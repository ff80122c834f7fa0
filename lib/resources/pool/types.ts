import type { PoolConfig } from '../../config/types.js';
import type { AbortSource } from '../abort-source.js';

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
