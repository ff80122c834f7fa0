/**
 * What the health monitor runs: one probe per resource (HTTP, Redis, a custom kind) or per
 * custom check registered from code. Like the policies, checks know nothing of Express.
 */

/** A health check the {@link HealthMonitor} probes in the background. */
export interface HealthCheck {
  /** Unique among the monitor's checks; shown in /readyz details and metric labels. */
  readonly name: string;
  /** `http`, `redis`, or any name of a custom kind. */
  readonly kind: string;
  /** A critical check that is not up (or degraded) fails readiness. */
  readonly critical: boolean;
  /**
   * One probe: resolves when healthy, rejects (or throws) with the reason otherwise. `signal`
   * aborts when the probe exceeds its timeout or the monitor closes; a probe that ignores it
   * is abandoned (its late outcome is ignored).
   */
  probe(signal: AbortSignal): Promise<void>;
  /**
   * Live pool utilisation, 0..1: (borrowed + pending) / max. Above the `poolUtilisation`
   * threshold an up check reports `degraded`.
   */
  utilisation?(): number;
  /**
   * Recent call error rate, 0..1, or `undefined` while there are too few calls to judge.
   * Above the `errorRate` threshold an up check reports `degraded`.
   */
  errorRate?(): number | undefined;
  /**
   * Extra facts shown in detailed health (pool stats, the upstream's origin). Must never hold
   * a secret.
   */
  details?(): Readonly<Record<string, unknown>>;
}

/**
 * How one check is run and judged. Resolved resource configs (`resources.http.<name>.health`,
 * `resources.redis.<name>.health`) fit this type as they are.
 */
export interface HealthCheckOptions {
  /** Milliseconds from the end of one probe to the start of the next (>= 1). */
  interval: number;
  /** Milliseconds a probe may take; a slower one is aborted and counts as failed (>= 1). */
  timeout: number;
  /** Consecutive successes that bring a down check back up (>= 1). */
  healthyThreshold: number;
  /** Consecutive failures that make a check down (>= 1). */
  unhealthyThreshold: number;
  /** Results kept in the history (1-100). */
  history: number;
  /** Percents (0-100): above either, an up check is `degraded`. */
  degraded: { poolUtilisation: number; errorRate: number };
}

// A URL's userinfo: `scheme://user:password@` or `scheme://token@`. The password runs to the
// last `@` of the authority, so an unencoded `@` in it is masked too.
const URL_CREDENTIALS = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@:]*)(:[^\s/?#]*)?@/gi;

/** Longest error message kept: the history is meant to be short and safe to show. */
const MAX_MESSAGE_LENGTH = 300;

/**
 * Masks credentials in every URL of `message`: `redis://user:pass@host` becomes
 * `redis://user:***@host`, and a lone userinfo (`https://token@host`, often a secret)
 * becomes `https://***@host`.
 */
export function redactMessage(message: string): string {
  return message.replace(URL_CREDENTIALS, (_match, scheme: string, user: string, pass?: string) =>
    pass === undefined ? `${scheme}***@` : `${scheme}${user}:***@`,
  );
}

/** A short, secret-free description of why a probe failed. */
export function probeErrorMessage(error: unknown): string {
  let text: string;
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    text = error.message !== '' ? error.message : typeof code === 'string' ? code : error.name;
  } else {
    text = String(error);
  }
  const safe = redactMessage(text);
  return safe.length > MAX_MESSAGE_LENGTH ? `${safe.slice(0, MAX_MESSAGE_LENGTH - 1)}…` : safe;
}
