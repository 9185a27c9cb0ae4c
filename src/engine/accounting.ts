import type { Stats } from '../events/stats.js';

/** Where an execution is counted. */
export const Counted = Object.freeze({ NOWHERE: 0, PENDING: 1, ACTIVE: 2 } as const);
export type Counted = (typeof Counted)[keyof typeof Counted];

/** The terminal events, each a counter of its own. */
export type Outcome = 'done' | 'error' | 'cancelled';

/** Told each time the last live execution has settled. */
export interface Drain {
  drained(): void;
}

/** An execution as the accounting sees it: a node of the live list, counted in one place. */
export interface Counting {
  readonly priority: number;
  readonly seq: number;
  /** Where it is counted now. */
  counted: Counted;
  /** The live list's links (newest first), owned by the accounting. */
  livePrev: Counting | undefined;
  liveNext: Counting | undefined;
}

/**
 * Every count of an instance, in one place: the executions not yet settled (an intrusive list:
 * no per-task set entry; docs/engine.md says why not a table), how many of them wait (`pending`)
 * or run (`active`), and the `stats()` counters. Nothing else counts tasks.
 */
export class Accounting<T extends Counting = Counting> {
  /** The `stats()` counters, built-in and custom (the bus reads and extends them). */
  readonly counters: Stats;
  /** Waiting for the gate, a token, or the first start. */
  pending = 0;
  /** Running: from the first start (or a reserved slot with nothing else to wait for) to settling. */
  active = 0;
  /** Executions not yet settled. */
  liveCount = 0;
  /** `map()` calls in progress: each one is work of the instance until it settles. */
  #runs = 0;
  #head: T | undefined;
  readonly #drain: Drain;
  /** `onSizeLessThan(n)` callers: each resolves once `pending < n`. */
  #below: { readonly n: number; readonly resolve: () => void }[] | undefined;
  /** The largest `n` among them: below it, someone may wake. */
  #belowTop = 0;

  /** @param drain - Told when the last live execution has settled. */
  constructor(counters: Stats, drain: Drain) {
    this.counters = counters;
    this.#drain = drain;
  }

  /** A task entered the instance: live, pending, and `queued` counted. */
  enter(execution: T): void {
    const head = this.#head;
    if (head !== undefined) head.livePrev = execution;
    execution.liveNext = head;
    this.#head = execution;
    this.liveCount += 1;
    this.pending += 1;
    execution.counted = Counted.PENDING;
    this.counters.queued += 1;
  }

  /** From pending to active (no-op once active). */
  activate(execution: T): void {
    if (execution.counted !== Counted.PENDING) return;
    this.pending -= 1;
    this.active += 1;
    execution.counted = Counted.ACTIVE;
    if (this.#below !== undefined) this.#wakeBelow();
  }

  /** Back from active to pending: its reserved slot went to another task (no-op unless active). */
  deactivate(execution: T): void {
    if (execution.counted !== Counted.ACTIVE) return;
    this.active -= 1;
    this.pending += 1;
    execution.counted = Counted.PENDING;
  }

  /**
   * The execution settled with `outcome`: it leaves the counts and the live list. The caller
   * hands out the outcome, then calls {@link afterSettle}.
   */
  leave(execution: T, outcome: Outcome): void {
    if (execution.counted === Counted.ACTIVE) this.active -= 1;
    else if (execution.counted === Counted.PENDING) {
      this.pending -= 1;
      if (this.#below !== undefined) this.#wakeBelow();
    }
    execution.counted = Counted.NOWHERE;
    this.counters[outcome] += 1;
    const prev = execution.livePrev;
    const next = execution.liveNext;
    if (prev === undefined) this.#head = next as T | undefined;
    else prev.liveNext = next;
    if (next !== undefined) next.livePrev = prev;
    execution.livePrev = undefined;
    execution.liveNext = undefined;
    this.liveCount -= 1;
  }

  /** Resolves once fewer than `n` executions wait (at once when that is so already). */
  whenPendingBelow(n: number): Promise<void> {
    if (this.pending < n) return Promise.resolve();
    this.#belowTop = Math.max(this.#belowTop, n);
    return new Promise((resolve) => (this.#below ??= []).push({ n, resolve }));
  }

  /** Resolves every {@link whenPendingBelow} promise (the instance shuts down). */
  releaseBelow(): void {
    const below = this.#below;
    // Written only when set: a write of the field turns it from constant to mutable, and the
    // optimized code that read it as constant (activate(), inlined in the hot path) is dropped.
    if (below === undefined) return;
    this.#below = undefined;
    for (const waiter of below) waiter.resolve();
  }

  #wakeBelow(): void {
    const below = this.#below as { readonly n: number; readonly resolve: () => void }[];
    const pending = this.pending;
    if (pending >= this.#belowTop) return;
    const left = below.filter((waiter) => {
      if (pending >= waiter.n) return true;
      waiter.resolve();
      return false;
    });
    this.#below = left.length === 0 ? undefined : left;
    this.#belowTop = left.reduce((top, waiter) => Math.max(top, waiter.n), 0);
  }

  /** Whether nothing is live: no execution and no `map()` call in progress. */
  get idle(): boolean {
    return this.liveCount === 0 && this.#runs === 0;
  }

  /** Tells the instance once nothing is live any more. */
  afterSettle(): void {
    if (this.idle) this.#drain.drained();
  }

  /** A `map()` call began: the instance is not idle until {@link closeRun}. */
  openRun(): void {
    this.#runs += 1;
  }

  /** A `map()` call settled. */
  closeRun(): void {
    this.#runs -= 1;
    this.afterSettle();
  }

  /** An attempt started. */
  started(): void {
    this.counters.started += 1;
  }

  /** An attempt waited for a rate-limit token. */
  throttled(): void {
    this.counters.throttled += 1;
  }

  /** A retry was scheduled. */
  retried(): void {
    this.counters.retries += 1;
  }

  /**
   * The oldest waiting execution of the lowest priority, `except` aside (what a full queue
   * drops first). Linear in the executions not yet settled: it runs only when a queue overflows.
   */
  oldestLowest(except: T): T | undefined {
    let found: T | undefined;
    for (let at = this.#head; at !== undefined; at = at.liveNext as T | undefined) {
      if (at === except || at.counted !== Counted.PENDING) continue;
      if (
        found === undefined ||
        at.priority < found.priority ||
        (at.priority === found.priority && at.seq < found.seq)
      )
        found = at;
    }
    return found;
  }

  /** Every execution not yet settled, newest first. */
  live(): T[] {
    const all: T[] = [];
    for (let at = this.#head; at !== undefined; at = at.liveNext as T | undefined) all.push(at);
    return all;
  }
}
