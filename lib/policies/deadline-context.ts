import { AsyncLocalStorage } from 'node:async_hooks';
import { InvalidArgumentError } from '../errors.js';
import { Deadline } from './timeout.js';

// One store for the whole process: the inbound middleware writes it, outbound resources read it.
const storage = new AsyncLocalStorage<Deadline>();

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
  return storage.run(deadline, fn);
}

/** The deadline of the enclosing {@link runWithDeadline}, or undefined outside of one. */
export function currentDeadline(): Deadline | undefined {
  return storage.getStore();
}
