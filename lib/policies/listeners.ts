import { InvalidArgumentError } from '../errors.js';

/** A handle whose `dispose()` undoes what created it. Idempotent. */
export interface Disposable {
  dispose(): void;
}

/**
 * The event listeners of one emitter (a breaker's state changes, a bulkhead's rejections, a
 * store's calls, a health monitor's status changes), with the one error policy of the whole
 * pack: a listener that throws is reported with a process warning (`RESILIENCE_LISTENER_ERROR`,
 * once per emitter) and disturbs neither the emitter, nor the other listeners, nor the process.
 * Listeners are usually metrics, and a metrics bug must never take a service down.
 *
 * The list is copied on write, so `emit` is a plain loop over an array that a listener may
 * unsubscribe from while it runs.
 */
export class Listeners<A extends unknown[]> {
  #list: readonly ((...args: A) => void)[] = [];
  readonly #errors: ListenerErrors;

  /**
   * `emitter` names the owner in messages, e.g. "circuit breaker"; or pass the
   * {@link ListenerErrors} of an emitter with several lists, to warn once for all of them.
   */
  constructor(emitter: string | ListenerErrors) {
    this.#errors = typeof emitter === 'string' ? new ListenerErrors(emitter) : emitter;
  }

  get size(): number {
    return this.#list.length;
  }

  add(listener: (...args: A) => void): Disposable {
    if (typeof listener !== 'function') {
      throw new InvalidArgumentError(
        `${this.#errors.emitter} listener must be a function, got ${String(listener)}`,
      );
    }
    this.#list = [...this.#list, listener];
    let disposed = false;
    return {
      dispose: () => {
        if (disposed) return;
        disposed = true;
        const i = this.#list.indexOf(listener);
        if (i !== -1) this.#list = [...this.#list.slice(0, i), ...this.#list.slice(i + 1)];
      },
    };
  }

  emit(...args: A): void {
    const list = this.#list;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!(...args);
      } catch (error) {
        this.#errors.report(error);
      }
    }
  }
}

/** Reports the first error thrown by an emitter's listeners as a process warning. */
export class ListenerErrors {
  #warned = false;

  constructor(readonly emitter: string) {}

  report(error: unknown): void {
    if (this.#warned) return;
    this.#warned = true;
    process.emitWarning(
      `An event listener of a ${this.emitter} threw (its further errors are ignored): ${String(error)}`,
      {
        code: 'RESILIENCE_LISTENER_ERROR',
        detail: error instanceof Error ? error.stack : undefined,
      },
    );
  }
}
