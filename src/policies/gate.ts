import pLimit, { type LimitFunction } from 'p-limit';

/**
 * One unit of work waiting for a slot. The gate calls `run()` once a slot is free and holds the
 * slot until the returned promise settles; it calls `reject()` instead when it cannot grant a
 * slot at all (a shared back end that is unreachable, say).
 */
export interface GateJob {
  run(): Promise<void> | void;
  reject(error: unknown): void;
}

/**
 * A concurrency gate: at most N jobs run at once. The in-process gate wraps `p-limit`; a shared
 * back end (several processes, one limit) implements the same interface.
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
}

// Module-level so that queueing a job allocates no closure.
const runJob = (job: GateJob): Promise<void> | void => job.run();

/** The in-process gate, on `p-limit`. */
export class LocalGate implements Gate {
  readonly #limit: LimitFunction;

  /** @param concurrency - Slots, an integer >= 1 (already validated). */
  constructor(concurrency: number) {
    this.#limit = pLimit(concurrency);
  }

  get active(): number {
    return this.#limit.activeCount;
  }

  get pending(): number {
    return this.#limit.pendingCount;
  }

  run(job: GateJob): void {
    // The promise p-limit hands back settles with `job.run()`, which never rejects: the job
    // settles its own task. Nothing awaits it, so nothing is allocated for it.
    void this.#limit(runJob, job);
  }

  clear(): void {
    this.#limit.clearQueue();
  }
}
