import { randomUUID } from 'node:crypto';
import { CircuitOpenError } from '../errors.js';
import type { BackendHooks } from '../policies/backend.js';
import { neverCounts, viewOf } from '../resilience/circuit.js';
import type {
  CircuitControl,
  CircuitListener,
  CircuitState,
  CircuitView,
} from '../resilience/circuit-view.js';
import type { ResolvedCircuitOptions } from '../resilience/circuit-options.js';
import { CIRCUIT } from './circuit-script.js';
import type { Control, ControlMessage, Follower } from './control.js';
import type { Store } from './store.js';

/** What the store holds, as this process follows it. */
interface Mirror {
  readonly state: CircuitState;
  readonly generation: number;
  readonly retryAt: number;
  readonly failures: number;
}

// Tickets: closed-period grants are the generation itself; trials are numbered from here, each
// with its id in the trial set.
const TRIAL_BASE = 2 ** 40;

/**
 * A circuit breaker whose counts and state live in Redis for every process on the key (see
 * CIRCUIT). This process keeps a mirror of the state, so that a closed or open circuit admits or
 * refuses without a round trip; each outcome is one script; a half-open circuit asks Redis for
 * each trial (`halfOpenCalls` in total across processes, each trial a lease that a killed
 * process gives back after `leaseTime`). A change is published on the key's control channel, and
 * every process reads the state again then (and on the periodic sync). The listener hears each
 * change of state once per process, when this process learns of it; `circuit_open`'s `error` is
 * the failure's only in the process that recorded it. @internal
 */
export class RedisCircuit implements CircuitControl, Follower {
  readonly view: CircuitView;
  readonly #store: Store;
  readonly #control: Control;
  readonly #hooks: BackendHooks | undefined;
  readonly #listener: CircuitListener;
  readonly #options: ResolvedCircuitOptions;
  readonly #keys: string[];
  #mirror: Mirror = { state: 'closed', generation: 0, retryAt: 0, failures: 0 };
  /** The state last announced to the listener. */
  #announced: CircuitState = 'closed';
  /**
   * The error refused attempts get in the current generation, and until when (performance.now())
   * the half-open trials count as all taken without asking Redis again.
   */
  #refusal: { generation: number; fullUntil: number; error: CircuitOpenError } | undefined;
  readonly #trials = new Map<number, { generation: number; id: string }>();
  #nextTrial = TRIAL_BASE;
  #syncing = false;
  #again = false;
  #closed = false;

  constructor(
    store: Store,
    control: Control,
    options: ResolvedCircuitOptions,
    listener: CircuitListener,
    hooks: BackendHooks | undefined,
  ) {
    this.#store = store;
    this.#control = control;
    this.#hooks = hooks;
    this.#listener = listener;
    this.#options = options;
    const hash = store.keyOf('circuit');
    this.#keys = [hash, `${hash}:trials`, control.channel, control.counter];
    this.view = viewOf(this);
    control.follow(this);
  }

  get state(): CircuitState {
    const mirror = this.#mirror;
    if (mirror.state === 'open' && Date.now() >= mirror.retryAt) this.#announce('half-open');
    return this.#announced;
  }

  admit(): number | CircuitOpenError | Promise<number | CircuitOpenError> {
    const mirror = this.#mirror;
    if (mirror.state === 'closed') return mirror.generation;
    const refused = this.refusal();
    if (refused !== undefined) return refused;
    return this.#claim();
  }

  refusal(): CircuitOpenError | undefined {
    const mirror = this.#mirror;
    if (mirror.state === 'closed') return undefined;
    if (this.state === 'open') return this.#refuse(false);
    const refusal = this.#refusal;
    return refusal !== undefined &&
      refusal.generation === mirror.generation &&
      performance.now() < refusal.fullUntil
      ? refusal.error
      : undefined;
  }

  record(ticket: number, ok: boolean, error?: unknown): void {
    if (!ok && neverCounts(error)) {
      this.abandon(ticket);
      return;
    }
    let failed = !ok;
    let threw = false;
    let thrown: unknown;
    const isFailure = this.#options.isFailure;
    if (!ok && isFailure !== undefined) {
      try {
        failed = Boolean(isFailure(error));
      } catch (problem) {
        // Counted as a failure, as in the in-process breaker.
        failed = threw = true;
        thrown = problem;
      }
    }
    const trial = this.#trials.get(ticket);
    this.#trials.delete(ticket);
    const generation = trial?.generation ?? ticket;
    this.#run('outcome', generation, failed, trial?.id ?? '', failed ? error : undefined);
    if (threw) throw thrown;
  }

  abandon(ticket: number): void {
    const trial = this.#trials.get(ticket);
    if (trial === undefined) return;
    this.#trials.delete(ticket);
    this.#run('abandon', trial.generation, false, trial.id, undefined);
  }

  isolate(): void {
    const mirror = this.#mirror;
    this.#apply({ ...mirror, state: 'open', retryAt: Infinity }, undefined, true);
    this.#run('isolate', mirror.generation, false, '', undefined);
  }

  reset(): void {
    const mirror = this.#mirror;
    this.#apply({ ...mirror, state: 'closed', retryAt: 0, failures: 0 }, undefined, true);
    this.#run('reset', mirror.generation, false, '', undefined);
  }

  message(message: ControlMessage): void {
    if (message.kind === 'circuit') void this.sync();
  }

