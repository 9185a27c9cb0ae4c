import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
  CancelledError,
  currentTask,
  Event,
  ShutdownError,
  TimeoutError,
  type TaskContext,
} from '../src/index.js';
import { defer, flush } from './helpers/defer.js';
import { closeAll, create } from './helpers/instances.js';

afterEach(closeAll);

describe('schedule', () => {
  it('runs an async function with its arguments', async () => {
    const dvt = create();
    await expect(
      dvt.task.schedule(async (a: number, b: string) => `${a}${b}`, 1, 'x'),
    ).resolves.toBe('1x');
  });

  it('runs a sync function and resolves with its value', async () => {
    const dvt = create();
    await expect(dvt.task.schedule((n: number) => n * 2, 21)).resolves.toBe(42);
  });

  it('adopts an existing promise', async () => {
    const dvt = create();
    await expect(dvt.task.schedule(Promise.resolve('done'))).resolves.toBe('done');
  });

  it('adopts a thenable that is not a native promise', async () => {
    const dvt = create();
    const thenable = {
      then: (resolve: (v: number) => void) => resolve(7),
    } as unknown as PromiseLike<number>;
    await expect(dvt.task.schedule(thenable)).resolves.toBe(7);
  });

  it('throws TypeError synchronously for anything else, naming the argument', () => {
    const dvt = create();
    for (const bad of [1, 'x', null, undefined, {}, [], Symbol('s')]) {
      expect(() => dvt.task.schedule(bad as never)).toThrow(TypeError);
    }
    expect(() => dvt.task.schedule(42 as never)).toThrow(/`work`.*42/);
  });

  it('never runs the function body inside the schedule call', async () => {
    const dvt = create();
    let ran = false;
    const task = dvt.task.schedule(() => {
      ran = true;
    });
    expect(ran).toBe(false);
    await task;
    expect(ran).toBe(true);
  });

  it('returns a real Promise with an id and cancel()', async () => {
    const dvt = create();
    const task = dvt.task.schedule(async () => 1);
    expect(task).toBeInstanceOf(Promise);
    expect(typeof task.id).toBe('string');
    expect(typeof task.cancel).toBe('function');
    expect(await Promise.all([task, dvt.task.schedule(async () => 2)])).toEqual([1, 2]);
  });

  it('behaves as a plain promise: then() derives plain promises, cancel works detached', async () => {
    const dvt = create({ concurrency: 1 });
    const blocker = dvt.task.schedule(() => new Promise(() => {}));
    const task = dvt.task.schedule(async () => 1);
    expect(task.constructor).toBe(Promise);
    const derived = task.then((value) => value);
    expect(Object.getPrototypeOf(derived)).toBe(Promise.prototype);
    // Read once, the same function every time, and it needs no `this`.
    const { cancel, id } = task;
    expect(task.cancel).toBe(cancel);
    expect(id).toBe(task.id);
    expect(cancel('gone')).toBe(true);
    expect(cancel()).toBe(false);
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await expect(derived).rejects.toBeInstanceOf(CancelledError);
    blocker.cancel();
    await blocker.catch(() => undefined);
  });

  it('gives every task a distinct id', () => {
    const dvt = create();
    const ids = new Set(Array.from({ length: 50 }, () => dvt.task.schedule(() => 1).id));
    expect(ids.size).toBe(50);
  });

  it('passes user errors through unchanged, including non-Error values', async () => {
    const dvt = create();
    const error = new RangeError('mine');
    await expect(dvt.task.schedule(() => Promise.reject(error))).rejects.toBe(error);
    for (const value of ['text', 42, undefined, null, { code: 1 }]) {
      await expect(
        dvt.task.schedule(() => {
          throw value;
        }),
      ).rejects.toBe(value);
    }
  });

  it('rejects with ShutdownError, never throwing, once shutdown began', async () => {
    const dvt = create();
    void dvt.shutdown();
    let task: Promise<unknown> | undefined;
    expect(() => {
      task = dvt.task.schedule(() => 1);
    }).not.toThrow();
    await expect(task).rejects.toBeInstanceOf(ShutdownError);
  });

  it('still throws TypeError for a bad argument after shutdown', async () => {
    const dvt = create();
    await dvt.shutdown();
    expect(() => dvt.task.schedule(5 as never)).toThrow(TypeError);
  });
});

