// Behaviours of src/map.ts found untested by mutation testing (stryker run --mutate src/map.ts):
// each test here kills mutants that survived the rest of the suite (named in its comments, by
// line of src/map.ts as it stood when the mutants were found).
import { afterEach, describe, expect, it } from '@jest/globals';
import { getEventListeners } from 'node:events';
import { ShutdownError, type MapInput } from '../../src/index.js';
import { defer, flush, type Deferred } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';

afterEach(closeAll);

const boom = new Error('boom');
const DONE: IteratorResult<number> = { done: true, value: undefined };

/** `promise` if it settles within a turn of the event loop, else 'still pending'. */
const soon = <T>(promise: Promise<T>): Promise<T | 'still pending'> =>
  Promise.race([promise, flush().then(() => 'still pending' as const)]);

interface Probe {
  opened: number;
  nexts: number;
  returns: number;
}

/**
 * A source of `items` that counts how often it is opened, pulled and closed; its next() fails
 * with `boom` at index `failAt` (an async source's either throws or rejects, as `how` says).
 */
function probed(
  kind: 'sync' | 'async',
  items: readonly number[],
  fail: { at: number; how: 'throw' | 'reject' } = { at: -1, how: 'throw' },
): { source: MapInput<number>; probe: Probe } {
  const probe: Probe = { opened: 0, nexts: 0, returns: 0 };
  const cursor = (): {
    step: () => IteratorResult<number>;
    close: () => IteratorResult<number>;
  } => {
    probe.opened += 1;
    let at = 0;
    return {
      step: () => {
        probe.nexts += 1;
        if (at === fail.at) throw boom;
        const value = items[at++];
        return value === undefined ? { done: true, value } : { done: false, value };
      },
      close: () => {
        probe.returns += 1;
        return DONE;
      },
    };
  };
  const source: MapInput<number> =
    kind === 'sync'
      ? {
          [Symbol.iterator]: () => {
            const { step, close } = cursor();
            return { next: step, return: close };
          },
        }
      : {
          [Symbol.asyncIterator]: () => {
            const { step, close } = cursor();
            return {
              next: () =>
                fail.how === 'throw' ? Promise.resolve(step()) : Promise.resolve().then(step),
              return: () => Promise.resolve(close()),
            };
          },
        };
  return { source, probe };
}

/** An async source whose every next() answers only when the test settles `pulls[n]`. */
function manual(): { source: AsyncIterable<number>; pulls: Deferred<IteratorResult<number>>[] } {
  const pulls: Deferred<IteratorResult<number>>[] = [];
  const iterator: AsyncIterator<number> = {
    next: () => {
      const pull = defer<IteratorResult<number>>();
      pulls.push(pull);
      return pull.promise;
    },
    return: () => Promise.resolve(DONE),
  };
  return { source: { [Symbol.asyncIterator]: () => iterator }, pulls };
}

