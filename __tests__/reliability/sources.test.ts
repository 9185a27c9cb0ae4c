// Hostile sources for map() and mapIterable(): iterators that throw, reject, refuse to close, or
// are shut down between two pulls. The call fails with the source's own error, what runs is
// cancelled, nothing is left unhandled, and the accounting balances.
import { afterEach, describe, expect, it } from '@jest/globals';
import { CancelledError, ShutdownError } from '../../src/index.js';
import { defer, flush } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';
import { expectBalanced, Ledger } from './ledger.js';

afterEach(closeAll);

const boom = new Error('source broke');

/** A sync iterable whose next() throws at item `at`. */
const throwingSync = (at: number): Iterable<number> => ({
  [Symbol.iterator]: () => {
    let i = 0;
    return {
      next: (): IteratorResult<number> => {
        if (i === at) throw boom;
        return { done: false, value: i++ };
      },
    };
  },
});

/** An async iterable whose next() rejects (or throws synchronously) at item `at`. */
const failingAsync = (at: number, how: 'reject' | 'throw'): AsyncIterable<number> => ({
  [Symbol.asyncIterator]: () => {
    let i = 0;
    return {
      next: (): Promise<IteratorResult<number>> => {
        if (i === at) {
          if (how === 'throw') throw boom;
          return Promise.reject(boom);
        }
        return Promise.resolve({ done: false, value: i++ });
      },
    };
  },
});

const hold = <T>(value: T): Promise<T> =>
  new Promise((resolve) => setTimeout(() => resolve(value), 5));

/** An async source that yields 1, waits for `between`, then yields 2. */
async function* twoPulls(between: Promise<void>): AsyncGenerator<number> {
  yield 1;
  await between;
  yield 2;
}

describe('map() over a hostile source', () => {
  it.each([
    ['a sync next() that throws', () => throwingSync(3)],
    ['an async next() that rejects', () => failingAsync(3, 'reject')],
    ['an async next() that throws synchronously', () => failingAsync(3, 'throw')],
  ])('%s rejects with that error and cancels what runs', async (_, source) => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    await expect(dvt.task.map((n: number) => hold(n), source(), { concurrency: 10 })).rejects.toBe(
      boom,
    );
    await flush();
    expectBalanced(dvt, ledger);
  });

  it('rejects when the iterable cannot even give its iterator', async () => {
    const dvt = create();
    const broken = {
      [Symbol.iterator]: (): never => {
        throw boom;
      },
    };
    await expect(dvt.task.map((n: number) => n, broken)).rejects.toBe(boom);
    expect(dvt.events.stats().queued).toBe(0);
  });

  it('a waiting shutdown between two pulls of an async source lets the map finish, then resolves', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    const gate = defer();
    const slow = (): AsyncGenerator<number> => twoPulls(gate.promise);
    const order: string[] = [];
    const mapping = dvt.task
      .map((n: number) => n, slow())
      .then((out) => {
        order.push('map');
        return out;
      });
    await flush();
    // No task is live between the two pulls, yet the map is the instance's work.
    const closing = dvt.shutdown().then(() => order.push('shutdown'));
    await flush();
    expect(order).toEqual([]);
    gate.resolve();
    await expect(mapping).resolves.toEqual([1, 2]);
    await closing;
    expect(order).toEqual(['map', 'shutdown']);
    expect(dvt.events.stats()).toMatchObject({ queued: 2, done: 2 });
    expectBalanced(dvt, ledger);
  });

  it('a shutdown without waiting between two pulls ends the map with ShutdownError', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    const gate = defer();
    const slow = (): AsyncGenerator<number> => twoPulls(gate.promise);
    const mapping = dvt.task.map((n: number) => n, slow());
    await flush();
    const closing = dvt.shutdown({ wait: false });
    gate.resolve();
    await expect(mapping).rejects.toBeInstanceOf(ShutdownError);
    await closing;
    expect(dvt.events.stats()).toMatchObject({ queued: 1, done: 1 });
    expectBalanced(dvt, ledger);
  });

  it('returnErrors keeps every failure at its index, whatever was thrown', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    const out = await dvt.task.map(
      (n: number) => {
        if (n === 1) throw undefined;
        if (n === 2) return Promise.reject('text');
        return n;
      },
      [0, 1, 2, 3],
      { returnErrors: true },
    );
    expect(out).toEqual([0, undefined, 'text', 3]);
    expectBalanced(dvt, ledger);
  });
});

