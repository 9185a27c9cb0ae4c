// Fault injection: work, callbacks, listeners and callers that misbehave. Whatever happens, every
// task settles exactly once, emits exactly one terminal event, and the counters balance at rest.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import {
  CancelledError,
  DovetailError,
  Event,
  ShutdownError,
  TimeoutError,
  type NodeCallback,
} from '../../src/index.js';
import { defer, flush } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';
import { expectBalanced, Ledger } from './ledger.js';

afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
  jest.restoreAllMocks();
});

const fakeTimers = (): void => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
};

/** Silences and records process warnings (the setup file fails a test on an unexpected one). */
const spyWarnings = (): jest.SpiedFunction<typeof process.emitWarning> =>
  jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);

const warningCodes = (spy: jest.SpiedFunction<typeof process.emitWarning>): unknown[] =>
  spy.mock.calls.map((call) => (call[1] as { code?: string } | undefined)?.code);

describe('work that fails badly', () => {
  it('a sync function that throws rejects with the same error, after its retries', async () => {
    const dvt = create({ retries: 1 });
    const ledger = new Ledger(dvt);
    const errors = [new Error('first'), new Error('second')];
    let calls = 0;
    const task = dvt.task.schedule((): number => {
      throw errors[calls++];
    });
    await expect(task).rejects.toBe(errors[1]);
    expect(ledger.events(task.id)).toEqual(['queued', 'started', 'retry', 'started', 'error']);
    expect(ledger.terminal(task.id).error).toBe(errors[1]);
    expectBalanced(dvt, ledger);
  });

  it.each([
    ['undefined', undefined],
    ['null', null],
    ['a string', 'plain text'],
    ['a number', 0],
    ['a plain object', { code: 42 }],
    ['a frozen object without prototype', Object.freeze(Object.create(null) as object)],
  ])(
    'an async function rejecting with %s rejects with that same value, retried',
    async (_, value) => {
      const dvt = create({ retries: 1 });
      const ledger = new Ledger(dvt);
      const task = dvt.task.schedule(async () => {
        throw value;
      });
      const outcome = await task.then(
        () => ({ ok: true as const }),
        (error: unknown) => ({ ok: false as const, error }),
      );
      expect(outcome).toEqual({ ok: false, error: value });
      if (!outcome.ok) expect(outcome.error).toBe(value);
      expect(ledger.events(task.id)).toEqual(['queued', 'started', 'retry', 'started', 'error']);
      expect(ledger.byId.get(task.id)?.find((p) => p.event === 'retry')?.error).toBe(value);
      expect(ledger.terminal(task.id).error).toBe(value);
      expectBalanced(dvt, ledger);
    },
  );

  it('a thenable that throws from then() rejects, as a promise and as a function result', async () => {
    const dvt = create({ retries: 1 });
    const ledger = new Ledger(dvt);
    const error = new Error('then broke');
    const hostile = {
      then(): never {
        throw error;
      },
    } as unknown as PromiseLike<never>;
    const adopted = dvt.task.schedule(hostile);
    let calls = 0;
    const returned = dvt.task.schedule(() => {
      calls += 1;
      return hostile;
    });
    await expect(adopted).rejects.toBe(error);
    await expect(returned).rejects.toBe(error);
    expect(calls).toBe(2); // a function is retried; a thenable handed over cannot be
    expect(ledger.events(adopted.id)).toEqual(['queued', 'started', 'error']);
    expectBalanced(dvt, ledger);
  });

  it('a thenable that answers several times settles the task once, with its first answer', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    const noisy = {
      then(resolve: (value: string) => void, reject: (error: unknown) => void): void {
        resolve('first');
        reject(new Error('late'));
        resolve('later');
      },
    } as unknown as PromiseLike<string>;
    await expect(dvt.task.schedule(() => noisy)).resolves.toBe('first');
    await flush();
    expect(ledger.count(Event.DONE)).toBe(1);
    expectBalanced(dvt, ledger);
  });

  it('a callback called twice settles once, with the first call, whatever the second says', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    const sync = dvt.task.fromCallback((cb: NodeCallback<number>) => {
      cb(null, 1);
      cb(null, 2);
      cb(new Error('late failure'));
    });
    const later = dvt.task.fromCallback((cb: NodeCallback<number>) => {
      setImmediate(() => cb(new Error('first failure')));
      setImmediate(() => cb(null, 3));
    });
    await expect(sync).resolves.toBe(1);
    await expect(later).rejects.toThrow('first failure');
    await flush();
    expect(ledger.terminal(sync.id).event).toBe('done');
    expect(ledger.terminal(later.id).event).toBe('error');
    expectBalanced(dvt, ledger);
  });

  it('a callback API that answers and then throws keeps the answer', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    const task = dvt.task.fromCallback((cb: NodeCallback<string>) => {
      cb(null, 'answered');
      throw new Error('thrown after answering');
    });
    await expect(task).resolves.toBe('answered');
    expectBalanced(dvt, ledger);
  });

  it('a callback never called is ended by the timeout, on every attempt, and leaves no timer', async () => {
    fakeTimers();
    const dvt = create({ timeout: 100, retries: 1, retryBackoff: 50 });
    const ledger = new Ledger(dvt);
    let calls = 0;
    const task = dvt.task.fromCallback((_cb: NodeCallback<string>) => {
      calls += 1;
    });
    const outcome = task.catch((e: unknown) => e);
    await jest.advanceTimersByTimeAsync(100 + 50 + 100);
    const error = await outcome;
    expect(error).toBeInstanceOf(TimeoutError);
    expect(calls).toBe(2);
    expect(ledger.terminal(task.id).timeout).toBe(100);
    expect(jest.getTimerCount()).toBe(0);
    expectBalanced(dvt, ledger);
  });
});

