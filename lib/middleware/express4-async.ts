import type { IncomingMessage } from 'node:http';

type Next = (err?: unknown) => void;
interface Express4Layer {
  handle: (...args: unknown[]) => unknown;
  handle_request(req: unknown, res: unknown, next: Next): void;
  handle_error(err: unknown, req: unknown, res: unknown, next: Next): void;
}

const PATCHED = Symbol.for('express-resilience.express4-async');

function forwardRejection(result: unknown, next: Next): void {
  if (
    result !== null &&
    typeof result === 'object' &&
    typeof (result as Promise<unknown>).then === 'function'
  ) {
    (result as Promise<unknown>).then(undefined, (err: unknown) => {
      next(err ?? new Error('Async handler rejected with a falsy reason'));
    });
  }
}

/**
 * Express 4 ignores the promise an async handler returns, so its rejection never reaches
 * `next(err)` and the request hangs until our timeout. Express 5 forwards it; for Express 4 we
 * teach the app's `Layer` to do the same, once per installed copy of Express. The app's own
 * router gives us the prototype, so we never import (or guess the path of) Express internals.
 */
export function patchExpress4AsyncErrors(req: IncomingMessage): boolean {
  const app = (req as { app?: { _router?: { stack?: unknown[] } } }).app;
  const first = app?._router?.stack?.[0];
  if (first === undefined || first === null) return false;
  const proto = Object.getPrototypeOf(first) as Express4Layer & { [PATCHED]?: true };
  if (proto[PATCHED] || typeof proto.handle_request !== 'function') return false;
  Object.defineProperty(proto, PATCHED, { value: true });

  proto.handle_request = function handleRequest(this: Express4Layer, rq, rs, next) {
    const fn = this.handle;
    if (fn.length > 3) return next();
    try {
      forwardRejection(fn(rq, rs, next), next);
    } catch (err) {
      next(err);
    }
  };
  proto.handle_error = function handleError(this: Express4Layer, error, rq, rs, next) {
    const fn = this.handle;
    if (fn.length !== 4) return next(error);
    try {
      forwardRejection(fn(error, rq, rs, next), next);
    } catch (err) {
      next(err);
    }
  };
  return true;
}
