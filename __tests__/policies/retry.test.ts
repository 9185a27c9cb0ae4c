import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { CancelledError, Event, ShutdownError } from '../../src/index.js';
import { closeAll, create } from '../helpers/instances.js';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
});
afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

describe('retry policy (on p-retry)', () => {
  it('sleeps retryBackoff * 2 ** (n - 1) before retry n', async () => {
    const dvt = create({ retries: 3, retryBackoff: 100 });
    const sleeps: number[] = [];
    const starts: number[] = [];
    const t0 = Date.now();
    dvt.events.on(Event.RETRY, (p) => sleeps.push(p.sleep));
    dvt.events.on(Event.STARTED, () => starts.push(Date.now() - t0));
    const outcome = expect(
      dvt.task.schedule(() => Promise.reject(new Error('boom'))),
    ).rejects.toThrow('boom');
    await jest.advanceTimersByTimeAsync(700);
    await outcome;
    expect(sleeps).toEqual([100, 200, 400]);
    expect(starts).toEqual([0, 100, 300, 700]);
  });

  it('makes 1 + retries attempts and counts each retry', async () => {
    const dvt = create({ retries: 2 });
    let calls = 0;
    const task = dvt.task.schedule(() => {
      calls += 1;
      throw new Error(`attempt ${calls}`);
    });
    const outcome = expect(task).rejects.toThrow('attempt 3');
    await jest.advanceTimersByTimeAsync(0);
    await outcome;
    expect(calls).toBe(3);
    expect(dvt.events.stats()).toMatchObject({ started: 3, retries: 2, error: 1 });
  });

  it('retries a TypeError and non-Error throws, handing back the original value', async () => {
    const dvt = create({ retries: 1 });
    for (const thrown of [new TypeError('type'), 'a string', undefined, { code: 7 }]) {
      let calls = 0;
      const task = dvt.task.schedule(() => {
        calls += 1;
        throw thrown;
      });
      const outcome = task.catch((e: unknown) => e);
      await jest.advanceTimersByTimeAsync(0);
      const error = await outcome;
      expect(error).toBe(thrown);
      expect(calls).toBe(2);
    }
  });

  it('does not call anything after the final failure', async () => {
    const dvt = create({ retries: 1 });
    const retries: number[] = [];
    dvt.events.on(Event.RETRY, (p) => retries.push(p.attempt));
    const task = dvt.task.schedule(() => Promise.reject(new Error('x')));
    const outcome = task.catch(() => undefined);
    await jest.advanceTimersByTimeAsync(0);
    await outcome;
    expect(retries).toEqual([1]);
  });

  it('does not retry CancelledError or ShutdownError thrown by the function', async () => {
    const dvt = create({ retries: 3 });
    for (const error of [new CancelledError('inner'), new ShutdownError('inner')]) {
      let calls = 0;
      const task = dvt.task.schedule(() => {
        calls += 1;
        throw error;
      });
      const outcome = expect(task).rejects.toBe(error);
      await jest.advanceTimersByTimeAsync(0);
      await outcome;
      expect(calls).toBe(1);
    }
  });

  it('cancel during the backoff sleep clears the timer and starts no attempt', async () => {
    const dvt = create({ retries: 3, retryBackoff: 1000 });
    let calls = 0;
    const task = dvt.task.schedule(() => {
      calls += 1;
      throw new Error('fail');
    });
    await jest.advanceTimersByTimeAsync(10);
    expect(calls).toBe(1);
    task.cancel();
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await jest.advanceTimersByTimeAsync(5000);
    expect(calls).toBe(1);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('succeeds on a later attempt and resolves with its value', async () => {
    const dvt = create({ retries: 2, retryBackoff: 10 });
    let calls = 0;
    const task = dvt.task.schedule(async () => {
      calls += 1;
      if (calls < 3) throw new Error('not yet');
      return 'third time';
    });
    await jest.advanceTimersByTimeAsync(30);
    await expect(task).resolves.toBe('third time');
  });

  it('never retries a promise', async () => {
    const dvt = create({ retries: 3 });
    const error = new Error('once');
    const task = dvt.task.schedule(Promise.reject(error));
    const outcome = expect(task).rejects.toBe(error);
    await jest.advanceTimersByTimeAsync(0);
    await outcome;
    expect(dvt.events.stats().retries).toBe(0);
  });
});
