// Hedged requests through the public API (issue 17; API.md "Latency", option `hedge`), under fake
// timers: when a copy starts, which copy wins, what the losers see, and what stops a hedge.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
  CancelledError,
  CircuitOpenError,
  Event,
  ShutdownError,
  TimeoutError,
  currentTask,
  type StartedPayload,
} from '../../src/index.js';
import { defer, flush, type Deferred } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
});
afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

/** One call of the work: which attempt, its own signal, when it started, and how to end it. */
interface Call {
  attempt: number;
  id: string;
  signal: AbortSignal;
  at: number;
  end: Deferred<string>;
}

/** A work function whose every call (first copy or hedge) waits until the test ends it. */
function held() {
  const calls: Call[] = [];
  const start = Date.now();
  const work = (): Promise<string> => {
    const context = currentTask();
    if (context === undefined) throw new Error('no task context');
    const end = defer<string>();
    calls.push({
      attempt: context.attempt,
      id: context.id,
      signal: context.signal,
      at: Date.now() - start,
      end,
    });
    return end.promise;
  };
  return { calls, work };
}

/** Records the `started` payloads of `dvt` as [attempt, hedge]. */
function starts(dvt: ReturnType<typeof create>): [number, boolean | undefined][] {
  const seen: [number, boolean | undefined][] = [];
  dvt.events.on(Event.STARTED, (p: StartedPayload) => void seen.push([p.attempt, p.hedge]));
  return seen;
}

/** A work function that takes `ms` (fake time) and returns it. */
const sleeps = (ms: number) => (): Promise<number> =>
  new Promise((resolve) => setTimeout(() => resolve(ms), ms));

describe('hedge: a fixed delay', () => {
  it('starts one copy of the attempt once it ran `delay` ms, not before', async () => {
    const dvt = create({ hedge: { delay: 50 } });
    const seen = starts(dvt);
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(49);
    expect(calls).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(calls.map((c) => [c.attempt, c.at])).toEqual([
      [1, 0],
      [1, 50],
    ]);
    expect(calls[1]?.id).toBe(task.id);
    expect(seen).toEqual([
      [1, undefined],
      [1, true],
    ]);
    // max defaults to 1: no third copy.
    await jest.advanceTimersByTimeAsync(500);
    expect(calls).toHaveLength(2);
    calls[0]?.end.resolve('first');
    await expect(task).resolves.toBe('first');
    expect(dvt.events.stats()).toMatchObject({ started: 2, hedged: 1, done: 1, error: 0 });
  });

  it.each([
    ['no argument', []],
    ['one argument', [{ id: 7 }]],
    ['one undefined argument', [undefined]],
    ['two arguments', ['a', 2]],
  ])('hands the hedge the arguments of the first copy: %s', async (_, args) => {
    const dvt = create({ hedge: { delay: 50 } });
    const seen: unknown[][] = [];
    const ends: Deferred<string>[] = [];
    const work = (...received: unknown[]): Promise<string> => {
      seen.push(received);
      const end = defer<string>();
      ends.push(end);
      return end.promise;
    };
    const task = dvt.task.schedule(work, ...args);
    await jest.advanceTimersByTimeAsync(50);
    expect(seen).toEqual([args, args]);
    // `arguments.length` too: one `undefined` is not none.
    expect(seen.map((received) => received.length)).toEqual([args.length, args.length]);
    ends[1]?.resolve('hedge');
    await expect(task).resolves.toBe('hedge');
  });

  it('sends no hedge for an attempt that settles in time, and leaves no timer', async () => {
    const dvt = create({ hedge: { delay: 50 } });
    const all = Promise.all([
      dvt.task.schedule(sleeps(10)),
      dvt.task.schedule(sleeps(49)),
      dvt.task.schedule(() => 'sync'),
    ]);
    await jest.advanceTimersByTimeAsync(49);
    await expect(all).resolves.toEqual([10, 49, 'sync']);
    expect(jest.getTimerCount()).toBe(0);
    expect(dvt.events.stats()).toMatchObject({ started: 3, hedged: 0 });
  });

  it('a hedge that succeeds first settles the task and aborts the first copy', async () => {
    const dvt = create({ hedge: { delay: 20 } });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(20);
    calls[1]?.end.resolve('hedge');
    await expect(task).resolves.toBe('hedge');
    expect(calls[0]?.signal.aborted).toBe(true);
    expect(calls[0]?.signal.reason).toBeInstanceOf(CancelledError);
    expect(calls[1]?.signal.aborted).toBe(false);
    // The loser's late answer changes nothing.
    calls[0]?.end.reject(new Error('late'));
    await flush();
    expect(dvt.events.stats()).toMatchObject({ done: 1, error: 0 });
  });

  it('the first copy succeeding aborts the hedge', async () => {
    const dvt = create({ hedge: { delay: 20 } });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(25);
    calls[0]?.end.resolve('first');
    await expect(task).resolves.toBe('first');
    expect(calls[1]?.signal.aborted).toBe(true);
    expect(calls[0]?.signal.aborted).toBe(false);
  });

  it('max: up to `max` copies, one per delay', async () => {
    const dvt = create({ hedge: { delay: 10, max: 3 } });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.at)).toEqual([0, 10, 20, 30]);
    calls[2]?.end.resolve('second hedge');
    await expect(task).resolves.toBe('second hedge');
    expect(calls.map((c) => c.signal.aborted)).toEqual([true, true, false, true]);
    expect(dvt.events.stats().hedged).toBe(3);
  });

  it('delay 0 sends the hedge at once; Infinity sends none (a with() override)', async () => {
    const dvt = create({ hedge: { delay: 0 } });
    const a = held();
    const first = dvt.task.schedule(a.work);
    await jest.advanceTimersByTimeAsync(0);
    expect(a.calls).toHaveLength(2);
    a.calls[1]?.end.resolve('x');
    await first;
    const b = held();
    const second = dvt.task.with({ hedge: { delay: Infinity } }).schedule(b.work);
    await jest.advanceTimersByTimeAsync(1000);
    expect(b.calls).toHaveLength(1);
    b.calls[0]?.end.resolve('y');
    await expect(second).resolves.toBe('y');
  });

  it('with() turns hedging on for one call of an instance without it', async () => {
    const dvt = create();
    const { calls, work } = held();
    const plain = dvt.task.schedule(work);
    const hedged = dvt.task.with({ hedge: { delay: 5 } }).schedule(work);
    await jest.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(3);
    for (const call of calls) call.end.resolve('ok');
    await Promise.all([plain, hedged]);
    expect(dvt.events.stats().hedged).toBe(1);
  });
});

