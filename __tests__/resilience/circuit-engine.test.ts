// The circuit breaker in the engine (issue 16; API.md "Resilience", circuit breaker): what an
// open circuit does to tasks, retries, tokens and slots, half-open trials, and the events.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
  CancelledError,
  CircuitOpenError,
  Event,
  LocalGate,
  TimeoutError,
  TokenBucket,
  type Backend,
  type DovetailOptions,
} from '../../src/index.js';
import { defer, flush } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
});
afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

const noop = (): undefined => undefined;
const boom = (): Promise<never> => Promise.reject(new Error('down'));

/** An instance whose circuit opened after `threshold` failures. */
async function opened(options: DovetailOptions = {}, threshold = 2) {
  const dvt = create({ circuitBreaker: { threshold, halfOpenAfter: 1000 }, ...options });
  for (let i = 0; i < threshold; i++) await dvt.task.schedule(boom).catch(() => undefined);
  expect(dvt.circuit?.state).toBe('open');
  return dvt;
}

describe('an open circuit', () => {
  it('fails tasks at once with CircuitOpenError: no call, one error event, counted', async () => {
    const dvt = await opened();
    const events: string[] = [];
    for (const name of Object.values(Event)) dvt.events.on(name, () => void events.push(name));
    let called = false;
    const task = dvt.task.schedule(async () => void (called = true));
    await expect(task).rejects.toBeInstanceOf(CircuitOpenError);
    expect(
      ((await task.catch((error: unknown) => error)) as CircuitOpenError).retryAt,
    ).toBeGreaterThan(Date.now());
    expect(called).toBe(false);
    expect(events).toEqual(['queued', 'error']);
    expect(dvt.events.stats()).toMatchObject({ shortCircuited: 1, error: 3, started: 2 });
  });

  it('with nobody listening, refuses without an execution, counted the same', async () => {
    const dvt = await opened({ concurrency: 1 });
    const before = dvt.events.stats();
    const tasks = [0, 1, 2].map(() => dvt.task.schedule(async () => 1));
    const ids = tasks.map((task) => Number(task.id));
    expect(new Set(ids).size).toBe(3);
    expect(ids.every((id) => Number.isInteger(id) && id > 0)).toBe(true);
    expect(tasks[0]?.cancel()).toBe(false);
    expect([dvt.active, dvt.pending]).toEqual([0, 0]);
    for (const task of tasks) await expect(task).rejects.toBeInstanceOf(CircuitOpenError);
    expect(dvt.events.stats()).toMatchObject({
      queued: before.queued + 3,
      error: before.error + 3,
      shortCircuited: before.shortCircuited + 3,
    });
  });

  it('with nobody listening, hands out real promises that behave as any task', async () => {
    const dvt = create({ circuitBreaker: {} });
    dvt.circuit?.isolate();
    const tasks = [0, 1].map((i) => dvt.task.schedule(async () => i));
    const [first, second] = tasks;
    expect(first).toBeInstanceOf(Promise);
    // Derived promises are plain ones, as for any task.
    expect(first?.constructor).toBe(Promise);
    expect(first?.then(noop, noop).constructor).toBe(Promise);
    expect(typeof first?.id).toBe('string');
    expect(Number(second?.id)).toBeGreaterThan(Number(first?.id));
    // `cancel` works detached and answers false: the task has already failed.
    const cancel = second?.cancel;
    expect(cancel?.()).toBe(false);
    const outcomes = await Promise.allSettled(tasks);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
    for (const outcome of outcomes) {
      const reason = (outcome as PromiseRejectedResult).reason as CircuitOpenError;
      expect(reason).toBeInstanceOf(CircuitOpenError);
      expect(reason).toMatchObject({ name: 'CircuitOpenError', retryAt: Infinity });
    }
    expect(second?.cancel()).toBe(false);
    expect(dvt.events.stats()).toMatchObject({ queued: 2, error: 2, shortCircuited: 2 });
  });

  it('takes no token and holds no slot', async () => {
    const dvt = await opened({ concurrency: 1, rateLimit: { perSecond: 1, burst: 3 } });
    // Two tokens went to the failures; the refused tasks take none.
    const refused = Array.from({ length: 5 }, () => dvt.task.schedule(async () => 1));
    for (const task of refused) await expect(task).rejects.toBeInstanceOf(CircuitOpenError);
    expect([dvt.active, dvt.pending]).toEqual([0, 0]);
    dvt.circuit?.reset();
    // One token is left: the next task starts at once.
    const began = Date.now();
    await expect(dvt.task.schedule(async () => Date.now() - began)).resolves.toBe(0);
  });

  it('ends a task whatever retries remain, once the circuit opens under it', async () => {
    const dvt = create({ retries: 5, circuitBreaker: { threshold: 2 } });
    let calls = 0;
    const task = dvt.task.schedule(() => {
      calls += 1;
      return boom();
    });
    await expect(task).rejects.toBeInstanceOf(CircuitOpenError);
    expect(calls).toBe(2);
    expect(dvt.events.stats()).toMatchObject({ retries: 2, shortCircuited: 1, error: 1 });
  });

  it('fails a task that waited for its slot while the circuit opened', async () => {
    const dvt = create({ concurrency: 1, circuitBreaker: { threshold: 1 } });
    const hold = defer<never>();
    const first = dvt.task.schedule(() => hold.promise);
    let called = false;
    const waiting = dvt.task.schedule(async () => void (called = true));
    hold.reject(new Error('down'));
    await expect(first).rejects.toThrow('down');
    await expect(waiting).rejects.toBeInstanceOf(CircuitOpenError);
    expect(called).toBe(false);
  });
});

