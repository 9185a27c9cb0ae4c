import { Semaphore, type LostLockError } from 'redis-semaphore';
import { BackendError } from '../errors.js';
import type { BackendHooks } from '../policies/backend.js';
import type { Gate, GateJob } from '../policies/gate.js';
import { WaitQueue } from '../queue/wait-queue.js';
import type { Store } from './store.js';

/**
 * One slot of the shared limit, held by one running task: a `redis-semaphore` lease (a member of a
 * sorted set scored by its last refresh) that the package refreshes on a timer while the task
 * runs, and that Redis forgets `leaseTime` ms after the last refresh, so a process killed while
 * holding it gives it back by itself.
 *
 * The package lets a failed refresh escape its timer as an unhandled rejection (which ends a
 * Node process); here a failed refresh is reported and the lease kept: if Redis stays away past
 * the lease, the next refresh finds it gone and says so through `onLockLost`.
 */
class Lease extends Semaphore {
  readonly #onRefreshError: (error: unknown) => void;

  constructor(
    store: Store,
    key: string,
    limit: number,
    onLost: (error: LostLockError) => void,
    onRefreshError: (error: unknown) => void,
  ) {
    super(store.client, key, limit, {
      lockTimeout: store.settings.leaseTime,
      refreshInterval: store.settings.refreshInterval,
      acquireAttemptsLimit: 1,
      acquireTimeout: store.settings.timeout,
      retryInterval: store.settings.pollInterval,
      onLockLost: onLost,
    });
    this.#onRefreshError = onRefreshError;
  }

  protected override async _refresh(): Promise<boolean> {
    try {
      return await super._refresh();
    } catch (error) {
      this.#onRefreshError(error);
      return true;
    }
  }
}

/**
 * The gate every process using the same key shares. Jobs wait in this process's queue (in
 * priority order); one loop
 * per process asks Redis for slots: for as many waiting jobs as there are free local slots at
 * once (the requests travel pipelined on the one connection), and, once every shared slot is
 * taken, for one slot every `pollInterval` ms. A slot freed in this process is asked for again at
 * once (the release and the next request travel in order on the one connection). At most
 * `concurrency` jobs run in this process whatever happens, so the in-process limit holds even
 * while Redis is away. @internal
 */
export class RedisGate implements Gate {
  readonly #store: Store;
  readonly #hooks: BackendHooks | undefined;
  readonly #key: string;
  #concurrency: number;
  readonly #waiting = new WaitQueue<GateJob>();
  #active = 0;
  #looping = false;

  /** @param name - The Redis key's part (a key of `perKey` has its own gate). */
  constructor(store: Store, concurrency: number, hooks: BackendHooks | undefined, name = 'gate') {
    this.#store = store;
    this.#hooks = hooks;
    this.#key = store.keyOf(name);
    this.#concurrency = concurrency;
  }

  /**
   * The limit (shared: every process follows the last one written). Raising it asks for slots
   * at once; lowering it lets running jobs finish.
   */
  get concurrency(): number {
    return this.#concurrency;
  }

  set concurrency(value: number) {
    this.#concurrency = value;
    this.#pump();
  }

  get active(): number {
    return this.#active;
  }

  get pending(): number {
    return this.#waiting.length;
  }

  run(job: GateJob): void {
    this.#waiting.push(job);
    this.#pump();
  }

  clear(): void {
    while (this.#waiting.shift() !== undefined);
  }

  #pump(): void {
    if (this.#looping || this.#waiting.length === 0 || this.#active >= this.#concurrency) return;
    this.#looping = true;
    void this.#loop().finally(() => {
      this.#looping = false;
      // A job may have come, or a slot gone, while the loop was finishing.
      this.#pump();
    });
  }

  async #loop(): Promise<void> {
    const store = this.#store;
    const waiting = this.#waiting;
    // How many slots to ask for at once: as many as jobs wait and slots are free while Redis
    // grants them all; one (a probe) after a refusal, so a full limit costs one request per poll.
    let batch = Infinity;
    while (waiting.length > 0 && this.#active < this.#concurrency) {
      if (store.isLocal('gate', this.#hooks)) {
        this.#start(waiting.shift() as GateJob, undefined);
        continue;
      }
      const count = Math.min(batch, waiting.length, this.#concurrency - this.#active);
      const leases = Array.from({ length: count }, () => this.#lease());
      const outcomes = await Promise.allSettled(
        leases.map((lease) =>
          store.call(
            'gate',
            () => lease.tryAcquire(),
            // Granted after the wait was given up: nobody holds it, give it back now.
            (late) => {
              if (late) store.giveBack('gate', () => lease.release(), this.#hooks);
            },
          ),
        ),
      );
      let granted = 0;
      let failure: { error: unknown } | undefined;
      outcomes.forEach((outcome, i) => {
        const lease = leases[i] as Lease;
        if (outcome.status === 'rejected') failure ??= { error: outcome.reason };
        else if (outcome.value) {
          granted += 1;
          const job = waiting.shift();
          // The queue was cleared (shutdown) while the slot was on its way: give it back.
          if (job === undefined) store.giveBack('gate', () => lease.release(), this.#hooks);
          else this.#start(job, lease);
        }
      });
      if (failure !== undefined) {
        store.failed('gate', failure.error, this.#hooks);
        if (store.settings.onBackendError === 'local') continue;
        // Every job waiting here would wait for the same unreachable store: fail them all now.
        // Jobs queued later try Redis again.
        while (waiting.length > 0) (waiting.shift() as GateJob).reject(failure.error);
        return;
      }
      store.recovered();
      batch = granted === count ? Infinity : 1;
      if (granted === 0) await sleep(store.settings.pollInterval);
    }
  }

  #start(job: GateJob, lease: Lease | undefined): void {
    this.#active += 1;
    let held = true;
    const finish = (): void => {
      if (!held) return;
      held = false;
      this.#active -= 1;
      if (lease !== undefined) this.#store.giveBack('gate', () => lease.release(), this.#hooks);
      // A microtask later: a job that settles inside user code (a cancel()) does not start the
      // next job there.
      queueMicrotask(() => this.#pump());
    };
    try {
      job.run(finish);
    } catch {
      finish();
    }
  }

  #lease(): Lease {
    const store = this.#store;
    return new Lease(
      store,
      this.#key,
      // The sorted set's size is the limit; an unbounded one still needs a number there.
      Number.isFinite(this.#concurrency) ? this.#concurrency : 2 ** 31 - 1,
      (lost) => {
        // The task outlived its lease (Redis lost it, or this process stalled past it): another
        // process may now hold that slot. Reported; the release at the end is then a no-op, so
        // the slot is never counted twice.
        const error = new BackendError(
          `a running task's lease on key "${store.settings.key}" expired before the task ended`,
          { key: store.settings.key, cause: lost },
        );
        store.report('lease', error, this.#hooks);
      },
      (error) => {
        const wrapped = new BackendError(
          `refreshing a lease on key "${store.settings.key}" failed: ${error instanceof Error ? error.message : String(error)}`,
          { key: store.settings.key, cause: error },
        );
        store.failed('lease', wrapped, this.#hooks);
      },
    );
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