describe('cancel', () => {
  it('rejects a running task with CancelledError at once, even if the function ignores its signal', async () => {
    const dvt = create();
    const started = defer();
    const task = dvt.task.schedule(async () => {
      started.resolve();
      await new Promise(() => {});
    });
    await started.promise;
    expect(task.cancel('enough')).toBe(true);
    const error = await task.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CancelledError);
    expect((error as CancelledError).cause).toBe('enough');
    expect(dvt.active).toBe(0);
  });

  it('aborts the running attempt signal', async () => {
    const dvt = create();
    let signal: AbortSignal | undefined;
    const started = defer();
    const task = dvt.task.schedule(async () => {
      signal = dvt.task.current()?.signal;
      started.resolve();
      await new Promise(() => {});
    });
    await started.promise;
    task.cancel();
    await task.catch(() => undefined);
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBeInstanceOf(CancelledError);
  });

  it('cancels a queued task before it runs', async () => {
    const dvt = create({ concurrency: 1 });
    const hold = defer();
    const first = dvt.task.schedule(() => hold.promise);
    let ran = false;
    const second = dvt.task.schedule(() => {
      ran = true;
    });
    expect(dvt.pending).toBe(1);
    expect(second.cancel()).toBe(true);
    await expect(second).rejects.toBeInstanceOf(CancelledError);
    expect(dvt.pending).toBe(0);
    hold.resolve();
    await first;
    await flush();
    expect(ran).toBe(false);
  });

  it('returns false once the task has settled', async () => {
    const dvt = create();
    const task = dvt.task.schedule(async () => 1);
    await task;
    expect(task.cancel()).toBe(false);
  });

  it('emits cancelled once and is not retried', async () => {
    const dvt = create({ retries: 3 });
    const seen: string[] = [];
    for (const event of Object.values(Event)) dvt.events.on(event, (p) => seen.push(p.event));
    let calls = 0;
    const started = defer();
    const task = dvt.task.schedule(async () => {
      calls += 1;
      started.resolve();
      await new Promise(() => {});
    });
    await started.promise;
    task.cancel();
    task.cancel();
    await task.catch(() => undefined);
    await flush();
    expect(calls).toBe(1);
    expect(seen).toEqual(['queued', 'started', 'cancelled']);
    expect(dvt.events.stats().cancelled).toBe(1);
  });

  it('does not crash the process when a cancelled task is never awaited', async () => {
    const dvt = create();
    const task = dvt.task.schedule(() => new Promise(() => {}));
    task.cancel();
    await flush(); // the setup file fails the test on an unhandled rejection
  });

  it('cancels through a signal given to with(), with the reason as cause', async () => {
    const dvt = create();
    const controller = new AbortController();
    const task = dvt.task.with({ signal: controller.signal }).schedule(() => new Promise(() => {}));
    controller.abort('stop');
    const error = await task.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CancelledError);
    expect((error as Error).cause).toBe('stop');
  });

  it('starts nothing when the signal has already aborted', async () => {
    const dvt = create();
    let ran = false;
    const task = dvt.task.with({ signal: AbortSignal.abort('early') }).schedule(() => {
      ran = true;
    });
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await flush();
    expect(ran).toBe(false);
  });
});

describe('toThread', () => {
  it('runs a sync function in a later macrotask', async () => {
    const dvt = create();
    const order: string[] = [];
    const task = dvt.task.toThread(() => order.push('fn'));
    setImmediate(() => order.push('immediate before'));
    await Promise.resolve();
    order.push('microtasks done');
    await task;
    expect(order[0]).toBe('microtasks done');
    expect(order).toContain('fn');
  });

  it('resolves with the value and rejects with the thrown value', async () => {
    const dvt = create();
    await expect(dvt.task.toThread((a: number, b: number) => a + b, 2, 3)).resolves.toBe(5);
    const error = new Error('sync');
    await expect(
      dvt.task.toThread(() => {
        throw error;
      }),
    ).rejects.toBe(error);
  });

  it('throws TypeError for a non-function', () => {
    expect(() => create().task.toThread('x' as never)).toThrow(TypeError);
  });

  it('reports method toThread', async () => {
    const dvt = create();
    const methods: string[] = [];
    dvt.events.on(Event.DONE, (p) => methods.push(p.method));
    await dvt.task.toThread(() => 1);
    expect(methods).toEqual(['toThread']);
  });
});

