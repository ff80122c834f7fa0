/** Told when an {@link AbortSource} aborts; an object rather than a function, so no closure. */
export interface AbortListener {
  handleEvent(): void;
}

/**
 * The part of an AbortSignal that the pool and the HTTP exchange use: whether and why it
 * aborted, and object listeners. An AbortSignal is one; so is the attempt a pooled resource
 * hands its calls ({@link AttemptAbort}), which costs a fraction of an AbortSignal to make.
 */
export interface AbortSource {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: AbortListener): void;
  removeEventListener(type: 'abort', listener: AbortListener): void;
}

/**
 * An {@link AbortSource} that aborts once, for one attempt of a call. Creating an AbortSignal
 * and listening to it costs microseconds (it is an EventTarget), more than the rest of a pooled
 * call; this holds one listener without allocating, and makes a real AbortSignal only when
 * {@link AttemptAbort.signal} is read.
 */
export class AttemptAbort implements AbortSource {
  #aborted = false;
  #reason: unknown = undefined;
  #listener: AbortListener | undefined = undefined;
  /** Listeners beyond the first, rare: an attempt is watched by one party at a time. */
  #more: AbortListener[] | undefined = undefined;
  #controller: AbortController | undefined = undefined;

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /** An AbortSignal that aborts with this attempt, made on first read. */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  addEventListener(_type: 'abort', listener: AbortListener): void {
    if (this.#aborted) return;
    if (this.#listener === undefined) this.#listener = listener;
    else (this.#more ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: AbortListener): void {
    if (this.#listener === listener) this.#listener = undefined;
    else if (this.#more !== undefined) {
      const i = this.#more.indexOf(listener);
      if (i !== -1) this.#more.splice(i, 1);
    }
  }

  /** Aborts with `reason` (once): tells the listeners, then the signal if one was made. */
  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    const listener = this.#listener;
    const more = this.#more;
    this.#listener = undefined;
    this.#more = undefined;
    listener?.handleEvent();
    if (more !== undefined) for (const l of more) l.handleEvent();
    this.#controller?.abort(reason);
  }
}
