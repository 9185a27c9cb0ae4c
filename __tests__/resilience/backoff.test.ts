// Jittered and capped backoff, and retryDelay (issue 16; API.md "Resilience", retry delays).
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Event, type DovetailOptions, type RetryJitter } from '../../src/index.js';
import { closeAll, create } from '../helpers/instances.js';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
});
afterEach(async () => {
  await closeAll();
  jest.restoreAllMocks();
  jest.useRealTimers();
});

/** A seeded source for Math.random: the same sequence every run. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 16807) % 2147483647;
    return (state - 1) / 2147483646;
  };
}

/** Runs a task that always fails under `options`; returns each retry's sleep and start times. */
async function schedule(
  options: DovetailOptions,
  fail: (attempt: number) => unknown = () => new Error('boom'),
) {
  const dvt = create(options);
  const sleeps: number[] = [];
  const starts: number[] = [];
  const began = Date.now();
  dvt.events.on(Event.RETRY, (payload) => void sleeps.push(payload.sleep));
  dvt.events.on(Event.STARTED, () => void starts.push(Date.now() - began));
  let attempt = 0;
  const outcome = dvt.task
    .schedule(() => {
      attempt += 1;
      return Promise.reject(fail(attempt));
    })
    .catch((error: unknown) => error);
  await jest.advanceTimersByTimeAsync(100_000);
  return { sleeps, starts, error: await outcome, dvt };
}

/** The sleeps each jitter mode owes for `draws`, by the formulas of API.md. */
function owed(
  mode: RetryJitter,
  backoff: number,
  draws: readonly number[],
  cap = Infinity,
): number[] {
  let previous = backoff;
  return draws.map((u, i) => {
    const d = backoff * 2 ** i;
    let delay: number;
    if (mode === 'full') delay = u * d;
    else if (mode === 'equal') delay = d / 2 + u * (d / 2);
    else if (mode === 'decorrelated')
      delay = backoff + u * (Math.max(backoff, 3 * previous) - backoff);
    else delay = d;
    delay = Math.round(Math.min(delay, cap));
    previous = delay;
    return delay;
  });
}

describe('retryJitter', () => {
  it("'none' is the default: the exact backoff", async () => {
    const { sleeps, starts } = await schedule({ retries: 3, retryBackoff: 100 });
    expect(sleeps).toEqual([100, 200, 400]);
    expect(starts).toEqual([0, 100, 300, 700]);
  });

  for (const mode of ['full', 'equal', 'decorrelated'] as const) {
    it(`'${mode}' follows its formula under a seeded random source, and sleeps what it announces`, async () => {
      const draws = Array.from({ length: 4 }, seeded(42));
      let next = 0;
      jest.spyOn(Math, 'random').mockImplementation(() => draws[next++] ?? 0.5);
      const { sleeps, starts } = await schedule({
        retries: 4,
        retryBackoff: 100,
        retryJitter: mode,
      });
      const expected = owed(mode, 100, draws);
      expect(sleeps).toEqual(expected);
      // Each attempt starts exactly the announced sleep after the one before it failed.
      const gaps = starts.slice(1).map((at, i) => at - (starts[i] as number));
      expect(gaps).toEqual(expected);
    });
  }

  it("'full' spans [0, d]: the extremes of the random source give 0 and d", async () => {
    const draws = [0, 0.999999];
    let next = 0;
    jest.spyOn(Math, 'random').mockImplementation(() => draws[next++] ?? 0);
    const { sleeps } = await schedule({ retries: 2, retryBackoff: 100, retryJitter: 'full' });
    expect(sleeps).toEqual([0, 200]);
  });
});

