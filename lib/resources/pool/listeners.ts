import { InvalidArgumentError } from '../../errors.js';
import type { Disposable } from '../types.js';

/** @internal A copy-on-write listener list; a throwing listener is reported once, then ignored. */
export class Listeners<A extends unknown[]> {
  #list: readonly ((...args: A) => void)[] = [];
  #warned = false;
  constructor(readonly owner: string) {}

  get size(): number {
    return this.#list.length;
  }

  add(listener: (...args: A) => void): Disposable {
    if (typeof listener !== 'function') {
      throw new InvalidArgumentError(
        `${this.owner} listener must be a function, got ${typeof listener}`,
      );
    }
    this.#list = [...this.#list, listener];
    let disposed = false;
    return {
      dispose: () => {
        if (disposed) return;
        disposed = true;
        const i = this.#list.indexOf(listener);
        if (i !== -1) this.#list = this.#list.filter((_, j) => j !== i);
      },
    };
  }

  emit(...args: A): void {
    const list = this.#list;
    for (let i = 0; i < list.length; i++) {
      try {
        list[i]!(...args);
      } catch (error) {
        if (this.#warned) continue;
        this.#warned = true;
        process.emitWarning(
          `A ${this.owner} event listener threw (further listener errors are ignored silently): ${String(error)}`,
          {
            code: 'RESILIENCE_LISTENER_ERROR',
            detail: error instanceof Error ? error.stack : undefined,
          },
        );
      }
    }
  }
}
