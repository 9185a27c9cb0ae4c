import { WaitQueue, type Waiting } from './wait-queue.js';

/** An attempt held back by a pause. */
export interface Parked extends Waiting {
  readonly priority: number;
  readonly seq: number;
  /** The pause ended: start the attempt now, if it still waits. */
  unpark(): void;
}

/** What a pause changes in the instance. */
export interface PauseHost {
  /** The pause began or its end moved (`until`: epoch ms, or undefined when untimed). */
  paused(until: number | undefined): void;
  /** The pause ended (announced before anything starts). */
  resumed(): void;
  /** The pause ended and the parked attempts started: first attempts may have slots again. */
  reopen(): void;
  /** Whether a task waits on the instance (then a timed pause keeps the process alive). */
  readonly busy: boolean;
}

/**
 * A pause of the instance: while it lasts no attempt starts. The gate grants no slot, and an
 * attempt that gets as far as starting anyway (a retry, a task whose token came, a task with no
 * gate) is parked here, in priority order, until the pause ends. A timed pause is one timer,
 * which keeps the process alive only while some task waits on it.
 */
export class Pause {
  /** Whether the instance is paused (read on every attempt start). */
  active = false;
  readonly #host: PauseHost;
  readonly #parked = new WaitQueue<Parked>();
  #until = Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;

  constructor(host: PauseHost) {
    this.#host = host;
  }

  /** Pauses for `ms` (`Infinity`: until {@link resume}); a later end wins over an earlier one. */
  pause(ms: number): void {
    const until = ms === Infinity ? Infinity : Date.now() + ms;
    if (this.active && until <= this.#until) return;
    this.#pauseUntil(until);
  }

  #pauseUntil(until: number): void {
    this.active = true;
    this.#until = until;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (until !== Infinity) this.#arm();
    this.#host.paused(until === Infinity ? undefined : until);
  }

  /**
   * Takes the end that a shared back end holds for every process (`until`: epoch ms, `Infinity`
   * untimed, `undefined` not paused), earlier or later than this one's: what another process
   * did. Announces a change as {@link pause} and {@link resume} do.
   */
  follow(until: number | undefined): void {
    if (until === undefined || (until !== Infinity && until <= Date.now())) {
      this.resume();
      return;
    }
    if (this.active && until === this.#until) return;
    this.#pauseUntil(until);
  }

  /** The end of the pause (epoch ms; `Infinity` when untimed or not paused). */
  get until(): number {
    return this.#until;
  }

  /** Ends the pause; parked attempts start in priority order. No-op when not paused. */
  resume(): void {
    if (!this.active) return;
    this.active = false;
    this.#until = Infinity;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#host.resumed();
    const parked = this.#parked;
    // A listener or a task may pause again meanwhile: what is left stays parked.
    while (!this.active) {
      const next = parked.shift();
      if (next === undefined) break;
      next.unpark();
    }
    if (!this.active) this.#host.reopen();
  }

  #arm(): void {
    // setTimeout takes at most 2 ** 31 - 1 ms: a longer pause re-arms on the way.
    const left = Math.min(this.#until - Date.now(), 2 ** 31 - 1);
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        if (Date.now() >= this.#until) this.resume();
        else this.#arm();
      },
      Math.max(0, left),
    );
    this.hold(this.#host.busy);
  }

  /** Holds `attempt` until the pause ends. */
  park(attempt: Parked): void {
    this.#parked.push(attempt);
    this.hold(true);
  }

  /** Whether the pause timer keeps the process alive: only while a task waits on it. */
  hold(busy: boolean): void {
    const timer = this.#timer;
    if (timer === undefined) return;
    if (busy) timer.ref();
    else timer.unref();
  }
}
