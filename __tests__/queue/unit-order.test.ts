// Priority in every wait, per-key limits and cost (issue 15; API.md "Queue control").
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { Event, type Dovetail, type TaskPayload } from '../../src/index.js';
import { defer, flush } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';

afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

const fake = (): void => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
};

/** Schedules one recorded task per priority; returns the start order and the tasks. */
function byPriority(dvt: Dovetail, priorities: readonly number[], key?: string) {
  const order: string[] = [];
  const tasks = priorities.map((priority, i) =>
    dvt.task
      .with(key === undefined ? { priority } : { priority, key })
      .schedule(async () => void order.push(`${priority}#${i}`)),
  );
  return { order, tasks };
}

describe('priority', () => {
  it('orders the gate: higher first, submission order among equals', async () => {
    const dvt = create({ concurrency: 1 });
    const hold = defer();
    const blocker = dvt.task.schedule(() => hold.promise);
    const { order, tasks } = byPriority(dvt, [1, 5, 3, 5, 0, 9, -2.5]);
    hold.resolve();
    await Promise.all([blocker, ...tasks]);
    expect(order).toEqual(['9#5', '5#1', '5#3', '3#2', '1#0', '0#4', '-2.5#6']);
  });

  it('keeps submission order when no priority is given', async () => {
    const dvt = create({ concurrency: 1 });
    const hold = defer();
    const blocker = dvt.task.schedule(() => hold.promise);
    const { order, tasks } = byPriority(dvt, [0, 0, 0, 0]);
    hold.resolve();
    await Promise.all([blocker, ...tasks]);
    expect(order).toEqual(['0#0', '0#1', '0#2', '0#3']);
  });

  it('orders the wait for a rate-limit token', async () => {
    fake();
    const dvt = create({ rateLimit: { perSecond: 10, burst: 1 } });
    const first = dvt.task.schedule(async () => 'first');
    const { order, tasks } = byPriority(dvt, [1, 3, 2]);
    await jest.advanceTimersByTimeAsync(400);
    await Promise.all([first, ...tasks]);
    expect(order).toEqual(['3#1', '2#2', '1#0']);
  });

  it('orders the wait for a pause, with no gate at all', async () => {
    const dvt = create();
    dvt.pause();
    const { order, tasks } = byPriority(dvt, [1, 3, 2]);
    await flush();
    expect(order).toEqual([]);
    dvt.resume();
    await Promise.all(tasks);
    expect(order).toEqual(['3#1', '2#2', '1#0']);
  });

  it("orders the wait for a key's slot", async () => {
    const dvt = create({ concurrency: 10, perKey: { concurrency: 1 } });
    const hold = defer();
    const blocker = dvt.task.with({ key: 'k' }).schedule(() => hold.promise);
    const { order, tasks } = byPriority(dvt, [1, 3, 2, 3], 'k');
    await flush();
    expect(order).toEqual([]);
    hold.resolve();
    await Promise.all([blocker, ...tasks]);
    expect(order).toEqual(['3#1', '3#3', '2#2', '1#0']);
  });

  it('applies to the items of a map, against tasks of other priorities', async () => {
    const dvt = create({ concurrency: 1 });
    const hold = defer();
    const order: string[] = [];
    const blocker = dvt.task.schedule(() => hold.promise);
    const low = dvt.task.with({ priority: 1 }).schedule(async () => void order.push('low'));
    const mapped = dvt.task.map(async (n: number) => void order.push(`map${n}`), [1, 2], {
      priority: 2,
      concurrency: 2,
    });
    hold.resolve();
    await Promise.all([blocker, low, mapped]);
    expect(order).toEqual(['map1', 'map2', 'low']);
  });
});

