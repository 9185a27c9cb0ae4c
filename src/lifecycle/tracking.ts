// Which instances exist, which are registered, and which were collected without shutdown.
// Contract with dovetail.ts: track() when an instance is built, untrack() once its shutdown
// completed. The instances with `shutdownOnExit` are handed to the process module, which owns that
// set. The public face of this store (register, listActive, shutdownAll) is registry.ts; imports
// go one way: dovetail.ts and registry.ts to here, here to process.ts.
//
// Instances are only ever held through WeakRef: registering an instance must not keep it alive,
// or the DOVETAIL_NOT_SHUT_DOWN warning could never fire for a registered one.
import { describe } from '../internal/assert.js';
import { warn } from '../internal/util.js';
import type { Instance } from './instance.js';
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
export interface Entry {
  /** Creation order, to name the instance in the warning. */
  readonly seq: number;
  /** Shut down, or collected: gone from every set. */
  done: boolean;
}

/** The instance of each live entry, held weakly. */
const refs = new Map<Entry, WeakRef<Instance>>();
export const deref = (entry: Entry): Instance | undefined => refs.get(entry)?.deref();
const entries = new WeakMap<Instance, Entry>();
/** Registered instances, in registration order. */
export const registered = new Set<Entry>();
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

export function entryOf(dvt: unknown, name: string): Entry {
  const entry = typeof dvt === 'object' && dvt !== null ? entries.get(dvt as Instance) : undefined;
  if (entry === undefined) {
    throw new TypeError(`\`${name}\` must be a Dovetail instance, received ${describe(dvt)}`);
  }
  return entry;
}

/** Called by the `Dovetail` constructor. @internal */
export function track(dvt: Instance, options: TrackOptions): void {
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
export function untrack(dvt: Instance): void {
  const entry = entries.get(dvt);
  if (entry === undefined || entry.done) return;
  entry.done = true;
  const ref = refs.get(entry);
  refs.delete(entry);
  finalizer?.unregister(entry);
  registered.delete(entry);
  if (ref !== undefined) removeExitInstance(ref);
}
