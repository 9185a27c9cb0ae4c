// Behaviours of src/engine/admission.ts found untested by mutation testing (stryker run --mutate
// src/engine/admission.ts): the way of a task into its first attempt (the instance, its key, the
// gate, the tokens) and of each retry to its tokens. Each test here names the mutants it kills,
// which survived (or were not covered by) the rest of the suite.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import {
  CancelledError,
  CircuitOpenError,
  QueueFullError,
  type RateLimitedPayload,
  type Task,
} from '../../src/index.js';
import { defer, flush } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';

afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

/** Fake timers (and a faked `performance.now()`, which the token buckets read); setImmediate stays real for flush(). */
const fakeTimers = (): void => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
};

/** What `task` has come to so far: its value, its error, or 'pending'. */
function track(task: Task<unknown>): { outcome: unknown } {
  const state: { outcome: unknown } = { outcome: 'pending' };
  task.then(
    (value) => void (state.outcome = value),
    (error: unknown) => void (state.outcome = error),
  );
  return state;
}

/** Timeouts that keep the process alive now (an unref'd timer is not counted). */
const refTimeouts = (): number =>
  process.getActiveResourcesInfo().filter((resource) => resource === 'Timeout').length;

/** Work functions that record when each started (ms since now) and return their name. */
function startTimes() {
  const start = performance.now();
  const started: Array<[string, number]> = [];
  const record = (name: string) => (): string => {
    started.push([name, performance.now() - start]);
    return name;
  };
  return { started, record };
}

describe('admission: an open circuit at submission', () => {
  // Kills `if (false)` for `refused !== undefined` in start(), and its emptied block: a task
  // refused at submission fails at once; it does not first wait for a slot of the gate (to be
  // refused only when its turn comes).
  it('fails a task at once, while the slot it would wait for is still taken', async () => {
    const dvt = create({ concurrency: 1, circuitBreaker: { threshold: 1 } });
    // Someone listens: the refused task goes through an execution, which announces it.
    const ended: string[] = [];
    dvt.events.on('error', (payload) => void ended.push(`error ${payload.executionId}`));
    const hold = defer();
    const running = dvt.task.schedule(() => hold.promise);
    await flush();
    dvt.circuit?.isolate();
    let ran = false;
    const refused = dvt.task.schedule(() => void (ran = true));
    const state = track(refused);
    await flush();
    expect(state.outcome).toBeInstanceOf(CircuitOpenError);
    expect(ended).toEqual([`error ${refused.id}`]);
    expect([dvt.active, dvt.pending]).toEqual([1, 0]);
    expect(dvt.events.stats()).toMatchObject({ shortCircuited: 1, error: 1 });
    hold.resolve();
    await running;
    await flush();
    expect(ran).toBe(false);
    expect(dvt.events.stats()).toMatchObject({ shortCircuited: 1, error: 1, done: 1 });
  });

  // Kills `this.phase === Phase.SETTLED` -> false in refuse(): a task refused at submission and
  // cancelled before the refusal lands (a microtask later) stays cancelled; it is not failed and
  // counted a second time.
  it('leaves a task cancelled before its refusal landed as cancelled, counted once', async () => {
    const dvt = create({ circuitBreaker: { threshold: 1 } });
    const ended: string[] = [];
    dvt.events.on('error', () => void ended.push('error'));
    dvt.events.on('cancelled', () => void ended.push('cancelled'));
    dvt.circuit?.isolate();
    const task = dvt.task.schedule(() => 'ran');
    expect(task.cancel()).toBe(true);
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await flush();
    expect(ended).toEqual(['cancelled']);
    expect(dvt.events.stats()).toMatchObject({ cancelled: 1, error: 0, shortCircuited: 0 });
  });
});

describe('admission: a timed pause and the process', () => {
  // Kills `if (false)` for `core.pause.active` in start() and `hold(false)` there: a task that
  // arrives during a timed pause makes the pause's timer keep the process alive (an idle paused
  // instance holds no handle). Only the ref of that timer changes: what a script sees is whether
  // the process waits for the task; process.getActiveResourcesInfo() counts it in-process.
  it('refs the pause timer when a task arrives to wait on it', async () => {
    const dvt = create();
    const before = refTimeouts();
    dvt.pause(60_000);
    expect(refTimeouts()).toBe(before);
    const task = dvt.task.schedule(() => 'ran');
    expect(refTimeouts()).toBe(before + 1);
    dvt.resume();
    await expect(task).resolves.toBe('ran');
    expect(refTimeouts()).toBe(before);
  });
});

