/** What {@link CreateBackoff} asks of its pool. */
export interface CreateHooks<T> {
  create(): Promise<T>;
  /** Validates a new member; never rejects. */
  validate(member: T): Promise<boolean>;
  /** Destroys a new member that failed validation. */
  discard(member: T): void;
  /** The factory failed (again): report it and fail the waiters fast. */
  failed(error: Error): void;
  /** The error a create gives up with once the pool is closed. */
  closedError(): Error;
}

/**
 * Member creation with backoff, the `create` generic-pool is given. generic-pool answers a
 * failed create by creating again at once for every request it holds (a tight loop against a
 * factory that is down), and never retries the creates that keep `min` warm. Here one create
 * does not settle before it has made a member (or the pool closed): while the factory fails,
 * one create at a time probes it after an exponential backoff (doubling from `initial` to
 * `max` ms) and the others wait for its outcome; the first success ends the failing state.
 * A new member that fails validation counts as a failed create, for the same reason.
 */
export class CreateBackoff<T> {
  /** Factory creates in flight. */
  creating = 0;
  /** Set while the factory is failing: the last error. */
  failure: Error | undefined = undefined;
  #failures = 0;
  #probing = false;
  #closed = false;
  /** Creates that wait for the probe's outcome park here; resolved on recovery or close. */
  #recovered: { promise: Promise<void>; resolve: () => void } | undefined = undefined;
  readonly #sleeps = new Set<{ timer: ReturnType<typeof setTimeout>; resolve: () => void }>();

  constructor(
    readonly name: string,
    readonly initial: number,
    readonly max: number,
    readonly hooks: CreateHooks<T>,
  ) {}

  /** Resolves with a valid new member; rejects only with `closedError()` once closed. */
  async create(): Promise<T> {
    for (;;) {
      if (this.#closed) throw this.hooks.closedError();
      let probe = false;
      if (this.failure !== undefined) {
        if (this.#probing) {
          await this.#recovered!.promise;
          continue;
        }
        this.#probing = true;
        probe = true;
        try {
          await this.#sleep(this.delay());
        } finally {
          this.#probing = false;
        }
        if (this.#closed) continue;
      }
      this.creating++;
      let member: T;
      try {
        member = await this.hooks.create();
      } catch (error) {
        this.creating--;
        this.#failed(error, probe);
        continue;
      }
      if (!(await this.hooks.validate(member))) {
        this.creating--;
        this.hooks.discard(member);
        this.#failed(
          new Error(`Pool "${this.name}": a newly created member failed validation`),
          probe,
        );
        continue;
      }
      this.creating--;
      if (this.failure !== undefined) {
        this.failure = undefined;
        this.#failures = 0;
        const recovered = this.#recovered;
        this.#recovered = undefined;
        recovered?.resolve();
      }
      return member;
    }
  }

  /** The backoff before the next probe (what a `retryAfterMs` can tell). */
  delay(): number {
    const delay = this.initial * Math.pow(2, this.#failures - 1);
    return delay < this.max ? delay : this.max;
  }

  /** Wakes every sleeping and parked create: they give up. */
  close(): void {
    this.#closed = true;
    this.#recovered?.resolve();
    for (const sleep of this.#sleeps) {
      clearTimeout(sleep.timer);
      sleep.resolve();
    }
    this.#sleeps.clear();
  }

  #failed(cause: unknown, probe: boolean): void {
    const error = cause instanceof Error ? cause : new Error(String(cause));
    // Creates that were in flight together when the factory broke count as one failure;
    // after that only probes lengthen the backoff.
    if (this.failure === undefined) {
      this.#failures = 1;
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#recovered = { promise, resolve };
    } else if (probe) {
      this.#failures++;
    }
    this.failure = error;
    this.hooks.failed(error);
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const sleep = {
        timer: setTimeout(() => {
          this.#sleeps.delete(sleep);
          resolve();
        }, ms),
        resolve,
      };
      sleep.timer.unref();
      this.#sleeps.add(sleep);
    });
  }
}
