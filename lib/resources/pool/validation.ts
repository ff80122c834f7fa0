import type { Member } from './leases.js';
import type { PoolFactory } from './types.js';

/** Whether a member has outlived `maxLifetime` (0 = never). */
export function expired(info: Member, maxLifetime: number): boolean {
  return maxLifetime > 0 && Date.now() - info.createdAt >= maxLifetime;
}

/**
 * Validate on borrow: past `maxLifetime` is invalid; then the factory's validate, whose
 * throw or rejection counts as invalid. A promise only when the factory's validate is
 * asynchronous, so that a borrow served from the pool's idle stack stays synchronous.
 */
export function check<T>(
  factory: PoolFactory<T>,
  member: T,
  info: Member,
  maxLifetime: number,
): boolean | Promise<boolean> {
  if (expired(info, maxLifetime)) return false;
  const validate = factory.validate;
  if (validate === undefined) return true;
  let verdict: boolean | Promise<boolean>;
  try {
    verdict = validate.call(factory, member);
  } catch {
    return false;
  }
  if (typeof verdict === 'boolean') return verdict;
  return Promise.resolve(verdict).then(
    (ok) => ok !== false,
    () => false,
  );
}

/** The factory's validate of a new member; a throw or rejection is false. */
export async function validateNew<T>(factory: PoolFactory<T>, member: T): Promise<boolean> {
  const validate = factory.validate;
  if (validate === undefined) return true;
  try {
    return (await validate.call(factory, member)) !== false;
  } catch {
    return false;
  }
}