describe("admission: a key's token wait", () => {
  // Kills the emptied body of holdWait(), `if (false)` on its condition and `&&` for its `||`:
  // a task cancelled while it waits for its key's token gives its place in the key's bucket up,
  // so the next task of the key gets the next token (not the one after).
  it("gives a cancelled task's place in its key's bucket to the next task", async () => {
    fakeTimers();
    const dvt = create({ perKey: { concurrency: 2, rateLimit: { perSecond: 1, burst: 1 } } });
    const keyed = dvt.task.with({ key: 'a' });
    await keyed.schedule(() => 'takes the one token');
    const start = performance.now();
    const started: number[] = [];
    const first = keyed.schedule(() => 'first');
    const second = keyed.schedule(() => void started.push(performance.now() - start));
    expect(first.cancel()).toBe(true);
    await expect(first).rejects.toBeInstanceOf(CancelledError);
    await jest.advanceTimersByTimeAsync(1000);
    expect(started).toEqual([1000]);
    await expect(second).resolves.toBeUndefined();
  });

  // Kills `if (false)` for `holdings !== undefined && wait !== undefined` in keyRevoked(), `===`
  // for its `holdings !== undefined`, `wait === undefined` for its `wait !== undefined`, its
  // emptied block (no coverage before) and the emptied body of keyRevoked(): a task whose key
  // slot goes to a task of a higher priority while it waits for its key's token gives that wait
  // up. Kept, the old wait lets the task through when it ends, and the wait the re-admitted task
  // took meanwhile burns a token nobody uses: the next task of the key waits a second longer.
  it('calls off the key token wait of a task whose key slot went to a higher priority', async () => {
    fakeTimers();
    const dvt = create({ perKey: { concurrency: 1, rateLimit: { perSecond: 1, burst: 1 } } });
    await dvt.task.with({ key: 'a' }).schedule(() => 'takes the one token');
    const { started, record } = startTimes();
    const low = dvt.task.with({ key: 'a' }).schedule(record('low'));
    const high = dvt.task.with({ key: 'a', priority: 1 }).schedule(record('high'));
    const last = dvt.task.with({ key: 'a' }).schedule(record('last'));
    await jest.advanceTimersByTimeAsync(1000);
    expect(started).toEqual([['high', 1000]]);
    // Had `low` kept its first wait, that one would have taken the token of 3000 ms.
    await jest.advanceTimersByTimeAsync(2000);
    expect(started).toEqual([
      ['high', 1000],
      ['low', 2000],
      ['last', 3000],
    ]);
    await expect(Promise.all([low, high, last])).resolves.toEqual(['low', 'high', 'last']);
  });

  // Kills `true` for `wait !== undefined` and `wait === undefined` in keyRevoked() (no coverage
  // before): a task that waited for its key's token, got it and waits at the gate has no token
  // wait left; a task of a higher priority taking its key slot then schedules normally.
  it('revokes the key slot of a task that got its key token and waits at the gate', async () => {
    fakeTimers();
    const dvt = create({
      concurrency: 1,
      perKey: { concurrency: 1, rateLimit: { perSecond: 1, burst: 1 } },
    });
    await dvt.task.with({ key: 'a' }).schedule(() => 'takes the one token');
    const hold = defer();
    const blocker = dvt.task.schedule(() => hold.promise);
    const order: string[] = [];
    const low = dvt.task.with({ key: 'a' }).schedule(() => void order.push('low'));
    // Its key's token came after 1000 ms: it now waits for the instance's one slot.
    await jest.advanceTimersByTimeAsync(1000);
    expect([dvt.active, dvt.pending]).toEqual([1, 1]);
    const high = dvt.task.with({ key: 'a', priority: 1 }).schedule(() => void order.push('high'));
    hold.resolve();
    await blocker;
    await jest.advanceTimersByTimeAsync(1000);
    await Promise.all([low, high]);
    expect(order).toEqual(['high', 'low']);
  });
});

