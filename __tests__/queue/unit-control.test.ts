// Bounded queues, a writable concurrency, pause, onEmpty/onSizeLessThan, clearQueue, and what a
// shared back end refuses (issue 15; API.md "Queue control").
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import {
  CancelledError,
  Event,
  LocalGate,
  QueueFullError,
  TokenBucket,
  type Backend,
  type TaskEventName,
} from '../../src/index.js';
import { FIXTURES, ensureBuilt, run } from '../fixtures/child.js';
import { defer, flush } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';

ensureBuilt(); // Synchronously at load: the child-process test runs the built package.

afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

const fake = (): void => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
};

/** Every event name heard, in order. */
function heard(dvt: ReturnType<typeof create>, names: readonly TaskEventName[]): string[] {
  const log: string[] = [];
  for (const name of names)
    dvt.events.on(name, (payload) => void log.push(`${payload.task}:${name}`));
  return log;
}

describe('maxQueue', () => {
  it("'reject': the arriving task fails with QueueFullError, its function never runs", async () => {
    const dvt = create({ concurrency: 1, maxQueue: 1 });
    const hold = defer();
    const log = heard(dvt, [Event.QUEUED, Event.STARTED, Event.ERROR]);
    const running = dvt.task.schedule(() => hold.promise);
    const waiting = dvt.task.schedule(async () => 'waited');
    let ran = false;
    const shed = dvt.task.schedule(async () => void (ran = true));
    await expect(shed).rejects.toBeInstanceOf(QueueFullError);
    await expect(shed).rejects.toMatchObject({ maxQueue: 1 });
    hold.resolve();
    await expect(waiting).resolves.toBe('waited');
    await running;
    expect(ran).toBe(false);
    const third = log.filter((line) => line.startsWith(`${log[2]?.split(':')[0]}:`));
    expect(third.map((line) => line.split(':')[1])).toEqual(['queued', 'error']);
    expect(dvt.events.stats()).toMatchObject({ queued: 3, done: 2, error: 1, shed: 1 });
  });

  it("'drop-oldest': the oldest waiting task of the lowest priority fails instead", async () => {
    const dvt = create({ concurrency: 1, maxQueue: 2, queueOverflow: 'drop-oldest' });
    const hold = defer();
    const running = dvt.task.schedule(() => hold.promise);
    const high = dvt.task.with({ priority: 5 }).schedule(async () => 'high');
    const oldLow = dvt.task.schedule(async () => 'old');
    const newLow = dvt.task.schedule(async () => 'new');
    await expect(oldLow).rejects.toBeInstanceOf(QueueFullError);
    // A newcomer of a lower priority than everything waiting fails itself.
    const lowest = dvt.task.with({ priority: -1 }).schedule(async () => 'lowest');
    await expect(lowest).rejects.toBeInstanceOf(QueueFullError);
    hold.resolve();
    await expect(Promise.all([running, high, newLow])).resolves.toEqual([undefined, 'high', 'new']);
    expect(dvt.events.stats()).toMatchObject({ shed: 2, error: 2, done: 3 });
  });

  it('0 is a bulkhead: a task starts at once or fails', async () => {
    const dvt = create({ concurrency: 2, maxQueue: 0 });
    const hold = defer();
    const a = dvt.task.schedule(() => hold.promise);
    const b = dvt.task.schedule(() => hold.promise);
    const c = dvt.task.schedule(async () => 'c');
    await expect(c).rejects.toBeInstanceOf(QueueFullError);
    hold.resolve();
    await Promise.all([a, b]);
    await expect(dvt.task.schedule(async () => 'd')).resolves.toBe('d');
  });

  it('0 with a rate limit: a task whose token is free starts rather than fails', async () => {
    const dvt = create({ maxQueue: 0, rateLimit: { perSecond: 10, burst: 2 } });
    const first = dvt.task.schedule(async () => 1);
    const second = dvt.task.schedule(async () => 2);
    const third = dvt.task.schedule(async () => 3);
    expect([dvt.active, dvt.pending]).toEqual([2, 0]);
    await expect(Promise.all([first, second])).resolves.toEqual([1, 2]);
    await expect(third).rejects.toBeInstanceOf(QueueFullError);
  });
});

