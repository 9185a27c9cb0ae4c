// Process lifecycle: the one SIGINT/SIGTERM listener shared by every instance, the set of live
// instances that want it (`shutdownOnExit`, told by the registry), the application's shutdown
// hook, and runMain(). Nothing here runs at import; the listener exists only while a live instance
// has `shutdownOnExit` or a runMain() is running, and no timer of ours keeps the process alive
// (each is unref'd). This module imports no other lifecycle module: the registry imports it.
import { CancelledError } from '../errors.js';
import { assertFunction, assertNonNegative, assertObject, describe } from '../internal/assert.js';
import type { Instance } from './instance.js';
import { warn } from '../internal/util.js';

/**
 * The signals Dovetail handles.
 * @example
 * ```ts
 * import type { ShutdownSignal } from 'dovetailjs';
 * const code = (signal: ShutdownSignal): number => (signal === 'SIGINT' ? 130 : 143);
 * ```
 */
export type ShutdownSignal = 'SIGINT' | 'SIGTERM';

/**
 * Runs when the process receives SIGINT or SIGTERM, instead of the default (shutting down every
 * instance that has `shutdownOnExit`). The process waits for its promise, within the grace period.
 * @example
 * ```ts
 * import { shutdownAll, type AppShutdownHook } from 'dovetailjs';
 * const hook: AppShutdownHook = async (signal) => {
 *   console.error(`${signal}: shutting down`);
 *   await shutdownAll({ wait: true });
 * };
 * ```
 */
export type AppShutdownHook = (signal: ShutdownSignal) => void | PromiseLike<void>;

/**
 * Options of {@link runMain}.
 * @example
 * ```ts
 * import { runMain, type RunMainOptions } from 'dovetailjs';
 * const options: RunMainOptions = { grace: 2_000 };
 * runMain(async (signal) => { await new Promise((resolve) => setTimeout(resolve, 100, signal)); }, options);
 * ```
 */
export interface RunMainOptions {
  /**
   * After SIGINT/SIGTERM, how long to wait for `main` and the instances' shutdown before the
   * process exits anyway, in milliseconds. Also bounds the shutdown after `main` settles.
   * @defaultValue `10_000`
   */
  grace?: number | undefined;
}

/** How long the signal handler waits for the instances' shutdown, in milliseconds. */
const SIGNAL_GRACE = 10_000;
const SIGNALS: readonly ShutdownSignal[] = ['SIGINT', 'SIGTERM'];
/** The status a shell reports for a process ended by the signal: 128 + its number. */
const EXIT_CODES: Readonly<Record<ShutdownSignal, number>> = { SIGINT: 130, SIGTERM: 143 };

interface MainRun {
  readonly controller: AbortController;
  readonly grace: number;
  /** Settles (never rejects) once `main` has settled. */
  readonly settled: Promise<unknown>;
}

let appHook: AppShutdownHook | undefined;
let installed = false;
/** The signal being handled, from the first one until the handling ends. */
let handling: ShutdownSignal | undefined;
const mains = new Set<MainRun>();
/**
 * The live instances with `shutdownOnExit` (registered or not), in creation order. Held through
 * WeakRef only: wanting the signals handled must not keep an instance alive, or the
 * DOVETAIL_NOT_SHUT_DOWN warning could never fire for it.
 */
const exiting = new Set<WeakRef<Instance>>();

const listener = (signal: NodeJS.Signals): void => {
  onSignal(signal === 'SIGTERM' ? 'SIGTERM' : 'SIGINT');
};

/**
 * Installs or removes the process listener: present while a live instance has `shutdownOnExit`,
 * a runMain() is running, or a signal is being handled.
 */
function syncSignalHandler(): void {
  const wanted = exiting.size > 0 || mains.size > 0 || handling !== undefined;
  if (wanted === installed) return;
  installed = wanted;
  for (const signal of SIGNALS) {
    // Prepended, so that it sees the application's listeners before a `once` listener of the
    // application removes itself; it does its work asynchronously, so the application's listeners
    // still run at once.
    if (wanted) process.prependListener(signal, listener);
    else process.removeListener(signal, listener);
  }
  if (wanted) process.on('exit', onExit);
  else process.removeListener('exit', onExit);
}