describe('hedge: failures', () => {
  it('the task waits for a hedge in flight when the first copy fails, and takes its success', async () => {
    const dvt = create({ hedge: { delay: 10 } });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(10);
    calls[0]?.end.reject(new Error('first failed'));
    await flush();
    calls[1]?.end.resolve('hedge');
    await expect(task).resolves.toBe('hedge');
  });

  it('fails only when every copy failed, with the error of the last, then retries as usual', async () => {
    const dvt = create({ hedge: { delay: 10 }, retries: 1, retryBackoff: 100 });
    const retries: [number, unknown][] = [];
    dvt.events.on(Event.RETRY, (p) => void retries.push([p.attempt, p.error]));
    const seen = starts(dvt);
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(10);
    calls[1]?.end.reject(new Error('hedge failed'));
    await flush();
    expect(retries).toEqual([]);
    const last = new Error('first failed');
    calls[0]?.end.reject(last);
    await flush();
    expect(retries).toEqual([[1, last]]);
    await jest.advanceTimersByTimeAsync(100);
    expect(calls.map((c) => c.attempt)).toEqual([1, 1, 2]);
    // The retry is an attempt like any other: it is hedged too.
    await jest.advanceTimersByTimeAsync(10);
    expect(seen).toEqual([
      [1, undefined],
      [1, true],
      [2, undefined],
      [2, true],
    ]);
    calls[3]?.end.resolve('second attempt, hedge');
    await expect(task).resolves.toBe('second attempt, hedge');
  });

  it('an attempt whose copies all failed fails the task when no retry is left', async () => {
    const dvt = create({ hedge: { delay: 10 } });
    const task = dvt.task.schedule(() => {
      const attempt = currentTask()?.attempt;
      return new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error(`failed ${attempt}`)), 15),
      );
    });
    const outcome = expect(task).rejects.toThrow('failed 1');
    await jest.advanceTimersByTimeAsync(30);
    await outcome;
    expect(dvt.events.stats()).toMatchObject({ started: 2, hedged: 1, error: 1 });
  });

  it('a hedge that throws synchronously is a failed copy; the first copy can still win', async () => {
    const dvt = create({ hedge: { delay: 10 } });
    let calls = 0;
    const first = defer<string>();
    const task = dvt.task.schedule(() => {
      calls += 1;
      if (calls === 2) throw new Error('sync');
      return first.promise;
    });
    await jest.advanceTimersByTimeAsync(10);
    expect(calls).toBe(2);
    first.resolve('first');
    await expect(task).resolves.toBe('first');
  });

  it('each copy has its own timeout', async () => {
    const dvt = create({ hedge: { delay: 30 }, timeout: 50 });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(50);
    // The first copy timed out at 50 ms; the hedge, started at 30, has until 80.
    expect(calls[0]?.signal.reason).toBeInstanceOf(TimeoutError);
    expect(calls[1]?.signal.aborted).toBe(false);
    const outcome = expect(task).rejects.toBeInstanceOf(TimeoutError);
    await jest.advanceTimersByTimeAsync(30);
    expect(calls[1]?.signal.reason).toBeInstanceOf(TimeoutError);
    await outcome;
  });

  it('copies feed the breaker as attempts: two failed copies open it at threshold 2', async () => {
    const dvt = create({ hedge: { delay: 10 }, circuitBreaker: { threshold: 2 } });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(10);
    calls[0]?.end.reject(new Error('a'));
    calls[1]?.end.reject(new Error('b'));
    await expect(task).rejects.toThrow('b');
    expect(dvt.circuit?.state).toBe('open');
  });

  it('a loser aborted by the winner does not count for the breaker', async () => {
    const dvt = create({ hedge: { delay: 10 }, circuitBreaker: { threshold: 1 } });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(10);
    calls[1]?.end.resolve('hedge');
    await task;
    calls[0]?.end.reject(new Error('aborted'));
    await flush();
    expect(dvt.circuit?.state).toBe('closed');
  });

  it("a throwing isFailure on a hedge's outcome fails the task with its error", async () => {
    const thrown = new Error('isFailure threw');
    const dvt = create({
      hedge: { delay: 10 },
      circuitBreaker: {
        threshold: 5,
        isFailure: () => {
          throw thrown;
        },
      },
    });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(10);
    calls[1]?.end.reject(new Error('hedge failed'));
    await expect(task).rejects.toBe(thrown);
    expect(calls[0]?.signal.aborted).toBe(false);
  });
});