describe('concurrency', () => {
  it('reads the limit; raising it starts waiting tasks at once', async () => {
    const dvt = create({ concurrency: 1 });
    expect(dvt.concurrency).toBe(1);
    const hold = defer();
    const tasks = [0, 1, 2].map(() => dvt.task.schedule(() => hold.promise));
    expect([dvt.active, dvt.pending]).toEqual([1, 2]);
    dvt.concurrency = 3;
    expect(dvt.concurrency).toBe(3);
    expect([dvt.active, dvt.pending]).toEqual([3, 0]);
    hold.resolve();
    await Promise.all(tasks);
  });

  it('lowering it lets running tasks finish and starts none until active is below it', async () => {
    const dvt = create({ concurrency: 3 });
    const holds = [defer(), defer(), defer()];
    const running = holds.map((hold) => dvt.task.schedule(() => hold.promise));
    let started = false;
    const waiting = dvt.task.schedule(async () => void (started = true));
    dvt.concurrency = 1;
    holds[0]?.resolve();
    holds[1]?.resolve();
    await Promise.all(running.slice(0, 2));
    await flush();
    // Two finished, one still runs: active is 1, not below the new limit of 1.
    expect(started).toBe(false);
    holds[2]?.resolve();
    await Promise.all([running[2], waiting]);
    expect(started).toBe(true);
  });

  it('gives an unbounded instance a limit', async () => {
    const dvt = create();
    expect(dvt.concurrency).toBe(Infinity);
    dvt.concurrency = 1;
    const hold = defer();
    const tasks = [0, 1].map(() => dvt.task.schedule(() => hold.promise));
    expect([dvt.active, dvt.pending]).toEqual([1, 1]);
    hold.resolve();
    await Promise.all(tasks);
    dvt.concurrency = Infinity;
    expect(dvt.concurrency).toBe(Infinity);
  });
});

describe('pause', () => {
  it('holds first attempts until resume(); running attempts go on', async () => {
    const dvt = create({ concurrency: 2 });
    const hold = defer();
    const running = dvt.task.schedule(() => hold.promise);
    await flush(); // its attempt has started
    dvt.pause();
    expect(dvt.isPaused).toBe(true);
    let ran = false;
    const waiting = dvt.task.schedule(async () => void (ran = true));
    expect([dvt.active, dvt.pending]).toEqual([1, 1]);
    hold.resolve();
    await running;
    await flush();
    expect(ran).toBe(false);
    dvt.resume();
    expect(dvt.isPaused).toBe(false);
    await waiting;
    expect(ran).toBe(true);
  });

  it('holds retries too, and lets queued tasks be cancelled', async () => {
    const dvt = create({ retries: 1 });
    let calls = 0;
    const failing = dvt.task.schedule(async () => {
      calls += 1;
      if (calls === 1) {
        dvt.pause();
        throw new Error('first');
      }
      return calls;
    });
    const queued = dvt.task.schedule(async () => 'never');
    await flush();
    expect(calls).toBe(1);
    queued.cancel();
    await expect(queued).rejects.toBeInstanceOf(CancelledError);
    dvt.resume();
    await expect(failing).resolves.toBe(2);
  });

  it('pause(ms) resumes by itself; a later end wins, an earlier one does not shorten it', async () => {
    fake();
    const dvt = create();
    dvt.pause(100);
    dvt.pause(300);
    dvt.pause(50);
    const began = Date.now();
    const task = dvt.task.schedule(async () => Date.now() - began);
    await jest.advanceTimersByTimeAsync(299);
    expect(dvt.isPaused).toBe(true);
    await jest.advanceTimersByTimeAsync(1);
    expect(dvt.isPaused).toBe(false);
    await expect(task).resolves.toBe(300);
  });

  it('tasks that wait for the gate through a pause bank no tokens: after it, the rate holds', async () => {
    fake();
    // One token a second, a burst of 1, ten tasks submitted during a 10 s pause. The gate grants
    // no slot while paused, so no task reaches its token wait: had they taken tokens meanwhile,
    // the ten would start together when the pause ends.
    const dvt = create({ concurrency: 10, rateLimit: { perSecond: 1, burst: 1 } });
    const began = Date.now();
    const starts: number[] = [];
    dvt.pause(10_000);
    const tasks = Array.from({ length: 10 }, () =>
      dvt.task.schedule(async () => void starts.push(Date.now() - began)),
    );
    await jest.advanceTimersByTimeAsync(9_999);
    expect(starts).toEqual([]);
    await jest.advanceTimersByTimeAsync(9_001);
    await Promise.all(tasks);
    // The bucket refilled during the pause (one token, its burst); then one a second.
    expect(starts).toEqual([
      10_000, 11_000, 12_000, 13_000, 14_000, 15_000, 16_000, 17_000, 18_000, 19_000,
    ]);
  });

  it('resume() when not paused does nothing; shutdown() resumes so a drain finishes', async () => {
    const dvt = create({ concurrency: 1 });
    dvt.resume();
    dvt.pause();
    const task = dvt.task.schedule(async () => 'drained');
    await dvt.shutdown();
    expect(dvt.isPaused).toBe(false);
    await expect(task).resolves.toBe('drained');
  });

  it('keeps the process alive only while a task waits on it', async () => {
    const idle = await run(`${FIXTURES}/pause.mjs`, ['idle']);
    expect(idle.code).toBe(0);
    expect(idle.stdout.trim()).toBe('paused');
    // A 60 s pause with nothing waiting does not hold the process.
    expect(idle.elapsed).toBeLessThan(20_000);
    const waited = await run(`${FIXTURES}/pause.mjs`, ['task']);
    expect(waited.code).toBe(0);
    const [, after] = /^ran after (\d+)$/.exec(waited.stdout.trim()) ?? [];
    expect(Number(after)).toBeGreaterThanOrEqual(290);
  });
});