describe('map() and its source', () => {
  // Kills, in fill(): `true` and `||` for `!this.stopped && !this.exhausted` (L115: the source is
  // pulled again after it said done); in stop(): `true` and `||` for
  // `closeIterator && !this.exhausted` (L104: a source that ended is closed); in the async pull:
  // `if (true) this.finished()` (L148: an async source that ends while items run resolves the
  // map at once, with the results missing).
  it.each(['sync', 'async'] as const)(
    'pulls a %s source to its end exactly once and never closes a source that ended',
    async (kind) => {
      const dvt = create();
      const hold = defer();
      const work = async (n: number): Promise<number> => {
        await hold.promise;
        if (n === 9) throw boom;
        return n * 10;
      };
      const ended = probed(kind, [1, 2, 3]);
      const mapping = dvt.task.map(work, ended.source, { concurrency: 4 });
      // The last item fails after the source has ended.
      const endedThenFailed = probed(kind, [1, 9]);
      const failing = dvt.task.map(work, endedThenFailed.source, { concurrency: 4 });
      await flush();
      hold.resolve();
      await expect(mapping).resolves.toEqual([10, 20, 30]);
      await expect(failing).rejects.toBe(boom);
      expect(ended.probe).toEqual({ opened: 1, nexts: 4, returns: 0 });
      expect(endedThenFailed.probe).toEqual({ opened: 1, nexts: 3, returns: 0 });
    },
  );

  // Kills `this.exhausted = false` where a sync next() throws (L122), where an async next()
  // throws synchronously (L138) and where it rejects (L156): the failed source was closed.
  it.each([
    ['sync', 'throw'],
    ['async', 'throw'],
    ['async', 'reject'],
  ] as const)(
    'does not close a %s source whose next() fails (%s), as for...of would not',
    async (kind, how) => {
      const dvt = create();
      const { source, probe } = probed(kind, [1, 2, 3], { at: 1, how });
      await expect(dvt.task.map((n: number) => n, source)).rejects.toBe(boom);
      expect(probe).toEqual({ opened: 1, nexts: 2, returns: 0 });
    },
  );

  // Kills `this.stop(error, false)` in ArrayRun.failed() and `this.stop(signal?.reason, false)`
  // in begin(); the shutdown case (without waiting: a waiting one lets the map finish) checks
  // that a run halted by a shutdown closes its source.
  it.each(['sync', 'async'] as const)(
    'closes a %s source once when it stops early: an item fails, an aborted signal, a shutdown',
    async (kind) => {
      const dvt = create();
      const failed = probed(kind, [0, 1, 2]);
      const fail = (n: number): number => {
        if (n === 0) throw boom;
        return n;
      };
      await expect(dvt.task.map(fail, failed.source, { concurrency: 1 })).rejects.toBe(boom);
      expect(failed.probe).toEqual({ opened: 1, nexts: 1, returns: 1 });

      const aborted = probed(kind, [0, 1, 2]);
      const signal = AbortSignal.abort('early');
      await expect(dvt.task.map((n: number) => n, aborted.source, { signal })).rejects.toBe(
        'early',
      );
      expect(aborted.probe).toEqual({ opened: 1, nexts: 0, returns: 1 });

      const shut = probed(kind, [0, 1, 2]);
      const hold = defer();
      const mapping = dvt.task.map(() => hold.promise, shut.source, { concurrency: 1 });
      await flush();
      const closing = dvt.shutdown({ wait: false });
      hold.resolve();
      await expect(mapping).rejects.toBeInstanceOf(ShutdownError);
      await closing;
      // The item after the running one is never pulled: the shutdown halts the run first.
      expect(shut.probe).toEqual({ opened: 1, nexts: 1, returns: 1 });
    },
  );

  // Kills `if (false)` and the emptied block for `host.isShutdown` in mapArray() (L259) and the
  // emptied block in mapStream()'s start (L415): the source was opened and pulled, and an empty
  // one gave [] / done instead of the ShutdownError.
  it('after shutdown, rejects with ShutdownError without opening the source, even an empty one', async () => {
    const dvt = create();
    await dvt.shutdown();
    const { source, probe } = probed('sync', []);
    await expect(dvt.task.map((n: number) => n, source)).rejects.toBeInstanceOf(ShutdownError);
    await expect(dvt.task.mapIterable((n: number) => n, source).next()).rejects.toBeInstanceOf(
      ShutdownError,
    );
    expect(probe.opened).toBe(0);
  });
});

describe('the signal of map() and mapIterable()', () => {
  // Kills `if (false)` and `=== undefined` for `this.#onAbort !== undefined` in stop() (L103);
  // the mapIterable case checks the fix that stops the run when the stream ends by itself.
  it('keeps no listener on the signal once the call ended, however it ended', async () => {
    const dvt = create();
    const { signal } = new AbortController();
    await dvt.task.map((n: number) => n, [1, 2], { signal });
    const fail = (): never => {
      throw boom;
    };
    await expect(dvt.task.map(fail, [1], { signal })).rejects.toBe(boom);
    const out: number[] = [];
    for await (const value of dvt.task.mapIterable((n: number) => n, [1, 2], { signal })) {
      out.push(value);
    }
    for await (const value of dvt.task.mapIterable((n: number) => n, [3, 4, 5], { signal })) {
      out.push(value);
      break;
    }
    expect(out).toEqual([1, 2, 3]);
    expect(getEventListeners(signal, 'abort')).toHaveLength(0);
  });
});

