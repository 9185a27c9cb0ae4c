// A task that took a rate-limit token and settled before its attempt could use it gives the token
// back, to the instance's bucket or its key's: when it settles while it waits at the gate after
// its key's token, or in the turn its token wait was served (the task goes on a microtask later),
// or when it loses its key slot to a task of a higher priority in that turn. Fake timers: a token
// not given back shows as one more interval of waiting for the task after it.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { defer } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
});
afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

/** A work function that records the fake time of each start. */
function recorder() {
  const starts: [string, number][] = [];
  const start = Date.now();
  const work = async (name: string): Promise<string> => {
    starts.push([name, Date.now() - start]);
    return name;
  };
  return { starts, work };
}

describe("a key's token, taken before the gate", () => {
  it('goes back when the task is cancelled while it waits for an instance slot', async () => {
    const dvt = create({ concurrency: 1, perKey: { rateLimit: { perSecond: 1, burst: 1 } } });
    const { starts, work } = recorder();
    const hold = defer<void>();
    const blocker = dvt.task.schedule(() => hold.promise);
    const keyed = dvt.task.with({ key: 'k' });
    // Takes k's only token at once, then waits behind the blocker for the instance's one slot.
    const first = keyed.schedule(work, 'first');
    expect([dvt.active, dvt.pending]).toEqual([1, 1]);
    first.cancel();
    await expect(first).rejects.toThrow();
    hold.resolve();
    await blocker;
    const second = keyed.schedule(work, 'second');
    await jest.advanceTimersByTimeAsync(0);
    // The token came back: no second to wait for it.
    expect(starts).toEqual([['second', 0]]);
    await expect(second).resolves.toBe('second');
  });
});

describe('a token wait served in the same turn as the cancel', () => {
  it.each([
    ["the instance's", { rateLimit: { perSecond: 1, burst: 1 } }, undefined],
    ["a key's", { perKey: { rateLimit: { perSecond: 1, burst: 1 } } }, 'k'],
  ] as const)('gives %s token back', async (_, options, key) => {
    const dvt = create(options);
    const { starts, work } = recorder();
    const api = key === undefined ? dvt.task : dvt.task.with({ key });
    await api.schedule(work, 'first');
    // No token until 1 000 ms: the second waits for it.
    const second = api.schedule(work, 'second');
    await jest.advanceTimersByTimeAsync(0);
    // Runs after the bucket's timer, in the same turn: the wait is served, its task not yet on.
    setTimeout(() => second.cancel(), 1000);
    jest.advanceTimersByTime(1000);
    await expect(second).rejects.toThrow();
    const third = api.schedule(work, 'third');
    await jest.advanceTimersByTimeAsync(0);
    // The token served to the cancelled task is the third's, at once.
    expect(starts).toEqual([
      ['first', 0],
      ['third', 1000],
    ]);
    await expect(third).resolves.toBe('third');
  });

  it("gives a key's token back when its task loses the slot to a higher priority", async () => {
    const dvt = create({ perKey: { concurrency: 1, rateLimit: { perSecond: 1, burst: 1 } } });
    const { starts, work } = recorder();
    await dvt.task.with({ key: 'k' }).schedule(work, 'first');
    // Holds k's slot and waits for its next token, due at 1 000 ms.
    const low = dvt.task.with({ key: 'k', priority: 0 }).schedule(work, 'low');
    await jest.advanceTimersByTimeAsync(0);
    // In the turn that token is served to `low`: a task of higher priority takes the slot.
    let high: Promise<string> | undefined;
    setTimeout(() => {
      high = dvt.task.with({ key: 'k', priority: 1 }).schedule(work, 'high');
    }, 1000);
    jest.advanceTimersByTime(1000);
    await jest.advanceTimersByTimeAsync(0);
    // `low`'s token went back and was `high`'s at once; `low` waits for the next one.
    expect(starts).toEqual([
      ['first', 0],
      ['high', 1000],
    ]);
    await jest.advanceTimersByTimeAsync(1000);
    expect(starts.at(-1)).toEqual(['low', 2000]);
    await expect(Promise.all([high, low])).resolves.toEqual(['high', 'low']);
  });

  it("gives a retry's key token back", async () => {
    const dvt = create({
      retries: 1,
      retryBackoff: 0,
      perKey: { rateLimit: { perSecond: 1, burst: 1 } },
    });
    const starts: number[] = [];
    const keyed = dvt.task.with({ key: 'k' });
    let calls = 0;
    const flaky = keyed.schedule(async () => {
      starts.push(Date.now());
      calls += 1;
      if (calls === 1) throw new Error('first attempt fails');
      return 'retried';
    });
    // The retry waits for k's next token (1 000 ms); it is cancelled in the turn it is served.
    await jest.advanceTimersByTimeAsync(0);
    expect(calls).toBe(1);
    setTimeout(() => flaky.cancel(), 1000);
    jest.advanceTimersByTime(1000);
    await expect(flaky).rejects.toThrow();
    expect(calls).toBe(1);
    const { starts: after, work } = recorder();
    const next = keyed.schedule(work, 'next');
    await jest.advanceTimersByTimeAsync(0);
    expect(after).toEqual([['next', 0]]);
    await expect(next).resolves.toBe('next');
  });
});
