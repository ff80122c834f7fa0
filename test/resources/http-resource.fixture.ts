import assert from 'node:assert/strict';
import { resolveConfig } from '../../lib/config/index.js';
import type { HttpResourceConfig, ResilienceConfigInput } from '../../lib/config/types.js';
import { HttpResource } from '../../lib/resources/http-resource.js';
import type { HttpResourceOptions } from '../../lib/resources/http-resource.js';
import type { CallOutcome } from '../../lib/resources/types.js';
import { until } from '../helpers/deferred.js';
import { startUpstream } from '../helpers/upstream.js';
import type { Upstream, UpstreamOptions } from '../helpers/upstream.js';

/** A `resources.http.<name>` entry as written in a config file (without the origin). */
export type HttpInput = Omit<
  NonNullable<NonNullable<ResilienceConfigInput['resources']>['http']>[string],
  'origin'
>;

/**
 * The resolved config of resource `up` at `origin`. Tests default to fast retries (backoff
 * 1-5 ms) unless they set their own.
 */
export function httpConfig(origin: string, input: HttpInput = {}): HttpResourceConfig {
  return resolveConfig(
    {
      resources: {
        http: {
          up: { ...input, origin, retry: { backoff: { initial: 1, max: 5 }, ...input.retry } },
        },
      },
    },
    { environment: {} },
  ).resources.http.up!;
}

/** What a test saw of a resource's call events. */
export interface Recorded {
  calls: CallOutcome[];
  retries: { attempt: number; delayMs: number }[];
  budgetExhausted: number;
}

/**
 * Per-test upstreams and resources, closed after each test, with the invariant every test
 * must end with: no member still borrowed.
 */
export class HttpFixture {
  private readonly resources: HttpResource[] = [];
  private readonly upstreams: Upstream[] = [];
  private readonly cleanups: (() => unknown)[] = [];

  async upstream(options?: UpstreamOptions): Promise<Upstream> {
    const u = await startUpstream(options);
    this.upstreams.push(u);
    return u;
  }

  resource(
    origin: string,
    input: HttpInput = {},
    options?: HttpResourceOptions,
  ): { resource: HttpResource; seen: Recorded } {
    const resource = new HttpResource(httpConfig(origin, input), options);
    this.resources.push(resource);
    const seen: Recorded = { calls: [], retries: [], budgetExhausted: 0 };
    resource.onCall((outcome) => seen.calls.push(outcome));
    resource.onRetry((attempt, delayMs) => seen.retries.push({ attempt, delayMs }));
    resource.onBudgetExhausted(() => seen.budgetExhausted++);
    return { resource, seen };
  }

  /** Runs `fn` at teardown, after the resources and upstreams are closed. */
  defer(fn: () => unknown): void {
    this.cleanups.push(fn);
  }

  /** Asserts borrowed == 0 on every resource, then closes everything. */
  async teardown(): Promise<void> {
    try {
      for (const r of this.resources) {
        // A call that timed out settles before its aborted exchange has handed the member
        // back; that happens within a few turns of the event loop, never on a timer.
        await until(() => r.stats().borrowed === 0, `${r.name}: borrowed === 0`).catch(() => {});
        assert.equal(r.stats().borrowed, 0, `resource ${r.name} still has borrowed members`);
      }
    } finally {
      await Promise.all(this.resources.splice(0).map((r) => r.close()));
      await Promise.all(this.upstreams.splice(0).map((u) => u.close()));
      for (const fn of this.cleanups.splice(0).reverse()) await fn();
    }
  }
}
