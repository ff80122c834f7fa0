import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { EndpointProtection } from '../config/types.js';
import { compileAllowlist } from '../policies/rate-limit/allowlist.js';
import type { AllowlistMatcher } from '../policies/rate-limit/allowlist.js';
import type { HealthReport, HealthStatus } from '../resources/types.js';
import type { HealthMonitor } from './monitor.js';

/**
 * The bodies and statuses of /healthz and /readyz and the access rule of protected endpoints,
 * as plain functions: the middleware serves them (GET and HEAD, JSON), these decide what.
 */

/** A status code and a JSON-serialisable body. */
export interface EndpointResponse {
  status: number;
  body: Record<string, unknown>;
}

/** A circuit breaker's name and state, as listed in the readiness details. */
export interface BreakerSummary {
  name: string;
  /** `closed`, `open`, `half-open` or `isolated`. */
  state: string;
}

/** Options of {@link readinessResponse}. */
export interface ReadinessOptions {
  /** True once close() began: readiness is 503 `shutting-down` whatever the checks say. */
  shuttingDown: boolean;
  /** Include the checks and breakers (only for authorised clients when protected). */
  details: boolean;
  /** Circuit breakers to list in the details (and to judge when `breakersAffectReadiness`). */
  breakers?: readonly BreakerSummary[] | undefined;
  /** When true, an open (or isolated) breaker fails readiness. */
  breakersAffectReadiness: boolean;
}

/** Liveness: 200 `{ status: 'ok' }` while the process can answer at all. */
export function livenessResponse(): EndpointResponse {
  return { status: 200, body: { status: 'ok' } };
}

function isOpen(breaker: BreakerSummary): boolean {
  return breaker.state === 'open' || breaker.state === 'isolated';
}

function checkDetails(report: HealthReport): Record<string, unknown> {
  return {
    name: report.name,
    kind: report.kind,
    status: report.status,
    critical: report.critical,
    ...(report.reason === undefined ? {} : { reason: report.reason }),
    history: report.history,
    ...(report.details === undefined ? {} : { details: report.details }),
  };
}

/**
 * Readiness: 200 `{ status: 'ready' }`, or 503 `{ status: 'not-ready' }` while a critical
 * check is down or not yet known (or, with `breakersAffectReadiness`, a breaker is open), or
 * 503 `{ status: 'shutting-down' }`. With `details`, the body also holds `health` (the
 * aggregate status), `checks` (each check's name, kind, status, critical, reason, history
 * and details) and `breakers`. Without a monitor, only shutting down makes it not ready.
 */
export function readinessResponse(
  monitor: HealthMonitor | undefined,
  options: ReadinessOptions,
): EndpointResponse {
  const { shuttingDown, details, breakersAffectReadiness } = options;
  const breakers = options.breakers ?? [];
  const readiness =
    monitor === undefined
      ? { ready: !shuttingDown, status: 'up' as HealthStatus, checks: [] as HealthReport[] }
      : monitor.readiness({ shuttingDown });
  const ready = readiness.ready && !(breakersAffectReadiness && breakers.some(isOpen));
  const status = shuttingDown ? 'shutting-down' : ready ? 'ready' : 'not-ready';
  const body: Record<string, unknown> = { status };
  if (details) {
    body.health = readiness.status;
    body.checks = readiness.checks.map(checkDetails);
    body.breakers = breakers.map(({ name, state }) => ({ name, state }));
  }
  return { status: ready ? 200 : 503, body };
}

const matchers = new WeakMap<readonly string[], AllowlistMatcher>();

function matcherFor(allowlist: readonly string[]): AllowlistMatcher {
  let matcher = matchers.get(allowlist);
  if (matcher === undefined) {
    matcher = compileAllowlist(allowlist);
    matchers.set(allowlist, matcher);
  }
  return matcher;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, RFC 9110). */
function bearerToken(req: IncomingMessage): string | undefined {
  const header = req.headers.authorization;
  if (typeof header !== 'string') return undefined;
  const match = /^Bearer +(\S+) *$/i.exec(header);
  return match?.[1];
}

/**
 * Whether a client may read a protected endpoint: always when `protect` has neither an
 * allowlist nor a token; otherwise when `clientIp` (resolved by the caller, honouring trust
 * proxy) is in the allowlist, or the request carries `Authorization: Bearer <token>` with the
 * configured token. Tokens are compared in constant time (`timingSafeEqual` over SHA-256
 * digests, which also hides the token's length).
 *
 * @throws {InvalidArgumentError} when the allowlist holds an invalid CIDR (config validation
 *   rules these out; only code can pass one).
 */
export function isAuthorised(
  req: IncomingMessage,
  protect: EndpointProtection,
  clientIp: string | undefined,
): boolean {
  const { allowlist, token } = protect;
  const hasToken = token !== undefined && token !== '';
  if (allowlist.length === 0 && !hasToken) return true;
  if (allowlist.length > 0 && clientIp !== undefined && clientIp !== '') {
    if (matcherFor(allowlist)(clientIp, clientIp)) return true;
  }
  if (!hasToken) return false;
  const given = bearerToken(req);
  return given !== undefined && timingSafeEqual(digest(given), digest(token));
}