describe('per-key limits', () => {
  it('a task waiting for its key holds no instance slot and never delays another key', async () => {
    const dvt = create({ concurrency: 2, perKey: { concurrency: 1 } });
    const hot = defer();
    const started: string[] = [];
    const hotTasks = [0, 1, 2].map((i) =>
      dvt.task.with({ key: 'hot' }).schedule(async () => {
        started.push(`hot${i}`);
        await hot.promise;
      }),
    );
    const cold = dvt.task.with({ key: 'cold' }).schedule(async () => void started.push('cold'));
    // At submission: one hot task and the cold one hold the two slots; two hot tasks wait.
    expect([dvt.active, dvt.pending]).toEqual([2, 2]);
    await cold;
    expect(started).toEqual(['hot0', 'cold']);
    expect(dvt.activeKeys().sort()).toEqual(['hot']);
    hot.resolve();
    await Promise.all(hotTasks);
    expect(started).toEqual(['hot0', 'cold', 'hot1', 'hot2']);
    expect(dvt.activeKeys()).toEqual([]);
  });

  it('limits each key to its own concurrency', async () => {
    const dvt = create({ perKey: { concurrency: 2 } });
    let running = 0;
    let most = 0;
    const tasks = Array.from({ length: 8 }, (_, i) =>
      dvt.task.with({ key: i % 2 === 0 ? 'a' : 'b' }).schedule(async () => {
        running += 1;
        most = Math.max(most, running);
        await flush();
        running -= 1;
      }),
    );
    await Promise.all(tasks);
    // Two keys of two each: four at once, never more.
    expect(most).toBe(4);
  });

  it('gives each key its own bucket, and a cycled key keeps its bucket until it refills', async () => {
    fake();
    const dvt = create({ perKey: { concurrency: 1, rateLimit: { perSecond: 10, burst: 1 } } });
    const at: Record<string, number> = {};
    const began = Date.now();
    const run = (key: string, name: string) =>
      dvt.task.with({ key }).schedule(async () => void (at[name] = Date.now() - began));
    await Promise.all([run('a', 'a1'), run('b', 'b1')]);
    // Key a went idle with an empty bucket: used again at once, it still waits for its token.
    const again = run('a', 'a2');
    await jest.advanceTimersByTimeAsync(150);
    await again;
    expect(at).toEqual({ a1: 0, b1: 0, a2: 100 });
    expect(dvt.activeKeys()).toEqual([]);
  });

  it('reports the key in payloads, and waits for a key token as rate_limited with its cost', async () => {
    fake();
    const dvt = create({ perKey: { rateLimit: { perSecond: 10, burst: 2 } } });
    const heard: TaskPayload[] = [];
    dvt.events.on(Event.RATE_LIMITED, (payload) => void heard.push(payload));
    const started: (string | undefined)[] = [];
    dvt.events.on(Event.STARTED, (payload) => void started.push(payload.key));
    const api = dvt.task.with({ key: 'upstream', cost: 2 });
    const first = api.schedule(async () => 1);
    const second = api.schedule(async () => 2);
    await jest.advanceTimersByTimeAsync(250);
    await expect(Promise.all([first, second])).resolves.toEqual([1, 2]);
    expect(started).toEqual(['upstream', 'upstream']);
    expect(heard).toHaveLength(1);
    expect(heard[0]).toMatchObject({ key: 'upstream', cost: 2, waited: 200, attempt: 1 });
  });

  it('takes a key token for each retry as well', async () => {
    fake();
    const dvt = create({ retries: 1, perKey: { rateLimit: { perSecond: 10, burst: 1 } } });
    let calls = 0;
    const began = Date.now();
    const times: number[] = [];
    const task = dvt.task.with({ key: 'k' }).schedule(async () => {
      times.push(Date.now() - began);
      calls += 1;
      if (calls === 1) throw new Error('once');
      return calls;
    });
    await jest.advanceTimersByTimeAsync(150);
    await expect(task).resolves.toBe(2);
    expect(times).toEqual([0, 100]);
  });

  it('only labels a task on an instance without perKey', async () => {
    const dvt = create({ concurrency: 5 });
    const hold = defer();
    const tasks = [0, 1, 2].map(() => dvt.task.with({ key: 'same' }).schedule(() => hold.promise));
    expect(dvt.active).toBe(3);
    expect(dvt.activeKeys()).toEqual([]);
    hold.resolve();
    await Promise.all(tasks);
  });

  it('gives with({ key }) the policy of the API it is called on, for any number of keys', async () => {
    const dvt = create({ perKey: { concurrency: 1 } });
    const keys: (string | undefined)[] = [];
    dvt.events.on(Event.STARTED, (payload) => void keys.push(payload.key));
    const failOnce = (): (() => Promise<string>) => {
      let calls = 0;
      return async () => {
        calls += 1;
        if (calls === 1) throw new Error('first attempt');
        return 'second';
      };
    };
    // The same key from two APIs: the root's has no retries, the other's has one.
    const plain = dvt.task.with({ key: 'a' });
    const retrying = dvt.task.with({ retries: 1 }).with({ key: 'a' });
    await expect(plain.schedule(failOnce())).rejects.toThrow('first attempt');
    await expect(retrying.schedule(failOnce())).resolves.toBe('second');
    await expect(dvt.task.with({ key: 'a' }).schedule(failOnce())).rejects.toThrow('first attempt');
    // More keys than an API keeps policies for: each task still runs under its own key.
    const many = Array.from({ length: 600 }, (_, i) => `k${i % 300}`);
    keys.length = 0;
    await Promise.all(many.map((key) => dvt.task.with({ key }).schedule(async () => key)));
    expect(keys).toEqual(many);
    expect(() => dvt.task.with({ key: 5 as unknown as string })).toThrow(/`key`.*5/);
  });

  it('takes the key of each map item from a function', async () => {
    const dvt = create({ perKey: { concurrency: 1 } });
    const keys: (string | undefined)[] = [];
    dvt.events.on(Event.QUEUED, (payload) => void keys.push(payload.key));
    await dvt.task.map(async (n: number) => n, [1, 2, 3], { key: (n: number) => `k${n % 2}` });
    expect(keys).toEqual(['k1', 'k0', 'k1']);
  });

  it('fails the map when the key function throws or gives a non-string', async () => {
    const dvt = create({ perKey: { concurrency: 1 } });
    const boom = new Error('no key');
    await expect(
      dvt.task.map(async (n: number) => n, [1, 2], {
        key: () => {
          throw boom;
        },
      }),
    ).rejects.toBe(boom);
    await expect(
      dvt.task.map(async (n: number) => n, [1], { key: (() => 7) as unknown as () => string }),
    ).rejects.toThrow(new TypeError('`key` must be a string, received 7 (number)'));
  });
});

