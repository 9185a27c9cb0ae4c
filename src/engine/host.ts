import type { TaskHost } from '../task.js';
import type { CostLimits } from '../queue/options.js';
import type { Drain } from './accounting.js';
import type { Core } from './core.js';

/** What the host reads of its instance. */
export interface HostedInstance {
  readonly isShutdown: boolean;
  readonly concurrency: number;
}

/**
 * The instance as its task API, its `map` runs and its accounting see it, and the `onIdle()`
 * waiter. A class rather than an object literal with getters and a closure per instance: every
 * instance's host then has one shape and one `drained` method, where a literal's getters made a
 * map per instance and a closure a call target per instance, and the hot path that had inlined
 * the first instance's was deoptimized (and compiled again) at the second.
 */
export class InstanceHost implements TaskHost, Drain {
  readonly #instance: HostedInstance;
  /** Set once, right after the core is built (the core's accounting reports to this host). */
  core!: Core;
  readonly limits: CostLimits;
  #idle: { promise: Promise<void>; resolve: () => void } | undefined = undefined;

  constructor(instance: HostedInstance, limits: CostLimits) {
    this.#instance = instance;
    this.limits = limits;
  }

  get concurrency(): number {
    return this.#instance.concurrency;
  }

  get isShutdown(): boolean {
    return this.#instance.isShutdown;
  }

  /** Resolves once no task is queued or running (at once when idle). */
  whenIdle(): Promise<void> {
    if (this.core.accounting.idle) return Promise.resolve();
    if (this.#idle === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((done) => {
        resolve = done;
      });
      this.#idle = { promise, resolve };
    }
    return this.#idle.promise;
  }

  /** The last live execution settled: a timed pause lets the process go, `onIdle()` resolves. */
  drained(): void {
    this.core.pause.hold(false);
    const idle = this.#idle;
    if (idle === undefined) return;
    this.#idle = undefined;
    idle.resolve();
  }
}
