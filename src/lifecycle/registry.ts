// The registry's public face: register, unregister, listActive, shutdownAll over the store that
// tracking.ts keeps.
import type { Dovetail } from '../dovetail.js';
import { assertBoolean, assertObject } from '../internal/assert.js';
import type { ShutdownOptions } from './instance.js';
import { deref, entryOf, registered } from './tracking.js';

/**
 * Adds an instance to the registry, so that it appears in {@link listActive} and is shut down by
 * {@link shutdownAll}. Idempotent. Instances with `autoRegister` (the default) are registered when
 * built; a shut-down instance is not registered again. The registry holds instances weakly.
 *
 * @param dvt - A `Dovetail` instance.
 * @throws TypeError when `dvt` is not a `Dovetail` instance.
 * @example
 * ```ts
 * import { Dovetail, listActive, register } from 'dovetailjs';
 * const dvt = new Dovetail({ autoRegister: false });
 * register(dvt);
 * console.log(listActive().includes(dvt)); // true
 * ```
 */
export function register(dvt: Dovetail): void {
  const entry = entryOf(dvt, 'dvt');
  if (entry.done || dvt.isShutdown) return;
  registered.add(entry);
}

/**
 * Removes an instance from the registry; it is then left out of {@link listActive} and
 * {@link shutdownAll}. Its signal handling (`shutdownOnExit`) is unchanged.
 *
 * @param dvt - A `Dovetail` instance.
 * @returns Whether it was registered.
 * @throws TypeError when `dvt` is not a `Dovetail` instance.
 * @example
 * ```ts
 * import { Dovetail, unregister } from 'dovetailjs';
 * const dvt = new Dovetail();
 * unregister(dvt); // true
 * ```
 */
export function unregister(dvt: Dovetail): boolean {
  return registered.delete(entryOf(dvt, 'dvt'));
}

/**
 * The registered instances that are not shut down (`isShutdown` false), in registration order.
 *
 * @returns A new array; changing it changes nothing in the registry.
 * @example
 * ```ts
 * import { listActive } from 'dovetailjs';
 * for (const dvt of listActive()) console.log(dvt.active, dvt.pending);
 * ```
 */
export function listActive(): Dovetail[] {
  const out: Dovetail[] = [];
  for (const entry of registered) {
    const dvt = deref(entry) as Dovetail | undefined;
    if (dvt !== undefined && !dvt.isShutdown) out.push(dvt);
  }
  return out;
}

/**
 * Shuts every registered instance down, as `dvt.shutdown(options)` on each, and resolves when all
 * have. An instance already shutting down is included, so `{ wait: false }` still cancels its
 * queued tasks and aborts its running ones.
 *
 * @param options - `{ wait = true }`, as for `dvt.shutdown()`.
 * @returns A promise that resolves once every instance's shutdown completed.
 * @throws TypeError when `options` is not an object or `wait` is not a boolean.
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { shutdownAll } from 'dovetailjs';
 * const server = createServer();
 * process.once('SIGTERM', () => void shutdownAll({ wait: true }).then(() => server.close()));
 * ```
 */
export function shutdownAll(options?: ShutdownOptions): Promise<void> {
  // Not async: a bad option throws synchronously, as from every other method.
  if (options !== undefined) {
    assertObject('options', options);
    if (options.wait !== undefined) assertBoolean('wait', options.wait);
  }
  const running: Promise<void>[] = [];
  for (const entry of [...registered]) {
    const dvt = deref(entry) as Dovetail | undefined;
    if (dvt !== undefined) running.push(dvt.shutdown(options));
  }
  return Promise.all(running).then(() => undefined);
}