describe('listeners that misbehave', () => {
  it('a throwing listener leaves the task and the other listeners alone, as a warning', async () => {
    const warn = spyWarnings();
    const dvt = create();
    const ledger = new Ledger(dvt);
    for (const event of [Event.QUEUED, Event.STARTED, Event.DONE]) {
      dvt.events.on(event, () => {
        throw new Error(`listener for ${event} broke`);
      });
    }
    const after: string[] = [];
    dvt.events.on(Event.DONE, (p) => after.push(p.executionId));
    const task = dvt.task.schedule(async () => 'fine');
    await expect(task).resolves.toBe('fine');
    expect(after).toEqual([task.id]);
    expect(warningCodes(warn)).toEqual(Array(3).fill('DOVETAIL_LISTENER_ERROR'));
    expectBalanced(dvt, ledger);
  });

  it('a rejecting async listener (even with undefined) leaves the task alone, as a warning', async () => {
    const warn = spyWarnings();
    const dvt = create();
    const ledger = new Ledger(dvt);
    dvt.events.on(Event.STARTED, async () => {
      await flush();

      throw undefined;
    });
    dvt.events.on(Event.ERROR, () => Promise.reject(new Error('listener rejected')));
    const ok = dvt.task.schedule(async () => 'fine');
    const failing = dvt.task.schedule(async () => {
      throw new Error('work failed');
    });
    await expect(ok).resolves.toBe('fine');
    await expect(failing).rejects.toThrow('work failed');
    await flush();
    await flush();
    expect(warningCodes(warn)).toEqual(Array(3).fill('DOVETAIL_LISTENER_ERROR'));
    expectBalanced(dvt, ledger);
  });

  it('a listener that schedules a task on every done stays bounded by its own logic', async () => {
    const dvt = create({ concurrency: 2 });
    const ledger = new Ledger(dvt);
    let spawned = 0;
    const work = async (): Promise<void> => {
      await flush();
    };
    dvt.events.on(Event.DONE, () => {
      if (spawned < 50) {
        spawned += 1;
        void dvt.task.schedule(work);
      }
    });
    void dvt.task.schedule(work);
    for (let i = 0; i < 500 && (spawned < 50 || dvt.active + dvt.pending > 0); i++) await flush();
    await dvt.onIdle();
    expect(dvt.events.stats().done).toBe(51);
    expectBalanced(dvt, ledger);
  });

  it('a listener scheduling from queued is not re-entered, unless allowed, and then stops at maxChainDepth', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    const plain = dvt.events.on(Event.QUEUED, () => void dvt.task.schedule(() => 'child'));
    void dvt.task.schedule(() => 'parent');
    await dvt.onIdle();
    expect(dvt.events.stats().queued).toBe(2); // the child's queued event skipped the busy listener
    dvt.events.off(plain);
    dvt.events.on(Event.QUEUED, () => void dvt.task.schedule(() => 'child'), {
      allowReentry: true,
      maxChainDepth: 3,
    });
    void dvt.task.schedule(() => 'parent');
    await dvt.onIdle();
    expect(dvt.events.stats().queued).toBe(2 + 4); // parent + three nested children
    expectBalanced(dvt, ledger);
  });

  it('a listener calling shutdown({ wait: false }) on started: the rest is cancelled, nothing hangs', async () => {
    const dvt = create({ concurrency: 1 });
    const ledger = new Ledger(dvt);
    let closing: Promise<void> | undefined;
    let signal: AbortSignal | undefined;
    dvt.events.on(Event.STARTED, () => {
      closing ??= dvt.shutdown({ wait: false });
    });
    const first = dvt.task.schedule(async () => {
      signal = dvt.task.current()?.signal;
      return 'first';
    });
    const rest = [1, 2, 3].map((n) => dvt.task.schedule(async () => n));
    await expect(first).resolves.toBe('first');
    expect(signal?.aborted).toBe(true);
    expect(signal?.reason).toBeInstanceOf(ShutdownError);
    for (const task of rest) await expect(task).rejects.toBeInstanceOf(CancelledError);
    await closing;
    await expect(dvt.task.schedule(() => 1)).rejects.toBeInstanceOf(ShutdownError);
    expectBalanced(dvt, ledger);
  });

  it('a listener awaiting shutdown() on done: the shutdown resolves once the last task settled', async () => {
    const dvt = create({ concurrency: 2 });
    const ledger = new Ledger(dvt);
    let closing: Promise<void> | undefined;
    dvt.events.on(Event.DONE, async () => {
      closing ??= dvt.shutdown();
      await closing;
    });
    const tasks = [1, 2, 3, 4].map((n) => dvt.task.schedule(async () => n));
    await expect(Promise.all(tasks)).resolves.toEqual([1, 2, 3, 4]);
    await closing;
    expect(dvt.isShutdown).toBe(true);
    expectBalanced(dvt, ledger);
  });

  it('a listener calling shutdown({ wait: false }) on queued cancels the task being queued', async () => {
    const dvt = create({ concurrency: 1 });
    const ledger = new Ledger(dvt);
    let closing: Promise<void> | undefined;
    dvt.events.on(Event.QUEUED, () => {
      closing ??= dvt.shutdown({ wait: false });
    });
    let ran = false;
    const task = dvt.task.schedule(() => {
      ran = true;
    });
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await closing;
    await flush();
    expect(ran).toBe(false);
    expect(ledger.events(task.id)).toEqual(['queued', 'cancelled']);
    expectBalanced(dvt, ledger);
  });
});

