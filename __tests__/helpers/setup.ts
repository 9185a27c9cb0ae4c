// Fails the run on any unhandled rejection or uncaught exception: a task library must never
// leave one behind, in the code under test or in the tests themselves.
import { afterEach } from '@jest/globals';

// Captured before any test can install fake timers.
const realSetImmediate = globalThis.setImmediate;
const problems: string[] = [];
const onRejection = (reason: unknown): void => {
  problems.push(`unhandledRejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`);
};
const onException = (error: unknown): void => {
  problems.push(`uncaughtException: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
};
process.on('unhandledRejection', onRejection);
process.on('uncaughtException', onException);

afterEach(async () => {
  // Rejections are reported after a turn of the event loop: give them one.
  await new Promise((resolve) => realSetImmediate(resolve));
  if (problems.length > 0) {
    const found = problems.splice(0);
    throw new Error(`The test left ${found.length} problem(s):\n${found.join('\n')}`);
  }
});
