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
/** "No slot": the end of the recency list or of the free list. */
const NONE = -1;
// Slots examined per macrotask by the background sweep: dropping a large share of a million
// keys in one go stalls the event loop for a few hundred ms, chunks of this size for a few ms.
const SWEEP_CHUNK = 10_000;

/** A key as the store holds it: an IPv4 address as a number, anything else as given. */
type HeldKey = string | number;

/**
 * A canonical dotted-quad IPv4 address (`1.2.3.4`: four decimal octets ≤ 255, no leading
 * zeros) as a signed 32-bit integer, any other key unchanged.
 *
 * Most keys are client addresses, and as strings they are the largest part of a full store
 * (about 32 bytes each, plus hashing the string on every lookup); a 32-bit integer is a small
 * integer (Smi) that V8 stores inside the `Map` entry (on a build with pointer compression,
 * half the addresses become 16-byte heap numbers, still smaller). Only canonical spellings are
 * converted, so two keys share a counter exactly when they are the same string; a number
 * never equals a string key.
 */
function heldKey(key: string): HeldKey {
  const length = key.length;
  if (length < 7 || length > 15) return key;
  let address = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < length; i++) {
    const code = key.charCodeAt(i);
    if (code === 0x2e /* . */) {
      if (digits === 0 || ++dots > 3) return key;
      address = (address << 8) | octet;
      octet = 0;
      digits = 0;
    } else {
      const digit = code - 0x30;
      if (digit < 0 || digit > 9 || (digits === 1 && octet === 0)) return key;
      octet = octet * 10 + digit;
      if (octet > 255) return key;
      digits++;
    }
  }
  if (dots !== 3 || digits === 0) return key;
  return (address << 8) | octet;
}

/**
 * Rate-limit counters in process memory, for a single instance (or as the local fallback of
 * a shared store). Answers synchronously.
 *
 * Memory is bounded twice: a sweep on an unref'd interval drops keys whose quota is fully
 * restored (in chunks of 10 000 slots per macrotask, so a big sweep does not stall the event
 * loop), and at `maxKeys` the least recently used key is evicted. Every consume of a key,
 * allowed or denied, makes it the most recently used, so a client being refused is not
 * evicted into a fresh quota.
 *
 * Layout: a `Map` from each key to a small-integer slot, and per slot, in typed arrays, the
 * state, the algorithm that wrote it and the slot's neighbours in a doubly linked recency
 * list. The `Map` is never reordered: moving a key to the end of a `Map` (delete, then set)
 * leaves a deleted entry behind each time, so a store whose clients come back would keep a
 * hash table twice the size, and taking a `Map`'s first key skips every deleted entry before
 * it, up to a table scan per eviction at the cap. The list makes a use and an eviction a few
 * array writes. IPv4 keys are held as numbers (see `heldKey`).
 * A million IPv4 keys take about 40 MB of heap and 17 MB of typed arrays, and RSS grows by
 * about 82 MB, some 25–30 MB of it V8's young generation reaching its default size; IPv6 /56
 * keys, held as strings, take about 40 MB more (`npm run bench:memory`).
 */
export class MemoryStore implements RateLimitStore {
  readonly kind = 'memory';
  /** The cap on keys held. */
  readonly maxKeys: number;