describe('retryMaxDelay', () => {
  it('caps the exact backoff', async () => {
    const { sleeps } = await schedule({ retries: 4, retryBackoff: 100, retryMaxDelay: 250 });
    expect(sleeps).toEqual([100, 200, 250, 250]);
  });

  it('caps decorrelated jitter, whose next range grows from the capped sleep', async () => {
    const draws = [0.9, 0.9, 0.9];
    let next = 0;
    jest.spyOn(Math, 'random').mockImplementation(() => draws[next++] ?? 0.9);
    const { sleeps } = await schedule({
      retries: 3,
      retryBackoff: 100,
      retryJitter: 'decorrelated',
      retryMaxDelay: 200,
    });
    expect(sleeps).toEqual(owed('decorrelated', 100, draws, 200));
    expect(Math.max(...sleeps)).toBe(200);
  });

  it('caps a retryDelay result too', async () => {
    const { sleeps } = await schedule({ retries: 1, retryDelay: () => 10_000, retryMaxDelay: 50 });
    expect(sleeps).toEqual([50]);
  });
});

describe('retryDelay', () => {
  it('sets the delay per failure, used as it is (not jittered); undefined keeps the computed one', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0);
    const seen: [unknown, number][] = [];
    const { sleeps } = await schedule(
      {
        retries: 3,
        retryBackoff: 100,
        retryJitter: 'full',
        retryDelay: (error, attempt) => {
          seen.push([(error as Error).message, attempt]);
          return attempt === 2 ? undefined : 1000 * attempt;
        },
      },
      (attempt) => new Error(`fail ${attempt}`),
    );
    // Attempt 2's delay is the computed one: full jitter with a draw of 0.
    expect(sleeps).toEqual([1000, 0, 3000]);
    expect(seen).toEqual([
      ['fail 1', 1],
      ['fail 2', 2],
      ['fail 3', 3],
    ]);
  });

  it('fails the task with what it throws, as its one terminal event', async () => {
    const thrown = new Error('no delay for you');
    const { error, sleeps, dvt } = await schedule({
      retries: 3,
      retryDelay: () => {
        throw thrown;
      },
    });
    expect(error).toBe(thrown);
    expect(sleeps).toEqual([]);
    expect(dvt.events.stats()).toMatchObject({ started: 1, retries: 0, error: 1 });
  });

  it.each([[-1], [Number.NaN], [Infinity], ['10'], [null]])(
    'fails the task with a RangeError for a bad value (%p)',
    async (bad) => {
      const { error } = await schedule({
        retries: 1,
        retryDelay: () => bad as unknown as number,
      });
      expect(error).toBeInstanceOf(RangeError);
      expect((error as Error).message).toMatch(
        /^`retryDelay` must return a finite number >= 0 or undefined, received /,
      );
    },
  );

  it('is a with() override and a map option', async () => {
    const dvt = create({ retries: 1, retryBackoff: 1000 });
    const sleeps: number[] = [];
    dvt.events.on(Event.RETRY, (payload) => void sleeps.push(payload.sleep));
    // Each item fails its first attempt.
    const failed = new Set<number>();
    const flaky = async (n: number) => {
      if (!failed.has(n)) {
        failed.add(n);
        throw new Error('once');
      }
      return n;
    };
    const task = dvt.task.with({ retryDelay: () => 5 }).schedule(flaky, 1);
    const mapped = dvt.task.map(flaky, [2], { retryMaxDelay: 7 });
    await jest.advanceTimersByTimeAsync(20);
    await expect(task).resolves.toBe(1);
    await expect(mapped).resolves.toEqual([2]);
    expect(sleeps.sort((a, b) => a - b)).toEqual([5, 7]);
  });
});

describe('a delay longer than one timer', () => {
  it('sleeps all of it (setTimeout alone would fire at once past 2 ** 31 - 1 ms)', async () => {
    const day = 24 * 3600 * 1000;
    const dvt = create({ retries: 1, retryDelay: () => 30 * day });
    let calls = 0;
    const task = dvt.task.schedule(async () => {
      calls += 1;
      if (calls === 1) throw new Error('later');
      return calls;
    });
    await jest.advanceTimersByTimeAsync(29 * day);
    expect(calls).toBe(1);
    await jest.advanceTimersByTimeAsync(day);
    await expect(task).resolves.toBe(2);
  });
});
