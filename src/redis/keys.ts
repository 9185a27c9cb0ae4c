import type { BackendHooks } from '../policies/backend.js';
import type { GateJob } from '../policies/gate.js';
import type { TokenWait } from '../policies/rate-limit.js';
import type { KeyBucket, KeyJob, KeyLimits } from '../queue/keys.js';
import type { ResolvedRate } from '../queue/options.js';
import { RedisTokenBucket } from './bucket.js';
import { RedisGate } from './gate.js';
import type { Store } from './store.js';

/** One key in use in this process: its shared gate and bucket, and the tasks that entered it. */
class SharedKey {
  readonly gate: RedisGate | undefined;
  readonly bucket: RedisTokenBucket | undefined;
  /** Tasks that entered and have not settled. */
  readonly jobs = new Set<KeyJob>();
  /** The gate slot each task holds, to give back when it settles. */
  readonly slots = new Map<KeyJob, () => void>();

  constructor(gate: RedisGate | undefined, bucket: RedisTokenBucket | undefined) {
    this.gate = gate;
    this.bucket = bucket;
  }
}

/**
 * `perKey` shared by every process of a back end: each key has a shared gate (a `RedisGate` on
 * the keys `<prefix><key>:key:<k>:gate:*`) and a shared bucket (a `RedisTokenBucket` on
 * `<prefix><key>:key:<k>:bucket`), both expiring in Redis once idle (the gate's keys
 * `max(60 s, 10 × leaseTime)` after the last heartbeat, the bucket a minute after it is full
 * again), as this process
 * forgets a key once nothing of it runs or waits. A task waits for its key's slot, then its
 * key's `cost` tokens, before the instance's limits, as with the in-process keys; a slot never
 * changes hands once granted (no pre-emption by a higher priority across processes: priority
 * orders each process's own waiters). @internal
 */
export class RedisKeys implements KeyLimits {
  readonly #store: Store;
  readonly #hooks: BackendHooks | undefined;
  readonly #limit: number;
  readonly #rate: ResolvedRate | undefined;
  readonly #keys = new Map<string, SharedKey>();

  constructor(
    store: Store,
    limit: number,
    rate: ResolvedRate | undefined,
    hooks: BackendHooks | undefined,
  ) {
    this.#store = store;
    this.#hooks = hooks;
    this.#limit = limit;
    this.#rate = rate;
  }

  bucketOf(key: string): KeyBucket | undefined {
    const bucket = this.#keys.get(key)?.bucket;
    return bucket === undefined ? undefined : { take: (cost) => take(bucket, cost) };
  }

  active(): string[] {
    return [...this.#keys.keys()];
  }

  enter(key: string, job: KeyJob): void {
    let state = this.#keys.get(key);
    if (state === undefined) {
      const part = `key:${key}:`;
      const store = this.#store;
      const rate = this.#rate;
      state = new SharedKey(
        this.#limit === Infinity
          ? undefined
          : new RedisGate(store, this.#limit, this.#hooks, `${part}gate`),
        rate === undefined
          ? undefined
          : new RedisTokenBucket(store, rate.perSecond, rate.burst, this.#hooks, `${part}bucket`),
      );
      this.#keys.set(key, state);
    }
    state.jobs.add(job);
    const gate = state.gate;
    if (gate === undefined) {
      job.keyHeld = true;
      this.#token(state, job);
      return;
    }
    const entry: GateJob = {
      priority: job.priority,
      seq: job.seq,
      run: (release) => {
        // Settled while it waited for the slot: the slot passes on.
        if (!job.waiting || !state.jobs.has(job)) {
          release();
          return;
        }
        state.slots.set(job, release);
        job.keyHeld = true;
        this.#token(state, job);
      },
      reject: (error) => {
        if (job.waiting) job.reject(error);
      },
    };
    gate.run(entry);
  }

  started(): void {
    // A slot never changes hands here: nothing to do.
  }

  leave(key: string, job: KeyJob): void {
    job.keyHeld = false;
    this.gone(key, job);
  }

  gone(key: string, job: KeyJob): void {
    const state = this.#keys.get(key);
    if (state === undefined || !state.jobs.delete(job)) return;
    const release = state.slots.get(job);
    if (release !== undefined) {
      state.slots.delete(job);
      release();
    }
    if (state.jobs.size > 0) return;
    // Nothing of the key runs or waits here: forget it (Redis forgets it once idle there too);
    // its gate drops its waiting connection, and leaves the shared gate once nothing is held.
    state.gate?.clear();
    state.gate?.close();
    this.#keys.delete(key);
  }

  close(): void {
    for (const state of this.#keys.values()) {
      state.gate?.clear();
      state.gate?.close();
    }
    this.#keys.clear();
  }

  /** `job` holds its key's slot (or the key has no concurrency): now its key's tokens. */
  #token(state: SharedKey, job: KeyJob): void {
    const bucket = state.bucket;
    if (bucket === undefined) {
      job.keyPassed(0);
      return;
    }
    let waited: number | TokenWait;
    try {
      waited = take(bucket, job.cost);
    } catch (error) {
      job.reject(error);
      return;
    }
    if (typeof waited === 'number') {
      job.keyPassed(waited);
      return;
    }
    job.holdWait(waited);
    waited.then(
      (ms) => {
        job.holdWait(undefined);
        job.keyPassed(ms);
      },
      (error: unknown) => {
        // Called off because the task settled; anything else is the store failing.
        if (job.waiting) job.reject(error);
      },
    );
  }
}

/** Takes `cost` tokens of a shared bucket, as a wait that its owner can call off. */
function take(bucket: RedisTokenBucket, cost: number): number | TokenWait {
  const controller = new AbortController();
  const waited = bucket.acquire(controller.signal, cost);
  if (typeof waited === 'number') return waited;
  const wait = waited as TokenWait;
  wait.cancel = (reason?: unknown): void => controller.abort(reason);
  return wait;
}
