import { AsyncLocalStorage } from 'node:async_hooks';
import { InvalidArgumentError } from '../errors.js';
import { Deadline } from './timeout.js';

// One store for the whole process: the inbound middleware writes it, outbound resources read it.
const storage = new AsyncLocalStorage<Deadline>();

/**
 * Whether the middleware puts request deadlines into the store. On Node 20 the first
 * `AsyncLocalStorage.run()` turns on promise hooks for the whole process, after which every
 * promise and every await of the app costs two to three times as much. So the middleware
 * propagates only once something can read the deadline: a resource, a named policy
 * (`r.policy()`, `r.wrap()`), an explicit {@link runWithDeadline}, or a first call to
 * {@link currentDeadline}. Once on, it stays on.
 */
let propagating = false;

/** Makes the middleware propagate request deadlines from now on (see `propagating`). */
export function propagateDeadlines(): void {
  propagating = true;
}

/**
 * Runs `fn` with `deadline` as the current deadline: {@link currentDeadline} returns it inside
 * `fn` and in all async work `fn` starts, so outbound calls can inherit the remaining time.
 * Returns what `fn` returns.
 * @throws InvalidArgumentError when `deadline` is not a {@link Deadline}.
 */
export function runWithDeadline<T>(deadline: Deadline, fn: () => T): T {
  if (!(deadline instanceof Deadline)) {
    throw new InvalidArgumentError(`runWithDeadline needs a Deadline, got ${String(deadline)}`);
  }
  propagating = true;
  return storage.run(deadline, fn);
}

/**
 * The deadline of the enclosing {@link runWithDeadline} or request, or undefined outside of
 * one. The middleware propagates request deadlines once anything reads them; in an app with
 * no resources and no named policies, the first call turns that on and returns undefined, and
 * every later request carries its deadline.
 */
export function currentDeadline(): Deadline | undefined {
  if (!propagating) {
    propagating = true;
    return undefined;
  }
  return storage.getStore();
}

/** The pack's own readers: {@link currentDeadline} without turning propagation on. */
export function peekDeadline(): Deadline | undefined {
  return propagating ? storage.getStore() : undefined;
}

/** The middleware's writer: runs `fn` under `deadline` when propagation is on, else just `fn`. */
export function runInRequestContext<T>(deadline: Deadline, fn: () => T): T {
  return propagating ? storage.run(deadline, fn) : fn();
}