  private readonly clock: Clock;
  private readonly slots = new Map<HeldKey, number>();
  /** Per slot: its key (to evict or sweep it from `slots`), `undefined` when the slot is free. */
  private keys: (HeldKey | undefined)[] = [];
  private states: Float64Array;
  // Which algorithm wrote each slot: a key reused under another algorithm starts afresh.
  private kinds: Uint8Array;
  /** Per slot: the next less recently used slot. */
  private older: Int32Array;
  /** Per slot: the next more recently used slot; for a free slot, the next free one. */
  private newer: Int32Array;
  /** The least recently used slot, the next to be evicted. */
  private oldest = NONE;
  private newest = NONE;
  private freeSlots = NONE;
  private highWater = 0;
  // An upper bound on any fixed window seen, so the sweep can expire states without rules.
  private maxWindowMs = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private sweepCursor = 0;
  private sweepEnd = 0;
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
    this.older = new Int32Array(initial);
    this.newer = new Int32Array(initial);
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
    const held = heldKey(key);
    let slot = this.slots.get(held);
    let state: number | undefined;
    if (slot !== undefined) {
      if (this.kinds[slot] === kind) state = this.states[slot];
      if (slot !== this.newest) this.touch(slot);
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
      if (slot === undefined) slot = this.add(held);
      this.states[slot] = step.state as number;
      this.kinds[slot] = kind;
    }
    return step.decision;
  }

  /** Forgets `key`. */
  reset(key: string): void {
    const held = heldKey(key);
    const slot = this.slots.get(held);
    if (slot !== undefined) this.remove(slot, held);
  }

  /**
   * Drops every key whose quota is fully restored (GCRA) or whose window has ended (fixed
   * window; with several window lengths in one store, up to the longest window late), at
   * once; the interval does the same in chunks.
   * Returns how many keys were dropped.
   */
  sweep(): number {
    const before = this.slots.size;
    this.sweepSlots(0, this.highWater);
    return before - this.slots.size;
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
    this.keys = [];
    this.oldest = this.newest = this.freeSlots = NONE;
    this.highWater = 0;
    const initial = Math.min(this.maxKeys, INITIAL_SLOTS);
    if (this.states.length > initial) {
      this.states = new Float64Array(initial);
      this.kinds = new Uint8Array(initial);
      this.older = new Int32Array(initial);
      this.newer = new Int32Array(initial);
    }
  }

  /** Makes `slot`, which is not the newest, the most recently used. */
  private touch(slot: number): void {
    const { older, newer } = this;
    const before = older[slot] as number;
    const after = newer[slot] as number;
    if (before === NONE) this.oldest = after;
    else newer[before] = after;
    older[after] = before;
    older[slot] = this.newest;
    newer[slot] = NONE;
    newer[this.newest] = slot;
    this.newest = slot;
  }

  /** A slot for a key not held yet, evicting the least recently used key at the cap. */
  private add(key: HeldKey): number {
    let slot: number;
    if (this.slots.size >= this.maxKeys) {
      slot = this.oldest;
      this.slots.delete(this.keys[slot] as HeldKey);
      this.unlink(slot);
    } else if (this.freeSlots !== NONE) {
      slot = this.freeSlots;
      this.freeSlots = this.newer[slot] as number;
    } else {
      if (this.highWater === this.states.length) this.grow();
      slot = this.highWater++;
    }
    this.slots.set(key, slot);
    this.keys[slot] = key;
    const newest = this.newest;
    this.older[slot] = newest;
    this.newer[slot] = NONE;
    if (newest === NONE) this.oldest = slot;
    else this.newer[newest] = slot;
    this.newest = slot;
    return slot;
  }

  private unlink(slot: number): void {
    const { older, newer } = this;
    const before = older[slot] as number;
    const after = newer[slot] as number;
    if (before === NONE) this.oldest = after;
    else newer[before] = after;
    if (after === NONE) this.newest = before;
    else older[after] = before;
  }

  private remove(slot: number, key: HeldKey): void {
    this.slots.delete(key);
    this.unlink(slot);
    this.keys[slot] = undefined;
    this.newer[slot] = this.freeSlots;
    this.freeSlots = slot;
  }

  /** Drops the expired keys among slots `from` (inclusive) to `to` (exclusive). */
  private sweepSlots(from: number, to: number): void {
    const now = this.clock.now();
    const gcraUpTo = gcraExpiredUpTo(now);
    const fixedUpTo = fixedWindowExpiredUpTo(now, this.maxWindowMs);
    const { keys, states, kinds } = this;
    for (let slot = from; slot < to; slot++) {
      const key = keys[slot];
      if (
        key !== undefined &&
        (states[slot] as number) <= (kinds[slot] === GCRA ? gcraUpTo : fixedUpTo)
      ) {
        this.remove(slot, key);
      }
    }
  }

  private startSweep(): void {
    if (this.sweepNext !== undefined) return;
    // Bounded by the slots in use now; slots only get added above them until close().
    this.sweepCursor = 0;
    this.sweepEnd = this.highWater;
    this.continueSweep();
  }

  private continueSweep(): void {
    this.sweepNext = undefined;
    const from = this.sweepCursor;
    const to = Math.min(this.sweepEnd, from + SWEEP_CHUNK);
    this.sweepSlots(from, to);
    this.sweepCursor = to;
    if (to < this.sweepEnd) {
      this.sweepNext = setImmediate(() => this.continueSweep());
      this.sweepNext.unref();
    }
  }

  private stopSweep(): void {
    if (this.sweepNext !== undefined) clearImmediate(this.sweepNext);
    this.sweepNext = undefined;
  }

  private grow(): void {
    const length = Math.min(this.maxKeys, this.states.length * 2);
    const states = new Float64Array(length);
    states.set(this.states);
    const kinds = new Uint8Array(length);
    kinds.set(this.kinds);
    const older = new Int32Array(length);
    older.set(this.older);
    const newer = new Int32Array(length);
    newer.set(this.newer);
    this.states = states;
    this.kinds = kinds;
    this.older = older;
    this.newer = newer;
  }
}
