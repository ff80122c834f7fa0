import { InvalidArgumentError } from '../../errors.js';
import { systemClock } from '../clock.js';
import type { Clock } from '../clock.js';
import { fixedWindow, fixedWindowExpiredUpTo } from './fixed-window.js';
import { gcra, gcraExpiredUpTo } from './gcra.js';
import type { RateLimitDecision, RateLimitRule, RateLimitStore } from './store.js';

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Most keys held; past it the least recently used key is dropped. Integer ≥ 1. Default 100 000. */
  maxKeys?: number;
  /** Milliseconds between sweeps of expired keys. Default 60 000. */
  sweepInterval?: number;
  /** Time source; default {@link systemClock}. */
  clock?: Clock;
}

const GCRA = 0;
const FIXED_WINDOW = 1;
const INITIAL_SLOTS = 1024;
// Keys examined per macrotask by the background sweep: dropping a large share of a million
// keys in one go stalls the event loop for ~350 ms, chunks of this size for a few ms each.
const SWEEP_CHUNK = 10_000;

/**
 * Rate-limit counters in process memory, for a single instance (or as the local fallback of
 * a shared store). Answers synchronously.
 *
 * Memory is bounded twice: a sweep on an unref'd interval drops keys whose quota is fully
 * restored (in chunks of 10 000 keys per macrotask, so a big sweep does not stall the event
 * loop), and at `maxKeys` the least recently used key is evicted (recency is the `Map`'s
 * insertion order; every consume of a key, allowed or denied, moves it to the end, so a
 * client being refused is not evicted into a fresh quota).
 *
 * Per key the store holds a `Map` entry from the key to a small-integer slot, and the state in
 * a `Float64Array`: no boxed number per key and no allocation per request for the state.
 * A million IPv4 keys take about 95 MiB of heap (the key strings, and a `Map` table that the
 * move-to-end churn keeps at twice the key count); RSS grew by 105–150 MiB in our
 * measurements, depending on how far V8's young generation had already grown.
 */
export class MemoryStore implements RateLimitStore {
  readonly kind = 'memory';
  /** The cap on keys held. */
  readonly maxKeys: number;

  private readonly clock: Clock;
  private readonly slots = new Map<string, number>();
  private states: Float64Array;
  // Which algorithm wrote each slot: a key reused under another algorithm starts afresh.
  private kinds: Uint8Array;
  private readonly free: number[] = [];
  private highWater = 0;
  // An upper bound on any fixed window seen, so the sweep can expire states without rules.
  private maxWindowMs = 0;
  // The key most recently moved to the end: a burst from one client need not move it again.
  private lastKey: string | undefined;
  private timer: ReturnType<typeof setInterval> | undefined;
  private sweeping: Iterator<[string, number]> | undefined;
  private sweepLeft = 0;
  private sweepNext: ReturnType<typeof setImmediate> | undefined;

  /**
   * @throws InvalidArgumentError when `maxKeys` is not an integer ≥ 1 or `sweepInterval` is
   *   not a positive finite number.
   */
  constructor(options: MemoryStoreOptions = {}) {
    const { maxKeys = 100_000, sweepInterval = 60_000, clock = systemClock } = options;
    if (!Number.isInteger(maxKeys) || maxKeys < 1) {
      throw new InvalidArgumentError(`maxKeys must be an integer >= 1, got ${String(maxKeys)}`);
    }
    if (
      typeof sweepInterval !== 'number' ||
      !Number.isFinite(sweepInterval) ||
      sweepInterval <= 0
    ) {
      throw new InvalidArgumentError(
        `sweepInterval must be a positive number of milliseconds, got ${String(sweepInterval)}`,
      );
    }
    this.maxKeys = maxKeys;
    this.clock = clock;
    const initial = Math.min(maxKeys, INITIAL_SLOTS);
    this.states = new Float64Array(initial);
    this.kinds = new Uint8Array(initial);
    // The timer holds only a weak reference, so a store dropped without close() can still be
    // collected; the timer then stops itself.
    const ref = new WeakRef(this);
    const timer = setInterval(() => {
      const store = ref.deref();
      if (store === undefined) clearInterval(timer);
      else store.startSweep();
    }, sweepInterval);
    timer.unref();
    this.timer = timer;
  }

  /** Keys currently held; never above {@link maxKeys}. */
  get size(): number {
    return this.slots.size;
  }