describe('admission: a key slot revoked while its task waited', () => {
  // A task whose key token came (the cancel of the task ahead of it gave it the token at once)
  // and whose key slot then went to a task of a higher priority, before it was told its token
  // came, waits for its key again: it never counts as running meanwhile, and the token served to
  // it goes back to the key's bucket, where the task that took its slot finds it.
  it('keeps a task that lost its key slot before its token wait ended waiting', async () => {
    fakeTimers();
    const dvt = create({ perKey: { concurrency: 2, rateLimit: { perSecond: 1, burst: 3 } } });
    await dvt.task.with({ key: 'a', cost: 3 }).schedule(() => 'takes every token');
    const { started, record } = startTimes();
    const ahead = dvt.task.with({ key: 'a', cost: 3 }).schedule(record('ahead'));
    const behind = dvt.task.with({ key: 'a' }).schedule(record('behind'));
    await jest.advanceTimersByTimeAsync(1000);
    // One token is there: cancelling the costly task ahead gives it to `behind` at once.
    ahead.cancel();
    const other = dvt.task.with({ key: 'a', priority: 1 }).schedule(record('other'));
    // Takes the key slot of `behind`, the last of the key's unstarted tasks.
    const urgent = dvt.task.with({ key: 'a', priority: 1 }).schedule(record('urgent'));
    expect(dvt.pending).toBe(3);
    await flush();
    // The token `behind` was served went to `other`; `behind` still waits.
    expect(started).toEqual([['other', 1000]]);
    expect(dvt.pending).toBe(2);
    await jest.advanceTimersByTimeAsync(3000);
    await expect(ahead).rejects.toBeInstanceOf(CancelledError);
    await expect(Promise.all([behind, other, urgent])).resolves.toEqual([
      'behind',
      'other',
      'urgent',
    ]);
    expect(started).toEqual([
      ['other', 1000],
      ['urgent', 2000],
      ['behind', 3000],
    ]);
  });

  // Kills the emptied block of `if (!this.keyHeld)` in run() and `release()` for `release?.()`
  // there (both no coverage before): with no gate, a task held back by the instance's token
  // whose key slot went to a task of a higher priority before it ran waits for its key again; it
  // does not run beside that task (perKey.concurrency 1), and the task after it still runs.
  it('sends a task that lost its key slot back to its key, with no gate', async () => {
    fakeTimers();
    const dvt = create({ rateLimit: { perSecond: 1, burst: 1 }, perKey: { concurrency: 1 } });
    await dvt.task.schedule(() => 'takes the one token');
    const start = performance.now();
    const started: Array<[string, number]> = [];
    let running = 0;
    let most = 0;
    const work = (name: string) => async (): Promise<string> => {
      started.push([name, performance.now() - start]);
      running += 1;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 5000));
      running -= 1;
      return name;
    };
    const low = dvt.task.with({ key: 'a' }).schedule(work('low'));
    const high = dvt.task.with({ key: 'a', priority: 1 }).schedule(work('high'));
    await jest.advanceTimersByTimeAsync(1000);
    expect(started).toEqual([['high', 1000]]);
    await jest.advanceTimersByTimeAsync(5000);
    expect(started).toEqual([
      ['high', 1000],
      ['low', 6000],
    ]);
    await jest.advanceTimersByTimeAsync(5000);
    await expect(Promise.all([low, high])).resolves.toEqual(['low', 'high']);
    expect(most).toBe(1);
  });

  // Kills the emptied block of `if (!this.keyHeld)` in run() (no coverage before), with a gate:
  // a task whose key slot went to a task of a higher priority while it waited at the gate gives
  // the gate slot it then gets back and waits for its key; it does not run beside that task.
  it('sends a task that lost its key slot back to its key when its gate slot comes', async () => {
    const dvt = create({ concurrency: 2, perKey: { concurrency: 1 } });
    const first = defer();
    const second = defer();
    const third = defer();
    const x0 = dvt.task.schedule(() => first.promise);
    const x1 = dvt.task.schedule(() => second.promise);
    const started: string[] = [];
    const low = dvt.task.with({ key: 'a' }).schedule(() => void started.push('low'));
    const high = dvt.task.with({ key: 'a', priority: 1 }).schedule(() => {
      started.push('high');
      return third.promise;
    });
    await flush();
    expect([dvt.active, dvt.pending]).toEqual([2, 2]);
    first.resolve();
    await x0;
    await flush();
    expect(started).toEqual(['high']);
    // The second slot frees: its turn is `low`'s, whose key is still held by `high`.
    second.resolve();
    await x1;
    await flush();
    expect(started).toEqual(['high']);
    expect([dvt.active, dvt.pending]).toEqual([1, 1]);
    third.resolve();
    await Promise.all([low, high]);
    expect(started).toEqual(['high', 'low']);
  });

  // A task whose key slot went to a task of a higher priority still waits when the gate's turn
  // comes for its old entry: it is not counted as running meanwhile, so `maxQueue` holds (it
  // counted as running, three more tasks fitted in the queue, and four waited once it gave the
  // slot back).
  it('counts a task whose key slot was revoked as waiting when a gate slot comes for it', async () => {
    const dvt = create({ concurrency: 1, perKey: { concurrency: 1 }, maxQueue: 3 });
    const blocking = defer();
    const keyHolding = defer();
    const blocker = dvt.task.schedule(() => blocking.promise);
    const low = dvt.task.with({ key: 'a' }).schedule(() => 'low');
    const high = dvt.task.with({ key: 'a', priority: 1 }).schedule(() => keyHolding.promise);
    // Both waiting tasks get a gate slot now; `low`'s key slot went to `high` meanwhile.
    dvt.concurrency = 3;
    expect([dvt.active, dvt.pending]).toEqual([2, 1]);
    const more = [1, 2, 3].map((n) => track(dvt.task.with({ key: 'a' }).schedule(() => n)));
    await flush();
    expect(more[2]?.outcome).toBeInstanceOf(QueueFullError);
    expect([dvt.active, dvt.pending]).toEqual([2, 3]);
    expect(dvt.events.stats()).toMatchObject({ shed: 1 });
    blocking.resolve();
    keyHolding.resolve();
    await expect(Promise.all([blocker, low, high])).resolves.toEqual([undefined, 'low', undefined]);
    await flush();
    expect(more.map((state) => state.outcome).slice(0, 2)).toEqual([1, 2]);
  });

  // A task whose key slot was revoked and came back waits for its key's token before it starts,
  // even when the gate's turn comes first for the entry it had before: a key's rate holds.
  it('waits for its key token after its key slot came back, whatever its old gate entry says', async () => {
    fakeTimers();
    const dvt = create({
      concurrency: 1,
      perKey: { concurrency: 1, rateLimit: { perSecond: 1, burst: 1 } },
    });
    const hold = defer();
    const blocker = dvt.task.schedule(() => hold.promise);
    const { started, record } = startTimes();
    // `low` takes the key's one token and waits at the gate; `high` takes its key slot (and the
    // token, given back), so `low` waits for its key again, its gate entry still queued.
    const low = dvt.task.with({ key: 'a' }).schedule(record('low'));
    const high = dvt.task.with({ key: 'a', priority: 1 }).schedule(record('high'));
    hold.resolve();
    await blocker;
    await flush();
    expect(started).toEqual([['high', 0]]);
    await jest.advanceTimersByTimeAsync(999);
    expect(started).toEqual([['high', 0]]);
    await jest.advanceTimersByTimeAsync(1);
    expect(started).toEqual([
      ['high', 0],
      ['low', 1000],
    ]);
    await expect(Promise.all([low, high])).resolves.toEqual(['low', 'high']);
  });
});