describe('hedge: only into free limits', () => {
  it('no hedge when no gate slot is free (concurrency 1)', async () => {
    const dvt = create({ concurrency: 1, hedge: { delay: 10 } });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(1);
    calls[0]?.end.resolve('ok');
    await task;
    expect(dvt.events.stats().hedged).toBe(0);
  });

  it('no hedge while a task waits for a slot, though a slot is free a moment later', async () => {
    const dvt = create({ concurrency: 2, hedge: { delay: 10 } });
    const { calls, work } = held();
    const tasks = [dvt.task.schedule(work), dvt.task.schedule(work), dvt.task.schedule(work)];
    await jest.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(2);
    expect(dvt.events.stats().hedged).toBe(0);
    calls[0]?.end.resolve('ok');
    await flush();
    // The third task took the freed slot: still no slot for a hedge of the second.
    expect(calls.map((c) => c.at)).toEqual([0, 0, 10]);
    await jest.advanceTimersByTimeAsync(5);
    calls[1]?.end.resolve('ok');
    calls[2]?.end.resolve('ok');
    await expect(Promise.all(tasks)).resolves.toEqual(['ok', 'ok', 'ok']);
    expect(dvt.events.stats().hedged).toBe(0);
  });

  it('a hedge takes a free slot and holds it while it runs', async () => {
    const dvt = create({ concurrency: 2, hedge: { delay: 10 } });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(2);
    // Both slots are held: another task waits.
    const other = dvt.task.with({ hedge: { delay: Infinity } }).schedule(work);
    await flush();
    expect(calls).toHaveLength(2);
    expect(dvt.pending).toBe(1);
    // The hedge wins; the loser's slot and the hedge's are both free again.
    calls[1]?.end.resolve('hedge');
    await task;
    await flush();
    expect(calls).toHaveLength(3);
    calls[2]?.end.resolve('other');
    await expect(other).resolves.toBe('other');
  });

  it('no hedge when no rate-limit token is free at that moment; one when a token is', async () => {
    const dvt = create({ rateLimit: { perSecond: 1, burst: 1 }, hedge: { delay: 10 } });
    const { calls, work } = held();
    const first = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(1);
    calls[0]?.end.resolve('ok');
    await first;

    const roomy = create({ rateLimit: { perSecond: 1, burst: 2 }, hedge: { delay: 10 } });
    const limited: number[] = [];
    roomy.events.on(Event.RATE_LIMITED, (p) => void limited.push(p.waited));
    const b = held();
    const second = roomy.task.schedule(b.work);
    await jest.advanceTimersByTimeAsync(10);
    expect(b.calls).toHaveLength(2);
    // The hedge took the second token: the next task waits for one.
    const third = roomy.task.with({ hedge: undefined }).schedule(() => 'third');
    await jest.advanceTimersByTimeAsync(1000);
    await expect(third).resolves.toBe('third');
    expect(limited).toHaveLength(1);
    b.calls[0]?.end.resolve('ok');
    await second;
  });

  it('no hedge while the circuit is half-open (a trial) or isolated', async () => {
    const dvt = create({
      hedge: { delay: 10 },
      circuitBreaker: { threshold: 1, halfOpenAfter: 100 },
    });
    await dvt.task
      .with({ hedge: { delay: Infinity } })
      .schedule(() => Promise.reject(new Error('down')))
      .catch(() => undefined);
    expect(dvt.circuit?.state).toBe('open');
    await jest.advanceTimersByTimeAsync(100);
    const { calls, work } = held();
    const trial = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(50);
    expect(dvt.circuit?.state).toBe('half-open');
    expect(calls).toHaveLength(1);
    calls[0]?.end.resolve('ok');
    await trial;
    expect(dvt.circuit?.state).toBe('closed');

    const running = dvt.task.schedule(work);
    await flush();
    dvt.circuit?.isolate();
    await jest.advanceTimersByTimeAsync(50);
    expect(calls).toHaveLength(2);
    calls[1]?.end.resolve('ok');
    await expect(running).resolves.toBe('ok');
    await expect(dvt.task.schedule(work)).rejects.toBeInstanceOf(CircuitOpenError);
  });

  it('no hedge while the instance is paused', async () => {
    const dvt = create({ hedge: { delay: 10 } });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await flush();
    dvt.pause();
    await jest.advanceTimersByTimeAsync(50);
    expect(calls).toHaveLength(1);
    dvt.resume();
    calls[0]?.end.resolve('ok');
    await task;
  });

  it('a keyed task gets a hedge when its key has a free slot, and the hedge holds it', async () => {
    const dvt = create({ concurrency: 4, perKey: { concurrency: 2 }, hedge: { delay: 10 } });
    const { calls, work } = held();
    const keyed = dvt.task.with({ key: 'a' });
    const task = keyed.schedule(work);
    await jest.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(2);
    // The key's two slots are held: another task of the key waits, one of another key runs.
    const same = keyed.with({ hedge: { delay: Infinity } }).schedule(work);
    const other = dvt.task.with({ key: 'b', hedge: { delay: Infinity } }).schedule(work);
    await flush();
    expect(calls).toHaveLength(3);
    expect(calls[2]?.id).not.toBe(calls[0]?.id);
    expect(dvt.pending).toBe(1);
    // The hedge wins: the loser's slot and the hedge's go back, and the waiting task of the key
    // starts.
    calls[1]?.end.resolve('hedge');
    await expect(task).resolves.toBe('hedge');
    await flush();
    expect(calls).toHaveLength(4);
    calls[2]?.end.resolve('b');
    calls[3]?.end.resolve('a');
    await expect(Promise.all([same, other])).resolves.toEqual(['a', 'b']);
    expect(dvt.events.stats().hedged).toBe(1);
    // Everything given back: the key's two slots are free for two tasks at once.
    const two = [keyed.schedule(work), keyed.schedule(work)];
    await flush();
    expect(calls).toHaveLength(6);
    calls[4]?.end.resolve('x');
    calls[5]?.end.resolve('y');
    await Promise.all(two);
  });

  it('no hedge for a keyed task whose key is full, or whose key has no token free', async () => {
    const full = create({ perKey: { concurrency: 1 }, hedge: { delay: 10 } });
    const a = held();
    const one = full.task.with({ key: 'a' }).schedule(a.work);
    await jest.advanceTimersByTimeAsync(50);
    expect(a.calls).toHaveLength(1);
    a.calls[0]?.end.resolve('ok');
    await one;

    const metered = create({
      perKey: { concurrency: 5, rateLimit: { perSecond: 1, burst: 1 } },
      hedge: { delay: 10 },
    });
    const b = held();
    const two = metered.task.with({ key: 'a' }).schedule(b.work);
    await jest.advanceTimersByTimeAsync(50);
    expect(b.calls).toHaveLength(1);
    // A token of the key later: the next chance would find one, but max 1 was spent.
    b.calls[0]?.end.resolve('ok');
    await two;

    const roomy = create({
      perKey: { concurrency: 5, rateLimit: { perSecond: 1, burst: 2 } },
      hedge: { delay: 10 },
    });
    const c = held();
    const three = roomy.task.with({ key: 'a' }).schedule(c.work);
    await jest.advanceTimersByTimeAsync(10);
    expect(c.calls).toHaveLength(2);
    // The hedge took the key's second token: the next task of the key waits for one.
    const limited: number[] = [];
    roomy.events.on(Event.RATE_LIMITED, (p) => void limited.push(p.waited));
    const next = roomy.task.with({ key: 'a', hedge: undefined }).schedule(() => 'next');
    await jest.advanceTimersByTimeAsync(1000);
    await expect(next).resolves.toBe('next');
    expect(limited).toHaveLength(1);
    c.calls[0]?.end.resolve('ok');
    await three;
  });

  it('a promise task is never hedged', async () => {
    const dvt = create({ hedge: { delay: 10 } });
    const end = defer<string>();
    const task = dvt.task.schedule(end.promise);
    await jest.advanceTimersByTimeAsync(100);
    end.resolve('promise');
    await expect(task).resolves.toBe('promise');
    expect(dvt.events.stats()).toMatchObject({ started: 1, hedged: 0 });
  });
});

