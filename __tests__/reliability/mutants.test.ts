// Behaviours found untested by mutation testing (npm run mutation): each test here kills mutants
// that survived the rest of the suite.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { TokenBucket } from '../../src/index.js';
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