  async sync(): Promise<void> {
    if (this.#closed) return;
    // A read in flight may have been answered before the change this call is for: read again.
    if (this.#syncing) {
      this.#again = true;
      return;
    }
    this.#syncing = true;
    try {
      do {
        this.#again = false;
        await this.#call('read', 0, false, '', undefined);
      } while (this.#again && !this.#closed);
    } catch {
      // Reported by #call.
    } finally {
      this.#syncing = false;
    }
  }

  /** Stops following (this process shuts down). */
  close(): Promise<void> {
    this.#closed = true;
    return this.#control.unfollow(this);
  }

  /** Asks Redis for one of the half-open trials. */
  async #claim(): Promise<number | CircuitOpenError> {
    const id = randomUUID();
    let granted: boolean;
    try {
      granted = await this.#call('admit', 0, false, id, undefined);
    } catch (error) {
      if (this.#store.settings.onBackendError === 'fail') throw error;
      // 'local': Redis cannot count the trials; this process lets one through at a time.
      granted = ![...this.#trials.values()].some((t) => t.id.startsWith('local:'));
      if (!granted) return this.#refuse(true);
      const ticket = (this.#nextTrial += 1);
      this.#trials.set(ticket, { generation: this.#mirror.generation, id: `local:${id}` });
      return ticket;
    }
    const mirror = this.#mirror;
    if (!granted) return mirror.state === 'closed' ? mirror.generation : this.#refuse(true);
    if (mirror.state === 'closed') return mirror.generation;
    const ticket = (this.#nextTrial += 1);
    this.#trials.set(ticket, { generation: mirror.generation, id });
    return ticket;
  }

  #refuse(full: boolean): CircuitOpenError {
    const mirror = this.#mirror;
    const refusal = this.#refusal;
    // Trials all taken: asked again after a while, as one may be given back (abandoned, or its
    // process killed and its lease expired).
    const fullUntil = full
      ? performance.now() + Math.min(1_000, this.#store.settings.leaseTime)
      : 0;
    if (refusal !== undefined && refusal.generation === mirror.generation) {
      if (full) refusal.fullUntil = fullUntil;
      return refusal.error;
    }
    const calls = this.#options.halfOpenCalls;
    const message = full
      ? `circuit is half-open: ${calls === 1 ? 'its trial attempt has' : `all ${calls} trial attempts have`} started`
      : undefined;
    const error = new CircuitOpenError(message, { retryAt: mirror.retryAt });
    this.#refusal = { generation: mirror.generation, fullUntil, error };
    return error;
  }

  /** Runs one step in the background; a failure is reported (`backend_error`). */
  #run(op: string, generation: number, failed: boolean, id: string, error: unknown): void {
    this.#call(op, generation, failed, id, error).catch(() => undefined);
  }

  /** Runs one step of the script and follows its answer; resolves whether it granted. */
  async #call(
    op: string,
    generation: number,
    failed: boolean,
    id: string,
    error: unknown,
  ): Promise<boolean> {
    const store = this.#store;
    const { threshold, ratio, halfOpenAfter, halfOpenCalls } = this.#options;
    let answer: unknown;
    try {
      answer = await store.call('circuit', () =>
        store.script(CIRCUIT, this.#keys, [
          op,
          generation,
          failed ? 1 : 0,
          id,
          threshold ?? 0,
          ratio?.failures ?? 1,
          ratio?.window ?? 1,
          ratio?.minimumCalls ?? 1,
          halfOpenAfter,
          halfOpenCalls,
          store.settings.leaseTime,
        ]),
      );
    } catch (problem) {
      store.failed('circuit', problem, this.#hooks);
      throw problem;
    }
    store.recovered();
    const [state, gen, end, opened, granted] = answer as [string, number, string, number, number];
    this.#apply(
      {
        state: state === 'open' || state === 'half-open' ? state : 'closed',
        generation: Number(gen),
        retryAt: end === 'inf' ? Infinity : Number(end),
        failures: Number(opened),
      },
      error,
      false,
    );
    return Number(granted) === 1;
  }

  /** Follows what the store answered (or, `local`, what this process just did). */
  #apply(next: Mirror, error: unknown, local: boolean): void {
    const mirror = this.#mirror;
    // An answer of an earlier generation is stale; a local change goes first, Redis confirms it.
    if (!local && next.generation < mirror.generation) return;
    if (local && next.state === mirror.state && next.retryAt === mirror.retryAt) return;
    // A local change takes a generation between this one and the store's next: answers of the
    // current one (in flight before it) are stale, the store's confirmation is not.
    this.#mirror = local ? { ...next, generation: Math.floor(mirror.generation) + 0.5 } : next;
    if (this.#closed) return;
    if (next.state === 'open' && Date.now() < next.retryAt) {
      if (this.#announced !== 'open') {
        this.#announced = 'open';
        this.#listener.opened(next.failures, error, next.retryAt);
      }
      return;
    }
    this.#announce(next.state === 'open' ? 'half-open' : next.state);
  }

  #announce(state: CircuitState): void {
    if (this.#announced === state || this.#closed) return;
    this.#announced = state;
    if (state === 'half-open') this.#listener.halfOpened();
    else if (state === 'closed') this.#listener.closed();
    else {
      const mirror = this.#mirror;
      this.#listener.opened(mirror.failures, undefined, mirror.retryAt);
    }
  }
}