describe('onEmpty and onSizeLessThan', () => {
  it('resolve at once when already true', async () => {
    const dvt = create();
    await expect(dvt.onEmpty()).resolves.toBeUndefined();
    await expect(dvt.onSizeLessThan(1)).resolves.toBeUndefined();
  });

  it('resolve as the queue shrinks', async () => {
    const dvt = create({ concurrency: 1 });
    const holds = [defer(), defer(), defer()];
    const tasks = holds.map((hold) => dvt.task.schedule(() => hold.promise));
    const seen: string[] = [];
    const empty = dvt.onEmpty().then(() => void seen.push(`empty at ${dvt.pending}`));
    const small = dvt.onSizeLessThan(2).then(() => void seen.push(`<2 at ${dvt.pending}`));
    holds[0]?.resolve();
    await tasks[0];
    await flush();
    expect(seen).toEqual(['<2 at 1']);
    holds[1]?.resolve();
    await Promise.all([empty, small, tasks[1]]);
    expect(seen).toEqual(['<2 at 1', 'empty at 0']);
    holds[2]?.resolve();
    await tasks[2];
  });

  it('resolve on shutdown', async () => {
    const dvt = create({ concurrency: 1 });
    dvt.pause();
    const task = dvt.task.schedule(async () => 1);
    const empty = dvt.onEmpty();
    const shutdown = dvt.shutdown();
    await expect(empty).resolves.toBeUndefined();
    await Promise.all([task, shutdown]);
  });
});

describe('clearQueue', () => {
  it('cancels every waiting task with the reason as cause; running ones go on', async () => {
    const dvt = create({ concurrency: 1 });
    const hold = defer();
    const cancelled: number[] = [];
    dvt.events.on(Event.CANCELLED, (payload) => void cancelled.push(payload.task));
    const running = dvt.task.schedule(() => hold.promise.then(() => 'ran'));
    const waiting = [0, 1].map(() => dvt.task.schedule(async () => 'never'));
    const reason = new Error('navigated away');
    expect(dvt.clearQueue(reason)).toBe(2);
    for (const task of waiting) {
      await expect(task).rejects.toBeInstanceOf(CancelledError);
      await expect(task).rejects.toMatchObject({ cause: reason });
    }
    expect(cancelled).toHaveLength(2);
    hold.resolve();
    await expect(running).resolves.toBe('ran');
    expect(dvt.clearQueue()).toBe(0);
  });

  it('leaves a task sleeping between retries; without a reason the cause is undefined', async () => {
    fake();
    const dvt = create({ concurrency: 2, retries: 1, retryBackoff: 1000 });
    let calls = 0;
    const sleeper = dvt.task.schedule(async () => {
      calls += 1;
      if (calls === 1) throw new Error('retry me');
      return 'second';
    });
    dvt.pause();
    const waiting = dvt.task.schedule(async () => 'never');
    await jest.advanceTimersByTimeAsync(10);
    expect(dvt.clearQueue()).toBe(1);
    const error = await waiting.catch((failure: unknown) => failure);
    expect(error).toBeInstanceOf(CancelledError);
    expect((error as CancelledError).cause).toBeUndefined();
    dvt.resume();
    await jest.advanceTimersByTimeAsync(1000);
    await expect(sleeper).resolves.toBe('second');
  });
});

