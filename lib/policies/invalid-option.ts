import { InvalidArgumentError } from '../errors.js';

/** A short, safe rendering of a bad option value for an error message. */
export function describeValue(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'object' && value !== null) {
    try {
      return JSON.stringify(value);
    } catch {
      return Object.prototype.toString.call(value);
    }
  }
  return String(value);
}

/**
 * The error every policy and pool throws for a programmer mistake in its options: names the
 * component, the option, what was expected and what was given.
 */
export function invalidOption(
  subject: string,
  option: string,
  value: unknown,
  expected: string,
): InvalidArgumentError {
  return new InvalidArgumentError(
    `Invalid ${subject} option "${option}": expected ${expected}, got ${describeValue(value)}`,
  );
}