describe('mapIterable() over a hostile source', () => {
  it.each([
    ['a sync next() that throws', () => throwingSync(3)],
    ['an async next() that rejects', () => failingAsync(3, 'reject')],
    ['an async next() that throws synchronously', () => failingAsync(3, 'throw')],
  ])('%s is thrown from the loop, then the stream is done', async (_, source) => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    const stream = dvt.task.mapIterable((n: number) => hold(n), source(), { concurrency: 2 });
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const value of stream) seen.push(value);
      })(),
    ).rejects.toBe(boom);
    expect(seen.length).toBeLessThanOrEqual(3);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
    await flush();
    expectBalanced(dvt, ledger);
  });

  it('an iterable whose [Symbol.asyncIterator]() throws rejects the first next() only', async () => {
    const dvt = create();
    const broken = {
      [Symbol.asyncIterator]: (): never => {
        throw boom;
      },
    };
    const stream = dvt.task.mapIterable((n: number) => n, broken);
    await expect(stream.next()).rejects.toBe(boom);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
  });

  it('throw() from the consumer closes the source and cancels what runs', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    let closed = false;
    const never = new Promise<number>(() => {});
    async function* source(): AsyncGenerator<number> {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    const stream = dvt.task.mapIterable((n: number) => (n === 0 ? n : never), source(), {
      concurrency: 3,
    });
    await expect(stream.next()).resolves.toEqual({ done: false, value: 0 });
    const reason = new Error('consumer gave up');
    await expect(stream.throw?.(reason)).rejects.toBe(reason);
    await flush();
    expect(closed).toBe(true);
    expect([dvt.active, dvt.pending]).toEqual([0, 0]);
    expect(dvt.events.stats().cancelled).toBeGreaterThan(0);
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
    expectBalanced(dvt, ledger);
  });

  it('return() and throw() before the first next() start nothing', async () => {
    const dvt = create();
    let opened = 0;
    const source = {
      [Symbol.iterator]: () => {
        opened += 1;
        return [1, 2][Symbol.iterator]();
      },
    };
    await expect(dvt.task.mapIterable((n: number) => n, source).return?.()).resolves.toEqual({
      done: true,
      value: undefined,
    });
    await expect(dvt.task.mapIterable((n: number) => n, source).throw?.(boom)).rejects.toBe(boom);
    expect(opened).toBe(0);
    expect(dvt.events.stats().queued).toBe(0);
  });

  it('a source whose return() throws or rejects does not disturb the break', async () => {
    const dvt = create();
    const syncSource: Iterable<number> = {
      [Symbol.iterator]: () => {
        let i = 0;
        return {
          next: () => ({ done: false, value: i++ }),
          return: (): never => {
            throw boom;
          },
        };
      },
    };
    const asyncSource: AsyncIterable<number> = {
      [Symbol.asyncIterator]: () => {
        let i = 0;
        return {
          next: () => Promise.resolve({ done: false, value: i++ }),
          return: () => Promise.reject(boom),
        };
      },
    };
    for (const source of [syncSource, asyncSource]) {
      for await (const value of dvt.task.mapIterable((n: number) => n, source)) {
        if (value === 2) break;
      }
    }
    await flush(); // the setup file fails the test on an unhandled rejection
    expect([dvt.active, dvt.pending]).toEqual([0, 0]);
  });

  it('returnErrors yields each failure in place and keeps going', async () => {
    const dvt = create();
    const out: unknown[] = [];
    for await (const value of dvt.task.mapIterable(
      async (n: number) => {
        if (n % 2 === 1) throw new Error(`odd ${n}`);
        return n;
      },
      [0, 1, 2, 3],
      { returnErrors: true, concurrency: 2 },
    )) {
      const item: unknown = value; // the results' type says number; returnErrors adds the errors
      out.push(item instanceof Error ? item.message : item);
    }
    expect(out).toEqual([0, 'odd 1', 2, 'odd 3']);
  });

  it('a signal aborted mid-stream throws its reason from the loop and cancels what runs', async () => {
    const dvt = create();
    const ledger = new Ledger(dvt);
    const controller = new AbortController();
    const stream = dvt.task.mapIterable(
      (n: number) => (n === 0 ? n : new Promise<number>(() => {})),
      [0, 1, 2, 3],
      { signal: controller.signal, concurrency: 2 },
    );
    await expect(stream.next()).resolves.toEqual({ done: false, value: 0 });
    const pending = stream.next();
    controller.abort('stop');
    await expect(pending).rejects.toBe('stop');
    await flush();
    expect(ledger.count('cancelled')).toBeGreaterThan(0);
    expect(
      [...ledger.byId.values()]
        .filter((p) => p.some((x) => x.event === 'cancelled'))
        .every((p) => p.some((x) => x.error instanceof CancelledError)),
    ).toBe(true);
    expectBalanced(dvt, ledger);
  });
});
