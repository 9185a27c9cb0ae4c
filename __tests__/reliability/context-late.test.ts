// Runs in a file of its own: on Node 20 and 22 the task context store switches on at the first
// currentTask() call (src/context.ts), and this test needs it still off when its task starts.
import { afterEach, expect, it, jest } from '@jest/globals';
import { currentTask, TimeoutError } from '../../src/index.js';
import { closeAll, create } from '../helpers/instances.js';

afterEach(async () => {
  await closeAll();
});

// Kills `if (false)` on `if (rare !== undefined) rare.abortReason = undefined` in #launch (mutation
// testing of src/execution.ts): the abort of a timed-out attempt that never asked for its context
// does not carry over to the retry, whose signal starts unaborted.
it('starts a retry with a fresh signal after a timed-out attempt that never read its own', async () => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
  try {
    const dvt = create({ timeout: 50, retries: 1, retryBackoff: 0 });
    const errors: unknown[] = [];
    dvt.events.on('retry', (payload) => void errors.push(payload.error));
    let calls = 0;
    const task = dvt.task.schedule((): Promise<boolean | undefined> | boolean | undefined => {
      calls += 1;
      if (calls === 1) return new Promise(() => {});
      return currentTask()?.signal.aborted;
    });
    await jest.advanceTimersByTimeAsync(60);
    await expect(task).resolves.toBe(false);
    expect(calls).toBe(2);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(TimeoutError);
  } finally {
    jest.useRealTimers();
  }
});