describe('fromCallback and promisify', () => {
  const legacyAdd = (
    a: number,
    b: number,
    callback: (error: Error | null, value?: number) => void,
  ): void => {
    setImmediate(() => callback(null, a + b));
  };

  it('resolves with the callback value', async () => {
    const dvt = create();
    await expect(dvt.task.fromCallback(legacyAdd, 2, 3)).resolves.toBe(5);
  });

  it('rejects with the callback error', async () => {
    const dvt = create();
    const error = new Error('io');
    const failing = (callback: (error: Error | null) => void): void => callback(error);
    await expect(dvt.task.fromCallback(failing)).rejects.toBe(error);
  });

  it('ignores a second call of the callback', async () => {
    const dvt = create();
    const twice = (callback: (error: Error | null, value?: string) => void): void => {
      callback(null, 'first');
      callback(null, 'second');
      callback(new Error('late'));
    };
    await expect(dvt.task.fromCallback(twice)).resolves.toBe('first');
  });

  it('rejects when the function throws synchronously', async () => {
    const dvt = create();
    const error = new Error('sync throw');
    const throwing = (): void => {
      throw error;
    };
    await expect(dvt.task.fromCallback(throwing)).rejects.toBe(error);
  });

  it('ends a callback never called through the timeout', async () => {
    const dvt = create({ timeout: 30 });
    const never = (_callback: (error: Error | null) => void): void => {};
    await expect(dvt.task.fromCallback(never)).rejects.toBeInstanceOf(TimeoutError);
  });

  it('retries a callback API', async () => {
    const dvt = create({ retries: 2 });
    let calls = 0;
    const flaky = (callback: (error: Error | null, value?: number) => void): void => {
      calls += 1;
      if (calls < 3) callback(new Error(`fail ${calls}`));
      else callback(null, calls);
    };
    await expect(dvt.task.fromCallback(flaky)).resolves.toBe(3);
  });

  it('promisify returns an async function running each call as a task', async () => {
    const dvt = create();
    const methods: string[] = [];
    dvt.events.on(Event.DONE, (p) => methods.push(p.method));
    const add = dvt.task.promisify(legacyAdd);
    await expect(Promise.all([add(1, 2), add(3, 4)])).resolves.toEqual([3, 7]);
    expect(methods).toEqual(['promisify', 'promisify']);
  });

  it('throws TypeError for a non-function', () => {
    const dvt = create();
    expect(() =>
      dvt.task.fromCallback(null as unknown as (done: (error: unknown) => void) => void),
    ).toThrow(TypeError);
    expect(() => dvt.task.promisify(1 as never)).toThrow(TypeError);
  });
});

describe('wrap', () => {
  it('returns a function that runs fn as a task on each call', async () => {
    const dvt = create({ concurrency: 1 });
    const double = dvt.task.wrap(async (n: number) => n * 2);
    const task = double(4);
    expect(typeof task.id).toBe('string');
    await expect(task).resolves.toBe(8);
  });

  it('applies the instance policy and reports method wrap', async () => {
    const dvt = create({ retries: 1 });
    let calls = 0;
    const methods = new Set<string>();
    dvt.events.on(Event.STARTED, (p) => methods.add(p.method));
    const flaky = dvt.task.wrap(() => {
      calls += 1;
      if (calls === 1) throw new Error('once');
      return 'ok';
    });
    await expect(flaky()).resolves.toBe('ok');
    expect(calls).toBe(2);
    expect([...methods]).toEqual(['wrap']);
  });

  it('keeps this: a wrapped function called as a method sees its object', async () => {
    const dvt = create({ retries: 1 });
    const seen: unknown[] = [];
    const account = {
      balance: 42,
      read: dvt.task.wrap(function (this: { balance: number }, extra: number) {
        seen.push(this);
        if (seen.length === 1) throw new Error('retried with the same this');
        return this.balance + extra;
      }),
    };
    await expect(account.read(1)).resolves.toBe(43);
    expect(seen).toEqual([account, account]);
    const other = { balance: 7 };
    await expect(account.read.call(other, 0)).resolves.toBe(7);
  });

  it('a method call keeps its arguments and its function-scoped listeners', async () => {
    const dvt = create();
    const names: string[] = [];
    function total(this: { base: number }, a: number, b: number): number {
      return this.base + a + b;
    }
    dvt.events.on(Event.DONE, (p) => names.push(p.function ?? ''), { function: total });
    const box = { base: 100, total: dvt.task.wrap(total) };
    await expect(box.total(2, 3)).resolves.toBe(105);
    expect(names).toEqual(['total']);
  });

  it('called plainly, fn gets no this', async () => {
    const dvt = create();
    const wrapped = dvt.task.wrap(function (this: unknown) {
      return this;
    });
    await expect(wrapped()).resolves.toBeUndefined();
  });

  it('throws TypeError for a non-function', () => {
    expect(() => create().task.wrap({} as never)).toThrow(TypeError);
  });
});

