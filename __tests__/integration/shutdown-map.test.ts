// What a shutdown does to a map in progress (API.md "Precise semantics (0.2)"): a waiting shutdown
// lets `map` finish (it is one call whose items are all queued work) and resolves after it; a
// `mapIterable` pulls nothing new, its running items finish and can still be read, then its loop
// throws ShutdownError; `wait: false` cancels both at once.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import { CancelledError, Event, ShutdownError, type Dovetail } from '../../src/index.js';
import { closeAll, create } from '../helpers/instances.js';
import { expectBalanced, Ledger } from '../reliability/ledger.js';

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
});
afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

/** An item that sleeps `ms` on the fake clock and records whether its signal aborted. */
function sleeper(dvt: Dovetail, aborted: number[]) {
  return (ms: number, index: number): Promise<number> => {
    const signal = dvt.task.current()!.signal;
    signal.addEventListener('abort', () => aborted.push(index));
    return new Promise((resolve) => setTimeout(resolve, ms, ms));
  };
}

describe('shutdown({ wait: true }) while a map runs', () => {
  it('map(fn, [10, 50, 10]) at concurrency 2, shut down 5 ms in: the map finishes, then the shutdown', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    const aborted: number[] = [];
    const order: string[] = [];
    const mapping = dvt.task
      .map(sleeper(dvt, aborted), [10, 50, 10], { concurrency: 2 })
      .then((out) => {
        order.push(`map at ${Date.now() - t0}`);
        return out;
      });
    const t0 = Date.now();
    await jest.advanceTimersByTimeAsync(5);
    const closing = dvt.shutdown().then(() => order.push(`shutdown at ${Date.now() - t0}`));
    expect(dvt.isShutdown).toBe(true);
    await jest.advanceTimersByTimeAsync(100);
    await expect(mapping).resolves.toEqual([10, 50, 10]);
    await closing;
    expect(order).toEqual(['map at 50', 'shutdown at 50']);
    expect(aborted).toEqual([]);
    expect(ledger.count(Event.CANCELLED)).toBe(0);
    expect(ledger.count(Event.DONE)).toBe(3);
    expectBalanced(dvt, ledger);
  });

  it('mapIterable: pulls nothing new, its running items finish and are read, then its loop throws', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    const aborted: number[] = [];
    let pulled = 0;
    let closed = false;
    function* source(): Generator<number> {
      try {
        for (let i = 0; i < 100; i++) {
          pulled += 1;
          yield 10 * (i + 1);
        }
      } finally {
        closed = true;
      }
    }
    const stream = dvt.task.mapIterable(sleeper(dvt, aborted), source(), { concurrency: 3 });
    const first = stream.next();
    await jest.advanceTimersByTimeAsync(5);
    expect(pulled).toBe(3);
    let shut = false;
    const closing = dvt.shutdown().then(() => (shut = true));
    await jest.advanceTimersByTimeAsync(40);
    // The running items (10, 20, 30 ms) finished: the shutdown does not wait for the reader.
    expect(shut).toBe(true);
    await closing;
    expect(pulled).toBe(3);
    expect(closed).toBe(true);
    await expect(first).resolves.toEqual({ done: false, value: 10 });
    await expect(stream.next()).resolves.toEqual({ done: false, value: 20 });
    await expect(stream.next()).resolves.toEqual({ done: false, value: 30 });
    await expect(stream.next()).rejects.toBeInstanceOf(ShutdownError);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
    expect(aborted).toEqual([]);
    expect(ledger.count(Event.DONE)).toBe(3);
    expectBalanced(dvt, ledger);
  });

  it('mapIterable read to its end by a waiting consumer: the loop throws after the last item', async () => {
    const dvt = create();
    const stream = dvt.task.mapIterable(sleeper(dvt, []), [10, 20, 30, 40], { concurrency: 2 });
    const seen: unknown[] = [];
    const reading = (async () => {
      try {
        for await (const value of stream) seen.push(value);
        seen.push('end');
      } catch (error) {
        seen.push(error instanceof ShutdownError ? 'ShutdownError' : error);
      }
    })();
    await jest.advanceTimersByTimeAsync(5);
    const closing = dvt.shutdown();
    await jest.advanceTimersByTimeAsync(100);
    await closing;
    await reading;
    expect(seen).toEqual([10, 20, 'ShutdownError']);
  });
});

