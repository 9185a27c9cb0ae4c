// Behaviours of src/execution.ts and src/policies/gate.ts found untested by mutation testing
// (stryker run --mutate src/execution.ts,src/policies/gate.ts): each test here names the mutants
// it kills, which survived (or were not covered by) the rest of the suite.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { tracingChannel } from 'node:diagnostics_channel';
import { AsyncLocalStorage } from 'node:async_hooks';
import { getEventListeners } from 'node:events';
import {
  CancelledError,
  currentTask,
  LocalGate,
  ShutdownError,
  TASK_CHANNEL,
  TimeoutError,
  type Backend,
  type Gate,
  type GateJob,
  type RateLimiter,
  type Task,
} from '../../src/index.js';
import { defer, flush } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';

afterEach(async () => {
  await closeAll();
});

/** A back end whose gate and limiter are the ones given (the in-process ones otherwise). */
function backendWith(parts: { gate?: Gate; limiter?: RateLimiter }): Backend {
  return {
    createGate: ({ concurrency }) => parts.gate ?? new LocalGate(concurrency),
    createRateLimiter: () =>
      parts.limiter ?? {
        acquire: () => 0,
      },
  };
}

/** A gate that hands every job it is given to `take` (and keeps no count of its own). */
function gateOf(take: (job: GateJob) => void): Gate {
  return { active: 0, pending: 0, run: take, clear: () => undefined };
}

/** A LocalGate job that records its start in `order` and keeps the slot until `release` is called. */
function holder(order: string[], name: string, releases: Map<string, () => void>): GateJob {
  return {
    run: (release) => {
      order.push(name);
      releases.set(name, release);
    },
    reject: () => undefined,
  };
}

describe('LocalGate', () => {
  // Kills `if (true && this.#free())` in run(): between the moment a lane closed and the moment the
  // gate refills, a slot is free while a job waits; a job arriving then must queue behind it.
  it('keeps first come, first served across the moment a lane closes and the gate refills', async () => {
    for (let before = 0; before < 8; before++) {
      for (let between = 0; between < 8; between++) {
        const gate = new LocalGate(1);
        const order: string[] = [];
        const releases = new Map<string, () => void>();
        gate.run(holder(order, 'first', releases));
        await flush();
        releases.get('first')?.();
        for (let i = 0; i < before; i++) await Promise.resolve();
        gate.run(holder(order, 'second', releases));
        for (let i = 0; i < between; i++) await Promise.resolve();
        gate.run(holder(order, 'third', releases));
        await flush();
        releases.get('second')?.();
        await flush();
        expect({ before, between, order }).toEqual({
          before,
          between,
          order: ['first', 'second', 'third'],
        });
        releases.get('third')?.();
        await flush();
      }
    }
  });

  // Kills the emptied take(): the lane would close after every job and the gate reopen one through
  // p-limit, several microtasks later. A lane passes its slot on one microtask after release.
  it('starts the next waiting job one microtask after the slot is released', async () => {
    const gate = new LocalGate(1);
    const order: string[] = [];
    const releases = new Map<string, () => void>();
    gate.run(holder(order, 'first', releases));
    gate.run(holder(order, 'second', releases));
    await flush();
    expect(order).toEqual(['first']);
    releases.get('first')?.();
    expect(order).toEqual(['first']);
    await Promise.resolve();
    expect(order).toEqual(['first', 'second']);
    expect([gate.active, gate.pending]).toEqual([1, 0]);
    releases.get('second')?.();
    await flush();
    expect([gate.active, gate.pending]).toEqual([0, 0]);
  });
});

describe('execution: calling the work', () => {
  // Kills the emptied `case 0:` and `case 1:` of call() (they fall through to a call with more
  // arguments) and `default:` (no coverage: no test passed three arguments).
  it('calls the function with exactly the arguments given, however many', async () => {
    const dvt = create();
    const count = (...args: unknown[]): number => args.length;
    const counts = await Promise.all([
      dvt.task.schedule(count),
      dvt.task.schedule(count, 'a'),
      dvt.task.schedule(count, 'a', 'b'),
      dvt.task.schedule(count, 'a', 'b', 'c'),
    ]);
    expect(counts).toEqual([0, 1, 2, 3]);
    const joined = await dvt.task.schedule(
      (a: string, b: string, c: string, d: string) => a + b + c + d,
      'w',
      'x',
      'y',
      'z',
    );
    expect(joined).toBe('wxyz');
  });
});