describe('with', () => {
  it('overrides the policy for the returned API only', async () => {
    const dvt = create({ retries: 0 });
    let calls = 0;
    const failTwice = (): string => {
      calls += 1;
      if (calls <= 2) throw new Error('no');
      return 'yes';
    };
    await expect(dvt.task.with({ retries: 2 }).schedule(failTwice)).resolves.toBe('yes');
    calls = 0;
    await expect(dvt.task.schedule(failTwice)).rejects.toThrow('no');
  });

  it('validates overrides as the constructor does', () => {
    const dvt = create();
    expect(() => dvt.task.with({ timeout: 0 })).toThrow(RangeError);
    expect(() => dvt.task.with({ timeout: -1 })).toThrow(/timeout/);
    expect(() => dvt.task.with({ retries: 1.5 })).toThrow(RangeError);
    expect(() => dvt.task.with({ retries: 'x' as never })).toThrow(TypeError);
    expect(() => dvt.task.with({ retryBackoff: -5 })).toThrow(RangeError);
    expect(() => dvt.task.with({ signal: {} as never })).toThrow(TypeError);
    expect(() => dvt.task.with({ shouldRetry: 1 as never })).toThrow(TypeError);
    expect(() => dvt.task.with(null as never)).toThrow(TypeError);
  });

  it('treats undefined as the default', async () => {
    const dvt = create({ retries: 1 });
    let calls = 0;
    await dvt.task
      .with({ retries: undefined, timeout: undefined })
      .schedule(() => {
        calls += 1;
        throw new Error('x');
      })
      .catch(() => undefined);
    expect(calls).toBe(2);
  });

  it('uses shouldRetry to stop retrying, with the error and the failed attempt', async () => {
    const dvt = create({ retries: 5 });
    const asked: Array<[unknown, number]> = [];
    const error = new Error('fatal');
    const task = dvt.task
      .with({
        shouldRetry: (e, attempt) => {
          asked.push([e, attempt]);
          return attempt < 2;
        },
      })
      .schedule(() => {
        throw error;
      });
    await expect(task).rejects.toBe(error);
    expect(asked).toEqual([
      [error, 1],
      [error, 2],
    ]);
  });
});

describe('current', () => {
  it('is undefined outside a task', () => {
    expect(create().task.current()).toBeUndefined();
    expect(currentTask()).toBeUndefined();
  });

  it('returns id, attempt, signal and function inside a task, across awaits', async () => {
    const dvt = create({ retries: 1 });
    let attempts = 0;
    async function namedWork(): Promise<[TaskContext | undefined, TaskContext | undefined]> {
      const before = dvt.task.current();
      await new Promise((resolve) => setImmediate(resolve));
      const after = currentTask();
      attempts += 1;
      if (attempts === 1) throw new Error('retry me');
      return [before, after];
    }
    const task = dvt.task.schedule(namedWork);
    const [before, after] = await task;
    expect(before?.id).toBe(task.id);
    expect(after?.id).toBe(task.id);
    expect(after?.attempt).toBe(2);
    expect(after?.function).toBe('namedWork');
    expect(after?.signal).toBeInstanceOf(AbortSignal);
  });

  it("names an anonymous function '<anonymous>'", async () => {
    const dvt = create();
    const name = await dvt.task.schedule(
      [() => dvt.task.current()?.function][0] as () => string | undefined,
    );
    expect(['<anonymous>', '']).toContain(name === '' ? '' : name);
  });

  it("ends with the task's attempt: what the instance runs after it sees no task", async () => {
    // Switches the store that follows a task across awaits on (Node 20 and 22 wait for a call).
    expect(currentTask()).toBeUndefined();
    const dvt = create({ concurrency: 1 });
    const inside: Array<string | undefined> = [];
    const after: Array<string | undefined> = [];
    dvt.events.on('done', () => void after.push(currentTask()?.id));
    const sync = dvt.task.schedule(() => void inside.push(currentTask()?.id));
    const later = dvt.task.schedule(async () => {
      await Promise.resolve();
      inside.push(currentTask()?.id);
    });
    const retried = dvt.task.with({ retries: 1, retryBackoff: 0 }).schedule(() => {
      inside.push(currentTask()?.id);
      if (inside.length === 3) throw new Error('again');
    });
    await Promise.all([sync, later, retried]);
    expect(inside).toEqual([sync.id, later.id, retried.id, retried.id]);
    expect(after).toEqual([undefined, undefined, undefined]);
    expect(currentTask()).toBeUndefined();
  });

  it('keeps concurrent tasks apart', async () => {
    const dvt = create();
    const gate = defer();
    const work = async (): Promise<string | undefined> => {
      await gate.promise;
      return currentTask()?.id;
    };
    const a = dvt.task.schedule(work);
    const b = dvt.task.schedule(work);
    await flush();
    gate.resolve();
    expect(await a).toBe(a.id);
    expect(await b).toBe(b.id);
  });
});

