import {
  PoolClosedError,
  PoolExhaustedError,
  ResourceUnavailableError,
  withoutStack,
} from '../../errors.js';

// The errors a pool refuses a borrow with. Without a stack: they are flow control, made
// often under load, and the stack would show the pool's own frames.

export function closedError(pool: string): PoolClosedError {
  return withoutStack(() => new PoolClosedError(`Pool "${pool}" is closed`));
}

export function timeoutError(pool: string, timeoutMs: number): PoolExhaustedError {
  return withoutStack(
    () =>
      new PoolExhaustedError(`Pool "${pool}": no member became available within ${timeoutMs} ms`, {
        resource: pool,
        reason: 'acquire-timeout',
      }),
  );
}

export function queueFullError(pool: string, waiting: number): PoolExhaustedError {
  return withoutStack(
    () =>
      new PoolExhaustedError(`Pool "${pool}" is exhausted: ${waiting} acquires already wait`, {
        resource: pool,
        reason: 'queue-full',
      }),
  );
}

export function unavailableError(
  pool: string,
  cause: Error,
  retryAfterMs: number,
): ResourceUnavailableError {
  return withoutStack(
    () =>
      new ResourceUnavailableError(`Pool "${pool}" cannot create members: ${cause.message}`, {
        cause,
        resource: pool,
        retryAfterMs,
      }),
  );
}
