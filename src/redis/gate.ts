import { randomUUID } from 'node:crypto';
import { BackendError } from '../errors.js';
import type { BackendHooks } from '../policies/backend.js';
import type { Gate, GateJob } from '../policies/gate.js';
import { WaitQueue } from '../queue/wait-queue.js';
import { Link } from './gate-link.js';
import { BEAT, CLAIM } from './gate-scripts.js';
import type { Store } from './store.js';

/**
 * The gate every process using the same key shares (see {@link BEAT} for the layout). Jobs wait
 * in this process's queue (in priority order); for each of them, up to the free local slots, one
 * request waits in Redis on this process's own connection (a duplicate of the client), and Redis
 * answers it when a slot is there, freed by any process. Nothing polls: a waiting request times
 * out after `pollInterval` and is sent again, and the heartbeat looks for slots of silent
 * processes. At most `concurrency` jobs run in this process whatever happens, so the in-process
 * limit holds even while Redis is away. @internal
 */
export class RedisGate implements Gate {
  readonly #store: Store;
  readonly #hooks: BackendHooks | undefined;
  #concurrency: number;
  readonly #id = randomUUID();
  /** limit, slots, procs, this process's held list, debt, [the shared limit]. */
  readonly #keys: readonly [string, string, string, string, string, ...string[]];
  readonly #waiting = new WaitQueue<GateJob>();
  /** Jobs running here, on a shared slot or (during an outage, with 'local') without one. */
  #active = 0;
  /** Shared slots this process holds (less those whose release is on its way). */
  #held = 0;
  /** Of those, how many Redis no longer holds for this process (lost with Redis, or reclaimed). */
  #stale = 0;
  /** Requests for a slot waiting in Redis. */
  #asking = 0;
  #link: Link | undefined;
  #joining = false;
  #registered = false;
  #beat: ReturnType<typeof setTimeout> | undefined;
  #ttlRefreshed = -Infinity;