describe('half-open', () => {
  it('lets one trial through after halfOpenAfter; its success closes the circuit', async () => {
    const dvt = await opened();
    const log: string[] = [];
    for (const name of ['circuit_open', 'circuit_half_open', 'circuit_closed'] as const)
      dvt.events.on(name, () => void log.push(name));
    await jest.advanceTimersByTimeAsync(1000);
    const trial = defer<string>();
    const first = dvt.task.schedule(() => trial.promise);
    await flush();
    expect(dvt.circuit?.state).toBe('half-open');
    // A concurrent caller during the trial fails fast.
    await expect(dvt.task.schedule(async () => 'second')).rejects.toBeInstanceOf(CircuitOpenError);
    trial.resolve('ok');
    await expect(first).resolves.toBe('ok');
    expect(dvt.circuit?.state).toBe('closed');
    expect(log).toEqual(['circuit_half_open', 'circuit_closed']);
  });

  it("a trial's failure opens it again for another halfOpenAfter", async () => {
    const dvt = await opened();
    await jest.advanceTimersByTimeAsync(1000);
    await expect(dvt.task.schedule(boom)).rejects.toThrow('down');
    expect(dvt.circuit?.state).toBe('open');
    await jest.advanceTimersByTimeAsync(999);
    await expect(dvt.task.schedule(async () => 1)).rejects.toBeInstanceOf(CircuitOpenError);
    await jest.advanceTimersByTimeAsync(1);
    await expect(dvt.task.schedule(async () => 1)).resolves.toBe(1);
  });

  it('a trial cancelled before it ends gives its place back', async () => {
    const dvt = await opened();
    await jest.advanceTimersByTimeAsync(1000);
    const trial = dvt.task.schedule(() => new Promise<never>(() => undefined));
    await flush();
    trial.cancel();
    await expect(trial).rejects.toBeInstanceOf(CancelledError);
    await expect(dvt.task.schedule(async () => 'next trial')).resolves.toBe('next trial');
    expect(dvt.circuit?.state).toBe('closed');
  });
});

describe('what counts', () => {
  it('a timeout is a failure', async () => {
    const dvt = create({ timeout: 10, circuitBreaker: { threshold: 2 } });
    for (let i = 0; i < 2; i++) {
      const task = dvt.task.schedule(() => new Promise(() => undefined));
      const outcome = expect(task).rejects.toBeInstanceOf(TimeoutError);
      await jest.advanceTimersByTimeAsync(10);
      await outcome;
    }
    expect(dvt.circuit?.state).toBe('open');
  });

  it('isFailure decides, and a throwing isFailure fails the task with what it threw', async () => {
    const thrown = new Error('isFailure broke');
    const dvt = create({
      circuitBreaker: {
        threshold: 1,
        isFailure: (error) => {
          if ((error as Error).message === 'weird') throw thrown;
          return (error as Error).message !== 'client error';
        },
      },
    });
    await expect(
      dvt.task.schedule(() => Promise.reject(new Error('client error'))),
    ).rejects.toThrow('client error');
    expect(dvt.circuit?.state).toBe('closed');
    await expect(dvt.task.schedule(() => Promise.reject(new Error('weird')))).rejects.toBe(thrown);
  });

  it('a cancelled task does not count', async () => {
    const dvt = create({ circuitBreaker: { threshold: 1 } });
    const task = dvt.task.schedule(() => new Promise<never>(() => undefined));
    await flush();
    task.cancel();
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    expect(dvt.circuit?.state).toBe('closed');
  });
});

describe('dvt.circuit', () => {
  it('is undefined without a breaker', () => {
    expect(create().circuit).toBeUndefined();
  });

  it('isolate() holds it open until reset(), with its events', async () => {
    const dvt = create({ circuitBreaker: {} });
    const log: unknown[] = [];
    dvt.events.on('circuit_open', (payload) => void log.push(['open', payload.retryAt]));
    dvt.events.on('circuit_closed', () => void log.push(['closed']));
    dvt.circuit?.isolate();
    await jest.advanceTimersByTimeAsync(60_000);
    const refused = dvt.task.schedule(async () => 1);
    await expect(refused).rejects.toMatchObject({ retryAt: Infinity });
    dvt.circuit?.reset();
    await expect(dvt.task.schedule(async () => 2)).resolves.toBe(2);
    expect(log).toEqual([['open', Infinity], ['closed']]);
  });

  it('is refused with a back end that cannot share its state', () => {
    const backend: Backend = {
      createGate: ({ concurrency }) => new LocalGate(concurrency),
      createRateLimiter: ({ perSecond, burst }) => new TokenBucket(perSecond, burst),
    };
    expect(() => create({ backend, circuitBreaker: {} })).toThrow(
      /`circuitBreaker` is not supported with this back end/,
    );
  });
});

describe('a token taken while the circuit opened', () => {
  it('goes back to the bucket when the attempt is refused', async () => {
    const dvt = create({
      concurrency: 2,
      rateLimit: { perSecond: 10, burst: 1 },
      circuitBreaker: { threshold: 1, halfOpenAfter: 60_000 },
    });
    const hold = defer<never>();
    const failing = dvt.task.schedule(() => hold.promise);
    // Waits for the token the failing task took.
    const waiting = dvt.task.schedule(async () => 'never');
    const refusedLater = expect(waiting).rejects.toBeInstanceOf(CircuitOpenError);
    hold.reject(new Error('down'));
    await expect(failing).rejects.toThrow('down');
    expect(dvt.circuit?.state).toBe('open');
    await jest.advanceTimersByTimeAsync(100);
    await refusedLater;
    dvt.circuit?.reset();
    // The refused task's token came back: the next task starts at once.
    const began = Date.now();
    await expect(dvt.task.schedule(async () => Date.now() - began)).resolves.toBe(0);
  });
});
