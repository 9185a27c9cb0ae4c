// Dovetail's own lifecycle: shutdown (wait true/false, concurrent calls, work after it), await
// using, onIdle. Policies and the task API have their own test files.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import { CancelledError, Event, ShutdownError, type Dovetail } from '../src/index.js';
import { defer, flush } from './helpers/defer.js';
import { closeAll, create } from './helpers/instances.js';

afterEach(closeAll);

describe('shutdown', () => {
  it('sets isShutdown from the first call, synchronously', () => {
    const dvt = create();
    expect(dvt.isShutdown).toBe(false);
    void dvt.shutdown();
    expect(dvt.isShutdown).toBe(true);
  });

  it('resolves at once when idle', async () => {
    const dvt = create();
    await expect(dvt.shutdown()).resolves.toBeUndefined();
  });

  it('with wait: true (the default) resolves after running and queued tasks finish', async () => {
    const dvt = create({ concurrency: 1 });
    const first = defer<string>();
    const second = defer<string>();
    const order: string[] = [];
    const a = dvt.task.schedule(() => first.promise).then((v) => order.push(v));
    const b = dvt.task.schedule(() => second.promise).then((v) => order.push(v));
    await flush();
    expect([dvt.active, dvt.pending]).toEqual([1, 1]);
    const closing = dvt.shutdown().then(() => order.push('shutdown'));
    first.resolve('a');
    await flush();
    expect(order).toEqual(['a']);
    second.resolve('b');
    await Promise.all([a, b, closing]);
    expect(order).toEqual(['a', 'b', 'shutdown']);
    expect([dvt.active, dvt.pending]).toEqual([0, 0]);
  });

  it('with wait: true also waits for tasks that fail or are cancelled', async () => {
    const dvt = create();
    const gate = defer();
    const failing = dvt.task.schedule(async () => {
      await gate.promise;
      throw new Error('boom');
    });
    const hanging = dvt.task.schedule(() => new Promise(() => {}));
    const closing = dvt.shutdown();
    hanging.cancel();
    gate.resolve();
    await expect(failing).rejects.toThrow('boom');
    await expect(hanging).rejects.toBeInstanceOf(CancelledError);
    await closing;
  });

  it('with wait: false cancels queued tasks, aborts running ones, and resolves without waiting', async () => {
    const dvt = create({ concurrency: 1 });
    const cancelled: string[] = [];
    dvt.events.on(Event.CANCELLED, (p) => cancelled.push(p.executionId));
    let reason: unknown;
    const never = new Promise<void>(() => {});
    const running = dvt.task.schedule(() => {
      dvt.task.current()!.signal.addEventListener('abort', function (this: AbortSignal) {
        reason = this.reason;
      });
      return never;
    });
    const queued = dvt.task.schedule(async () => 'never runs');
    await flush();
    await dvt.shutdown({ wait: false });
    expect(reason).toBeInstanceOf(ShutdownError);
    await expect(queued).rejects.toBeInstanceOf(CancelledError);
    expect(cancelled).toEqual([queued.id]);
    // The running task ignores its signal: it is still running, and nobody waited for it.
    expect(dvt.active).toBe(1);
    running.cancel();
    await expect(running).rejects.toBeInstanceOf(CancelledError);
  });

  it('is idempotent: every call, concurrent or later, returns the one shutdown', async () => {
    const dvt = create();
    const gate = defer();
    void dvt.task.schedule(() => gate.promise);
    const first = dvt.shutdown();
    const second = dvt.shutdown();
    const third = dvt.shutdown({ wait: true });
    expect(second).toBe(first);
    expect(third).toBe(first);
    const settled: number[] = [];
    void first.then(() => settled.push(1));
    void second.then(() => settled.push(2));
    await flush();
    expect(settled).toEqual([]);
    gate.resolve();
    await Promise.all([first, second, third]);
    expect(settled).toEqual([1, 2]);
    expect(dvt.shutdown()).toBe(first);
  });

  it('a later wait: false during a waiting shutdown still aborts running tasks', async () => {
    const dvt = create();
    let aborted = false;
    const task = dvt.task.schedule(
      () =>
        new Promise<void>((resolve) => {
          const signal = dvt.task.current()!.signal;
          signal.addEventListener('abort', () => {
            aborted = true;
            resolve();
          });
        }),
    );
    await flush();
    const waiting = dvt.shutdown();
    await flush();
    expect(aborted).toBe(false);
    void dvt.shutdown({ wait: false });
    expect(aborted).toBe(true);
    await waiting;
    await task;
  });

  it('rejects every kind of new work with ShutdownError, never synchronously', async () => {
    const dvt = create();
    await dvt.shutdown();
    const api = dvt.task;
    const work = async (x: number): Promise<number> => x;
    const callback = (cb: (error: unknown, value?: number) => void): void => cb(null, 1);
    const started = [
      api.schedule(work, 1),
      api.schedule(Promise.resolve(1)),
      api.toThread(() => 1),
      api.map(work, [1, 2]),
      api.fromCallback(callback),
      api.promisify(callback)(),
      api.wrap(work)(1),
      api.with({ retries: 1 }).schedule(work, 1),
    ];
    for (const promise of started) await expect(promise).rejects.toBeInstanceOf(ShutdownError);
    const iterate = async (): Promise<void> => {
      for await (const value of api.mapIterable(work, [1])) void value;
    };
    await expect(iterate()).rejects.toBeInstanceOf(ShutdownError);
  });

  it('refuses new work from the first call on, while running tasks still finish', async () => {
    const dvt = create();
    const gate = defer<number>();
    const running = dvt.task.schedule(() => gate.promise);
    const closing = dvt.shutdown();
    await expect(dvt.task.schedule(async () => 1)).rejects.toBeInstanceOf(ShutdownError);
    gate.resolve(5);
    await expect(running).resolves.toBe(5);
    await closing;
  });

  it('rejects pending events.once() waits with ShutdownError', async () => {
    const dvt = create();
    const next = dvt.events.once(Event.DONE);
    await dvt.shutdown();
    await expect(next).rejects.toBeInstanceOf(ShutdownError);
  });

  it('writes a trace line at its start and at its end', async () => {
    const debug: string[] = [];
    const dvt = create({ trace: true, traceLogger: { debug: (line) => debug.push(line) } });
    await dvt.shutdown({ wait: true });
    const lines = debug.filter((line) => line.includes('shutdown'));
    expect(lines).toEqual([
      expect.stringMatching(/^DVT-Dovetail shutdown start wait=true/),
      expect.stringMatching(/^DVT-Dovetail shutdown end/),
    ]);
  });

  it('throws TypeError synchronously for a bad wait option, and does not start shutting down', () => {
    const dvt = create();
    expect(() => dvt.shutdown({ wait: 'no' as never })).toThrow(TypeError);
    expect(() => dvt.shutdown(1 as never)).toThrow(TypeError);
    expect(dvt.isShutdown).toBe(false);
  });
});