/** An instance with `shutdownOnExit` was built: the signals are handled from now on. @internal */
export function addExitInstance(ref: WeakRef<Instance>): void {
  exiting.add(ref);
  if (exiting.size === 1) syncSignalHandler();
}

/**
 * The instance was shut down or collected; without another one that wants them (or a runMain()),
 * the signals are no longer handled. Does nothing for an instance that was never added. @internal
 */
export function removeExitInstance(ref: WeakRef<Instance>): void {
  if (exiting.delete(ref) && exiting.size === 0) syncSignalHandler();
}

/** The live instances with `shutdownOnExit`, held (strongly) by the caller while it needs them. */
function exitInstances(): Instance[] {
  const out: Instance[] = [];
  for (const ref of exiting) {
    const dvt = ref.deref();
    if (dvt !== undefined) out.push(dvt);
  }
  return out;
}

/**
 * The process is exiting (the event loop ran empty, or `process.exit()` was called): nothing
 * asynchronous can run any more, but `shutdown({ wait: false })` still cancels what is queued and
 * aborts running tasks' signals synchronously, so their abort listeners get a last word.
 */
function onExit(): void {
  for (const dvt of exitInstances()) {
    try {
      dvt.shutdown({ wait: false }).catch(() => {});
    } catch {
      // Exiting: nothing may throw from here.
    }
  }
}

/**
 * Sets the function that runs on SIGINT/SIGTERM instead of the default, which shuts down every
 * instance that has `shutdownOnExit` (with `wait: true`). Use it to close a server before the
 * instances, or to shut them down in a particular order. The hook runs on these signals only: a
 * normal exit has nothing left to run. Then, unless the application has its own listener for the
 * signal, the process ends with code 130 (SIGINT) or 143 (SIGTERM) once the hook's promise settles
 * or after a grace of 10 000 ms. A hook that throws or rejects is reported as a process warning
 * (code `DOVETAIL_SHUTDOWN_HOOK_ERROR`).
 *
 * @param hook - The hook, or `null` to go back to the default.
 * @throws TypeError when `hook` is neither a function nor `null`.
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { setAppShutdownHook, shutdownAll } from 'dovetailjs';
 * const server = createServer();
 * setAppShutdownHook(async (signal) => {
 *   console.error(`${signal}: closing`);
 *   server.close();
 *   await shutdownAll();
 * });
 * ```
 */
export function setAppShutdownHook(hook: AppShutdownHook | null): void {
  if (hook === null || hook === undefined) {
    appHook = undefined;
    return;
  }
  assertFunction('hook', hook);
  appHook = hook;
}

function warnOf(message: string, code: string, error: unknown): void {
  warn(
    `${message}: ${error instanceof Error ? error.message : String(error)}`,
    code,
    error instanceof Error ? error.stack : undefined,
  );
}

/**
 * Shuts `instances` down. The array is held until the caller is done with it: an instance must
 * not be collected halfway through the shutdown it is waiting for.
 */
function shutdownEach(instances: readonly Instance[], wait: boolean): Promise<unknown> {
  return Promise.all(instances.map((dvt) => dvt.shutdown({ wait }))).catch((error: unknown) => {
    warnOf('A Dovetail instance failed to shut down', 'DOVETAIL_SHUTDOWN_ERROR', error);
  });
}

/** The app hook, or the default: shut down every instance that has `shutdownOnExit`. */
async function shutdownForSignal(
  signal: ShutdownSignal,
  instances: readonly Instance[],
): Promise<void> {
  const hook = appHook;
  if (hook === undefined) {
    await shutdownEach(instances, true);
    return;
  }
  try {
    await hook(signal);
  } catch (error) {
    warnOf('The Dovetail app shutdown hook failed', 'DOVETAIL_SHUTDOWN_HOOK_ERROR', error);
  }
}

/** Resolves when `promise` settles or after `ms`, whichever comes first; never rejects. */
function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    timer.unref();
    const done = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    promise.then(done, done);
  });
}

function exitNow(signal: ShutdownSignal): never {
  process.exit(EXIT_CODES[signal]);
}