describe('admission: the gate tells a task twice', () => {
  // Kills `false` for `this.counted !== Counted.PENDING` in admitted() (alone, and with the
  // pause check): a task that arrives while a freed slot is passing on is told when the slot is
  // reserved for it and again when the lane takes it; only the first time takes its first
  // attempt's token. A `map` of concurrency 1 submits each item as the one before settles,
  // right into that moment.
  it('takes one token for a task told twice by the gate', async () => {
    fakeTimers();
    const dvt = create({ concurrency: 1, rateLimit: { perSecond: 1, burst: 3 } });
    const { started, record } = startTimes();
    const mapped = dvt.task.map((n: number) => record(`item ${n}`)(), [1, 2, 3], {
      concurrency: 1,
    });
    await jest.advanceTimersByTimeAsync(0);
    // Three tokens, one each: every item started at once.
    expect(started).toEqual([
      ['item 1', 0],
      ['item 2', 0],
      ['item 3', 0],
    ]);
    await jest.advanceTimersByTimeAsync(3000);
    await expect(mapped).resolves.toEqual(['item 1', 'item 2', 'item 3']);
    expect(dvt.events.stats()).toMatchObject({ throttled: 0 });
  });
});

describe('admission: a slot adopted from a gate made meanwhile', () => {
  // Kills `if (true)` for `release !== undefined` in run(): a task of an unbounded instance that
  // is given a limit before the task runs holds one of the new gate's slots, and gives it back
  // when it settles, so the next task runs.
  it('gives the adopted slot back when the task settles', async () => {
    const dvt = create();
    const first = dvt.task.schedule(() => 'first');
    dvt.concurrency = 1;
    const second = dvt.task.schedule(() => 'second');
    expect([dvt.active, dvt.pending]).toEqual([1, 1]);
    await expect(first).resolves.toBe('first');
    const state = track(second);
    await flush();
    expect(state.outcome).toBe('second');
    expect([dvt.active, dvt.pending]).toEqual([0, 0]);
  });
});