  /**
   * @param name - The Redis keys' part (a key of `perKey` has its own gate).
   * @param shared - The shared limit's Redis key, when this gate follows one (its slots are
   * made from it).
   */
  constructor(
    store: Store,
    concurrency: number,
    hooks: BackendHooks | undefined,
    name = 'gate',
    shared?: string,
  ) {
    this.#store = store;
    this.#hooks = hooks;
    this.#concurrency = concurrency;
    const base = store.keyOf(name);
    this.#keys = [
      `${base}:limit`,
      `${base}:slots`,
      `${base}:procs`,
      `${base}:held:${this.#id}`,
      `${base}:debt`,
      ...(shared === undefined ? [] : [shared]),
    ];
  }

  /**
   * The limit in this process (shared: every process follows the last one written, whose script
   * adds or removes the slots in Redis). Raising it asks for slots at once; lowering it lets
   * running jobs finish, and the slots they give back pay the debt (see {@link CLAIM}).
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

  /**
   * The instance shut down: drop the waiting connection, and leave the gate once nothing is held
   * (the heartbeat leaves later otherwise). The gate can be used again: it joins anew.
   * Whether it was idle.
   */
  close(): boolean {
    this.#drop();
    if (!this.#idle()) return false;
    this.#leave();
    return true;
  }

  #pump(): void {
    const store = this.#store;
    const waiting = this.#waiting;
    if (waiting.length === 0 || this.#active >= this.#concurrency) return;
    // Unbounded (a write of `Infinity`): no slots to take.
    if (this.#concurrency === Infinity || store.isLocal('gate', this.#hooks)) {
      while (waiting.length > 0 && this.#active < this.#concurrency) {
        this.#start(waiting.shift() as GateJob, false);
      }
      return;
    }
    const wanted = Math.min(waiting.length, this.#concurrency - this.#active) - this.#asking;
    if (wanted <= 0) return;
    const link = this.#link;
    if (link === undefined) {
      void this.#join();
      return;
    }
    for (let i = 0; i < wanted; i += 1) this.#ask(link);
  }

  /** Opens the waiting connection and registers this process, then asks for slots. */
  async #join(): Promise<void> {
    if (this.#joining) return;
    this.#joining = true;
    const store = this.#store;
    const link = new Link(store, (ended) => {
      if (this.#link === ended) this.#link = undefined;
    });
    try {
      const [, , held] = (await store.call('gate', () =>
        this.#script('join', this.#held),
      )) as number[];
      store.recovered();
      this.#recount(held);
      this.#registered = true;
      this.#link = link;
      this.#schedule(this.#store.settings.refreshInterval);
    } catch (error) {
      link.close();
      this.#fail(error);
    } finally {
      this.#joining = false;
    }
    this.#pump();
  }

  /** One request for a slot, waiting in Redis for up to `pollInterval`. */
  #ask(link: Link): void {
    const [, slots, , held] = this.#keys;
    this.#asking += 1;
    link.take(slots, held, this.#store.settings.pollInterval / 1000).then(
      (slot) => {
        if (slot !== null && slot.startsWith('old:')) {
          this.#claim(slot);
          return;
        }
        this.#asking -= 1;
        if (slot !== null) this.#granted();
        this.#pump();
      },
      (error: unknown) => {
        this.#asking -= 1;
        if (this.#link === link) this.#link = undefined;
        // Its connection closed (killed, Redis restarted, dropped here): open another and ask
        // again; if Redis is really away, that fails in turn. Any other error is a failure.
        if (link.lost) this.#pump();
        else {
          link.close();
          const { key } = this.#store.settings;
          const text = error instanceof Error ? error.message : String(error);
          this.#fail(
            new BackendError(`Redis failed for key "${key}" (gate): ${text}`, {
              key,
              cause: error,
            }),
          );
        }
      },
    );
  }

  /**
   * A marked slot came (given back after the limit was lowered): it pays the debt if one is
   * left (then this process asks again), else it is this process's. Still counted as asking.
   */
  #claim(slot: string): void {
    const [, slots, , held, debt] = this.#keys;
    const store = this.#store;
    store
      .call('gate', () => store.script(CLAIM, [held, debt, slots], [slot]))
      .then(
        (kept) => {
          store.recovered();
          this.#asking -= 1;
          if (Number(kept) === 1) this.#granted();
          this.#pump();
        },
        (error: unknown) => {
          // It stays in this process's list: the next join gives it back.
          this.#asking -= 1;
          this.#fail(error);
        },
      );
  }

  /** A slot came (its answer): run the next job in it, or give it back. */
  #granted(): void {
    this.#held += 1;
    const job = this.#active < this.#concurrency ? this.#waiting.shift() : undefined;
    if (job === undefined) this.#release();
    else this.#start(job, true);
  }

  /**
   * Redis holds `held` slots for this process; when that is fewer than it counts, that many
   * releases are not sent (they would give back a slot another task of this process holds).
   * Whether some were missing.
   */
  #recount(held: number | undefined): boolean {
    if (held === undefined || held < 0) return false;
    this.#stale = Math.max(0, this.#held - held);
    return this.#stale > 0;
  }

  #release(): void {
    const [, slots, , held] = this.#keys;
    this.#held -= 1;
    if (this.#stale > 0) {
      this.#stale -= 1;
      return;
    }
    const store = this.#store;
    store.giveBack('gate', () => store.client.lmove(held, slots, 'LEFT', 'RIGHT'), this.#hooks);
  }

  #start(job: GateJob, shared: boolean): void {
    this.#active += 1;
    let running = true;
    const finish = (): void => {
      if (!running) return;
      running = false;
      this.#active -= 1;
      if (shared) this.#release();
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

  /** Getting slots failed: with 'local', run the waiting jobs here; else fail them all. */
  #fail(error: unknown): void {
    const store = this.#store;
    store.failed('gate', error, this.#hooks);
    if (store.settings.onBackendError === 'local') {
      queueMicrotask(() => this.#pump());
      return;
    }
    // Every job waiting here would wait for the same unreachable store: fail them all now.
    // Jobs queued later try Redis again.
    while (this.#waiting.length > 0) (this.#waiting.shift() as GateJob).reject(error);
  }

  #idle(): boolean {
    return this.#waiting.length === 0 && this.#asking === 0 && this.#held === 0;
  }

  #drop(): void {
    const link = this.#link;
    this.#link = undefined;
    link?.close();
  }

  #leave(): void {
    clearTimeout(this.#beat);
    this.#beat = undefined;
    if (!this.#registered) return;
    this.#registered = false;
    this.#store.giveBack('gate', () => this.#script('leave', this.#held), this.#hooks);
  }

  #schedule(ms: number): void {
    clearTimeout(this.#beat);
    this.#beat = setTimeout(() => void this.#heartbeat(), Math.max(1, ms));
    this.#beat.unref();
  }

  /** Every `refreshInterval` while this process holds or wants slots: see {@link BEAT}. */
  async #heartbeat(): Promise<void> {
    this.#beat = undefined;
    const store = this.#store;
    const { refreshInterval, pollInterval, timeout, key } = store.settings;
    if (this.#idle()) {
      this.#drop();
      this.#leave();
      return;
    }
    // A request unanswered well past its own time-out: its connection is dead without having
    // said so (a host gone). Drop it; the next request opens another.
    const oldest = this.#link?.oldest;
    if (oldest !== undefined && performance.now() - oldest > pollInterval + timeout) this.#drop();
    let next = refreshInterval;
    try {
      const [lost, due, held] = (await store.call('lease', () =>
        this.#script('beat', this.#held),
      )) as number[];
      store.recovered();
      if (lost === 1 && this.#recount(held)) {
        // Others took this process for dead (it stalled past leaseTime) or Redis lost the
        // gate: the slots of its running tasks may be another's now. Their releases then give
        // back what this process holds at most, so no slot is counted twice.
        store.report(
          'lease',
          new BackendError(
            `the slots of running tasks on key "${key}" were lost before the tasks ended`,
            { key, cause: new Error('this process was missing from the gate at its heartbeat') },
          ),
          this.#hooks,
        );
      }
      if (this.#asking > 0 && due !== undefined && due >= 0) next = Math.min(next, due + 5);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      store.failed(
        'lease',
        new BackendError(`refreshing the leases on key "${key}" failed: ${message}`, {
          key,
          cause: error,
        }),
        this.#hooks,
      );
    }
    if (this.#registered) this.#schedule(next);
    this.#pump();
  }

  #script(mode: 'join' | 'beat' | 'leave', held: number): Promise<unknown> {
    const { leaseTime, pollInterval, refreshInterval } = this.#store.settings;
    const ttl = Math.max(60_000, 10 * leaseTime);
    const now = performance.now();
    const refresh = mode !== 'leave' && now - this.#ttlRefreshed > ttl / 3;
    if (refresh) this.#ttlRefreshed = now;
    return this.#store.script(BEAT, this.#keys, [
      Number.isFinite(this.#concurrency) ? this.#concurrency : 'inf',
      this.#id,
      mode,
      held,
      leaseTime,
      leaseTime + 2 * pollInterval + refreshInterval,
      ttl,
      refresh ? '1' : '0',
      mode === 'beat' && this.#asking > 0 ? '1' : '0',
    ]);
  }
}