  /** Decides and counts one request of `cost` (default 1) for `key`; synchronous. */
  consume(key: string, rule: RateLimitRule, cost = 1): RateLimitDecision {
    const kind = rule.algorithm === 'gcra' ? GCRA : FIXED_WINDOW;
    const slots = this.slots;
    let slot = slots.get(key);
    let state: number | undefined;
    if (slot !== undefined) {
      if (this.kinds[slot] === kind) state = this.states[slot];
      if (key !== this.lastKey) {
        slots.delete(key);
        slots.set(key, slot);
        this.lastKey = key;
      }
    }
    const now = this.clock.now();
    let step;
    if (kind === GCRA) {
      step = gcra(state, now, rule, cost);
    } else {
      step = fixedWindow(state, now, rule, cost);
      if (rule.windowMs > this.maxWindowMs) this.maxWindowMs = rule.windowMs;
    }
    if (step.decision.allowed) {
      if (slot === undefined) {
        slot = this.allocate();
        slots.set(key, slot);
        this.lastKey = key;
      }
      this.states[slot] = step.state as number;
      this.kinds[slot] = kind;
    }
    return step.decision;
  }

  /** Forgets `key`. */
  reset(key: string): void {
    const slot = this.slots.get(key);
    if (slot === undefined) return;
    this.slots.delete(key);
    this.free.push(slot);
  }

  /**
   * Drops every key whose quota is fully restored (GCRA) or whose window has ended (fixed
   * window; with several window lengths in one store, up to the longest window late), at
   * once; the interval does the same in chunks.
   * Returns how many keys were dropped.
   */
  sweep(): number {
    const now = this.clock.now();
    const gcraUpTo = gcraExpiredUpTo(now);
    const fixedUpTo = fixedWindowExpiredUpTo(now, this.maxWindowMs);
    const { slots, states, kinds, free } = this;
    const before = slots.size;
    // forEach rather than for…of: no entry array per key, which matters at a million keys.
    // Deleting the current entry while iterating a Map is safe and visits every other entry.
    slots.forEach((slot, key) => {
      if ((states[slot] as number) <= (kinds[slot] === GCRA ? gcraUpTo : fixedUpTo)) {
        slots.delete(key);
        free.push(slot);
      }
    });
    return before - slots.size;
  }

  /**
   * Stops the sweep timer and any sweep in progress, and drops every key. Idempotent; the
   * store stays usable (without background sweeps).
   */
  close(): void {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
    this.stopSweep();
    this.slots.clear();
    this.lastKey = undefined;
    this.free.length = 0;
    this.highWater = 0;
    const initial = Math.min(this.maxKeys, INITIAL_SLOTS);
    if (this.states.length > initial) {
      this.states = new Float64Array(initial);
      this.kinds = new Uint8Array(initial);
    }
  }

  private startSweep(): void {
    if (this.sweeping !== undefined) return;
    this.sweeping = this.slots.entries();
    // Bounded by the keys present now: keys moved to the end meanwhile would be visited again,
    // and under heavy traffic the sweep would never finish.
    this.sweepLeft = this.slots.size;
    this.continueSweep();
  }

  private continueSweep(): void {
    this.sweepNext = undefined;
    const entries = this.sweeping;
    if (entries === undefined) return;
    const now = this.clock.now();
    const gcraUpTo = gcraExpiredUpTo(now);
    const fixedUpTo = fixedWindowExpiredUpTo(now, this.maxWindowMs);
    const { slots, states, kinds, free } = this;
    let budget = Math.min(SWEEP_CHUNK, this.sweepLeft);
    this.sweepLeft -= budget;
    while (budget-- > 0) {
      // Map iterators stay valid across deletions and rehashes.
      const next = entries.next();
      if (next.done === true) {
        this.sweepLeft = 0;
        break;
      }
      const [key, slot] = next.value;
      if ((states[slot] as number) <= (kinds[slot] === GCRA ? gcraUpTo : fixedUpTo)) {
        slots.delete(key);
        free.push(slot);
      }
    }
    if (this.sweepLeft > 0) {
      this.sweepNext = setImmediate(() => this.continueSweep());
      this.sweepNext.unref();
    } else {
      this.sweeping = undefined;
    }
  }

  private stopSweep(): void {
    if (this.sweepNext !== undefined) clearImmediate(this.sweepNext);
    this.sweepNext = undefined;
    this.sweeping = undefined;
    this.sweepLeft = 0;
  }

  private allocate(): number {
    const slots = this.slots;
    if (slots.size >= this.maxKeys) {
      // The first key in insertion order is the least recently used.
      const oldest = slots.keys().next().value as string;
      const slot = slots.get(oldest) as number;
      slots.delete(oldest);
      return slot;
    }
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if (this.highWater === this.states.length) this.grow();
    return this.highWater++;
  }

  private grow(): void {
    const length = Math.min(this.maxKeys, this.states.length * 2);
    const states = new Float64Array(length);
    states.set(this.states);
    const kinds = new Uint8Array(length);
    kinds.set(this.kinds);
    this.states = states;
    this.kinds = kinds;
  }
}
