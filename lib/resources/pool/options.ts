import type { InvalidArgumentError } from '../../errors.js';
import { invalidOption } from '../../policies/invalid-option.js';
import type { PoolFactory, ResourcePoolOptions } from './types.js';

/** setTimeout clamps larger delays to 1 ms (with a warning), which would fire at once. */
export const MAX_TIMER_DELAY = 2_147_483_647;

/** A {@link ResourcePoolOptions} once checked, with the backoff defaulted. */
export interface PoolSettings {
  name: string;
  min: number;
  max: number;
  acquireTimeout: number;
  maxWaiting: number;
  idleTimeout: number;
  evictionInterval: number;
  maxLifetime: number;
  leaseWarning: number;
  backoffInitial: number;
  backoffMax: number;
}

/**
 * Checks a pool's factory and options.
 * @throws InvalidArgumentError naming the first malformed one (see the ResourcePool constructor).
 */
export function checkPoolArguments<T>(
  factory: PoolFactory<T>,
  options: ResourcePoolOptions,
): PoolSettings {
  if (typeof factory !== 'object' || factory === null) {
    throw invalid('factory', factory, 'an object { create, destroy, validate? }');
  }
  if (typeof factory.create !== 'function')
    throw invalid('factory.create', factory.create, 'a function');
  if (typeof factory.destroy !== 'function') {
    throw invalid('factory.destroy', factory.destroy, 'a function');
  }
  if (factory.validate !== undefined && typeof factory.validate !== 'function') {
    throw invalid('factory.validate', factory.validate, 'a function');
  }
  if (typeof options !== 'object' || options === null) {
    throw invalid('options', options, 'an object');
  }
  const { name, min, max, maxWaiting } = options;
  if (typeof name !== 'string' || name.length === 0)
    throw invalid('name', name, 'a non-empty string');
  checkInteger('max', max, 1);
  checkInteger('min', min, 0);
  if (min > max) throw invalid('min', min, `at most max (${max})`);
  checkInteger('maxWaiting', maxWaiting, 0);
  checkMillis('acquireTimeout', options.acquireTimeout, true);
  checkMillis('idleTimeout', options.idleTimeout, false);
  checkMillis('maxLifetime', options.maxLifetime, false);
  checkMillis('leaseWarning', options.leaseWarning, false);
  checkMillis('evictionInterval', options.evictionInterval, true);
  const backoff = options.createBackoff ?? { initial: 100, max: 5000 };
  if (typeof backoff !== 'object' || backoff === null) {
    throw invalid('createBackoff', backoff, 'an object { initial, max }');
  }
  checkMillis('createBackoff.initial', backoff.initial, true);
  checkMillis('createBackoff.max', backoff.max, true);
  if (backoff.initial > backoff.max) {
    throw invalid(
      'createBackoff.initial',
      backoff.initial,
      `at most createBackoff.max (${backoff.max})`,
    );
  }
  return {
    name,
    min,
    max,
    acquireTimeout: options.acquireTimeout,
    maxWaiting,
    idleTimeout: options.idleTimeout,
    evictionInterval: options.evictionInterval,
    maxLifetime: options.maxLifetime,
    leaseWarning: options.leaseWarning,
    backoffInitial: backoff.initial,
    backoffMax: backoff.max,
  };
}

function checkInteger(option: string, value: unknown, min: number): asserts value is number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw invalid(option, value, `an integer >= ${min}`);
  }
}

export function checkMillis(
  option: string,
  value: unknown,
  positive: boolean,
): asserts value is number {
  if (
    typeof value !== 'number' ||
    !(positive ? value > 0 : value >= 0) ||
    !(value <= MAX_TIMER_DELAY)
  ) {
    throw invalid(
      option,
      value,
      `a number of milliseconds in ${positive ? '(0' : '[0'}, ${MAX_TIMER_DELAY}]`,
    );
  }
}

export function invalid(option: string, value: unknown, expected: string): InvalidArgumentError {
  return invalidOption('pool', option, value, expected);
}
