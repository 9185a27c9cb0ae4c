// The lifecycle registry: which instances exist, which are registered, and which were collected
// without shutdown. Contract with dovetail.ts: track() when an instance is built, untrack() once
// its shutdown completed. The instances with `shutdownOnExit` are handed to the process module,
// which owns that set; imports go one way, from here to there.
//
// Instances are only ever held through WeakRef: registering an instance must not keep it alive,
// or the DOVETAIL_NOT_SHUT_DOWN warning could never fire for a registered one.
import type { Dovetail, ShutdownOptions } from '../dovetail.js';
import { assertBoolean, assertObject, describe } from '../internal/assert.js';
import { warn } from '../internal/util.js';
import { addExitInstance, removeExitInstance } from './process.js';

/** How an instance takes part in the registry. @internal */
export interface TrackOptions {
  readonly autoRegister: boolean;
  readonly shutdownOnExit: boolean;
}

/**
 * What the registry knows of one instance. It is also the FinalizationRegistry's held value, so it
 * holds no reference to the instance at all, not even a weak one: the instance is reached through
 * `refs`.
 */
interface Entry {
  /** Creation order, to name the instance in the warning. */
  readonly seq: number;
  /** Shut down, or collected: gone from every set. */
  done: boolean;
}

/** The instance of each live entry, held weakly. */
const refs = new Map<Entry, WeakRef<Dovetail>>();
const deref = (entry: Entry): Dovetail | undefined => refs.get(entry)?.deref();
const entries = new WeakMap<Dovetail, Entry>();
/** Registered instances, in registration order. */
const registered = new Set<Entry>();
let sequence = 0;
// Made on first use, so that importing the package does nothing.
let finalizer: FinalizationRegistry<Entry> | undefined;

function collected(entry: Entry): void {
  if (entry.done) return;
  entry.done = true;
  const ref = refs.get(entry);
  refs.delete(entry);
  registered.delete(entry);
  if (ref !== undefined) removeExitInstance(ref);
  warn(
    `Dovetail instance #${entry.seq} was garbage-collected without shutdown(); ` +
      'call `await dvt.shutdown()` or declare it with `await using` so its tasks finish cleanly',
    'DOVETAIL_NOT_SHUT_DOWN',
  );
}

function entryOf(dvt: unknown, name: string): Entry {
  const entry = typeof dvt === 'object' && dvt !== null ? entries.get(dvt as Dovetail) : undefined;
  if (entry === undefined) {
    throw new TypeError(`\`${name}\` must be a Dovetail instance, received ${describe(dvt)}`);
  }
  return entry;
}

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
    const dvt = deref(entry);
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
    const dvt = deref(entry);
    if (dvt !== undefined) running.push(dvt.shutdown(options));
  }
  return Promise.all(running).then(() => undefined);
}

/** Called by the `Dovetail` constructor. @internal */
export function track(dvt: Dovetail, options: TrackOptions): void {
  const entry: Entry = { seq: ++sequence, done: false };
  const ref = new WeakRef(dvt);
  entries.set(dvt, entry);
  refs.set(entry, ref);
  // Every instance, registered or not, warns when collected without shutdown.
  (finalizer ??= new FinalizationRegistry(collected)).register(dvt, entry, entry);
  if (options.autoRegister) registered.add(entry);
  if (options.shutdownOnExit) addExitInstance(ref);
}

/** Called once an instance's shutdown completed: it leaves the registry. @internal */
export function untrack(dvt: Dovetail): void {
  const entry = entries.get(dvt);
  if (entry === undefined || entry.done) return;
  entry.done = true;
  const ref = refs.get(entry);
  refs.delete(entry);
  finalizer?.unregister(entry);
  registered.delete(entry);
  if (ref !== undefined) removeExitInstance(ref);
}
