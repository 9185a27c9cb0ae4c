import { TokenBucket, type TokenWait } from '../policies/rate-limit.js';
import type { ResolvedRate } from './options.js';
import { WaitQueue, type Waiting } from './wait-queue.js';

/** A task as the per-key limits see it. */
export interface KeyJob extends Waiting {
  readonly priority: number;
  readonly seq: number;
  /** Rate-limit tokens each attempt takes. */
  readonly cost: number;
  /** Whether it still waits (not settled meanwhile). */
  readonly waiting: boolean;
  /** Whether it still waits beyond its key (for the instance's limits, uncounted as active). */
  readonly pending: boolean;
  /** It holds a slot of its key from now on (and gives it back through {@link Keys.leave}). */
  keyHeld: boolean;
  /** Its key's token wait, to call off if it settles first; `undefined` once over. */
  holdWait(wait: TokenWait | undefined): void;
  /** Its key let it through (a slot, then a token after `waited` ms): on to the instance's limits. */
  keyPassed(waited: number): void;
  /**
   * Its key's slot went to a task of a higher priority before it started: it waits for its key
   * again (and gives back a gate slot reserved for it).
   */
  keyRevoked(): void;
  /** Its key's limits cannot let it through (a shared store failed): it fails with `error`. */
  reject(error: unknown): void;
}

/**
 * What retries take their key's tokens from: `0` when free, else a promise of the milliseconds
 * waited (with `cancel(reason)` when it can be called off, as a {@link TokenWait}).
 */
export interface KeyBucket {
  take(cost: number, priority: number, seq: number): number | Promise<number>;
}

/**
 * The per-key limits as the engine sees them: in this process ({@link Keys}), or shared by
 * every process of a back end.
 */
export interface KeyLimits {
  /** The bucket of `key`'s tokens, when keys have one (for the attempts after the first). */
  bucketOf(key: string): KeyBucket | undefined;
  /** Keys with a task running or waiting. */
  active(): string[];
  /** `job` of `key` arrives: it passes now or waits for its key. */
  enter(key: string, job: KeyJob): void;
  /** `job` of `key` starts its first attempt. */
  started(key: string, job: KeyJob): void;
  /** `job`, which held a slot of `key`, settled. */
  leave(key: string, job: KeyJob): void;
  /** `job`, a waiting task of `key`, settled (or it never entered). */
  gone(key: string, job: KeyJob): void;
  /** Forgets every key (the instance shut down). */
  close(): void;
  /**
   * A slot of `key` and its `cost` tokens, if both are free now and no task of the key waits:
   * the function that gives the slot back (call it once), else `undefined`. Hedged requests use
   * it (they never wait); limits without it give keyed tasks no hedges.
   */
  tryTake?(key: string, cost: number, priority: number, seq: number): (() => void) | undefined;
}

/** One key in use: its running count, its waiting tasks and its bucket. */
class KeyState {
  running = 0;
  readonly waiting = new WaitQueue<KeyJob>();
  /**
   * Tasks holding a slot of the key that have not started yet (waiting for the key's token or
   * the instance's limits), each with whether it took its key token (`true`), took none
   * (`false`: the key has no bucket), or the wait for it: a task of a higher priority that
   * arrives may take the slot of the last of them.
   */
  readonly unstarted = new Map<KeyJob, boolean | TokenWait>();
  readonly bucket: TokenBucket | undefined;
  /** In the idle set: nothing runs nor waits, the bucket is refilling. */
  idle = false;

  constructor(rate: ResolvedRate | undefined) {
    this.bucket = rate === undefined ? undefined : new TokenBucket(rate.perSecond, rate.burst);
  }
}

/**
 * The per-key limits: a concurrency and a token bucket per key, passed before the instance's
 * limits, so that a task waiting for its key holds no instance slot and never delays a task of
 * another key. A key's state exists while it has a task running or waiting, and then until its
 * bucket is full again (so that cycling a key never beats its rate); memory follows the keys in
 * use, not the keys ever seen.
 */
export class Keys implements KeyLimits {
  readonly #limit: number;
  readonly #rate: ResolvedRate | undefined;
  readonly #states = new Map<string, KeyState>();
  /** Keys idle with a bucket still refilling, swept by one timer. */
  readonly #idle = new Map<string, KeyState>();
  #sweep: ReturnType<typeof setTimeout> | undefined;

  constructor(limit: number, rate: ResolvedRate | undefined) {
    this.#limit = limit;
    this.#rate = rate;
  }

  /** The bucket of `key`'s tokens, when keys have one (for the attempts after the first). */
  bucketOf(key: string): TokenBucket | undefined {
    return this.#states.get(key)?.bucket;
  }

