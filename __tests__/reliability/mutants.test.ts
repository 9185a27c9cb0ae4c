// Behaviours found untested by mutation testing (npm run mutation): each test here kills mutants
// that survived the rest of the suite.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { getEventListeners } from 'node:events';
import { CancelledError, TokenBucket } from '../../src/index.js';
import { Ledger } from './ledger.js';
import { defer, flush } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';

afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

const fakeTimers = (): void => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
};

describe('LocalGate', () => {
  it('keeps first come, first served when a slot frees while jobs wait', async () => {
    // A slot frees a few microtasks after the task settles and the gate refills a few more after
    // that: work scheduled anywhere in between must still queue behind the job already waiting.
    for (let hops = 0; hops < 12; hops++) {
      const dvt = create({ concurrency: 1 });
      const order: string[] = [];
      const hold = defer();
      const first = dvt.task.schedule(() => hold.promise);
      void dvt.task.schedule(() => void order.push('queued before'));
      const late = first.then(async () => {
        for (let i = 0; i < hops; i++) await Promise.resolve();
        return dvt.task.schedule(() => void order.push('scheduled after'));
      });
      hold.resolve();
      await late;
      await dvt.onIdle();
      await flush();
      expect({ hops, order }).toEqual({ hops, order: ['queued before', 'scheduled after'] });
    }
  });
});

describe('TokenBucket', () => {
  it('rejects at once, with the reason, a waiter whose signal has already aborted, and keeps the token', async () => {
    fakeTimers();
    const bucket = new TokenBucket(1, 1);
    expect(bucket.acquire()).toBe(0);
    const refused = bucket.acquire(AbortSignal.abort('gone'));
    await expect(refused).rejects.toBe('gone');
    expect(jest.getTimerCount()).toBe(0);
    // The token the refused waiter reserved went back: the next one waits one interval, not two.
    const next = bucket.acquire();
    expect(next).toBeInstanceOf(Promise);
    await jest.advanceTimersByTimeAsync(1000);
    await expect(next).resolves.toBe(1000);
  });
});

describe('timeout policy', () => {
  it('leaves Error.stackTraceLimit as it found it', async () => {
    const before = Error.stackTraceLimit;
    const dvt = create({ timeout: 60_000 });
    await dvt.task.schedule(async () => 'quick');
    expect(Error.stackTraceLimit).toBe(before);
    expect(new Error('has a stack').stack).toMatch(/mutants\.test/);
  });
});

describe('execution', () => {
  it('leaves no listener on a with({ signal }) signal once its tasks settled', async () => {
    const controller = new AbortController();
    const dvt = create({ concurrency: 2 });
    const api = dvt.task.with({ signal: controller.signal });
    const tasks = Array.from({ length: 8 }, (_, n) => api.schedule(async () => n));
    const cancelled = api.schedule(() => new Promise(() => {}));
    cancelled.cancel();
    await Promise.all(tasks);
    await cancelled.catch(() => undefined);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  // Fixed in src/execution.ts: tasks sharing a with({ signal }) share one 'abort' listener.
  it('holds one abort listener per with({ signal }), however many tasks are in flight', async () => {
    const controller = new AbortController();
    const dvt = create();
    const api = dvt.task.with({ signal: controller.signal });
    const hold = defer();
    // Fifty: one listener each would trip MaxListenersExceededWarning, which fails the run.
    const tasks = Array.from({ length: 50 }, () => api.schedule(() => hold.promise));
    await flush();
    const listeners = getEventListeners(controller.signal, 'abort').length;
    hold.resolve();
    await Promise.all(tasks);
    expect(listeners).toBeLessThanOrEqual(1);
  });

  it('cancel() without a reason gives a CancelledError with no cause', async () => {
    const dvt = create();
    const task = dvt.task.schedule(() => new Promise(() => {}));
    task.cancel();
    const error = await task.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CancelledError);
    expect(Object.hasOwn(error as object, 'cause')).toBe(false);
  });

  it('a task cancelled before it started reports no attempt; a running one its attempt', async () => {
    const dvt = create({ concurrency: 1 });
    const ledger = new Ledger(dvt);
    const running = dvt.task.schedule(() => new Promise(() => {}));
    const queued = dvt.task.schedule(() => 'never');
    await flush();
    queued.cancel();
    running.cancel();
    await Promise.allSettled([running, queued]);
    expect(ledger.terminal(queued.id).attempt).toBeUndefined();
    expect(ledger.terminal(running.id).attempt).toBe(1);
  });
});
