import type { Disposable } from '../policies/listeners.js';

/**
 * The contracts shared by the pool, the resource kinds (HTTP, Redis, custom), the health
 * monitor, the resource manager and the metrics module.
 */

/** Health of one resource or check. */
export type HealthStatus = 'up' | 'degraded' | 'down' | 'unknown';

export type { Disposable };

/** One health-check result, kept in a short per-resource history. */
export interface HealthCheckResult {
  /** Epoch milliseconds when the check finished. */
  at: number;
  ok: boolean;
  latencyMs: number;
  /** The error message of a failed check (never a secret: no URLs with credentials). */
  error?: string | undefined;
  /**
   * True when the probe could not run (its pool was exhausted: load, not ill health). `ok` is
   * false, but the check's status and thresholds ignore it: the last status stands.
   */
  skipped?: boolean | undefined;
}

/** What a health check reports upwards; `details` is shown only when health details are on. */
export interface HealthReport {
  name: string;
  kind: string;
  status: HealthStatus;
  critical: boolean;
  /** Why the status is not `up` (short, safe to show). */
  reason?: string | undefined;
  history: readonly HealthCheckResult[];
  details?: Readonly<Record<string, unknown>> | undefined;
}

/** A snapshot of a pool, read by the gauges (undici's PoolStats idea). */
export interface PoolStats {
  /** Members that exist (available + borrowed). */
  size: number;
  available: number;
  borrowed: number;
  /** Acquires waiting for a member. */
  pending: number;
  /** Members being created right now. */
  creating: number;
  min: number;
  max: number;
}

/** Why an acquire failed: the `reason` label of the acquire-error counter. */
export type AcquireErrorReason = 'timeout' | 'queue-full' | 'factory-error' | 'closed' | 'aborted';

/** Events a pool emits; the metrics module subscribes (policies never import prom-client). */
export interface PoolEvents {
  onAcquire(listener: (waitMs: number) => void): Disposable;
  onAcquireError(listener: (reason: AcquireErrorReason, error: Error) => void): Disposable;
  /** A member borrowed longer than `leaseWarning`: a probable leak, with where it was acquired. */
  onLeaseWarning(
    listener: (info: { heldMs: number; stack: string | undefined }) => void,
  ): Disposable;
  onCreateError(listener: (error: Error) => void): Disposable;
}

/** Outcome label of an outbound call. */
export type CallOutcome =
  'success' | 'failure' | 'timeout' | 'rejected' | 'breaker-open' | 'budget-exhausted';

/** Events of an outbound resource's calls, for metrics. */
export interface CallEvents {
  /** Every finished call (all attempts), with its outcome and duration. */
  onCall(listener: (outcome: CallOutcome, durationMs: number) => void): Disposable;
  /** Every retry attempt scheduled. */
  onRetry(listener: (attempt: number, delayMs: number) => void): Disposable;
  /** A retry refused because the retry budget was spent. */
  onBudgetExhausted(listener: () => void): Disposable;
}

/**
 * What the resource manager, the health monitor and the metrics module see of any resource:
 * HTTP, Redis or a custom kind registered from code.
 */
export interface ManagedResource {
  readonly name: string;
  /** `http`, `redis`, or the name of a custom kind. */
  readonly kind: string;
  /** Unhealthy critical resources fail /readyz; others only show in its details. */
  readonly critical: boolean;
  /** Starts background work (warming `min` members, health checks); idempotent. */
  start(): Promise<void>;
  /** One health probe; resolves when healthy, rejects with the reason otherwise. */
  probe(signal: AbortSignal): Promise<void>;
  /** The pool's snapshot. */
  stats(): PoolStats;
  /** Drains: no new calls, waits for borrowed members up to `graceMs`, destroys the rest. */
  close(graceMs?: number): Promise<void>;
}