describe('shutdown under the fake clock', () => {
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('with wait: false cancels a task sleeping between retries', async () => {
    const dvt = create({ retries: 3, retryBackoff: 1000 });
    let calls = 0;
    const task = dvt.task.schedule(() => {
      calls += 1;
      throw new Error('flaky');
    });
    const outcome = expect(task).rejects.toBeInstanceOf(CancelledError);
    await jest.advanceTimersByTimeAsync(10);
    expect(calls).toBe(1);
    await dvt.shutdown({ wait: false });
    await outcome;
    await jest.advanceTimersByTimeAsync(10_000);
    expect(calls).toBe(1);
  });

  it('with wait: false cancels at once a retry waiting for its rate-limit token', async () => {
    const dvt = create({ retries: 3, retryBackoff: 1, rateLimit: { perSecond: 1 / 60, burst: 1 } });
    let calls = 0;
    const task = dvt.task.schedule(() => {
      calls += 1;
      throw new Error('flaky');
    });
    let settled: unknown;
    task.catch((error: unknown) => (settled = error));
    // The first attempt took the one token; its retry slept 1 ms and now waits a minute for the next.
    await jest.advanceTimersByTimeAsync(10);
    expect(calls).toBe(1);
    expect(dvt.events.stats().retries).toBe(1);
    await dvt.shutdown({ wait: false });
    await jest.advanceTimersByTimeAsync(0);
    // Between attempts, as a retry asleep is: cancelled now, not when the token comes.
    expect(settled).toBeInstanceOf(CancelledError);
    expect((settled as CancelledError).cause).toBeInstanceOf(ShutdownError);
    expect(jest.getTimerCount()).toBe(0);
    await jest.advanceTimersByTimeAsync(120_000);
    expect(calls).toBe(1);
  });

  it('with wait: true lets a retrying task run its remaining attempts', async () => {
    const dvt = create({ retries: 2, retryBackoff: 100 });
    let calls = 0;
    const task = dvt.task.schedule(() => {
      calls += 1;
      if (calls < 3) throw new Error('flaky');
      return 'ok';
    });
    await jest.advanceTimersByTimeAsync(10);
    const closing = dvt.shutdown();
    await jest.advanceTimersByTimeAsync(300);
    await expect(task).resolves.toBe('ok');
    await closing;
    expect(calls).toBe(3);
  });
});

