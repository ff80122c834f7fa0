import assert from 'node:assert/strict';
import { setImmediate as nextImmediate } from 'node:timers/promises';
import { EventEmitter } from 'node:events';
import { currentDeadline, runWithDeadline } from '../../lib/policies/deadline-context.js';
import { deadline } from '../../lib/policies/timeout.js';
import type { Deadline } from '../../lib/policies/timeout.js';
import { InvalidArgumentError } from '../../lib/errors.js';

function defer<T = void>() {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((res) => {
    resolve = res;
  });
  return { promise, resolve };
}

describe('deadline context', () => {
  const created: Deadline[] = [];
  const make = (timeoutMs: number) => {
    const d = deadline({ timeoutMs });
    created.push(d);
    return d;
  };

  afterEach(() => {
    for (const d of created.splice(0)) d.clear();
  });

  it('is undefined outside runWithDeadline', () => {
    assert.equal(currentDeadline(), undefined);
  });

  it('returns fn’s result and is undefined again afterwards', () => {
    const d = make(1_000);
    assert.equal(
      runWithDeadline(d, () => currentDeadline()),
      d,
    );
    assert.equal(currentDeadline(), undefined);
  });

  it('is seen by nested async work: awaits, timers, immediates, later callbacks', async () => {
    const d = make(1_000);
    const emitter = new EventEmitter();
    const seen: Array<Deadline | undefined> = [];
    const later = defer();
    await runWithDeadline(d, async () => {
      seen.push(currentDeadline());
      await Promise.resolve();
      seen.push(currentDeadline());
      await nextImmediate();
      seen.push(currentDeadline());
      await new Promise<void>((resolve) =>
        setTimeout(() => {
          seen.push(currentDeadline());
          resolve();
        }, 0),
      );
      const nested = async () => {
        await nextImmediate();
        return currentDeadline();
      };
      seen.push(await nested());
      // Continuations of promises created inside the run keep its context.
      void later.promise.then(() => emitter.emit('done', currentDeadline()));
    });
    const fromLater = new Promise<Deadline | undefined>((resolve) => emitter.once('done', resolve));
    later.resolve();
    seen.push(await fromLater);
    assert.equal(seen.length, 6);
    for (const s of seen) assert.equal(s, d);
    assert.equal(currentDeadline(), undefined);
  });

  it('keeps two concurrent runs apart', async () => {
    const a = make(1_000);
    const b = make(2_000);
    const gateA = defer();
    const gateB = defer();
    const runA = runWithDeadline(a, async () => {
      const before = currentDeadline();
      await gateA.promise;
      return [before, currentDeadline()];
    });
    const runB = runWithDeadline(b, async () => {
      const before = currentDeadline();
      await gateB.promise;
      return [before, currentDeadline()];
    });
    // Wake them in the opposite order to the one they started in.
    gateB.resolve();
    gateA.resolve();
    assert.deepEqual(await runA, [a, a]);
    assert.deepEqual(await runB, [b, b]);
  });

  it('an inner run shadows the outer one and restores it', async () => {
    const outer = make(1_000);
    const inner = make(100);
    await runWithDeadline(outer, async () => {
      const seenInner = await runWithDeadline(inner, async () => {
        await nextImmediate();
        return currentDeadline();
      });
      assert.equal(seenInner, inner);
      assert.equal(currentDeadline(), outer);
    });
  });

  it('rejects something that is not a Deadline', () => {
    assert.throws(
      () => runWithDeadline({ remaining: () => 1 } as never, () => 1),
      (err: unknown) => err instanceof InvalidArgumentError && /Deadline/.test(err.message),
    );
  });
});