function onSignal(signal: ShutdownSignal): void {
  const withMain = mains.size > 0;
  // Decided now, while every listener the application has for this signal is still attached.
  const appListens = process.listeners(signal).some((other) => other !== listener);
  if (handling !== undefined) {
    // A second signal: the user insists. runMain and a process the library would end anyway
    // exit at once; an application with its own listener decides for itself.
    if (withMain || !appListens) exitNow(signal);
    return;
  }
  handling = signal;
  const grace = withMain ? Math.max(...[...mains].map((run) => run.grace)) : SIGNAL_GRACE;
  const reason = new CancelledError(`received ${signal}`);
  const instances = exitInstances();
  const waits: Promise<unknown>[] = [shutdownForSignal(signal, instances)];
  for (const run of mains) {
    run.controller.abort(reason);
    waits.push(run.settled);
  }
  void within(Promise.all(waits), grace).then((inTime) => {
    if (withMain || !appListens) {
      // Past the grace: abort what still runs, so that its cleanup gets a synchronous chance.
      if (!inTime) void shutdownEach(instances, false);
      exitNow(signal);
    }
    handling = undefined;
    syncSignalHandler();
  });
}

/**
 * The entrypoint for a CLI script, the counterpart of Python's `asyncio.run`. It calls
 * `main(signal)` and then shuts down every instance that has `shutdownOnExit` (waiting at most
 * `grace` ms for their tasks), whatever the outcome:
 *
 * - `main` resolves: the exit code is 0 (unless `main` set `process.exitCode`), and the process
 *   ends on its own once nothing is left to run: `process.exit()` is not called, so no pending
 *   output is cut off.
 * - `main` throws or rejects: the error's stack is printed to stderr and the exit code is 1.
 * - SIGINT/SIGTERM: `signal` is aborted (its reason a `CancelledError`), the instances are shut
 *   down (or the app hook runs), and once `main` and the shutdown have settled, or after `grace`
 *   ms, the process exits with 130 (SIGINT) or 143 (SIGTERM). A second signal exits at once.
 *
 * @param main - The script's body; gets an `AbortSignal` that aborts on SIGINT/SIGTERM.
 * @param options - `{ grace = 10_000 }` (ms).
 * @returns A promise that resolves once `main` settled and the instances were shut down; it never
 * rejects.
 * @throws TypeError when `main` is not a function; RangeError when `grace` is negative or not finite.
 * @example
 * ```ts
 * import { Dovetail, runMain } from 'dovetailjs';
 * const dvt = new Dovetail({ concurrency: 4 });
 * const urls = ['http://127.0.0.1:8080/a', 'http://127.0.0.1:8080/b'];
 * runMain(async (signal) => {
 *   const sizes = await dvt.task.with({ signal }).map(async (url: string) => (await fetch(url, { signal })).status, urls);
 *   console.log(sizes);
 * });
 * ```
 */
export function runMain(
  main: (signal: AbortSignal) => unknown,
  options?: RunMainOptions,
): Promise<void> {
  assertFunction('main', main);
  let grace = SIGNAL_GRACE;
  if (options !== undefined) {
    assertObject('options', options);
    if (options.grace !== undefined) {
      assertNonNegative('grace', options.grace);
      grace = options.grace;
    }
  }
  const controller = new AbortController();
  let outcome: Promise<unknown>;
  try {
    outcome = Promise.resolve(main(controller.signal));
  } catch (error) {
    outcome = Promise.reject(error);
  }
  let failed = false;
  let failure: unknown;
  const settled = outcome.then(
    () => undefined,
    (error: unknown) => {
      failed = true;
      failure = error;
    },
  );
  const run: MainRun = { controller, grace, settled };
  mains.add(run);
  syncSignalHandler();
  return settled.then(async () => {
    const signalled = controller.signal.aborted;
    // After a signal, main failing with the abort reason is the expected way to stop.
    if (failed && !(signalled && failure === controller.signal.reason)) report(failure);
    if (!signalled) {
      if (failed) process.exitCode = 1;
      else process.exitCode ??= 0;
    }
    const instances = exitInstances();
    const inTime = await within(shutdownEach(instances, true), grace);
    // Past the grace: abort what still runs, without waiting any longer for it.
    if (!inTime) void shutdownEach(instances, false);
    mains.delete(run);
    syncSignalHandler();
  });
}

function report(error: unknown): void {
  // console.error prints an Error's stack, its cause and its own fields, as an uncaught error would.
  if (error instanceof Error) console.error(error);
  else console.error(`Uncaught ${describe(error)}`);
}
