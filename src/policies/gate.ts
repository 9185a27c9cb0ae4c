import pLimit, { type LimitFunction } from 'p-limit';
import { WaitQueue, type Waiting } from '../queue/wait-queue.js';

/**
 * One unit of work waiting for a slot. The gate calls `run(release)` once a slot is free; the job
 * holds the slot until it calls `release`. The gate calls `reject()` instead when it cannot grant
 * a slot at all (a shared back end that is unreachable, say).
 */
export interface GateJob extends Waiting {
  /**
   * Runs the job in its slot. The job calls `release` exactly once, when it no longer needs the
   * slot (at once if it has nothing left to do).
   */
  run(release: () => void): void;
  /** The gate cannot grant a slot: the job fails with `error`. */
  reject(error: unknown): void;
  /**
   * Optional: told synchronously when a slot is reserved for the job, before `run()` (which a
   * gate may call a tick later), so the job counts as active rather than pending from then on.
   * It may be told more than once before `run()`: only the first call counts.
   */
  admitted?(): void;
}

/**
 * A concurrency gate: at most N jobs run at once, waiting jobs served highest `priority` first and
 * in `seq` order among equals. The in-process gate runs on `p-limit`; a shared back end (several
 * processes, one limit) implements the same interface.
 */
export interface Gate {
  /** Jobs running now. */
  readonly active: number;
  /** Jobs waiting for a slot. */
  readonly pending: number;
  /** Queues `job`; never throws. */
  run(job: GateJob): void;
  /** Drops every job still waiting; they are never run nor rejected (their owner settles them). */
  clear(): void;
  /**
   * Optional: takes a slot only if one is free now and no job waits, without queueing; returns
   * the function that gives it back (call it once), or `undefined` when no slot is free. Hedged
   * requests use it: a gate without it gets no hedges.
   */
  tryAcquire?(): (() => void) | undefined;
}

/**
 * The in-process gate. `p-limit` bounds the number of lanes: a lane holds one p-limit slot and
 * runs waiting jobs one after another, taking the next as soon as the last released its slot,
 * and gives the slot back when no job waits. Jobs wait in a queue of our own: a `denque` ring
 * buffer while no priority is in use (one array slot per waiting job, where a linked queue
 * allocates a 40-byte node), a binary heap once one is.
 *
 * Lanes rather than one p-limit call per job: p-limit's machinery (its promises, closures and
 * microtask turns) is paid once per burst rather than once per job, a lane passes its slot on
 * with one microtask and no allocation, and a job cancelled while it waits is simply skipped
 * when its turn comes (docs/engine.md gives the profile that led here).
 */
export class LocalGate implements Gate {
  readonly #limit: LimitFunction;
  #concurrency: number;
  #paused = false;
  readonly #waiting = new WaitQueue<GateJob>();
  readonly #lane: (job: GateJob) => Promise<void>;
  #running = 0;
  /**
   * Lanes open: each holds (or is about to hold) one p-limit slot. A lane leaves this count the
   * moment it finds nothing to run, before p-limit has freed its slot, so that a job arriving
   * then is admitted at once instead of waiting for p-limit to catch up.
   */
  #lanes = 0;
  /** Lanes whose job let the slot go, about to take the next waiting job (a microtask later). */
  #passing = 0;

  /** @param concurrency - Slots, an integer >= 1 or `Infinity` (already validated). */
  constructor(concurrency: number) {
    this.#concurrency = concurrency;
    this.#limit = pLimit(concurrency);
    this.#lane = (job) => new Promise<void>((close) => new Lane(this, close).start(job));
  }

  get active(): number {
    return this.#running;
  }

  get pending(): number {
    return this.#waiting.length + this.#limit.pendingCount;
  }

  /** The number of slots. Raising it starts waiting jobs at once; lowering it lets running jobs finish. */
  get concurrency(): number {
    return this.#concurrency;
  }

  /** Sets the number of slots; see the getter. */
  set concurrency(value: number) {
    this.#concurrency = value;
    this.#limit.concurrency = value;
    this.#fill();
  }