describe('hedge: a percentile delay', () => {
  it('sends no hedge before 20 attempts were measured, then hedges at their p95', async () => {
    const dvt = create({ hedge: { delay: 'p95' } });
    // 19 attempts of 10 ms: not yet enough.
    for (let i = 0; i < 19; i++) {
      const task = dvt.task.schedule(sleeps(10));
      await jest.advanceTimersByTimeAsync(10);
      await task;
    }
    const { calls, work } = held();
    const slow = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(500);
    expect(calls).toHaveLength(1);
    calls[0]?.end.resolve('slow');
    await slow;
    // 20 measured now (the 20th took 500 ms): p95 of 19 x 10 ms and one 500 ms is 10 ms.
    const next = held();
    const task = dvt.task.schedule(next.work);
    await jest.advanceTimersByTimeAsync(9);
    expect(next.calls).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(next.calls.map((c) => c.at)).toEqual([0, 10]);
    next.calls[1]?.end.resolve('hedge');
    await expect(task).resolves.toBe('hedge');
  });

  it('measures the first copy of a hedged attempt until it was aborted', async () => {
    const dvt = create({ hedge: { delay: 'p50' } });
    for (let i = 0; i < 20; i++) {
      const task = dvt.task.schedule(sleeps(10));
      await jest.advanceTimersByTimeAsync(10);
      await task;
    }
    // Twenty hedged attempts whose hedge wins at 10 + 2 ms: each first copy counts 12 ms.
    for (let i = 0; i < 20; i++) {
      let n = 0;
      const task = dvt.task.schedule(() => {
        n += 1;
        return new Promise((resolve) => setTimeout(resolve, n === 1 ? 1000 : 2));
      });
      await jest.advanceTimersByTimeAsync(12);
      await task;
    }
    // 20 samples of 10 ms and 20 of 12: the median (nearest rank 20 of 40) is still 10.
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(2);
    await jest.advanceTimersByTimeAsync(2);
    calls[1]?.end.resolve('ok');
    await task;
    // One more 12 ms sample tips the median of 41 samples (20 x 10, 21 x 12) to 12.
    const late = held();
    const last = dvt.task.schedule(late.work);
    await jest.advanceTimersByTimeAsync(11);
    expect(late.calls).toHaveLength(1);
    await jest.advanceTimersByTimeAsync(1);
    expect(late.calls).toHaveLength(2);
    late.calls[0]?.end.resolve('ok');
    await last;
  });

  it('failed attempts are not measured', async () => {
    const dvt = create({ hedge: { delay: 'p50' } });
    for (let i = 0; i < 25; i++) {
      const task = dvt.task.schedule(
        () => new Promise((_, reject) => setTimeout(() => reject(new Error('x')), 5)),
      );
      const outcome = task.catch(() => undefined);
      await jest.advanceTimersByTimeAsync(5);
      await outcome;
    }
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(100);
    expect(calls).toHaveLength(1);
    calls[0]?.end.resolve('ok');
    await task;
  });
});

