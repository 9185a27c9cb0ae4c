// concurrency: 'adaptive' through the public API, on the fake clock.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { InstanceEvent, TimeoutError, type Backend } from '../../src/index.js';
import { closeAll, create } from '../helpers/instances.js';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
});
afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe("concurrency: 'adaptive'", () => {
  it('starts at initial (default 20) and reads the limit from dvt.concurrency', () => {
    expect(create({ concurrency: 'adaptive' }).concurrency).toBe(20);
    expect(create({ concurrency: 'adaptive', adaptive: { initial: 5 } }).concurrency).toBe(5);
    expect(create({ concurrency: 'adaptive', adaptive: { max: 8 } }).concurrency).toBe(8);
    expect(create({ concurrency: 'adaptive', adaptive: { min: 30 } }).concurrency).toBe(30);
  });

  it('refuses a write to dvt.concurrency with a TypeError', () => {
    const dvt = create({ concurrency: 'adaptive' });
    expect(() => (dvt.concurrency = 4)).toThrow(TypeError);
    expect(() => (dvt.concurrency = 4)).toThrow('`concurrency` is adaptive');
    expect(dvt.concurrency).toBe(20);
  });

  it('is refused with a shared back end, naming concurrency and the back end', () => {
    const backend = { createGate: () => undefined, createRateLimiter: () => undefined };
    expect(() =>
      create({ concurrency: 'adaptive', backend: backend as unknown as Backend }),
    ).toThrow(/`concurrency: 'adaptive'`.*back end/);
  });

  it('cuts the limit to 0.75 x on timeouts (the default overload) and stays >= min', async () => {
    const dvt = create({ concurrency: 'adaptive', timeout: 50, adaptive: { min: 3, initial: 40 } });
    const limits: number[] = [];
    dvt.events.on(InstanceEvent.LIMIT_CHANGED, (p) => limits.push(p.limit));
    const failures: unknown[] = [];
    const tasks = Array.from({ length: 1_200 }, () =>
      dvt.task.schedule(() => sleep(100)).catch((error: unknown) => failures.push(error)),
    );
    await jest.advanceTimersByTimeAsync(10_000);
    await Promise.all(tasks);
    expect(failures.every((e) => e instanceof TimeoutError)).toBe(true);
    expect(limits.slice(0, 2)).toEqual([30, 23]);
    expect(Math.min(...limits)).toBe(3);
  });

  it('uses isOverload to tell overload from other failures, a throw counting as no overload', async () => {
    const overloaded = Object.assign(new Error('503'), { status: 503 });
    const dvt = create({
      concurrency: 'adaptive',
      adaptive: {
        initial: 10,
        isOverload: (error) => {
          if ((error as Error).message === 'odd') throw new Error('isOverload broke');
          return (error as { status?: number }).status === 503;
        },
      },
    });
    const fail = (error: Error) => () => sleep(30).then(() => Promise.reject(error));
    // Failures that are not overloads (and a throwing isOverload) change nothing.
    const first = Array.from({ length: 200 }, (_, i) =>
      dvt.task.schedule(fail(new Error(i % 2 === 0 ? '404' : 'odd'))).catch(() => undefined),
    );
    await jest.advanceTimersByTimeAsync(3_000);
    await Promise.all(first);
    expect(dvt.concurrency).toBe(10);
    const second = Array.from({ length: 200 }, () =>
      dvt.task.schedule(fail(overloaded)).catch(() => undefined),
    );
    await jest.advanceTimersByTimeAsync(3_000);
    await Promise.all(second);
    expect(dvt.concurrency).toBeLessThan(10);
  });

  it('applies to tasks scheduled through with() and map() on the instance', async () => {
    const dvt = create({ concurrency: 'adaptive', adaptive: { initial: 4, max: 4 } });
    let running = 0;
    let peak = 0;
    const body = async () => {
      running += 1;
      peak = Math.max(peak, running);
      await sleep(10);
      running -= 1;
    };
    const done = Promise.all([
      dvt.task.with({ priority: 1 }).schedule(body),
      dvt.task.map(
        body,
        Array.from({ length: 20 }, (_, i) => i),
      ),
    ]);
    await jest.advanceTimersByTimeAsync(1_000);
    await done;
    expect(peak).toBe(4);
  });
});