describe('a shared back end', () => {
  // A stand-in for dovetailjs/redis: any back end is shared as far as the instance knows.
  const backend: Backend = {
    createGate: ({ concurrency }) => new LocalGate(concurrency),
    createRateLimiter: ({ perSecond, burst }) => new TokenBucket(perSecond, burst),
  };

  it('refuses the controls a back end without the sharing factories cannot share, with a clear error', () => {
    expect(() => create({ backend, perKey: { concurrency: 1 } })).toThrow(
      /`perKey` is not supported with this back end/,
    );
    const dvt = create({ backend, concurrency: 2, rateLimit: { perSecond: 5 } });
    expect(() => dvt.pause()).toThrow(/`pause\(\)` is not supported with this back end/);
    // resume() on an instance that is not paused does nothing, shared or not.
    expect(() => dvt.resume()).not.toThrow();
    expect(() => {
      dvt.concurrency = 3;
    }).toThrow(/`concurrency` cannot be changed with this back end/);
    // Every limiter takes a cost now: within the burst it is accepted, beyond it a RangeError.
    expect(() => dvt.task.with({ cost: 1 })).not.toThrow();
    expect(() => dvt.task.with({ cost: 1000 })).toThrow(RangeError);
  });

  it('keeps what is per process by nature: priority and maxQueue', async () => {
    const dvt = create({ backend, concurrency: 1, maxQueue: 1 });
    const hold = defer();
    const running = dvt.task.schedule(() => hold.promise);
    const order: number[] = [];
    const low = dvt.task.schedule(async () => void order.push(1));
    const high = dvt.task.with({ priority: 2 }).schedule(async () => void order.push(2));
    await expect(high).rejects.toBeInstanceOf(QueueFullError);
    hold.resolve();
    await Promise.all([running, low]);
    expect(order).toEqual([1]);
  });
});

describe('instance events of queue control', () => {
  it('paused (with until when timed), resumed, limit_changed; each once per change', async () => {
    fake();
    const dvt = create({ concurrency: 2 });
    const log: unknown[] = [];
    dvt.events.on(
      'paused',
      (payload) => void log.push(['paused', payload.until, typeof payload.at]),
    );
    dvt.events.on('resumed', (payload) => void log.push(['resumed', typeof payload.at]));
    dvt.events.on(
      'limit_changed',
      ({ limit, previous }) => void log.push(['limit', limit, previous]),
    );
    const now = Date.now();
    dvt.pause(100);
    dvt.pause(50); // ends earlier: no change, no event
    dvt.pause(200);
    await jest.advanceTimersByTimeAsync(200);
    dvt.resume(); // not paused: nothing
    dvt.pause();
    dvt.resume();
    dvt.concurrency = 2; // unchanged: nothing
    dvt.concurrency = 5;
    expect(log).toEqual([
      ['paused', now + 100, 'number'],
      ['paused', now + 200, 'number'],
      ['resumed', 'number'],
      ['paused', undefined, 'number'],
      ['resumed', 'number'],
      ['limit', 5, 2],
    ]);
  });
});

describe('a limit given to an unbounded instance while tasks run', () => {
  it('counts the running tasks against it', async () => {
    const dvt = create();
    const holds = [defer(), defer(), defer()];
    const running = holds.map((hold) => dvt.task.schedule(() => hold.promise));
    await flush();
    dvt.concurrency = 2;
    let started = false;
    const waiting = dvt.task.schedule(async () => void (started = true));
    expect([dvt.active, dvt.pending]).toEqual([3, 1]);
    holds[0]?.resolve();
    await running[0];
    await flush();
    // Two still run: the limit of 2 has no room yet.
    expect(started).toBe(false);
    holds[1]?.resolve();
    await Promise.all([running[1], waiting]);
    expect(started).toBe(true);
    holds[2]?.resolve();
    await running[2];
  });
});
