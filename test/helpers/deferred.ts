/** A promise with its resolve/reject exposed: concurrency in tests without sleeps. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Resolves once `predicate` holds, polling on the event loop (setImmediate), never on time. */
export async function until(predicate: () => boolean, what = 'condition'): Promise<void> {
  for (let i = 0; i < 100_000; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** Like {@link until} for an async predicate (a metric read, say). */
export async function eventually(
  predicate: () => Promise<boolean> | boolean,
  what = 'condition',
): Promise<void> {
  for (let i = 0; i < 20_000; i++) {
    if (await predicate()) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
  throw new Error(`gave up waiting for ${what}`);
}

/** A promise's outcome, observed without awaiting it (see {@link track}). */
export interface Tracked<T> {
  settled: boolean;
  value?: T;
  error?: unknown;
  /** How many times it settled: a promise settles once, so anything else is a bug in a test. */
  settleCount: number;
}

/** Observes a promise's outcome without awaiting it. */
export function track<T>(promise: Promise<T>): Tracked<T> {
  const state: Tracked<T> = { settled: false, settleCount: 0 };
  promise.then(
    (value) => {
      state.settled = true;
      state.value = value;
      state.settleCount++;
    },
    (error: unknown) => {
      state.settled = true;
      state.error = error;
      state.settleCount++;
    },
  );
  return state;
}
