// Behaviours of src/task.ts found untested by mutation testing (stryker run --mutate src/task.ts):
// each test here kills mutants that survived the rest of the suite.
import { afterEach, describe, expect, it } from '@jest/globals';
import { ShutdownError, type Task } from '../../src/index.js';
import { closeAll, create } from '../helpers/instances.js';

afterEach(async () => {
  await closeAll();
});

/** One task from each task-API entry point, started on an instance that has shut down. */
async function refusedTasks(): Promise<Task<unknown>[]> {
  const dvt = create();
  await dvt.shutdown();
  const api = dvt.task;
  const callback = (cb: (error: unknown, value?: number) => void): void => cb(null, 1);
  return [
    api.schedule(() => 1),
    api.schedule(Promise.resolve(1)),
    api.toThread(() => 1),
    api.fromCallback(callback),
    api.promisify(callback)(),
    api.wrap(() => 1)(),
  ];
}

describe('a task refused after shutdown', () => {
  // Kills `task.cancel = () => true` and `task.cancel = () => undefined` in refused().
  it('is already settled: cancel() returns false and the task still rejects with ShutdownError', async () => {
    for (const task of await refusedTasks()) {
      expect(task.cancel()).toBe(false);
      expect(task.cancel(new Error('again'))).toBe(false);
      await expect(task).rejects.toBeInstanceOf(ShutdownError);
    }
  });

  // Kills `--refusedSeq` in refused(): ids read "refused--1", "refused--2", ...
  it('has its own id, saying it was refused, distinct from every other task id', async () => {
    const live = create().task.schedule(() => 1);
    const refused = await refusedTasks();
    const ids = refused.map((task) => task.id);
    for (const id of ids) expect(id).toMatch(/^refused-[1-9]\d*$/);
    expect(new Set([...ids, live.id]).size).toBe(ids.length + 1);
    await live;
    await Promise.allSettled(refused);
  });
});