describe('execution: the value the work returns', () => {
  // Kills `true && ...` for the null check of isThenable(): a function that returns null
  // succeeds with null (null is an object, but has no then()).
  it('resolves with null when the function returns null', async () => {
    const dvt = create();
    await expect(dvt.task.schedule(() => null)).resolves.toBeNull();
    expect(dvt.events.stats()).toMatchObject({ done: 1, error: 0 });
  });

  // Kills `typeof value === 'function'` -> false in isThenable(): a function with a then() method
  // is a thenable too, adopted under the timeout policy (else the task's own promise would adopt
  // it, untimed, and wait forever).
  it('times out a thenable that is a function and never settles', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
    try {
      const dvt = create({ timeout: 1000 });
      const never = Object.assign(() => undefined, { then: () => undefined });
      const task = dvt.task.schedule(() => never);
      const outcome = task.then(
        () => 'resolved',
        (error: unknown) => error,
      );
      await jest.advanceTimersByTimeAsync(1000);
      expect(await outcome).toBeInstanceOf(TimeoutError);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('execution: elapsed and attempt in the final payload', () => {
  // Kills `#startedAt = +1` and `>= 0` for wasRunning: elapsed is measured from the first start,
  // and a task cancelled before it started reports neither elapsed nor attempt.
  it('are absent for a task that never started', async () => {
    const dvt = create({ concurrency: 1 });
    const payloads: Array<{ elapsed?: number; attempt?: number }> = [];
    dvt.events.on('done', (payload) => void payloads.push(payload));
    dvt.events.on('cancelled', (payload) => void payloads.push(payload));
    const before = performance.now();
    const hold = defer();
    const running = dvt.task.schedule(() => hold.promise);
    const queued = dvt.task.schedule(() => 1);
    queued.cancel();
    await expect(queued).rejects.toBeInstanceOf(CancelledError);
    hold.resolve();
    await running;
    const bound = performance.now() - before;
    const [cancelled, done] = payloads;
    expect(cancelled).not.toHaveProperty('elapsed');
    expect(cancelled).not.toHaveProperty('attempt');
    expect(done?.attempt).toBe(1);
    expect(done?.elapsed).toBeGreaterThanOrEqual(0);
    expect(done?.elapsed).toBeLessThanOrEqual(bound);
  });

  // Kills `if (true)` on the startedAt check in #launch: elapsed spans every attempt and the
  // sleeps between them, not the last attempt alone.
  it('spans every attempt and the backoff between them', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
    try {
      const dvt = create({ retries: 1, retryBackoff: 1000 });
      let elapsed: number | undefined;
      dvt.events.on('done', (payload) => void (elapsed = payload.elapsed));
      let calls = 0;
      const task = dvt.task.schedule(() => {
        calls += 1;
        if (calls === 1) throw new Error('first attempt fails');
        return 'second';
      });
      await jest.advanceTimersByTimeAsync(1000);
      await expect(task).resolves.toBe('second');
      expect(elapsed).toBeGreaterThanOrEqual(1000);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('execution: node-style callbacks', () => {
  // Kills `error !== null && true` in callWithCallback(): a callback that answers with an
  // undefined error (not null) succeeds.
  it('resolves when the callback passes undefined as its error', async () => {
    const dvt = create();
    const answer = (cb: (error: unknown, value?: number) => void): void => cb(undefined, 5);
    await expect(dvt.task.fromCallback(answer)).resolves.toBe(5);
  });
});

describe('execution: a gate that cannot grant a slot', () => {
  // Kills the emptied reject(), `if (true)` / `if (false)` / `!==` on its settled check, and
  // `this.#settle(true, ...)` there (all no coverage: only the Redis suites reached it).
  it('fails the task with the gate error, once, and emits error (not done)', async () => {
    const refused = new Error('store unreachable');
    const jobs: GateJob[] = [];
    const gate = gateOf((job) => void jobs.push(job));
    const dvt = create({ concurrency: 1, backend: backendWith({ gate }) });
    const errors: unknown[] = [];
    dvt.events.on('error', (payload) => void errors.push(payload.error));
    let ran = false;
    const task = dvt.task.schedule(() => void (ran = true));
    const job = jobs[0];
    expect(job).toBeDefined();
    job?.reject(refused);
    await expect(task).rejects.toBe(refused);
    // A second rejection, or one after the task settled, changes nothing.
    job?.reject(new Error('again'));
    await flush();
    expect(errors).toEqual([refused]);
    expect(ran).toBe(false);
    expect(dvt.events.stats()).toMatchObject({ error: 1, done: 0 });
    expect([dvt.active, dvt.pending]).toEqual([0, 0]);

    // A job cancelled before the gate refuses it stays cancelled.
    const cancelled = dvt.task.schedule(() => 1);
    cancelled.cancel();
    await expect(cancelled).rejects.toBeInstanceOf(CancelledError);
    jobs[1]?.reject(refused);
    await flush();
    expect(dvt.events.stats()).toMatchObject({ error: 1, cancelled: 1 });
  });
});

describe('execution: a limiter that cannot give a token', () => {
  // Kills the emptied catch block of #attemptNext (no coverage: only the Redis suites reached it).
  it('fails the task with the limiter error, unretried, and never runs it', async () => {
    const broken = new Error('limiter down');
    let asked = 0;
    const limiter: RateLimiter = {
      acquire: () => {
        asked += 1;
        throw broken;
      },
    };
    const dvt = create({
      rateLimit: { perSecond: 10 },
      retries: 3,
      backend: backendWith({ limiter }),
    });
    let ran = false;
    await expect(dvt.task.schedule(() => void (ran = true))).rejects.toBe(broken);
    expect(ran).toBe(false);
    expect(asked).toBe(1);
    expect(dvt.events.stats()).toMatchObject({ error: 1, started: 0, retries: 0 });
    expect([dvt.active, dvt.pending]).toEqual([0, 0]);
  });
});

describe('execution: toThread', () => {
  // Kills the emptied `if (settled || other attempt)` block in the toThread macrotask (no
  // coverage): a task cancelled before its macrotask came must not run its body.
  it('never runs the body of a task cancelled before its macrotask', async () => {
    const dvt = create();
    let ran = false;
    const task = dvt.task.toThread(() => {
      ran = true;
      return 1;
    });
    await flush();
    expect(task.cancel()).toBe(true);
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await flush();
    await flush();
    expect(ran).toBe(false);
    expect(dvt.events.stats()).toMatchObject({ cancelled: 1, done: 0, error: 0 });
  });
});

describe('execution: the diagnostics channel context', () => {
  // Kills the emptied channelContext getter and setter, and `this.#rare.channelContext` (no
  // coverage: the trace suite is not run under Stryker).
  it('opens one span per task and carries the same context object from start to asyncEnd', async () => {
    const seen: Array<[string, object]> = [];
    const channel = tracingChannel<object, object>(TASK_CHANNEL);
    const handlers = {
      start: (m: object) => void seen.push(['start', m]),
      end: (m: object) => void seen.push(['end', m]),
      asyncStart: (m: object) => void seen.push(['asyncStart', m]),
      asyncEnd: (m: object) => void seen.push(['asyncEnd', m]),
      error: (m: object) => void seen.push(['error', m]),
    };
    channel.subscribe(handlers);
    try {
      const dvt = create();
      await expect(dvt.task.schedule(async () => 'ok')).resolves.toBe('ok');
      expect(seen.map(([name]) => name)).toEqual(['start', 'end', 'asyncStart', 'asyncEnd']);
      const first = seen[0]?.[1];
      for (const [, context] of seen) expect(context).toBe(first);
    } finally {
      channel.unsubscribe(handlers);
    }
  });
});

describe('execution: with({ signal })', () => {
  // Kills `{}` and `{ once: false }` for the abort listener's options in watch(): once the signal
  // aborted, nothing of Dovetail's is left on it.
  it('leaves no listener on the signal once it aborted and cancelled its tasks', async () => {
    const controller = new AbortController();
    const dvt = create();
    const api = dvt.task.with({ signal: controller.signal });
    const tasks = [
      api.schedule(() => new Promise(() => {})),
      api.schedule(() => new Promise(() => {})),
    ];
    await flush();
    controller.abort('stop');
    for (const task of tasks) await expect(task).rejects.toBeInstanceOf(CancelledError);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });

  // Kills `if (true)` and `!== 0` on the group size in unwatch(): a task that settles must not take
  // the shared listener away from the tasks still running on the same signal.
  it('still cancels the running tasks when the signal aborts after another task settled', async () => {
    const controller = new AbortController();
    const dvt = create();
    const api = dvt.task.with({ signal: controller.signal });
    const quick = api.schedule(async () => 'quick');
    const hold = defer<string>();
    const slow = api.schedule(() => hold.promise);
    await expect(quick).resolves.toBe('quick');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort('stop');
    const error = await slow.then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(CancelledError);
    expect((error as CancelledError).cause).toBe('stop');
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
  });
});

describe('execution: the attempt context', () => {
  // Kills `if (true)` on the controller check of AttemptContext.signal: one attempt has one signal,
  // and it is the one that aborts.
  it('hands out one signal per attempt, the one a cancel aborts', async () => {
    const dvt = create();
    const started = defer();
    const signals: AbortSignal[] = [];
    const task = dvt.task.schedule(async () => {
      const first = currentTask()?.signal;
      const second = currentTask()?.signal;
      if (first !== undefined && second !== undefined) signals.push(first, second);
      started.resolve();
      await new Promise(() => {});
    });
    await started.promise;
    expect(signals).toHaveLength(2);
    expect(signals[0]).toBe(signals[1]);
    task.cancel('enough');
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    expect(signals.map((signal) => signal.aborted)).toEqual([true, true]);
  });

  // Kills `if (false)` on the already-aborted check of AttemptContext.abort(): the first reason
  // stands, even when the signal is read only after a second abort.
  it('keeps the first abort reason of an attempt whose signal is read late', async () => {
    const dvt = create();
    const started = defer();
    const go = defer();
    let reason: unknown;
    const task = dvt.task.schedule(async () => {
      const context = currentTask();
      started.resolve();
      await go.promise;
      reason = context?.signal.reason;
    });
    await started.promise;
    const shutdown = dvt.shutdown({ wait: false });
    task.cancel('later');
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    go.resolve();
    await shutdown;
    await flush();
    expect(reason).toBeInstanceOf(ShutdownError);
  });
});

describe('execution: numbering and scope', () => {
  // Kills `--sequence` in the constructor: tasks are numbered 1, 2, 3... in the order they were
  // scheduled, and the id is that number as a string.
  it('numbers tasks upwards in scheduling order, the id being the number', async () => {
    const dvt = create();
    const numbers: number[] = [];
    dvt.events.on('queued', (payload) => void numbers.push(payload.task));
    const tasks = [dvt.task.schedule(() => 1), dvt.task.schedule(() => 2)];
    await Promise.all(tasks);
    const [first, second] = numbers;
    expect(first).toBeGreaterThan(0);
    expect(second).toBe((first ?? 0) + 1);
    expect(tasks.map((task) => task.id)).toEqual([String(first), String(second)]);
  });

  // Kills `true ? new AsyncResource(...) : sink.scope` in the constructor: a map item runs in the
  // async context of the map() call even when it is pulled in from another task's lane.
  it("runs every map item in the map() call's async context", async () => {
    const dvt = create({ concurrency: 1 });
    const store = new AsyncLocalStorage<string>();
    const hold = defer();
    const other = store.run('other', () => dvt.task.schedule(() => hold.promise));
    const seen = store.run('map', () =>
      dvt.task.map(async () => store.getStore(), [1, 2, 3], { concurrency: 1 }),
    );
    hold.resolve();
    await other;
    await expect(seen).resolves.toEqual(['map', 'map', 'map']);
  });

  // Kills `if (true)` in Execution.cancelFor(): a failing map cancels its own running items only,
  // never another task of the instance.
  it('a failing map leaves the other tasks of the instance running', async () => {
    const dvt = create();
    const hold = defer<string>();
    const bystander = dvt.task.schedule(() => hold.promise);
    const never = defer();
    const failing = dvt.task.map(
      async (n: number) => {
        if (n === 2) throw new Error('item 2 fails');
        await never.promise;
      },
      [1, 2, 3],
    );
    await expect(failing).rejects.toThrow('item 2 fails');
    hold.resolve('still here');
    await expect(bystander).resolves.toBe('still here');
    expect(dvt.events.stats()).toMatchObject({ cancelled: 2 });
  });
});

describe('execution: the rate limit', () => {
  // Kills `waited >= 0` in #launch: a task that got a token at once is not throttled.
  it('counts and announces only the starts that waited for a token', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
    try {
      const dvt = create({ rateLimit: { perSecond: 1, burst: 2 } });
      const waited: Array<number | undefined> = [];
      dvt.events.on('rate_limited', (payload) => void waited.push(payload.waited));
      const tasks = [1, 2, 3].map((n) => dvt.task.schedule(() => n));
      await jest.advanceTimersByTimeAsync(1000);
      await expect(Promise.all(tasks)).resolves.toEqual([1, 2, 3]);
      expect(waited).toEqual([1000]);
      expect(dvt.events.stats()).toMatchObject({ throttled: 1, started: 3 });
    } finally {
      jest.useRealTimers();
    }
  });

  // Kills `|| false` for the limiter check of admitted(): under a rate limit, a task that holds
  // its gate slot but still waits for its first token counts as pending, not active.
  it('counts a task waiting for its first token as pending, even once it holds its slot', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
    try {
      const dvt = create({ concurrency: 2, rateLimit: { perSecond: 1, burst: 1 } });
      const hold = defer();
      const first = dvt.task.schedule(() => hold.promise);
      const second = dvt.task.schedule(() => 2);
      await jest.advanceTimersByTimeAsync(0);
      expect([dvt.active, dvt.pending]).toEqual([1, 1]);
      await jest.advanceTimersByTimeAsync(1000);
      await expect(second).resolves.toBe(2);
      hold.resolve();
      await first;
      expect([dvt.active, dvt.pending]).toEqual([0, 0]);
    } finally {
      jest.useRealTimers();
    }
  });
});

describe('execution: shutdown without waiting', () => {
  // Kills `this.#rare?.sleeping === true` -> false in stop(): a task sleeping between retries is
  // cancelled at once, not when its backoff ends.
  it('cancels at once a task that sleeps between retries', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
    try {
      const dvt = create({ retries: 1, retryBackoff: 60_000 });
      let calls = 0;
      const task = dvt.task.schedule(() => {
        calls += 1;
        throw new Error('fails');
      });
      const outcome = task.then(
        () => 'resolved',
        (error: unknown) => error,
      );
      await jest.advanceTimersByTimeAsync(0);
      expect(calls).toBe(1);
      await dvt.shutdown({ wait: false });
      await jest.advanceTimersByTimeAsync(0);
      const error = await Promise.race([outcome, Promise.resolve('still sleeping')]);
      expect(error).toBeInstanceOf(CancelledError);
      expect(calls).toBe(1);
    } finally {
      jest.useRealTimers();
    }
  });
});

// ---- Second run over the whole of src/execution.ts (492 mutants, 88.41% before these tests) ----

/** A limiter whose every acquire() is answered by `answer` (called with the call's number, 1-based). */
function limiterOf(answer: (call: number) => number | Promise<number>): RateLimiter {
  let calls = 0;
  return { acquire: () => answer(++calls) };
}

describe('execution: a limiter that hands back a plain promise', () => {
  // Kills `if (true)` on the `typeof cancel === 'function'` check of #attemptNext: a wait with no
  // cancel() of its own is not kept for cancelling, so cancelling the task does not throw.
  it('lets a task waiting on it be cancelled', async () => {
    const dvt = create({
      rateLimit: { perSecond: 1 },
      backend: backendWith({ limiter: limiterOf(() => new Promise<number>(() => {})) }),
    });
    let ran = false;
    const task = dvt.task.schedule(() => void (ran = true));
    await flush();
    expect(task.cancel()).toBe(true);
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    expect(ran).toBe(false);
    expect([dvt.active, dvt.pending]).toEqual([0, 0]);
  });

  // Written for the mutants of `if (rare !== undefined) rare.tokenWait = undefined`, which turned out
  // equivalent (a limiter other than the bucket always has per-task state, and cancelling a granted
  // TokenWait is a no-op); kept for the behaviour: a plain promise that grants a token starts the task.
  it('starts the task once the promise grants a token, and counts the wait', async () => {
    const dvt = create({
      rateLimit: { perSecond: 1 },
      backend: backendWith({ limiter: limiterOf(() => Promise.resolve(25)) }),
    });
    const waited: Array<number | undefined> = [];
    dvt.events.on('rate_limited', (payload) => void waited.push(payload.waited));
    await expect(dvt.task.schedule(() => 'ran')).resolves.toBe('ran');
    expect(waited).toEqual([25]);
    expect(dvt.events.stats()).toMatchObject({ throttled: 1, started: 1, done: 1 });
  });

  // Kills the emptied rejection handler of the wait, and `if (false)` on its settled check: a
  // back end that fails while the task waits for a token fails the task, which never runs.
  it('fails the task with the error the promise rejects with', async () => {
    const broken = new Error('token store down');
    const dvt = create({
      rateLimit: { perSecond: 1 },
      retries: 2,
      backend: backendWith({ limiter: limiterOf(() => Promise.reject(broken)) }),
    });
    let ran = false;
    await expect(dvt.task.schedule(() => void (ran = true))).rejects.toBe(broken);
    expect(ran).toBe(false);
    expect(dvt.events.stats()).toMatchObject({ error: 1, started: 0, retries: 0 });
    expect([dvt.active, dvt.pending]).toEqual([0, 0]);
  });

  // Kills `if (false)` on the RUNNING check at the top of #launch: a task cancelled after its token
  // was granted, before the grant reached it, never runs.
  it('never runs a task cancelled between the grant and its start', async () => {
    const grant = defer<number>();
    const dvt = create({
      rateLimit: { perSecond: 1 },
      backend: backendWith({ limiter: limiterOf(() => grant.promise) }),
    });
    let ran = false;
    const task = dvt.task.schedule(() => void (ran = true));
    await flush();
    grant.resolve(10);
    expect(task.cancel()).toBe(true);
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await flush();
    expect(ran).toBe(false);
    expect(dvt.events.stats()).toMatchObject({ started: 0, cancelled: 1, done: 0 });
  });

  // Kills `if (false)` and the emptied block of `if (core.stopping)` in #launch: a retry that was
  // waiting for its token when shutdown({ wait: false }) came never runs.
  it('never runs a retry whose token arrives after shutdown({ wait: false })', async () => {
    const grant = defer<number>();
    let asked = 0;
    const dvt = create({
      rateLimit: { perSecond: 1 },
      retries: 1,
      retryBackoff: 0,
      backend: backendWith({ limiter: { acquire: () => (++asked === 1 ? 0 : grant.promise) } }),
    });
    let calls = 0;
    const task = dvt.task.schedule(() => {
      calls += 1;
      throw new Error(`attempt ${calls}`);
    });
    const outcome = task.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    while (asked < 2) await flush();
    const shutdown = dvt.shutdown({ wait: false });
    grant.resolve(5);
    const error = await outcome;
    expect(error).toBeInstanceOf(CancelledError);
    expect((error as CancelledError).cause).toBeInstanceOf(ShutdownError);
    await shutdown;
    expect(calls).toBe(1);
  });
});

describe('execution: listeners that cancel the task before it runs', () => {
  // Kills `if (false)` on the RUNNING check after the rate_limited event.
  it('a rate_limited listener that cancels the task keeps it from running', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
    try {
      const dvt = create({ rateLimit: { perSecond: 1, burst: 1 } });
      const ran: number[] = [];
      const tasks = [1, 2].map((n) => dvt.task.schedule(() => void ran.push(n)));
      dvt.events.on('rate_limited', () => void tasks[1]?.cancel());
      await jest.advanceTimersByTimeAsync(1000);
      await expect(tasks[0]).resolves.toBeUndefined();
      await expect(tasks[1]).rejects.toBeInstanceOf(CancelledError);
      expect(ran).toEqual([1]);
      expect(dvt.events.stats()).toMatchObject({ started: 1, cancelled: 1 });
    } finally {
      jest.useRealTimers();
    }
  });

  // Kills `if (false)` on the RUNNING check after the started event.
  it('a started listener that cancels the task keeps its function from being called', async () => {
    const dvt = create();
    let ran = false;
    const task = dvt.task.schedule(() => void (ran = true));
    dvt.events.on('started', () => void task.cancel());
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await flush();
    expect(ran).toBe(false);
    expect(dvt.events.stats()).toMatchObject({ started: 1, cancelled: 1, done: 0 });
  });
});

describe('execution: shutdown({ wait: false }) and a running attempt', () => {
  // Kills `if (false)` and `= true` on `rare.sleeping = false` in #attemptNext (a retry that runs is
  // no longer sleeping), and `sleeping: true` in the initial per-task state (nor is a first attempt
  // under a timeout): shutdown aborts the signal of such an attempt and lets it finish, instead of
  // cancelling the task.
  it.each([
    ['a running retry', { retries: 1, retryBackoff: 0 }, 2],
    ['a running first attempt under a timeout', { timeout: 60_000 }, 1],
  ])('aborts the signal of %s and keeps its result', async (_, options, attempt) => {
    const dvt = create(options);
    const running = defer();
    const finish = defer<string>();
    let signal: AbortSignal | undefined;
    let calls = 0;
    const task = dvt.task.schedule(async () => {
      calls += 1;
      if (calls < attempt) throw new Error('an earlier attempt fails');
      signal = currentTask()?.signal;
      running.resolve();
      return finish.promise;
    });
    await running.promise;
    const shutdown = dvt.shutdown({ wait: false });
    expect(signal?.aborted).toBe(true);
    finish.resolve('finished anyway');
    await expect(task).resolves.toBe('finished anyway');
    await shutdown;
  });

  // Kills `if (false)`, `&&` and `return true` on the stopping check of #shouldRetry: an attempt that
  // fails because shutdown aborted it is not retried, and the task fails with its own error.
  it('does not retry an attempt that failed after shutdown({ wait: false })', async () => {
    const dvt = create({ retries: 3, retryBackoff: 0 });
    const running = defer();
    const retried: number[] = [];
    dvt.events.on('retry', (payload) => void retried.push(payload.attempt ?? 0));
    const gaveUp = new Error('aborted, gave up');
    const task = dvt.task.schedule(async () => {
      const signal = currentTask()?.signal;
      running.resolve();
      await new Promise((resolve) => signal?.addEventListener('abort', resolve, { once: true }));
      throw gaveUp;
    });
    await running.promise;
    await dvt.shutdown({ wait: false });
    await expect(task).rejects.toBe(gaveUp);
    expect(retried).toEqual([]);
    expect(dvt.events.stats()).toMatchObject({ retries: 0, started: 1, error: 1 });
  });
});

describe('execution: settling once', () => {
  // Written for `if (true)` on the RUNNING check where the retry loop succeeds, which turned out
  // equivalent (the cancel aborts the loop's signal, so p-retry rejects instead); kept for the
  // behaviour: a task cancelled just as its retry succeeded stays cancelled, with one terminal event.
  it('ignores a retry loop that succeeds after the task was cancelled', async () => {
    const dvt = create({ retries: 1, retryBackoff: 0 });
    const terminal: string[] = [];
    for (const event of ['done', 'error', 'cancelled'] as const)
      dvt.events.on(event, () => void terminal.push(event));
    let calls = 0;
    const task: Task<string> = dvt.task.schedule(() => {
      calls += 1;
      if (calls === 1) throw new Error('first attempt fails');
      queueMicrotask(() => void task.cancel());
      return 'too late';
    });
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    for (let i = 0; i < 5; i++) await flush();
    expect(calls).toBe(2);
    expect(terminal).toEqual(['cancelled']);
    expect(dvt.events.stats()).toMatchObject({ done: 0, cancelled: 1 });
  });

  // Kills `if (true)` on the current-attempt check of #abortAttempt: a shutdown({ wait: false })
  // from the started listener of attempt 2 aborts attempt 2's signal, not attempt 1's old one.
  it('aborts the signal of a retry whose started listener shuts the instance down', async () => {
    const dvt = create({ retries: 1, retryBackoff: 0 });
    dvt.events.on('started', (payload) => {
      if (payload.attempt === 2) void dvt.shutdown({ wait: false });
    });
    let calls = 0;
    const seen: Array<boolean | undefined> = [];
    const task = dvt.task.schedule(() => {
      calls += 1;
      seen.push(currentTask()?.signal.aborted);
      if (calls === 1) throw new Error('first attempt fails');
      return 'second';
    });
    await expect(task).resolves.toBe('second');
    expect(seen).toEqual([false, true]);
  });

  // Kills `if (false)` on `if (next !== undefined) next.#prev = prev` (the live list's unlink): after
  // tasks in the middle settle, shutdown({ wait: false }) still reaches every running task.
  it('reaches every running task at shutdown after tasks in the middle settled', async () => {
    const dvt = create();
    const names = ['a', 'b', 'c', 'd'];
    const signals = new Map<string, AbortSignal | undefined>();
    const finish = new Map(names.map((name) => [name, defer()]));
    const tasks = names.map((name) =>
      dvt.task.schedule(async () => {
        signals.set(name, currentTask()?.signal);
        await finish.get(name)?.promise;
      }),
    );
    while (signals.size < names.length) await flush();
    finish.get('c')?.resolve();
    await tasks[2];
    finish.get('b')?.resolve();
    await tasks[1];
    const shutdown = dvt.shutdown({ wait: false });
    expect(names.map((name) => signals.get(name)?.aborted)).toEqual([true, false, false, true]);
    finish.get('a')?.resolve();
    finish.get('d')?.resolve();
    await Promise.all(tasks);
    await shutdown;
  });

  // Kills `if (true)` on a gate's retry check in #shouldRetry: once a gate failed a running retry, the
  // retry loop does not announce another attempt.
  it('announces no retry after a gate failed a running retry', async () => {
    const lost = new Error('lease lost');
    const jobs: GateJob[] = [];
    const gate = gateOf((job) => {
      jobs.push(job);
      queueMicrotask(() => job.run(() => undefined));
    });
    const dvt = create({
      concurrency: 1,
      retries: 3,
      retryBackoff: 0,
      backend: backendWith({ gate }),
    });
    let calls = 0;
    const second = defer();
    const task = dvt.task.schedule(async () => {
      calls += 1;
      if (calls === 1) throw new Error('first attempt fails');
      second.resolve();
      await new Promise(() => {});
    });
    await second.promise;
    jobs[0]?.reject(lost);
    await expect(task).rejects.toBe(lost);
    for (let i = 0; i < 5; i++) await flush();
    expect(calls).toBe(2);
    expect(dvt.events.stats()).toMatchObject({ retries: 1, error: 1 });
  });
});

describe('execution: payloads', () => {
  // Kills `if (true)` on `if (!ok)` in #settle: a done payload carries no error.
  it('a done payload has no error and no timeout', async () => {
    const dvt = create({ timeout: 1000 });
    const payloads: object[] = [];
    dvt.events.on('done', (payload) => void payloads.push(payload));
    await dvt.task.schedule(() => 'value');
    expect(payloads).toHaveLength(1);
    expect('error' in (payloads[0] ?? {})).toBe(false);
    expect('timeout' in (payloads[0] ?? {})).toBe(false);
  });

  // Kills `if (true)`, `if (false)` and `===` on `if (name !== undefined) payload.function = name`.
  it('names the function of a function task, and has no function key for a promise', async () => {
    const dvt = create();
    const payloads: Array<Record<string, unknown>> = [];
    dvt.events.on('queued', (payload) => void payloads.push({ ...payload }));
    async function fetchUser(): Promise<number> {
      return 1;
    }
    await dvt.task.schedule(fetchUser);
    await dvt.task.schedule(Promise.resolve(2));
    expect(payloads.map((payload) => payload.function)).toEqual(['fetchUser', undefined]);
    expect('function' in (payloads[1] ?? {})).toBe(false);
  });
});

describe('execution: rejections nobody handles', () => {
  // Kills `if (true)` on `if (event === 'cancelled') this.#task?.catch(noop)`: only a cancelled task
  // is marked handled; a dropped task whose work failed is reported as any promise's rejection.
  it('reports the work error of a dropped task as unhandled, but not a dropped cancel', async () => {
    // Node reports rejections on the worker's real process (the one tests see is jest's copy).
    // jest fails a test on them: its listeners step aside while this test listens on its own.
    const host =
      (globalThis as { __dovetailHostProcess?: NodeJS.Process }).__dovetailHostProcess ?? process;
    const dvt = create();
    const seen: unknown[] = [];
    const record = (reason: unknown): void => void seen.push(reason);
    const saved = host.listeners('unhandledRejection');
    host.removeAllListeners('unhandledRejection');
    host.on('unhandledRejection', record);
    const boom = new Error('work failed');
    try {
      void dvt.task.schedule(() => {
        throw boom;
      });
      const hold = dvt.task.schedule(() => new Promise(() => {}));
      hold.cancel();
      for (let i = 0; i < 3; i++) await flush();
    } finally {
      host.off('unhandledRejection', record);
      for (const listener of saved)
        host.on('unhandledRejection', listener as (reason: unknown) => void);
    }
    expect(seen).toEqual([boom]);
  });
});
