import { PoolClosedError, ResourceUnavailableError, withoutStack } from '../errors.js';
import type { PoolFactory } from './pool.js';

/** Options of {@link ProbeMember.use}. */
export interface ProbeUseOptions {
  /** The probe's abort: a member still being created is given up on (and kept for later). */
  signal: AbortSignal;
  /** When it returns true (or throws) for `fn`'s error, the member is destroyed. */
  isBroken?: ((error: unknown) => boolean) | undefined;
}

/**
 * The member health probes run on: made by the resource's own pool factory but outside the
 * pool, so that a probe never queues behind traffic — a pool saturated by slow calls is load,
 * not ill health, and must not fail /readyz on every replica at once.
 *
 * One member is kept between probes (created lazily, validated before each use, destroyed
 * when broken); a probe that overlaps another runs on a member of its own, destroyed after
 * it. A member is therefore one connection beyond `pool.max`. A factory that cannot create
 * one fails the probe with `ResourceUnavailableError` (its error as `cause`): a dead upstream
 * still turns the check down.
 */
export class ProbeMember<T> {
  readonly #factory: PoolFactory<T>;
  readonly #name: string;
  /** The kept member, while no probe uses it. */
  #idle: T | undefined = undefined;
  /** Every member that exists (idle, in use), until its destroy starts. */
  readonly #live = new Set<T>();
  /** Creates and destroys in flight: close() waits for them. */
  readonly #pending = new Set<Promise<unknown>>();
  #closed = false;

  constructor(factory: PoolFactory<T>, name: string) {
    this.#factory = factory;
    this.#name = name;
  }

  /**
   * Runs `fn` on the probe's member and gives the member back when `fn` settles. Rejects with
   * `signal.reason` when it aborts before a member is ready, `ResourceUnavailableError` when
   * none can be created, `PoolClosedError` after close, or as `fn` does.
   */
  async use<R>(fn: (member: T) => Promise<R>, options: ProbeUseOptions): Promise<R> {
    const { signal } = options;
    if (this.#closed) throw this.#closedError();
    if (signal.aborted) throw signal.reason;
    let member = this.#idle;
    this.#idle = undefined;
    if (member !== undefined && !(await this.#valid(member))) {
      this.#destroy(member);
      member = undefined;
    }
    member ??= await this.#create(signal);
    let result: R;
    try {
      result = await fn(member);
    } catch (error) {
      if (broken(options.isBroken, error)) this.#destroy(member);
      else this.#giveBack(member);
      throw error;
    }
    this.#giveBack(member);
    return result;
  }

  /** Destroys every member (one in use too: its probe fails) and waits for creates in flight. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#idle = undefined;
    for (const member of [...this.#live]) this.#destroy(member);
    while (this.#pending.size > 0) await Promise.allSettled([...this.#pending]);
  }

  #create(signal: AbortSignal): Promise<T> {
    const creating = Promise.resolve().then(() => this.#factory.create());
    this.#track(creating);
    return new Promise<T>((resolve, reject) => {
      let waiting = !signal.aborted;
      if (!waiting) reject(signal.reason);
      const onAbort = (): void => {
        waiting = false;
        reject(signal.reason);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      creating.then(
        (member) => {
          signal.removeEventListener('abort', onAbort);
          this.#live.add(member);
          if (waiting && !this.#closed) resolve(member);
          else {
            // The probe gave up on a slow connect: the next one can use what it made.
            this.#giveBack(member);
            if (waiting) reject(this.#closedError());
          }
        },
        (cause: unknown) => {
          signal.removeEventListener('abort', onAbort);
          if (!waiting) return;
          const message = cause instanceof Error ? cause.message : String(cause);
          reject(
            withoutStack(
              () =>
                new ResourceUnavailableError(
                  `Resource "${this.#name}": the health check cannot connect: ${message}`,
                  { cause, resource: this.#name },
                ),
            ),
          );
        },
      );
    });
  }

  async #valid(member: T): Promise<boolean> {
    const validate = this.#factory.validate;
    if (validate === undefined) return true;
    try {
      return (await validate.call(this.#factory, member)) !== false;
    } catch {
      return false;
    }
  }

  #giveBack(member: T): void {
    if (!this.#live.has(member)) return;
    if (this.#closed || this.#idle !== undefined) this.#destroy(member);
    else this.#idle = member;
  }

  #destroy(member: T): void {
    if (!this.#live.delete(member)) return;
    if (this.#idle === member) this.#idle = undefined;
    this.#track(Promise.resolve().then(() => this.#factory.destroy(member)));
  }

  #track(promise: Promise<unknown>): void {
    const tracked = promise.then(noop, noop);
    this.#pending.add(tracked);
    void tracked.then(() => this.#pending.delete(tracked));
  }

  #closedError(): PoolClosedError {
    return withoutStack(
      () => new PoolClosedError(`Resource "${this.#name}" is closed: no health check runs`),
    );
  }
}

function broken(isBroken: ((error: unknown) => boolean) | undefined, error: unknown): boolean {
  if (isBroken === undefined) return false;
  try {
    return isBroken(error) === true;
  } catch {
    return true;
  }
}

function noop(): void {}
