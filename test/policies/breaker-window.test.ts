import assert from 'node:assert/strict';
import {
  ConsecutiveWindow,
  CountWindow,
  TimeWindow,
  createWindow,
} from '../../lib/policies/breaker/window.js';
import type { WindowCounts, WindowOutcome } from '../../lib/policies/breaker/window.js';

/** Deterministic PRNG (mulberry32) so a failing random sequence can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomOutcome(random: () => number): WindowOutcome {
  return { failure: random() < 0.4, slow: random() < 0.3 };
}

function tally(outcomes: readonly WindowOutcome[]): WindowCounts {
  return {
    calls: outcomes.length,
    failures: outcomes.filter((o) => o.failure).length,
    slowCalls: outcomes.filter((o) => o.slow).length,
  };
}

function manualClock(t = 0): { t: number; now(): number } {
  return {
    t,
    now() {
      return this.t;
    },
  };
}

const F: WindowOutcome = { failure: true, slow: false };
const S: WindowOutcome = { failure: false, slow: false };
const SLOW: WindowOutcome = { failure: false, slow: true };

describe('breaker windows', () => {
  describe('CountWindow', () => {
    it('holds the last size calls', () => {
      const w = new CountWindow(3);
      w.record(F);
      w.record(SLOW);
      assert.deepEqual({ ...w.counts }, { calls: 2, failures: 1, slowCalls: 1 });
      w.record(S);
      w.record(S); // evicts the failure
      assert.deepEqual({ ...w.counts }, { calls: 3, failures: 0, slowCalls: 1 });
      w.record(S); // evicts the slow call
      assert.deepEqual({ ...w.counts }, { calls: 3, failures: 0, slowCalls: 0 });
    });

    it('matches a naive reference across many wraps of random outcomes', () => {
      for (const size of [1, 2, 3, 7, 64]) {
        const random = prng(size * 7919);
        const w = new CountWindow(size);
        let reference: WindowOutcome[] = [];
        for (let i = 0; i < 20_000; i++) {
          if (random() < 0.002) {
            w.reset();
            reference = [];
          }
          const outcome = randomOutcome(random);
          w.record(outcome);
          reference.push(outcome);
          if (reference.length > size) reference.shift();
          assert.deepEqual({ ...w.counts }, tally(reference), `size ${size}, call ${i}`);
        }
      }
    });

    it('reset forgets every call, including ones the ring would later evict', () => {
      const w = new CountWindow(2);
      w.record(F);
      w.record(F);
      w.reset();
      assert.deepEqual({ ...w.counts }, { calls: 0, failures: 0, slowCalls: 0 });
      w.record(S);
      w.record(S);
      w.record(S);
      assert.deepEqual({ ...w.counts }, { calls: 2, failures: 0, slowCalls: 0 });
    });
  });

  describe('TimeWindow', () => {
    it('stops counting a second once it falls out of the window', () => {
      const clock = manualClock(0);
      const w = new TimeWindow(3, clock);
      w.record(F);
      clock.t = 1500;
      w.record(SLOW);
      clock.t = 2999;
      assert.deepEqual({ ...w.counts }, { calls: 2, failures: 1, slowCalls: 1 });
      clock.t = 3000; // second 0 leaves the window
      assert.deepEqual({ ...w.counts }, { calls: 1, failures: 0, slowCalls: 1 });
      clock.t = 4000; // second 1 leaves too
      assert.deepEqual({ ...w.counts }, { calls: 0, failures: 0, slowCalls: 0 });
    });

    it('clears everything after a jump longer than the window', () => {
      const clock = manualClock(10_000);
      const w = new TimeWindow(5, clock);
      for (let i = 0; i < 5; i++) {
        w.record(F);
        clock.t += 1000;
      }
      assert.equal(w.counts.calls, 4);
      clock.t += 60_000;
      assert.deepEqual({ ...w.counts }, { calls: 0, failures: 0, slowCalls: 0 });
      w.record(S);
      assert.deepEqual({ ...w.counts }, { calls: 1, failures: 0, slowCalls: 0 });
    });

    it('keeps counting into the current bucket when the clock steps back', () => {
      const clock = manualClock(5000);
      const w = new TimeWindow(2, clock);
      w.record(F);
      clock.t = 1000;
      w.record(F);
      assert.equal(w.counts.failures, 2);
      clock.t = 6000;
      assert.equal(w.counts.failures, 2);
      clock.t = 7000; // second 5 (both records) leaves the window
      assert.equal(w.counts.failures, 0);
    });

    it('matches a naive reference over random times, including negative clocks', () => {
      for (const size of [1, 2, 5, 30]) {
        const random = prng(size * 104_729);
        const clock = manualClock(-7_300);
        const w = new TimeWindow(size, clock);
        let reference: { second: number; outcome: WindowOutcome }[] = [];
        const expected = (): WindowCounts => {
          const now = Math.floor(clock.t / 1000);
          return tally(reference.filter((r) => r.second > now - size).map((r) => r.outcome));
        };
        for (let i = 0; i < 10_000; i++) {
          const r = random();
          clock.t += r < 0.01 ? Math.floor(random() * size * 3000) : Math.floor(random() * 700);
          if (random() < 0.001) {
            w.reset();
            reference = [];
          }
          const outcome = randomOutcome(random);
          w.record(outcome);
          reference.push({ second: Math.floor(clock.t / 1000), outcome });
          assert.deepEqual({ ...w.counts }, expected(), `size ${size}, step ${i}`);
        }
      }
    });
  });

  describe('ConsecutiveWindow', () => {
    it('counts the current runs of failures and of slow calls', () => {
      const w = new ConsecutiveWindow();
      w.record(F);
      w.record(F);
      w.record({ failure: true, slow: true });
      assert.deepEqual({ ...w.counts }, { calls: 3, failures: 3, slowCalls: 1 });
      w.record(SLOW);
      assert.deepEqual({ ...w.counts }, { calls: 4, failures: 0, slowCalls: 2 });
      w.record(S);
      assert.deepEqual({ ...w.counts }, { calls: 5, failures: 0, slowCalls: 0 });
      w.record(F);
      w.reset();
      assert.deepEqual({ ...w.counts }, { calls: 0, failures: 0, slowCalls: 0 });
    });
  });

  it('createWindow builds the window named by its type', () => {
    const clock = manualClock();
    assert.ok(createWindow('count', 5, clock) instanceof CountWindow);
    assert.ok(createWindow('time', 5, clock) instanceof TimeWindow);
    assert.ok(createWindow('consecutive', 5, clock) instanceof ConsecutiveWindow);
  });

  it('record() returns the live counts of every window', () => {
    const clock = manualClock();
    for (const type of ['count', 'time', 'consecutive'] as const) {
      const w = createWindow(type, 5, clock);
      const counts = w.record(F);
      assert.equal(counts, w.counts, type);
      assert.deepEqual({ ...counts }, { calls: 1, failures: 1, slowCalls: 0 }, type);
    }
  });
});
