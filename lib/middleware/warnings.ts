import type { Logger } from '../logger.js';

export type { Logger };

/** Codes of the warnings the pack emits once per process for suspicious setups. */
export type WarningCode =
  | 'RESILIENCE_TRUST_PROXY_MISMATCH'
  | 'RESILIENCE_PERMISSIVE_TRUST_PROXY'
  | 'RESILIENCE_LEASE_LEAK'
  | 'RESILIENCE_RATE_LIMIT_STORE_REUSE'
  | 'RESILIENCE_CONFIG_NO_ENV_FILE'
  | 'RESILIENCE_UNKNOWN_ENV_VAR';

const warned = new Set<string>();

/**
 * Warns once per code and key with the given logger, or `process.emitWarning` without one
 * (express-rate-limit's validations do the same: legal but suspicious setups warn, never throw).
 */
export function warnOnce(
  logger: Logger | undefined,
  code: WarningCode,
  message: string,
  key = '',
): void {
  const id = `${code}\u0000${key}`;
  if (warned.has(id)) return;
  warned.add(id);
  if (logger) logger.warn({ code }, message);
  else process.emitWarning(message, { code });
}

/** Forgets the warnings given so far (tests). */
export function resetWarnings(): void {
  warned.clear();
}
