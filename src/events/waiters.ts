// The pending `once()` promises of one bus. Each is a one-shot subscription that settles its
// promise, and can be rejected from outside: by its signal, by its execution ending without the
// event, or by the instance shutting down.
import type { Subscriptions } from './subscriptions.js';
import type { EventMap, EventName, OnceScope } from './types.js';

/** One bus's pending `once()` promises, by subscription id. @internal */
export class Waiters {
  readonly #subscriptions: Subscriptions;
  // How to reject each pending promise (which also removes its subscription).
  readonly #fails = new Map<string, (error: unknown) => void>();

  constructor(subscriptions: Subscriptions) {
    this.#subscriptions = subscriptions;
  }

  /** The next payload of `event` within `scope`, which the bus has validated. */
  wait<K extends EventName>(event: K, scope: OnceScope | undefined): Promise<EventMap[K]> {
    return new Promise<EventMap[K]>((resolve, reject) => {
      const signal = scope?.signal;
      if (signal?.aborted) {
        reject(signal.reason);
        return;
      }
      const finish = (): void => {
        this.#subscriptions.remove(id);
        this.#fails.delete(id);
        signal?.removeEventListener('abort', onAbort);
      };
      const fail = (error: unknown): void => {
        finish();
        reject(error);
      };
      const onAbort = (): void => fail(signal?.reason);
      const id = this.#subscriptions.add(
        event,
        (payload) => {
          finish();
          resolve(payload);
        },
        scope === undefined ? undefined : { function: scope.function, execution: scope.execution },
      );
      this.#fails.set(id, fail);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Rejects the pending `once()` of subscription `id` with an error from `makeError`.
   * @returns Whether `id` was a pending `once()`; when not, nothing was made or rejected.
   */
  fail(id: string, makeError: () => unknown): boolean {
    const fail = this.#fails.get(id);
    if (fail === undefined) return false;
    fail(makeError());
    return true;
  }

  /** Rejects every pending `once()`, each with an error of its own from `makeError`. */
  failAll(makeError: () => unknown): void {
    for (const fail of [...this.#fails.values()]) fail(makeError());
  }
}
