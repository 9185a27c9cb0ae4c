// Fails the run on any unhandled rejection, uncaught exception or unexpected process warning: a
// task library must never leave one behind, in the code under test or in the tests themselves.
import { afterAll, afterEach } from '@jest/globals';

// Captured before any test can install fake timers.
const realSetImmediate = globalThis.setImmediate;
const problems: string[] = [];
const onRejection = (reason: unknown): void => {
  problems.push(
    `unhandledRejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`,
  );
};
const onException = (error: unknown): void => {
  problems.push(
    `uncaughtException: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
};
// An unexpected process warning fails the run too: a MaxListenersExceededWarning from a leaked
// abort listener, a listener error nobody asserted, a collected instance. Tests that expect a
// warning spy on process.emitWarning; Node's own ExperimentalWarning (vm modules) is expected.
// Node emits 'warning' on the worker's real process, not on the copy tests see (environment.cjs).
const host =
  (globalThis as { __dovetailHostProcess?: NodeJS.Process }).__dovetailHostProcess ?? process;
const onWarning = (warning: Error & { code?: string }): void => {
  if (warning.name === 'ExperimentalWarning') return;
  // The garbage collector decides when an instance left without shutdown() is collected: in a
  // jest worker that runs several files, that can be during a later file, which then failed for
  // an instance it never made. The warning itself is tested in a child process (registry.test.ts).
  if (warning.code === 'DOVETAIL_NOT_SHUT_DOWN') return;
  const code = warning.code === undefined ? '' : ` [${warning.code}]`;
  problems.push(`warning: ${warning.name}${code}: ${warning.message}`);
};
host.on('warning', onWarning);
// Rejections and uncaught exceptions are reported on the real process too (jest fails the test
// it runs at that moment as well; this also catches one that comes between tests).
host.on('unhandledRejection', onRejection);
host.on('uncaughtException', onException);
// The real process outlives this test file: leave no listener behind for the next one.
afterAll(() => {
  host.off('warning', onWarning);
  host.off('unhandledRejection', onRejection);
  host.off('uncaughtException', onException);
});

afterEach(async () => {
  // Rejections are reported after a turn of the event loop: give them one.
  await new Promise((resolve) => realSetImmediate(resolve));
  if (problems.length > 0) {
    const found = problems.splice(0);
    throw new Error(`The test left ${found.length} problem(s):\n${found.join('\n')}`);
  }
});