  /** Keys with a task running or waiting. */
  active(): string[] {
    const keys: string[] = [];
    for (const [key, state] of this.#states) if (!state.idle) keys.push(key);
    return keys;
  }

  /** `job` of `key` arrives: it passes now or waits for its key. */
  enter(key: string, job: KeyJob): void {
    let state = this.#states.get(key);
    if (state === undefined) {
      state = new KeyState(this.#rate);
      this.#states.set(key, state);
    } else if (state.idle) {
      state.idle = false;
      this.#idle.delete(key);
    }
    if (state.running < this.#limit && state.waiting.length === 0) this.#admit(state, job);
    else if (!this.#preempt(state, job)) state.waiting.push(job);
  }

  /** `job` of `key` starts its first attempt: its slot can no longer change hands. */
  started(key: string, job: KeyJob): void {
    this.#states.get(key)?.unstarted.delete(job);
  }

  /** `job`, which held a slot of `key`, settled: the slot goes to the next task of the key. */
  leave(key: string, job: KeyJob): void {
    job.keyHeld = false;
    const state = this.#states.get(key);
    if (state === undefined) return;
    state.running -= 1;
    // Settled before its first attempt, with the key's token taken: the token goes back.
    if (state.unstarted.get(job) === true) state.bucket?.refund(job.cost);
    state.unstarted.delete(job);
    this.#next(key, state);
  }

  /** A waiting task of `key` settled: the key may have nothing left. */
  gone(key: string): void {
    const state = this.#states.get(key);
    if (state !== undefined) this.#next(key, state);
  }

  /** A slot of `key` and its tokens if free now; see {@link KeyLimits.tryTake}. */
  tryTake(key: string, cost: number, priority: number, seq: number): (() => void) | undefined {
    const state = this.#states.get(key);
    if (state === undefined || state.running >= this.#limit || state.waiting.length > 0) return;
    const bucket = state.bucket;
    if (bucket !== undefined) {
      if (!bucket.available(cost, priority)) return;
      // Free a moment ago (available() said so): taken at once, never waited for.
      void bucket.take(cost, priority, seq);
    }
    state.running += 1;
    // The task the slot's holder copies holds a slot of the key too, so the state stays in the
    // map until this one is given back.
    return () => {
      state.running -= 1;
      this.#next(key, state);
    };
  }

  /** Stops the sweep timer and forgets every idle key (the instance shut down). */
  close(): void {
    if (this.#sweep !== undefined) clearTimeout(this.#sweep);
    this.#sweep = undefined;
    for (const key of this.#idle.keys()) this.#states.delete(key);
    this.#idle.clear();
  }

  /**
   * Gives `job` the slot of the last task of the key that holds one and has not started, if
   * `job` goes before it; that task waits for its key again.
   */
  #preempt(state: KeyState, job: KeyJob): boolean {
    let last: KeyJob | undefined;
    for (const held of state.unstarted.keys()) {
      // One counted as active has its slot at the gate: it starts, whatever arrives.
      if (!held.pending) continue;
      if (
        last === undefined ||
        held.priority < last.priority ||
        (held.priority === last.priority && held.seq > last.seq)
      )
        last = held;
    }
    if (last === undefined || !(job.priority > last.priority)) return false;
    const tokened = state.unstarted.get(last) === true;
    state.unstarted.delete(last);
    state.running -= 1;
    last.keyHeld = false;
    // Its token goes back (or its wait for one ends) with the slot.
    if (tokened) state.bucket?.refund(last.cost);
    last.keyRevoked();
    state.waiting.push(last);
    this.#admit(state, job);
    return true;
  }

  #admit(state: KeyState, job: KeyJob): void {
    state.running += 1;
    job.keyHeld = true;
    const bucket = state.bucket;
    if (bucket === undefined) {
      state.unstarted.set(job, false);
      job.keyPassed(0);
      return;
    }
    const waited = bucket.take(job.cost, job.priority, job.seq);
    if (typeof waited === 'number') {
      state.unstarted.set(job, true);
      job.keyPassed(0);
      return;
    }
    state.unstarted.set(job, waited);
    job.holdWait(waited);
    waited.then(
      (ms) => {
        // Served in the turn the task settled or lost its slot to a task of higher priority
        // (the continuation comes a microtask later; a task that lost its slot may even hold
        // another one, with a wait of its own): the tokens of this wait go back.
        if (state.unstarted.get(job) !== waited) {
          bucket.refund(job.cost);
          return;
        }
        job.holdWait(undefined);
        state.unstarted.set(job, true);
        job.keyPassed(ms);
      },
      // Called off because the task settled: its settling gave the slot back.
      () => undefined,
    );
  }

  #next(key: string, state: KeyState): void {
    while (state.running < this.#limit) {
      const job = state.waiting.shift();
      if (job === undefined) break;
      if (job.waiting) this.#admit(state, job);
    }
    if (state.running > 0 || state.waiting.length > 0) return;
    if (state.bucket === undefined || state.bucket.full) {
      this.#states.delete(key);
      return;
    }
    state.idle = true;
    this.#idle.set(key, state);
    this.#armSweep();
  }

  #armSweep(): void {
    if (this.#sweep !== undefined || this.#rate === undefined) return;
    // Every bucket is full at most burst / perSecond after its key went idle.
    const refill = Math.ceil((this.#rate.burst / this.#rate.perSecond) * 1000);
    this.#sweep = setTimeout(() => {
      this.#sweep = undefined;
      for (const [key, state] of this.#idle) {
        if (state.bucket?.full !== false) {
          this.#idle.delete(key);
          this.#states.delete(key);
        }
      }
      if (this.#idle.size > 0) this.#armSweep();
    }, refill);
    // Forgetting idle keys is housekeeping: it never keeps the process alive.
    this.#sweep.unref();
  }
}