describe('timeout', () => {
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
  });
  afterEach(() => {
    jest.useRealTimers();
  });

  it('rejects with TimeoutError carrying the timeout and aborts the attempt signal', async () => {
    const dvt = create({ timeout: 500 });
    let signal: AbortSignal | undefined;
    const task = dvt.task.schedule(() => {
      signal = currentTask()?.signal;
      return new Promise(() => {});
    });
    const outcome = task.catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(499);
    expect(signal?.aborted).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    const error = await outcome;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).timeout).toBe(500);
    expect((error as TimeoutError).message).toMatch(/500 ms/);
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBe(error);
  });

  it('clears its timer as soon as the attempt settles', async () => {
    const dvt = create({ timeout: 60_000 });
    await dvt.task.schedule(async () => 'quick');
    expect(jest.getTimerCount()).toBe(0);
  });

  it('clears its timer when the task is cancelled', async () => {
    const dvt = create({ timeout: 60_000 });
    const task = dvt.task.schedule(() => new Promise(() => {}));
    await jest.advanceTimersByTimeAsync(0);
    expect(jest.getTimerCount()).toBe(1);
    task.cancel();
    await task.catch(() => undefined);
    expect(jest.getTimerCount()).toBe(0);
  });

  it('applies per attempt, and a timed-out attempt is retried', async () => {
    const dvt = create({ timeout: 100, retries: 1, retryBackoff: 10 });
    let calls = 0;
    const task = dvt.task.schedule(() => {
      calls += 1;
      return calls === 1 ? new Promise(() => {}) : Promise.resolve('second');
    });
    await jest.advanceTimersByTimeAsync(110);
    await expect(task).resolves.toBe('second');
    expect(calls).toBe(2);
  });

  it('applies to a promise, which is never retried', async () => {
    const dvt = create({ timeout: 100, retries: 3 });
    const task = dvt.task.schedule(new Promise(() => {}));
    const outcome = task.catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(100);
    expect(await outcome).toBeInstanceOf(TimeoutError);
    expect(dvt.events.stats().started).toBe(1);
  });
});

describe('awkward work', () => {
  it('rejects when a thenable throws from then()', async () => {
    const dvt = create();
    const error = new Error('then broke');
    const hostile = {
      then(): never {
        throw error;
      },
    } as unknown as PromiseLike<never>;
    await expect(dvt.task.schedule(hostile)).rejects.toBe(error);
    await expect(dvt.task.schedule(() => hostile)).rejects.toBe(error);
  });

  it('observes a rejected promise while it waits for its slot', async () => {
    const dvt = create({ concurrency: 1 });
    const hold = defer();
    const first = dvt.task.schedule(() => hold.promise);
    const error = new Error('early');
    const second = dvt.task.schedule(Promise.reject(error));
    await new Promise((resolve) => setTimeout(resolve, 20)); // the setup fails on an unhandled rejection
    hold.resolve();
    await first;
    await expect(second).rejects.toBe(error);
  });
});

describe('toThread and shutdown', () => {
  it('never runs the body once the instance shut down without waiting', async () => {
    const dvt = create();
    let ran = false;
    const task = dvt.task.toThread(() => {
      ran = true;
    });
    await Promise.resolve();
    await Promise.resolve();
    await dvt.shutdown({ wait: false });
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await flush();
    expect(ran).toBe(false);
  });
});

describe('a signal shared by many tasks', () => {
  it('cancels every task still running when it aborts, and leaves the settled ones alone', async () => {
    const dvt = create();
    const controller = new AbortController();
    const api = dvt.task.with({ signal: controller.signal });
    const done = await api.schedule(async () => 'early');
    const running = Array.from({ length: 30 }, () => api.schedule(() => new Promise(() => {})));
    await flush();
    controller.abort('all stop');
    for (const task of running) await expect(task).rejects.toBeInstanceOf(CancelledError);
    expect(done).toBe('early');
    expect(dvt.events.stats()).toMatchObject({ done: 1, cancelled: 30 });
  });
});
