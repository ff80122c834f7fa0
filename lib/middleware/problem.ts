import type { ServerResponse } from 'node:http';
import type { ResilienceError } from '../errors.js';

/** The problem type URIs of the pack's rejections, one per error code (RFC 9457 §3.1.1). */
const PROBLEM_TYPES: Readonly<Record<string, string>> = {
  ERR_RATE_LIMITED: 'urn:express-resilience:problem:rate-limited',
  ERR_BREAKER_OPEN: 'urn:express-resilience:problem:breaker-open',
  ERR_BULKHEAD_FULL: 'urn:express-resilience:problem:bulkhead-full',
  ERR_TIMEOUT: 'urn:express-resilience:problem:timeout',
  ERR_SHUTTING_DOWN: 'urn:express-resilience:problem:shutting-down',
  ERR_RESOURCE_UNAVAILABLE: 'urn:express-resilience:problem:resource-unavailable',
};

/** The RFC 9457 body the pack sends for a rejection. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** The error's stable code, e.g. `ERR_RATE_LIMITED`. */
  code: string;
  /** The route (or named policy) whose policy rejected the request. */
  route: string;
  /** Seconds after which a retry may succeed, when known (mirrors `Retry-After`). */
  retryAfter?: number;
}

/** Whole seconds for a `Retry-After` header: rounded up, at least 1. */
export function retryAfterSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** Builds the problem+json body for a rejection. */
export function problemDetails(err: ResilienceError, route: string): ProblemDetails {
  const body: ProblemDetails = {
    type: PROBLEM_TYPES[err.code] ?? 'about:blank',
    title: err.title,
    status: err.status,
    detail: err.message,
    code: err.code,
    route,
  };
  if (err.retryAfterMs !== undefined) body.retryAfter = retryAfterSeconds(err.retryAfterMs);
  return body;
}

/**
 * Writes `err` as an `application/problem+json` response with raw Node APIs, so it works the
 * same on Express 4, Express 5 and Connect. `Retry-After` is set by the caller before this.
 */
export function sendProblem(res: ServerResponse, err: ResilienceError, route: string): void {
  const payload = JSON.stringify(problemDetails(err, route));
  res.statusCode = err.status;
  res.setHeader('Content-Type', 'application/problem+json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(payload));
  res.setHeader('Cache-Control', 'no-store');
  res.end(payload);
}