describe('hedge: cancellation and shutdown', () => {
  it('cancel() aborts every copy and frees their slots', async () => {
    const dvt = create({ concurrency: 3, hedge: { delay: 10, max: 2 } });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(20);
    expect(calls).toHaveLength(3);
    const reason = new Error('stop');
    task.cancel(reason);
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    for (const call of calls) {
      expect(call.signal.reason).toBeInstanceOf(CancelledError);
      expect((call.signal.reason as CancelledError).cause).toBe(reason);
    }
    // Three slots free again: three tasks start at once.
    const next = held();
    const more = [1, 2, 3].map(() => dvt.task.with({ hedge: undefined }).schedule(next.work));
    await flush();
    expect(next.calls).toHaveLength(3);
    for (const call of next.calls) call.end.resolve('ok');
    await Promise.all(more);
  });

  it('shutdown({ wait: false }) aborts the hedges with the ShutdownError too', async () => {
    const dvt = create({ hedge: { delay: 10 } });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    const outcome = task.catch((error: unknown) => error);
    await jest.advanceTimersByTimeAsync(10);
    await dvt.shutdown({ wait: false });
    expect(calls[0]?.signal.reason).toBeInstanceOf(ShutdownError);
    expect(calls[1]?.signal.reason).toBeInstanceOf(ShutdownError);
    calls[0]?.end.reject(calls[0].signal.reason);
    calls[1]?.end.reject(calls[1].signal.reason);
    await outcome;
  });

  it('shutdown({ wait: false }) after the first copy failed settles the task: nothing else is left to decide it', async () => {
    const dvt = create({ hedge: { delay: 10 }, retries: 2 });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    const outcome = task.catch((error: unknown) => error);
    await jest.advanceTimersByTimeAsync(10);
    // The first copy fails while its hedge runs: the hedge decides the attempt.
    calls[0]?.end.reject(new Error('first failed'));
    await flush();
    await dvt.shutdown({ wait: false });
    expect(calls[1]?.signal.reason).toBeInstanceOf(ShutdownError);
    // Aborted by the shutdown, the hedge no longer reports: the task fails with the reason, at
    // once, and is not retried.
    const error = await outcome;
    expect(error).toBeInstanceOf(ShutdownError);
    expect(error).toBe(calls[1]?.signal.reason);
    expect(calls).toHaveLength(2);
    expect(dvt.events.stats()).toMatchObject({ error: 1, retries: 0 });
    calls[1]?.end.reject(calls[1].signal.reason);
    await flush();
    expect(dvt.events.stats()).toMatchObject({ error: 1, done: 0 });
  });

  it('shutdown({ wait: false }) while the first copy runs leaves the attempt to it, as to any running task', async () => {
    const dvt = create({ hedge: { delay: 10 } });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(2);
    await dvt.shutdown({ wait: false });
    expect(calls[0]?.signal.aborted).toBe(true);
    // The first copy ignores its signal and succeeds: the task takes that value.
    calls[0]?.end.resolve('late');
    await expect(task).resolves.toBe('late');
    expect(dvt.events.stats()).toMatchObject({ done: 1, error: 0 });
  });

  it('a started listener that cancels the task stops the hedge before it runs', async () => {
    const dvt = create({ hedge: { delay: 10 } });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    dvt.events.on(Event.STARTED, (p) => {
      if (p.hedge === true) task.cancel();
    });
    await jest.advanceTimersByTimeAsync(10);
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    expect(calls).toHaveLength(1);
  });
});