describe('cancel() at every stage', () => {
  it('queued: rejects at once, never runs, frees nothing it did not hold', async () => {
    const dvt = create({ concurrency: 1 });
    const ledger = new Ledger(dvt);
    const hold = defer();
    const first = dvt.task.schedule(() => hold.promise);
    let ran = false;
    const second = dvt.task.schedule(() => {
      ran = true;
    });
    const third = dvt.task.schedule(() => 'third');
    expect([dvt.active, dvt.pending]).toEqual([1, 2]);
    expect(second.cancel()).toBe(true);
    expect([dvt.active, dvt.pending]).toEqual([1, 1]);
    await expect(second).rejects.toBeInstanceOf(CancelledError);
    hold.resolve();
    await expect(third).resolves.toBe('third');
    await first;
    expect(ran).toBe(false);
    expect(ledger.events(second.id)).toEqual(['queued', 'cancelled']);
    expectBalanced(dvt, ledger);
  });

  it('waiting for a token: rejects at once, gives the token and the slot back, leaves no timer', async () => {
    fakeTimers();
    const dvt = create({ concurrency: 1, rateLimit: { perSecond: 1, burst: 1 } });
    const ledger = new Ledger(dvt);
    await dvt.task.schedule(() => 'takes the only token');
    const waiting = dvt.task.schedule(() => 'never');
    await jest.advanceTimersByTimeAsync(10);
    expect([dvt.active, dvt.pending]).toEqual([0, 1]);
    expect(jest.getTimerCount()).toBe(1);
    expect(waiting.cancel()).toBe(true);
    await expect(waiting).rejects.toBeInstanceOf(CancelledError);
    expect([dvt.active, dvt.pending]).toEqual([0, 0]);
    expect(jest.getTimerCount()).toBe(0);
    // The reserved token went back: the next task waits for the next refill, not one more.
    const next = dvt.task.schedule(() => 'next');
    await jest.advanceTimersByTimeAsync(990);
    await expect(next).resolves.toBe('next');
    expect(ledger.byId.get(next.id)?.find((p) => p.event === 'rate_limited')?.waited).toBe(990);
    expect(ledger.events(waiting.id)).toEqual(['queued', 'cancelled']);
    expectBalanced(dvt, ledger);
  });

  it('running: rejects at once although the work ignores its signal, and clears its timeout', async () => {
    fakeTimers();
    const dvt = create({ timeout: 60_000, concurrency: 1 });
    const ledger = new Ledger(dvt);
    let signal: AbortSignal | undefined;
    const task = dvt.task.schedule(() => {
      signal = dvt.task.current()?.signal;
      return new Promise(() => {});
    });
    const next = dvt.task.schedule(() => 'next');
    await jest.advanceTimersByTimeAsync(0);
    expect(dvt.active).toBe(1);
    expect(task.cancel('enough')).toBe(true);
    const error = await task.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CancelledError);
    expect((error as CancelledError).cause).toBe('enough');
    expect(signal?.reason).toBe(error);
    await expect(next).resolves.toBe('next'); // its slot was freed
    expect(jest.getTimerCount()).toBe(0);
    expect(ledger.events(task.id)).toEqual(['queued', 'started', 'cancelled']);
    expectBalanced(dvt, ledger);
  });

  it('between retries: rejects at once, no further attempt, no timer left', async () => {
    fakeTimers();
    const dvt = create({ retries: 3, retryBackoff: 1000 });
    const ledger = new Ledger(dvt);
    let calls = 0;
    const task = dvt.task.schedule(async () => {
      calls += 1;
      throw new Error('fails');
    });
    await jest.advanceTimersByTimeAsync(500);
    expect(ledger.events(task.id)).toEqual(['queued', 'started', 'retry']);
    expect(task.cancel()).toBe(true);
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await jest.advanceTimersByTimeAsync(10_000);
    expect(calls).toBe(1);
    expect(jest.getTimerCount()).toBe(0);
    expect(ledger.events(task.id)).toEqual(['queued', 'started', 'retry', 'cancelled']);
    expectBalanced(dvt, ledger);
  });

  it('waiting for a token before a retry: rejects at once and gives the token back', async () => {
    fakeTimers();
    const dvt = create({ retries: 1, rateLimit: { perSecond: 1, burst: 1 } });
    const ledger = new Ledger(dvt);
    const task = dvt.task.schedule(async () => {
      throw new Error('fails');
    });
    await jest.advanceTimersByTimeAsync(10);
    expect(ledger.events(task.id)).toEqual(['queued', 'started', 'retry']);
    expect(task.cancel()).toBe(true);
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    expect(jest.getTimerCount()).toBe(0);
    expectBalanced(dvt, ledger);
  });

  it('settled: returns false and changes nothing, whatever the outcome', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    const done = dvt.task.schedule(() => 1);
    const failed = dvt.task.schedule(() => Promise.reject(new Error('no')));
    const cancelled = dvt.task.schedule(() => new Promise(() => {}));
    cancelled.cancel();
    await Promise.allSettled([done, failed, cancelled]);
    const before = dvt.events.stats();
    expect([done.cancel(), failed.cancel(), cancelled.cancel('again')]).toEqual([
      false,
      false,
      false,
    ]);
    await flush();
    expect(dvt.events.stats()).toEqual(before);
    await expect(done).resolves.toBe(1);
    expectBalanced(dvt, ledger);
  });
});

