import { Dovetail, type DovetailOptions } from '../../src/index.js';

const made: Dovetail[] = [];

/** A test instance: no registry, no signal handlers; shut down by closeAll(). */
export function create(options: DovetailOptions = {}): Dovetail {
  const dvt = new Dovetail({ autoRegister: false, shutdownOnExit: false, ...options });
  made.push(dvt);
  return dvt;
}

/** Shuts every instance made by create() down without waiting. */
export async function closeAll(): Promise<void> {
  const all = made.splice(0);
  await Promise.all(all.map((dvt) => dvt.shutdown({ wait: false })));
}
