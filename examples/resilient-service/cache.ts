import type { RequestResilience } from 'express-resilience';

/**
 * The service's optional cache. With Redis it is a cache-aside store whose failures never fail
 * a request (a miss instead); without Redis every lookup misses and nothing is stored.
 */
export interface Cache {
  readonly enabled: boolean;
  /** The cached value, or undefined on a miss, when disabled, or when Redis fails. */
  get(ctx: RequestResilience, key: string): Promise<string | undefined>;
  /** Stores in the background; failures are counted, never thrown. */
  set(ctx: RequestResilience, key: string, value: string, ttlSeconds: number): void;
  /** Lookups and stores that failed (Redis down, slow, or its breaker open). */
  readonly errors: number;
}

/** The cache used when no Redis answered at start-up. */
export const disabledCache: Cache = {
  enabled: false,
  get: () => Promise.resolve(undefined),
  set: () => undefined,
  errors: 0,
};

/** A cache on the `resources.redis.<name>` resource; calls inherit the request's deadline. */
export function redisCache(name: string): Cache {
  let errors = 0;
  return {
    enabled: true,
    get errors() {
      return errors;
    },
    async get(ctx, key) {
      try {
        const value = await ctx.resources.redis(name).command<string | null>('GET', key);
        return value ?? undefined;
      } catch {
        errors++;
        return undefined;
      }
    },
    set(ctx, key, value, ttlSeconds) {
      ctx.resources
        .redis(name)
        .command('SET', key, value, 'EX', ttlSeconds)
        .catch(() => {
          errors++;
        });
    },
  };
}
