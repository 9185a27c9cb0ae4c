import { afterEach, describe, expect, it } from '@jest/globals';
import { AsyncLocalStorage } from 'node:async_hooks';
import { promisify } from 'node:util';
import { defer } from './helpers/defer.js';
import { closeAll, create } from './helpers/instances.js';

// A service keeps a request id in an AsyncLocalStorage store and schedules work for the request:
// the work must see that request's id, not the id of whichever task ran before it in the slot.
const request = new AsyncLocalStorage<string>();

afterEach(closeAll);

/** What the task sees of the store: before and after its first await. */
const seeStore = async (): Promise<[string | undefined, string | undefined]> => {
  const before = request.getStore();
  await Promise.resolve();
  return [before, request.getStore()];
};

describe("the caller's async context reaches the task", () => {
  it.each([
    ['no concurrency limit', Infinity],
    ['tasks waiting for the gate', 2],
    ['one slot', 1],
  ])('schedule(), %s', async (_label, concurrency) => {
    const dvt = create({ concurrency });
    const ids = ['a', 'b', 'c', 'd', 'e', 'f'];
    const seen = await Promise.all(
      ids.map((id) => request.run(id, () => dvt.task.schedule(seeStore))),
    );
    expect(seen).toEqual(ids.map((id) => [id, id]));
  });

  it('a task that waited behind another request still sees its own', async () => {
    const dvt = create({ concurrency: 1 });
    const hold = defer();
    const first = request.run('first', () =>
      dvt.task.schedule(async () => {
        await hold.promise;
        return request.getStore();
      }),
    );
    const second = request.run('second', () => dvt.task.schedule(() => request.getStore()));
    hold.resolve();
    await expect(first).resolves.toBe('first');
    await expect(second).resolves.toBe('second');
  });

  it('every attempt of a retried task runs in it', async () => {
    const dvt = create({ retries: 2, retryBackoff: 0 });
    const stores: Array<string | undefined> = [];
    const task = request.run('retried', () =>
      dvt.task.schedule(() => {
        stores.push(request.getStore());
        if (stores.length < 3) throw new Error('again');
        return 'ok';
      }),
    );
    await expect(task).resolves.toBe('ok');
    expect(stores).toEqual(['retried', 'retried', 'retried']);
  });

  it('map() and mapIterable(): every item runs in the context of the call', async () => {
    const dvt = create({ concurrency: 2 });
    const items = [1, 2, 3, 4, 5];
    const mapped = await request.run('map', () => dvt.task.map(() => request.getStore(), items));
    expect(mapped).toEqual(items.map(() => 'map'));
    const streamed: Array<string | undefined> = [];
    await request.run('stream', async () => {
      for await (const store of dvt.task.mapIterable(() => request.getStore(), items))
        streamed.push(store);
    });
    expect(streamed).toEqual(items.map(() => 'stream'));
  });

  it('toThread(), fromCallback() and wrap()', async () => {
    const dvt = create({ concurrency: 1 });
    const callbackApi = (done: (error: Error | null, value?: string) => void): void => {
      setImmediate(() => done(null, request.getStore()));
    };
    const wrapped = dvt.task.wrap(() => request.getStore());
    const seen = await Promise.all([
      request.run('thread', () => dvt.task.toThread(() => request.getStore())),
      request.run('callback', () => dvt.task.fromCallback(callbackApi)),
      request.run('promisified', () => dvt.task.promisify(callbackApi)()),
      request.run('wrapped', () => wrapped()),
    ]);
    expect(seen).toEqual(['thread', 'callback', 'promisified', 'wrapped']);
    // Node's own promisify, for comparison: the same context rules.
    await expect(request.run('node', () => promisify(callbackApi)())).resolves.toBe('node');
  });

  it('a task scheduled outside any store sees none, even after one ran in its slot', async () => {
    const dvt = create({ concurrency: 1 });
    const inside = request.run('inside', () => dvt.task.schedule(async () => request.getStore()));
    const outside = dvt.task.schedule(() => request.getStore());
    await expect(inside).resolves.toBe('inside');
    await expect(outside).resolves.toBeUndefined();
  });
});
