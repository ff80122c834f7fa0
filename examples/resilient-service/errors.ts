import type { NextFunction, Request, Response } from 'express';
import { isResilienceError, problemDetails } from 'express-resilience';

/** A request the service refuses (HTTP 400), with what is wrong. */
export class BadRequestError extends Error {
  readonly status = 400;
}

/** Sends an RFC 9457 problem. */
export function sendProblem(
  res: Response,
  status: number,
  problem: { type?: string; title: string; detail: string; code?: string },
): void {
  res
    .status(status)
    .type('application/problem+json')
    .json({ type: problem.type ?? 'about:blank', status, ...problem });
}

/**
 * The service's error handler: the pack's errors (an open upstream breaker, an exhausted pool,
 * an upstream timeout or failure) become the same problem+json answers as the middleware's own
 * rejections, with `Retry-After` where it applies; bad input is a 400; anything else a 500.
 */
export function errorHandler(err: unknown, req: Request, res: Response, next: NextFunction): void {
  // The middleware already answered (a 504 at the deadline): the late error has nowhere to go.
  if (res.headersSent) return next(err);
  if (isResilienceError(err)) {
    const body = problemDetails(err, req.resilience?.route ?? 'unknown');
    if (body.retryAfter !== undefined) res.setHeader('Retry-After', body.retryAfter);
    res.status(err.status).type('application/problem+json').json(body);
    return;
  }
  if (err instanceof BadRequestError) {
    sendProblem(res, 400, { title: 'Bad Request', detail: err.message });
    return;
  }
  // express.json() marks its own errors (bad JSON, body too large) with a 4xx status.
  const status = (err as { status?: unknown }).status;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    sendProblem(res, status, { title: 'Bad Request', detail: (err as Error).message });
    return;
  }
  console.error('resilient-service: unexpected error:', err);
  sendProblem(res, 500, { title: 'Internal Server Error', detail: 'unexpected error' });
}