describe('signals that have already aborted', () => {
  it('with({ signal }): the task is cancelled with the reason as cause and never runs', async () => {
    const dvt = create({ concurrency: 1 });
    const ledger = new Ledger(dvt);
    let ran = false;
    const task = dvt.task.with({ signal: AbortSignal.abort('early') }).schedule(() => {
      ran = true;
    });
    const error = await task.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CancelledError);
    expect((error as CancelledError).cause).toBe('early');
    await flush();
    expect(ran).toBe(false);
    expect(ledger.events(task.id)).toEqual(['queued', 'cancelled']);
    await expect(dvt.task.schedule(() => 'usable')).resolves.toBe('usable');
    expectBalanced(dvt, ledger);
  });

  it('map(): rejects with the reason, calls nothing, queues nothing', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    const fn = jest.fn((n: number) => n);
    const reason = new Error('aborted before');
    await expect(dvt.task.map(fn, [1, 2, 3], { signal: AbortSignal.abort(reason) })).rejects.toBe(
      reason,
    );
    expect(fn).not.toHaveBeenCalled();
    expect(dvt.events.stats().queued).toBe(0);
    expectBalanced(dvt, ledger);
  });

  it('mapIterable(): the first next() rejects with the reason, calls nothing, and closes the source', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    const fn = jest.fn((n: number) => n);
    const closed = jest.fn(() => ({ done: true as const, value: undefined }));
    const source: Iterable<number> = {
      [Symbol.iterator]: () => ({ next: () => ({ done: false, value: 1 }), return: closed }),
    };
    const reason = new Error('aborted before');
    const stream = dvt.task.mapIterable(fn, source, { signal: AbortSignal.abort(reason) });
    await expect(stream.next()).rejects.toBe(reason);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
    expect(fn).not.toHaveBeenCalled();
    expect(closed).toHaveBeenCalledTimes(1);
    expectBalanced(dvt, ledger);
  });

  it('events.once(): rejects with the reason and leaves no listener', async () => {
    const dvt = create();
    const before = dvt.events.listenerCount;
    await expect(dvt.events.once(Event.DONE, { signal: AbortSignal.abort('gone') })).rejects.toBe(
      'gone',
    );
    expect(dvt.events.listenerCount).toBe(before);
  });
});

