// Lifecycle registry. Minimal first version: the lifecycle issue completes it (signals,
// FinalizationRegistry warning, app hook). Contract with dovetail.ts: track() when an instance is
// built, untrack() once its shutdown completed.
import type { Dovetail } from './dovetail.js';

/** How an instance takes part in the registry. @internal */
export interface TrackOptions {
  readonly autoRegister: boolean;
  readonly shutdownOnExit: boolean;
}

const registered = new Set<WeakRef<Dovetail>>();

/** Adds `dvt` to the registry (idempotent). */
export function register(dvt: Dovetail): void {
  for (const ref of registered) if (ref.deref() === dvt) return;
  registered.add(new WeakRef(dvt));
}

/** Removes `dvt` from the registry. @returns whether it was there. */
export function unregister(dvt: Dovetail): boolean {
  for (const ref of registered) {
    if (ref.deref() === dvt) {
      registered.delete(ref);
      return true;
    }
  }
  return false;
}

/** Instances registered and not shut down. */
export function listActive(): Dovetail[] {
  const out: Dovetail[] = [];
  for (const ref of registered) {
    const dvt = ref.deref();
    if (dvt === undefined) registered.delete(ref);
    else if (!dvt.isShutdown) out.push(dvt);
  }
  return out;
}

/** Shuts every registered instance down. */
export async function shutdownAll(options?: { wait?: boolean | undefined }): Promise<void> {
  await Promise.all(listActive().map((dvt) => dvt.shutdown(options)));
}

/** @internal */
export function track(dvt: Dovetail, options: TrackOptions): void {
  if (options.autoRegister) register(dvt);
}

/** @internal */
export function untrack(dvt: Dovetail): void {
  unregister(dvt);
}