describe('shutdown({ wait: false }) while a map runs', () => {
  it('cancels both forms at once: queued items cancelled, running signals aborted', async () => {
    const dvt = create({ concurrency: 2 });
    const ledger = new Ledger(dvt);
    const aborted: number[] = [];
    const mapping = dvt.task.map(sleeper(dvt, aborted), [10, 50, 10], { concurrency: 3 });
    const outcome = mapping.catch((error: unknown) => error);
    await jest.advanceTimersByTimeAsync(5);
    await dvt.shutdown({ wait: false });
    const error = await outcome;
    expect(error).toBeInstanceOf(CancelledError);
    expect((error as CancelledError).cause).toBeInstanceOf(ShutdownError);
    expect(aborted.sort()).toEqual([0, 1]);
    await jest.advanceTimersByTimeAsync(100);
    expectBalanced(dvt, ledger);
  });
});

// Random sequences: maps and streams of random lengths and delays, a shutdown (waiting or not)
// at a random time, then the clock runs out. Whatever the order, every promise settles; a waiting
// shutdown resolves only after every map did, and every map under it resolves in full with no
// item cancelled; a stream gives what it started and then ShutdownError (or its end); the
// counters balance.
describe('shutdown during random maps', () => {
  const delays = fc.array(fc.integer({ min: 0, max: 30 }), { minLength: 0, maxLength: 8 });
  const job = fc.record({
    kind: fc.constantFrom('map' as const, 'stream' as const),
    items: delays,
    concurrency: fc.integer({ min: 1, max: 4 }),
    at: fc.integer({ min: 0, max: 40 }),
  });

  it('holds for any mix of maps, streams and one shutdown', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(job, { minLength: 1, maxLength: 5 }),
        fc.integer({ min: 0, max: 60 }),
        fc.boolean(),
        fc.integer({ min: 1, max: 6 }),
        async (jobs, shutAt, wait, instance) => {
          const dvt = create({ concurrency: instance });
          const ledger = new Ledger(dvt);
          const aborted: number[] = [];
          const fn = sleeper(dvt, aborted);
          interface Outcome {
            kind: 'map' | 'stream';
            late: boolean;
            ok: boolean;
            values: unknown[];
            error: unknown;
            at: number;
          }
          const outcomes: Promise<Outcome>[] = [];
          const t0 = Date.now();
          const now = (): number => Date.now() - t0;
          let shutdownAt = -1;
          let closing: Promise<void> | undefined;
          const steps = [...jobs.map((j) => ({ at: j.at, j })), { at: shutAt, j: undefined }];
          steps.sort((a, b) => a.at - b.at);
          for (const { at, j } of steps) {
            await jest.advanceTimersByTimeAsync(at - now());
            if (j === undefined) {
              closing = dvt.shutdown({ wait }).then(() => {
                shutdownAt = now();
              });
              continue;
            }
            const late = dvt.isShutdown;
            const options = { concurrency: j.concurrency };
            const ended = (ok: boolean, values: unknown[], error: unknown): Outcome => ({
              kind: j.kind,
              late,
              ok,
              values,
              error,
              at: now(),
            });
            if (j.kind === 'map') {
              outcomes.push(
                dvt.task.map(fn, j.items, options).then(
                  (values) => ended(true, values, undefined),
                  (error: unknown) => ended(false, [], error),
                ),
              );
            } else {
              outcomes.push(
                (async () => {
                  const values: unknown[] = [];
                  try {
                    for await (const v of dvt.task.mapIterable(fn, j.items, options))
                      values.push(v);
                    return ended(true, values, undefined);
                  } catch (error) {
                    return ended(false, values, error);
                  }
                })(),
              );
            }
          }
          await jest.advanceTimersByTimeAsync(10_000);
          const settled = await Promise.all(outcomes);
          await closing;
          for (const o of settled) {
            if (o.late) {
              // Work started after the shutdown began is refused.
              expect(o.error).toBeInstanceOf(ShutdownError);
              continue;
            }
            if (wait && o.kind === 'map') {
              expect(o.ok).toBe(true);
              expect(o.at).toBeLessThanOrEqual(shutdownAt);
            }
            if (wait && o.kind === 'stream' && !o.ok) expect(o.error).toBeInstanceOf(ShutdownError);
          }
          if (wait) {
            expect(aborted).toEqual([]);
            expect(ledger.count(Event.CANCELLED)).toBe(0);
          }
          expectBalanced(dvt, ledger);
        },
      ),
      { numRuns: 60 },
    );
  });
});