describe('admission: a retry held back by a pause', () => {
  // Kills `this.attempt - 1` for `this.attempt + 1` in unpark(): a retry that was due during a
  // pause starts as the next attempt once the pause ends.
  it('starts the parked retry as attempt 2 when the pause ends', async () => {
    fakeTimers();
    const dvt = create({ retries: 1, retryBackoff: 1000 });
    const attempts: number[] = [];
    dvt.events.on('started', (payload) => void attempts.push(payload.attempt));
    let doneAttempt: number | undefined;
    dvt.events.on('done', (payload) => void (doneAttempt = payload.attempt));
    let calls = 0;
    const task = dvt.task.schedule(() => {
      calls += 1;
      if (calls === 1) throw new Error('the first attempt fails');
      return 'second';
    });
    await flush();
    dvt.pause();
    await jest.advanceTimersByTimeAsync(1000);
    expect(attempts).toEqual([1]);
    dvt.resume();
    await expect(task).resolves.toBe('second');
    expect(attempts).toEqual([1, 2]);
    expect(doneAttempt).toBe(2);
  });

  // Kills `if (true)` for `limiter instanceof TokenBucket` in refusedAtStart(): with no rate
  // limit, a parked retry that the circuit refuses when the pause ends fails with
  // CircuitOpenError (nothing to refund), and resume() does not throw.
  it('fails a parked retry with CircuitOpenError when the circuit opened during the pause', async () => {
    fakeTimers();
    const dvt = create({ retries: 1, retryBackoff: 1000, circuitBreaker: { threshold: 5 } });
    let calls = 0;
    const task = dvt.task.schedule(() => {
      calls += 1;
      throw new Error('fails');
    });
    const state = track(task);
    await flush();
    dvt.pause();
    await jest.advanceTimersByTimeAsync(1000);
    dvt.circuit?.isolate();
    expect(() => dvt.resume()).not.toThrow();
    await flush();
    expect(state.outcome).toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(1);
    expect(dvt.events.stats()).toMatchObject({ shortCircuited: 1, error: 1 });
  });
});

describe('admission: a retry and the circuit', () => {
  // Kills `if (false)` for `refused !== undefined` in attemptNext() and its emptied block: a
  // retry meets the open circuit before it takes (and waits for) a token: it fails at once,
  // never throttled.
  it('fails a retry at once when the circuit is open, before any token wait', async () => {
    fakeTimers();
    const dvt = create({
      rateLimit: { perSecond: 1, burst: 1 },
      retries: 1,
      circuitBreaker: { threshold: 1 },
    });
    const limited: RateLimitedPayload[] = [];
    dvt.events.on('rate_limited', (payload) => void limited.push(payload));
    let calls = 0;
    const task = dvt.task.schedule(() => {
      calls += 1;
      throw new Error('down');
    });
    const state = track(task);
    await jest.advanceTimersByTimeAsync(0);
    await flush();
    expect(state.outcome).toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(1);
    expect(limited).toEqual([]);
    expect(dvt.events.stats()).toMatchObject({ shortCircuited: 1, throttled: 0 });
  });
});

describe('admission: a keyed retry', () => {
  // Kills `this.core.keys.bucketOf` for `this.core.keys?.bucketOf` in attemptNext(): on an
  // instance without `perKey` a key only labels the task, and its retries run as any other.
  it('retries a keyed task on an instance without perKey', async () => {
    const dvt = create({ retries: 1 });
    let calls = 0;
    const task = dvt.task.with({ key: 'a' }).schedule(() => {
      calls += 1;
      if (calls === 1) throw new Error('once');
      return 'again';
    });
    await expect(task).resolves.toBe('again');
    expect(calls).toBe(2);
  });
});