describe('cost', () => {
  it('takes cost tokens per attempt from the instance bucket', async () => {
    fake();
    const dvt = create({ rateLimit: { perSecond: 10, burst: 3 } });
    const began = Date.now();
    const at: number[] = [];
    const heavy = dvt.task.with({ cost: 3 });
    const tasks = [0, 1].map(() => heavy.schedule(async () => void at.push(Date.now() - began)));
    await jest.advanceTimersByTimeAsync(400);
    await Promise.all(tasks);
    // The first took all three tokens; the second waits for three more.
    expect(at).toEqual([0, 300]);
  });

  it('is accepted with no effect on an instance without a bucket', async () => {
    const dvt = create();
    await expect(dvt.task.with({ cost: 1000 }).schedule(async () => 'ok')).resolves.toBe('ok');
  });

  it('gives back the token of a task cancelled before it started', async () => {
    fake();
    const dvt = create({ concurrency: 1, rateLimit: { perSecond: 10, burst: 1 } });
    const first = dvt.task.schedule(async () => 1);
    first.cancel();
    await expect(first).rejects.toThrow('cancelled');
    const began = Date.now();
    const next = dvt.task.schedule(async () => Date.now() - began);
    await jest.advanceTimersByTimeAsync(10);
    await expect(next).resolves.toBe(0);
  });
});
