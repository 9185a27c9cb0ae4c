import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { getEventListeners } from 'node:events';
import { CancelledError, Event, TokenBucket } from '../../src/index.js';
import { closeAll, create } from '../helpers/instances.js';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
});
afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

describe('TokenBucket', () => {
  it('gives burst tokens at once without a promise, then one per interval', async () => {
    const bucket = new TokenBucket(10, 2);
    expect(bucket.acquire()).toBe(0);
    expect(bucket.acquire()).toBe(0);
    const third = bucket.acquire();
    expect(third).toBeInstanceOf(Promise);
    const fourth = bucket.acquire();
    await jest.advanceTimersByTimeAsync(100);
    await expect(third).resolves.toBe(100);
    await jest.advanceTimersByTimeAsync(100);
    await expect(fourth).resolves.toBe(200);
  });

  it('refills while idle, up to burst', async () => {
    const bucket = new TokenBucket(10, 3);
    for (let i = 0; i < 3; i++) void bucket.acquire();
    await jest.advanceTimersByTimeAsync(10_000);
    expect([bucket.acquire(), bucket.acquire(), bucket.acquire()]).toEqual([0, 0, 0]);
    expect(bucket.acquire()).toBeInstanceOf(Promise);
    await jest.advanceTimersByTimeAsync(100);
  });

  it('gives the token back when the waiter aborts, and clears its timer', async () => {
    const bucket = new TokenBucket(10, 1);
    void bucket.acquire();
    const controller = new AbortController();
    const waiting = bucket.acquire(controller.signal);
    controller.abort('gone');
    await expect(waiting).rejects.toBe('gone');
    expect(jest.getTimerCount()).toBe(0);
    // The cancelled waiter's token is back: the next caller waits one interval, not two.
    const next = bucket.acquire();
    await jest.advanceTimersByTimeAsync(100);
    await expect(next).resolves.toBe(100);
  });

  it('keeps many waiters behind one timer and serves them in order', async () => {
    const bucket = new TokenBucket(100, 1);
    void bucket.acquire();
    const waits = Array.from({ length: 50 }, () => bucket.acquire() as Promise<number>);
    expect(jest.getTimerCount()).toBe(1);
    await jest.advanceTimersByTimeAsync(500);
    expect(await Promise.all(waits)).toEqual(Array.from({ length: 50 }, (_, i) => (i + 1) * 10));
    expect(jest.getTimerCount()).toBe(0);
  });

  it('cancels a wait through its handle; its place goes to the next waiter', async () => {
    const bucket = new TokenBucket(10, 1);
    void bucket.acquire();
    const first = bucket.acquire() as Promise<number> & { cancel(reason?: unknown): void };
    const second = bucket.acquire() as Promise<number>;
    first.cancel('no longer needed');
    await expect(first).rejects.toBe('no longer needed');
    await jest.advanceTimersByTimeAsync(200);
    // The first token to come is the second waiter's now: one interval, not two.
    await expect(second).resolves.toBe(100);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('holds no timer while idle', () => {
    void new TokenBucket(5, 5).acquire();
    expect(jest.getTimerCount()).toBe(0);
  });

  // The tests below kill mutants that survived a Stryker run over src/policies/rate-limit.ts.

  // Kills the emptied listener removals (both branches) after a wait ends.
  it("leaves no listener on the caller's signal once a wait is granted or cancelled", async () => {
    const bucket = new TokenBucket(10, 1);
    void bucket.acquire();
    const controller = new AbortController();
    const granted = bucket.acquire(controller.signal) as Promise<number>;
    const cancelled = bucket.acquire(controller.signal) as Promise<number> & {
      cancel(reason?: unknown): void;
    };
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(2);
    cancelled.cancel('not needed');
    await expect(cancelled).rejects.toBe('not needed');
    await jest.advanceTimersByTimeAsync(100);
    await expect(granted).resolves.toBe(100);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  // Kills `if (false)` on the settled check of #cancel and `settled = false` where #fire grants a
  // token: a token is given back once, by a wait that never got it.
  it('gives no token back for a wait cancelled after its grant, or cancelled twice', async () => {
    const bucket = new TokenBucket(10, 1);
    void bucket.acquire();
    type Wait = Promise<number> & { cancel(reason?: unknown): void };
    const first = bucket.acquire() as Wait;
    const second = bucket.acquire() as Wait;
    await jest.advanceTimersByTimeAsync(100);
    await expect(first).resolves.toBe(100);
    first.cancel('too late');
    second.cancel('gone');
    second.cancel('gone again');
    await expect(second).rejects.toBe('gone');
    // One token was given back (the second's): the next caller still waits one interval.
    const next = bucket.acquire();
    expect(next).toBeInstanceOf(Promise);
    await jest.advanceTimersByTimeAsync(100);
    await expect(next).resolves.toBe(100);
  });

  // Kills `Math.min` for `Math.max` on the timer delay: a wait arms one timer, for when its token
  // is due, rather than polling.
  it('arms one timer for a wait, due when its token is', async () => {
    const bucket = new TokenBucket(1, 1);
    void bucket.acquire();
    const armed = jest.spyOn(globalThis, 'setTimeout');
    try {
      const wait = bucket.acquire();
      await jest.advanceTimersByTimeAsync(1000);
      await expect(wait).resolves.toBe(1000);
      expect(armed.mock.calls.map((call) => call[1])).toEqual([1000]);
    } finally {
      armed.mockRestore();
    }
  });
});

describe('rate limit on tasks', () => {
  it('starts tasks on the token-bucket schedule and reports exact waits', async () => {
    const dvt = create({ rateLimit: { perSecond: 10, burst: 2 } });
    const waited: number[] = [];
    const starts: number[] = [];
    const t0 = Date.now();
    dvt.events.on(Event.RATE_LIMITED, (p) => waited.push(p.waited));
    dvt.events.on(Event.STARTED, () => starts.push(Date.now() - t0));
    const tasks = Array.from({ length: 5 }, () => dvt.task.schedule(() => 1));
    await jest.advanceTimersByTimeAsync(300);
    await Promise.all(tasks);
    expect(starts).toEqual([0, 0, 100, 200, 300]);
    expect(waited).toEqual([100, 200, 300]);
    expect(dvt.events.stats().throttled).toBe(3);
  });

  it('counts a waiting task as pending, then active', async () => {
    const dvt = create({ rateLimit: { perSecond: 1, burst: 1 } });
    void dvt.task.schedule(() => new Promise(() => {}));
    const second = dvt.task.schedule(() => 2);
    await jest.advanceTimersByTimeAsync(0);
    expect([dvt.active, dvt.pending]).toEqual([1, 1]);
    await jest.advanceTimersByTimeAsync(1000);
    await expect(second).resolves.toBe(2);
    expect(dvt.pending).toBe(0);
  });

  it('takes a token for every attempt', async () => {
    const dvt = create({ rateLimit: { perSecond: 10, burst: 1 }, retries: 2 });
    let calls = 0;
    const task = dvt.task.schedule(() => {
      calls += 1;
      throw new Error('again');
    });
    const outcome = expect(task).rejects.toThrow('again');
    await jest.advanceTimersByTimeAsync(250);
    expect(calls).toBe(3);
    await outcome;
    expect(dvt.events.stats().throttled).toBe(2);
  });

  it('cancel while waiting for a token rejects at once and returns the token', async () => {
    const dvt = create({ rateLimit: { perSecond: 1, burst: 1 } });
    await dvt.task.schedule(() => 1);
    const waiting = dvt.task.schedule(() => 2);
    await jest.advanceTimersByTimeAsync(10);
    expect(waiting.cancel()).toBe(true);
    await expect(waiting).rejects.toBeInstanceOf(CancelledError);
    expect(jest.getTimerCount()).toBe(0);
    expect(dvt.pending).toBe(0);
  });
});