describe('await using', () => {
  it('shuts the instance down with wait: true at the end of the block', async () => {
    const gate = defer<number>();
    let seen: ReturnType<typeof create> | undefined;
    let result: Promise<number> | undefined;
    const block = (async () => {
      await using dvt = create();
      seen = dvt;
      result = dvt.task.schedule(() => gate.promise);
    })();
    await flush();
    expect(seen?.isShutdown).toBe(true);
    gate.resolve(3);
    await block;
    await expect(result).resolves.toBe(3);
    expect(seen?.active).toBe(0);
  });

  it('shuts down when the block throws, and the error propagates', async () => {
    let seen: ReturnType<typeof create> | undefined;
    const block = async (): Promise<void> => {
      await using dvt = create();
      seen = dvt;
      throw new Error('inside');
    };
    await expect(block()).rejects.toThrow('inside');
    expect(seen?.isShutdown).toBe(true);
  });

  it('[Symbol.asyncDispose] is shutdown({ wait: true })', async () => {
    const dvt = create();
    const closing = dvt.shutdown();
    expect(dvt[Symbol.asyncDispose]()).toBe(closing);
    await closing;
  });
});

describe('onIdle', () => {
  it('resolves at once when nothing is queued or running', async () => {
    const dvt = create();
    await expect(dvt.onIdle()).resolves.toBeUndefined();
  });

  it('resolves once every queued and running task settled, whatever the outcome', async () => {
    const dvt = create({ concurrency: 1 });
    const gates = [defer<number>(), defer<number>(), defer<number>()];
    const tasks = gates.map((gate) => dvt.task.schedule(() => gate.promise));
    for (const task of tasks) task.catch(() => {});
    let idle = false;
    void dvt.onIdle().then(() => {
      idle = true;
    });
    gates[0]!.resolve(1);
    await flush();
    gates[1]!.reject(new Error('x'));
    await flush();
    expect(idle).toBe(false);
    tasks[2]!.cancel();
    await flush();
    expect(idle).toBe(true);
    expect(dvt.isShutdown).toBe(false);
  });

  it('gives every caller the same wait, and a fresh one after new work', async () => {
    const dvt = create();
    const gate = defer();
    void dvt.task.schedule(() => gate.promise);
    const a = dvt.onIdle();
    const b = dvt.onIdle();
    expect(b).toBe(a);
    gate.resolve();
    await a;
    const again = defer();
    void dvt.task.schedule(() => again.promise);
    const c = dvt.onIdle();
    expect(c).not.toBe(a);
    let idle = false;
    void c.then(() => {
      idle = true;
    });
    await flush();
    expect(idle).toBe(false);
    again.resolve();
    await c;
  });
});

describe('counters at submission', () => {
  /** Schedules `n` held tasks; returns the counters seen at once and what started before a macrotask. */
  async function submit(dvt: Dovetail, n: number) {
    const order: (number | 'macrotask')[] = [];
    setImmediate(() => order.push('macrotask'));
    const gates = Array.from({ length: n }, () => defer());
    const tasks = gates.map((gate, i) =>
      dvt.task.schedule(() => {
        order.push(i);
        return gate.promise;
      }),
    );
    const counts = [dvt.active, dvt.pending];
    await flush();
    for (const gate of gates) gate.resolve();
    await Promise.all(tasks);
    return { counts, before: order.slice(0, order.indexOf('macrotask')) };
  }

  it('a fresh instance: 3 tasks at concurrency 2 show active 2, pending 1, and 2 start at once', async () => {
    const dvt = create({ concurrency: 2 });
    expect(await submit(dvt, 3)).toEqual({ counts: [2, 1], before: [0, 1] });
  });

  it('right after a burst finished, a free slot is used at once, exactly as on a fresh instance', async () => {
    const dvt = create({ concurrency: 2 });
    await Promise.all([1, 2].map(() => dvt.task.schedule(async () => {})));
    expect(await submit(dvt, 3)).toEqual({ counts: [2, 1], before: [0, 1] });
    expect(await submit(dvt, 3)).toEqual({ counts: [2, 1], before: [0, 1] });
  });

  it('holds for any run of bursts and concurrency', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 6 })), {
          minLength: 1,
          maxLength: 5,
        }),
        async (concurrency, bursts) => {
          const dvt = create({ concurrency });
          for (const [n, quick] of bursts) {
            // A burst of tasks that finish at once, awaited: its lanes are still closing when the
            // next tasks arrive.
            await Promise.all(
              Array.from({ length: quick }, () => dvt.task.schedule(async () => {})),
            );
            const { counts, before } = await submit(dvt, n);
            const starting = Math.min(concurrency, n);
            expect(counts).toEqual([starting, n - starting]);
            expect(before).toEqual(Array.from({ length: starting }, (_, i) => i));
          }
        },
      ),
      { numRuns: 40 },
    );
  });
});