describe('shutdown({ wait: false }) in the middle of a map', () => {
  it('map(): rejects, starts no new item, and leaves nothing running (work honours its signal)', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    const started: number[] = [];
    const mapping = dvt.task.map(
      (n: number) => {
        started.push(n);
        const signal = dvt.task.current()!.signal;
        return new Promise((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason)),
        );
      },
      [0, 1, 2, 3, 4, 5, 6, 7],
      { concurrency: 3 },
    );
    const outcome = mapping.catch((e: unknown) => e);
    await flush();
    expect(started).toEqual([0, 1, 2]);
    await dvt.shutdown({ wait: false });
    const error = await outcome;
    expect(error).toBeInstanceOf(DovetailError);
    await flush();
    expect(started).toEqual([0, 1, 2]);
    expect(ledger.count(Event.QUEUED)).toBe(3);
    expectBalanced(dvt, ledger);
  });

  it('map(): work that ignores its signal finishes, then the map rejects without starting more', async () => {
    const dvt = create({ concurrency: 2 });
    const ledger = new Ledger(dvt);
    const holds = [defer(), defer()];
    const started: number[] = [];
    const mapping = dvt.task.map(
      (n: number) => {
        started.push(n);
        return holds[n]?.promise ?? 'later item';
      },
      [0, 1, 2, 3],
      { concurrency: 4 },
    );
    const outcome = mapping.catch((e: unknown) => e);
    await flush();
    expect(started).toEqual([0, 1]);
    await dvt.shutdown({ wait: false });
    for (const hold of holds) hold.resolve();
    expect(await outcome).toBeInstanceOf(DovetailError);
    await flush();
    expect(started).toEqual([0, 1]);
    expectBalanced(dvt, ledger);
  });

  it('mapIterable() after break: the source is closed, nothing left running, shutdown is clean', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    let closed = false;
    let pulled = 0;
    async function* source(): AsyncGenerator<number> {
      try {
        for (let i = 0; i < 1000; i++) {
          pulled += 1;
          yield i;
        }
      } finally {
        closed = true;
      }
    }
    const signals: AbortSignal[] = [];
    const seen: number[] = [];
    for await (const value of dvt.task.mapIterable(
      async (n: number) => {
        signals.push(dvt.task.current()!.signal);
        if (n >= 2) await new Promise(() => {}); // still running at the break
        return n;
      },
      source(),
      { concurrency: 4 },
    )) {
      seen.push(value);
      if (seen.length === 2) break;
    }
    await flush(); // an async generator runs its finally once its pending next() has answered
    expect(closed).toBe(true);
    expect([dvt.active, dvt.pending]).toEqual([0, 0]);
    const startedAtBreak = ledger.count(Event.STARTED);
    await dvt.shutdown({ wait: false });
    await flush();
    expect(seen).toEqual([0, 1]);
    expect(pulled).toBeLessThanOrEqual(2 + 4);
    expect(ledger.count(Event.STARTED)).toBe(startedAtBreak);
    expect(signals.slice(2).every((s) => s.aborted)).toBe(true);
    expectBalanced(dvt, ledger);
  });

  it('mapIterable() whose consumer stopped pulling: shutdown closes the source and ends the loop', async () => {
    const dvt = create({ concurrency: 1 });
    const ledger = new Ledger(dvt);
    let closed = false;
    async function* source(): AsyncGenerator<number> {
      try {
        for (let i = 0; i < 1000; i++) yield i;
      } finally {
        closed = true;
      }
    }
    const stream = dvt.task.mapIterable(
      async (n: number) => {
        const signal = dvt.task.current()!.signal;
        if (n === 0) return n;
        return new Promise<number>((_, reject) =>
          signal.addEventListener('abort', () => reject(signal.reason)),
        );
      },
      source(),
      { concurrency: 3 },
    );
    await expect(stream.next()).resolves.toEqual({ done: false, value: 0 });
    await flush();
    // The consumer walks away without return(); the instance shuts down under it.
    await dvt.shutdown({ wait: false });
    await flush();
    await flush();
    expect(closed).toBe(true);
    expect([dvt.active, dvt.pending]).toEqual([0, 0]);
    await expect(stream.next()).rejects.toBeInstanceOf(DovetailError);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
    expectBalanced(dvt, ledger);
  });
});