  /** Whether jobs wait however many slots are free (see {@link pause}). */
  get paused(): boolean {
    return this.#paused;
  }

  /** Grants no slot until {@link resume}: jobs queue, running jobs go on. */
  pause(): void {
    this.#paused = true;
  }

  /** Grants slots again, to waiting jobs first. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#fill();
  }

  /**
   * Counts a job that already runs outside the gate (an unbounded instance that gets a limit
   * while tasks run) as holding a slot; the returned function gives it back.
   * @internal
   */
  adopt(): () => void {
    this.#lanes += 1;
    this.#running += 1;
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.#lanes -= 1;
      this.#running -= 1;
      this.#fill();
    };
  }

  /** A slot now if one is free and nobody waits, else `undefined`; see {@link Gate.tryAcquire}. */
  tryAcquire(): (() => void) | undefined {
    return this.#waiting.length === 0 && this.#free() ? this.adopt() : undefined;
  }

  run(job: GateJob): void {
    if (this.#waiting.length === 0 && this.#free()) {
      this.#open(job);
      return;
    }
    this.#waiting.push(job);
    // A lane whose job just let its slot go takes a waiting job a microtask later: if there is
    // such a lane for this job too, its slot is as good as reserved now.
    if (this.#waiting.length <= this.#passing && !this.#paused) job.admitted?.();
  }

  clear(): void {
    while (this.#waiting.shift() !== undefined);
    // Lanes still queued in p-limit never run now.
    this.#lanes -= this.#limit.pendingCount;
    this.#limit.clearQueue();
  }

  /**
   * The next waiting job, now admitted; undefined when none waits, and the lane closes.
   * @internal
   */
  take(): GateJob | undefined {
    this.#passing -= 1;
    // A lane beyond a lowered limit, or in a pause, closes instead.
    const job = this.#lanes > this.#concurrency || this.#paused ? undefined : this.#waiting.shift();
    if (job === undefined) this.#lanes -= 1;
    else job.admitted?.();
    return job;
  }

  /** A lane started (+1) or ended (-1) a job; on ending, it passes its slot on next. @internal */
  count(delta: number): void {
    this.#running += delta;
    if (delta < 0) this.#passing += 1;
  }

  #free(): boolean {
    return this.#lanes < this.#concurrency && !this.#paused;
  }

  /** Opens lanes for waiting jobs while slots are free. */
  #fill(): void {
    while (this.#free()) {
      const job = this.#waiting.shift();
      if (job === undefined) return;
      this.#open(job);
    }
  }

  #open(job: GateJob): void {
    this.#lanes += 1;
    job.admitted?.();
    // A lane closes only when no job waits, so nothing is left for it to pick up after p-limit
    // frees its slot: a job that arrives later opens a lane of its own.
    void this.#limit(this.#lane, job);
  }
}

// A lane passes its slot on a microtask later through this promise: Node's queueMicrotask() makes
// an AsyncResource and a bound function per call.
const resolved = Promise.resolve();

/** One p-limit slot, passed from job to job. */
class Lane {
  readonly #gate: LocalGate;
  readonly #close: () => void;
  /** Whether the job now running still holds the slot (guards a second `release`). */
  #held = false;
  readonly #next = (): void => {
    const job = this.#gate.take();
    if (job === undefined) this.#close();
    else this.#run(job);
  };
  readonly #release = (): void => {
    if (!this.#held) return;
    this.#held = false;
    this.#gate.count(-1);
    // A microtask later, never inside the job's own call stack: a job that settles in the middle
    // of user code (a cancel(), a listener) does not start the next job's function there, and a
    // long run of jobs that settle synchronously does not grow the stack.
    void resolved.then(this.#next);
  };

  constructor(gate: LocalGate, close: () => void) {
    this.#gate = gate;
    this.#close = close;
  }

  start(job: GateJob): void {
    this.#run(job);
  }

  #run(job: GateJob): void {
    this.#held = true;
    this.#gate.count(1);
    try {
      job.run(this.#release);
    } catch {
      // A job that throws instead of releasing gives the slot back.
      this.#release();
    }
  }
}