describe('mapIterable() after return() or a failure', () => {
  // Kills the object literal `{}` and `done: false` in return() (L324), `if (false)` for
  // `this.#closed` in next() (L310) and `this.#closed = false` in return() (L321): a finished
  // result still buffered was handed out after return().
  it('return() answers done, and so does every next() after it, though a result was buffered', async () => {
    const dvt = create();
    const stream = dvt.task.mapIterable((n: number) => n, [0, 1, 2, 3], { concurrency: 2 });
    await expect(stream.next()).resolves.toEqual({ done: false, value: 0 });
    await flush(); // item 1 has finished and waits in the buffer
    await expect(stream.return?.()).resolves.toEqual(DONE);
    await expect(soon(stream.next())).resolves.toEqual(DONE);
  });

  // Kills, in #wake(): `if (false)` for `this.#closed` (L391), its emptied block, and `{}` /
  // `done: false` for what it resolves the waiting next() with (L393): that next() hung or
  // answered wrongly.
  it.each(['return', 'throw'] as const)(
    'a next() still waiting when %s() is called answers done',
    async (how) => {
      const dvt = create();
      const stream = dvt.task.mapIterable(() => new Promise<number>(() => {}), [0, 1], {
        concurrency: 2,
      });
      const waiting = stream.next();
      await flush();
      if (how === 'return') await stream.return?.();
      else await expect(stream.throw?.(boom)).rejects.toBe(boom);
      await expect(soon(waiting)).resolves.toEqual(DONE);
      expect(dvt.active).toBe(0);
    },
  );

  // Kills the emptied body of StreamRun.finished() (L342): the waiting next() was never woken.
  it('a next() waiting for an async source that ends after every result was taken answers done', async () => {
    const dvt = create();
    const { source, pulls } = manual();
    const stream = dvt.task.mapIterable((n: number) => n * 2, source);
    const first = stream.next();
    await flush();
    pulls[0]?.resolve({ done: false, value: 21 });
    await expect(first).resolves.toEqual({ done: false, value: 42 });
    const last = stream.next();
    await flush();
    expect(pulls).toHaveLength(2);
    pulls[1]?.resolve(DONE);
    await expect(soon(last)).resolves.toEqual(DONE);
  });

  // Kills `false` and `&&` for `this.#closed || this.#failure !== undefined` in
  // StreamRun.failed() (L347): a pull that fails after return() was thrown from the next next().
  it('a pull that fails after return() is not reported: the stream stays done', async () => {
    const dvt = create();
    const { source, pulls } = manual();
    const stream = dvt.task.mapIterable((n: number) => n, source);
    const waiting = stream.next();
    await flush();
    await stream.return?.();
    await expect(waiting).resolves.toEqual(DONE);
    pulls[0]?.reject(boom);
    await flush();
    await expect(soon(stream.next())).resolves.toEqual(DONE);
  });

  // Kills `false` for `this.#failure !== undefined` in StreamRun.failed() (L347): a later failure
  // of the source replaced the first failure, which the consumer had not yet seen.
  it('throws the first failure even when the source fails after it, before the consumer asks', async () => {
    const dvt = create();
    const { source, pulls } = manual();
    const later = new Error('later');
    const stream = dvt.task.mapIterable(
      (n: number) => (n === 1 ? Promise.reject(boom) : n),
      source,
      { concurrency: 4 },
    );
    const first = stream.next();
    await flush();
    pulls[0]?.resolve({ done: false, value: 0 });
    await expect(first).resolves.toEqual({ done: false, value: 0 });
    await flush();
    pulls[1]?.resolve({ done: false, value: 1 }); // item 1 fails while nobody waits
    await flush();
    expect(pulls).toHaveLength(3);
    pulls[2]?.reject(later);
    await flush();
    await expect(stream.next()).rejects.toBe(boom);
    await expect(soon(stream.next())).resolves.toEqual(DONE);
  });

  // Kills `this.#closed = false` where failed() rejects the waiting next() (L352): with a later
  // result still buffered, the following next() hung instead of answering done.
  it('after a failure thrown to a waiting next(), the stream is done though later results finished', async () => {
    const dvt = create();
    const hold = defer<number>();
    const stream = dvt.task.mapIterable((n: number) => (n === 0 ? hold.promise : n), [0, 1], {
      concurrency: 2,
    });
    const waiting = stream.next();
    await flush(); // item 1 has finished and waits behind item 0
    hold.reject(boom);
    await expect(waiting).rejects.toBe(boom);
    await expect(soon(stream.next())).resolves.toEqual(DONE);
  });
});
