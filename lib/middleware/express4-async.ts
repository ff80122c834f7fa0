import type { IncomingMessage } from 'node:http';

type Next = (err?: unknown) => void;
interface Express4Layer {
  handle: (...args: unknown[]) => unknown;
  handle_request(req: unknown, res: unknown, next: Next): void;
  handle_error(err: unknown, req: unknown, res: unknown, next: Next): void;
}

const PATCHED = Symbol.for('express-resilience.express4-async');
/** Set on a request whose app asked for rejections to be forwarded. */
const FORWARD = Symbol.for('express-resilience.express4-async.forward');

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

function forwards(req: unknown): boolean {
  return typeof req === 'object' && req !== null && (req as { [FORWARD]?: true })[FORWARD] === true;
}

/**
 * Express 4 ignores the promise an async handler returns, so its rejection never reaches
 * `next(err)` and the request hangs until our timeout. Express 5 forwards it; for Express 4 we
 * teach the app's `Layer` to do the same. The prototype is shared by every app built from that
 * copy of Express, so the patched methods only change requests marked by
 * {@link forwardAsyncErrors} and defer to Express's own methods for all others: an app
 * without the option (or another library's Express 4 app in the process) keeps Express's
 * behaviour. The app's own router gives us the prototype, so we never import (or guess the
 * path of) Express internals.
 *
 * @returns true when `req` belongs to an Express 4 app whose Layer now forwards for marked
 *   requests.
 */
export function patchExpress4AsyncErrors(req: IncomingMessage): boolean {
  const app = (req as { app?: { _router?: { stack?: unknown[] } } }).app;
  const first = app?._router?.stack?.[0];
  if (first === undefined || first === null) return false;
  const proto = Object.getPrototypeOf(first) as Express4Layer & { [PATCHED]?: true };
  if (proto[PATCHED]) return true;
  if (typeof proto.handle_request !== 'function' || typeof proto.handle_error !== 'function') {
    return false;
  }
  Object.defineProperty(proto, PATCHED, { value: true });
  const original = { request: proto.handle_request, error: proto.handle_error };

  proto.handle_request = function handleRequest(this: Express4Layer, rq, rs, next) {
    if (!forwards(rq)) return original.request.call(this, rq, rs, next);
    const fn = this.handle;
    if (fn.length > 3) return next();
    try {
      forwardRejection(fn(rq, rs, next), next);
    } catch (err) {
      next(err);
    }
  };
  proto.handle_error = function handleError(this: Express4Layer, error, rq, rs, next) {
    if (!forwards(rq)) return original.error.call(this, error, rq, rs, next);
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

/** Marks `req` so the patched Express 4 Layer forwards its handlers' rejections. */
export function forwardAsyncErrors(req: IncomingMessage): void {
  (req as { [FORWARD]?: true })[FORWARD] = true;
}
