import { afterEach, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { CancelledError, Event, ShutdownError } from '../src/index.js';
import { defer, flush } from './helpers/defer.js';
import { closeAll, create } from './helpers/instances.js';

afterEach(closeAll);

async function* countTo(n: number): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) yield i;
}

describe('map', () => {
  it('keeps input order and passes the index', async () => {
    const dvt = create();
    const out = await dvt.task.map(
      async (word: string, index: number) => {
        await new Promise((resolve) => setTimeout(resolve, (3 - index) * 5));
        return `${index}:${word}`;
      },
      ['a', 'b', 'c'],
    );
    expect(out).toEqual(['0:a', '1:b', '2:c']);
  });

  it('gives [] for empty input', async () => {
    await expect(create().task.map(async (x: number) => x, [])).resolves.toEqual([]);
  });

  it('takes any iterable and any async iterable', async () => {
    const dvt = create();
    await expect(dvt.task.map((x: number) => x * 2, new Set([1, 2]))).resolves.toEqual([2, 4]);
    await expect(dvt.task.map((x: number) => x + 1, countTo(3))).resolves.toEqual([1, 2, 3]);
    function* gen(): Generator<string> {
      yield 'x';
      yield 'y';
    }
    await expect(dvt.task.map((s: string) => s.toUpperCase(), gen())).resolves.toEqual(['X', 'Y']);
  });

  it('throws synchronously for a bad function, iterable or option', () => {
    const dvt = create();
    expect(() => dvt.task.map(1 as never, [])).toThrow(TypeError);
    expect(() => dvt.task.map((x: number) => x, 5 as never)).toThrow(/`items`/);
    expect(() => dvt.task.map((x: number) => x, null as never)).toThrow(TypeError);
    expect(() => dvt.task.map((x: number) => x, [], { concurrency: 0 })).toThrow(RangeError);
    expect(() => dvt.task.map((x: number) => x, [], { concurrency: 1.5 })).toThrow(
      /concurrency.*1\.5/,
    );
    expect(() => dvt.task.map((x: number) => x, [], { returnErrors: 'yes' as never })).toThrow(
      TypeError,
    );
    expect(() => dvt.task.map((x: number) => x, [], { signal: 'no' as never })).toThrow(TypeError);
  });

  it('bounds this call by its concurrency', async () => {
    const dvt = create();
    let running = 0;
    let peak = 0;
    await dvt.task.map(
      async () => {
        running += 1;
        peak = Math.max(peak, running);
        await flush();
        running -= 1;
      },
      Array.from({ length: 20 }, (_, i) => i),
      { concurrency: 3 },
    );
    expect(peak).toBe(3);
  });

  it('defaults to the instance concurrency, and the instance gate still applies', async () => {
    const dvt = create({ concurrency: 2 });
    let running = 0;
    let peak = 0;
    const work = async (): Promise<void> => {
      running += 1;
      peak = Math.max(peak, running);
      await flush();
      running -= 1;
    };
    await dvt.task.map(
      work,
      Array.from({ length: 10 }, (_, i) => i),
    );
    expect(peak).toBe(2);
    peak = 0;
    await dvt.task.map(
      work,
      Array.from({ length: 10 }, (_, i) => i),
      { concurrency: 5 },
    );
    expect(peak).toBe(2);
  });

  it('fails fast with the first error: no new item starts and running ones are aborted', async () => {
    const dvt = create();
    const error = new Error('item 1 failed');
    const started: number[] = [];
    const signals: AbortSignal[] = [];
    const release = defer();
    const result = dvt.task.map(
      async (n: number) => {
        started.push(n);
        const signal = dvt.task.current()?.signal;
        if (signal !== undefined) signals.push(signal);
        if (n === 1) throw error;
        await release.promise;
        throw new Error(`late failure ${n}`); // must not surface as an unhandled rejection
      },
      [0, 1, 2, 3, 4, 5],
      { concurrency: 3 },
    );
    await expect(result).rejects.toBe(error);
    release.resolve();
    await flush();
    expect(started).toEqual([0, 1, 2]);
    expect(signals.filter((s) => s.aborted)).toHaveLength(2);
    const stats = dvt.events.stats();
    expect(stats.queued).toBe(stats.done + stats.error + stats.cancelled);
  });

  it('keeps each failure at its index with returnErrors', async () => {
    const dvt = create();
    const error = new Error('two');
    const out = await dvt.task.map(
      (n: number) => {
        if (n === 2) throw error;
        if (n === 3) throw 'plain';
        return n;
      },
      [1, 2, 3, 4],
      { returnErrors: true },
    );
    expect(out).toEqual([1, error, 'plain', 4]);
  });

  it('rejects with signal.reason when aborted, starting no new item', async () => {
    const dvt = create();
    const controller = new AbortController();
    const started: number[] = [];
    const hold = defer();
    const result = dvt.task.map(
      async (n: number) => {
        started.push(n);
        await hold.promise;
        return n;
      },
      [1, 2, 3, 4],
      { concurrency: 2, signal: controller.signal },
    );
    await flush();
    controller.abort('user stop');
    await expect(result).rejects.toBe('user stop');
    hold.resolve();
    await flush();
    expect(started).toEqual([1, 2]);
  });

  it('starts nothing with an already-aborted signal', async () => {
    const dvt = create();
    let ran = false;
    const result = dvt.task.map(
      () => {
        ran = true;
      },
      [1],
      { signal: AbortSignal.abort('early') },
    );
    await expect(result).rejects.toBe('early');
    expect(ran).toBe(false);
    expect(dvt.events.stats().queued).toBe(0);
  });

  it('rejects a source that throws with its error', async () => {
    const dvt = create();
    const error = new Error('source broke');
    async function* broken(): AsyncGenerator<number> {
      yield 1;
      throw error;
    }
    await expect(dvt.task.map((x: number) => x, broken())).rejects.toBe(error);
  });

  it('rejects with ShutdownError after shutdown', async () => {
    const dvt = create();
    await dvt.shutdown();
    await expect(dvt.task.map((x: number) => x, [1])).rejects.toBeInstanceOf(ShutdownError);
  });

  it('reports method map with the mapped function as scope', async () => {
    const dvt = create();
    const fn = (x: number): number => x;
    const methods: string[] = [];
    dvt.events.on(Event.DONE, (p) => methods.push(p.method), { function: fn });
    await dvt.task.map(fn, [1, 2]);
    expect(methods).toEqual(['map', 'map']);
  });
});

describe('map properties', () => {
  it('keeps input order for any input and failure pattern', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ delay: fc.integer({ min: 0, max: 3 }), fails: fc.boolean() }), {
          maxLength: 30,
        }),
        fc.integer({ min: 1, max: 8 }),
        async (items, concurrency) => {
          const dvt = create();
          const out = await dvt.task.map(
            async (item: { delay: number; fails: boolean }, index: number) => {
              for (let i = 0; i < item.delay; i++) await flush();
              if (item.fails) throw index;
              return index;
            },
            items,
            { concurrency, returnErrors: true },
          );
          expect(out).toEqual(items.map((_, index) => index));
          await dvt.shutdown();
        },
      ),
      { numRuns: 60 },
    );
  });

  it('never runs more than min(map concurrency, instance concurrency) at once', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 1, maxLength: 25 }),
        async (instance, call, delays) => {
          const dvt = create({ concurrency: instance });
          let running = 0;
          let peak = 0;
          await dvt.task.map(
            async (delay: number) => {
              running += 1;
              peak = Math.max(peak, running);
              for (let i = 0; i <= delay; i++) await flush();
              running -= 1;
            },
            delays,
            { concurrency: call },
          );
          expect(peak).toBeLessThanOrEqual(Math.min(instance, call));
          expect(peak).toBe(Math.min(instance, call, delays.length));
          await dvt.shutdown();
        },
      ),
      { numRuns: 40 },
    );
  });
});

describe('mapIterable', () => {
  it('yields results in input order', async () => {
    const dvt = create();
    const out: number[] = [];
    for await (const value of dvt.task.mapIterable(
      async (n: number) => {
        await new Promise((resolve) => setTimeout(resolve, (5 - n) * 3));
        return n * 10;
      },
      [1, 2, 3, 4],
      { concurrency: 4 },
    )) {
      out.push(value);
    }
    expect(out).toEqual([10, 20, 30, 40]);
  });

  it('defaults to the instance concurrency when finite, else 16', async () => {
    const measure = async (instance: number | undefined): Promise<number> => {
      const dvt = create(instance === undefined ? {} : { concurrency: instance });
      let running = 0;
      let peak = 0;
      for await (const _ of dvt.task.mapIterable(
        async () => {
          running += 1;
          peak = Math.max(peak, running);
          await flush();
          running -= 1;
        },
        Array.from({ length: 60 }, (_, i) => i),
      )) {
        // consume
      }
      return peak;
    };
    expect(await measure(undefined)).toBe(16);
    expect(await measure(5)).toBe(5);
  });

  it('holds at most `concurrency` items started and not yet consumed', async () => {
    const dvt = create();
    let pulled = 0;
    async function* source(): AsyncGenerator<number> {
      for (let i = 0; i < 100; i++) {
        pulled += 1;
        yield i;
      }
    }
    const iterator = dvt.task.mapIterable(async (n: number) => n, source(), { concurrency: 4 });
    await iterator.next();
    await flush();
    await flush();
    // One consumed; the consumer is idle: at most 4 more pulled and finished ahead of it.
    expect(pulled - 1).toBeLessThanOrEqual(4);
    await iterator.return?.();
  });

  it('never holds more than concurrency plus its buffer over a 200 000-item async source', async () => {
    const dvt = create();
    const concurrency = 8;
    let pulled = 0;
    let consumed = 0;
    let worst = 0;
    async function* source(): AsyncGenerator<number> {
      for (let i = 0; i < 200_000; i++) {
        pulled += 1;
        worst = Math.max(worst, pulled - consumed);
        yield i;
      }
    }
    let sum = 0;
    for await (const value of dvt.task.mapIterable(async (n: number) => n, source(), {
      concurrency,
    })) {
      consumed += 1;
      sum += value;
    }
    expect(consumed).toBe(200_000);
    expect(sum).toBe((199_999 * 200_000) / 2);
    expect(worst).toBeLessThanOrEqual(concurrency * 2);
  }, 60_000);

  it('closes the source and cancels running items when the consumer breaks', async () => {
    const dvt = create();
    let closed = false;
    async function* source(): AsyncGenerator<number> {
      try {
        for (let i = 0; ; i++) yield i;
      } finally {
        closed = true;
      }
    }
    const signals: AbortSignal[] = [];
    for await (const value of dvt.task.mapIterable(
      async (n: number) => {
        const signal = dvt.task.current()?.signal;
        if (signal !== undefined) signals.push(signal);
        if (n > 0) await new Promise(() => {});
        return n;
      },
      source(),
      { concurrency: 3 },
    )) {
      expect(value).toBe(0);
      break;
    }
    await flush();
    expect(closed).toBe(true);
    expect(dvt.active).toBe(0);
    expect(signals.slice(1).every((s) => s.aborted)).toBe(true);
  });

  it('throws the first failure from the loop by default', async () => {
    const dvt = create();
    const error = new Error('bad item');
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const value of dvt.task.mapIterable(
          (n: number) => {
            if (n === 2) throw error;
            return n;
          },
          [0, 1, 2, 3],
          { concurrency: 1 },
        )) {
          seen.push(value);
        }
      })(),
    ).rejects.toBe(error);
    expect(seen).toEqual([0, 1]);
  });

  it('yields failures as values with returnErrors', async () => {
    const dvt = create();
    const out: unknown[] = [];
    for await (const value of dvt.task.mapIterable(
      (n: number) => {
        if (n === 1) throw 'one';
        return n;
      },
      [0, 1, 2],
      { returnErrors: true },
    )) {
      out.push(value);
    }
    expect(out).toEqual([0, 'one', 2]);
  });

  it('stops with signal.reason when aborted', async () => {
    const dvt = create();
    const controller = new AbortController();
    const out: number[] = [];
    await expect(
      (async () => {
        for await (const value of dvt.task.mapIterable((n: number) => n, countTo(1000), {
          signal: controller.signal,
          concurrency: 2,
        })) {
          out.push(value);
          if (value === 3) controller.abort('enough');
        }
      })(),
    ).rejects.toBe('enough');
    expect(out.length).toBeLessThanOrEqual(6);
  });

  it('starts nothing until iterated', async () => {
    const dvt = create();
    let ran = false;
    dvt.task.mapIterable(() => {
      ran = true;
    }, [1, 2]);
    await flush();
    expect(ran).toBe(false);
    expect(dvt.events.stats().queued).toBe(0);
  });

  it('throws synchronously for bad arguments, and rejects after shutdown', async () => {
    const dvt = create();
    expect(() => dvt.task.mapIterable(null as never, [])).toThrow(TypeError);
    expect(() => dvt.task.mapIterable((x: number) => x, 3 as never)).toThrow(TypeError);
    expect(() => dvt.task.mapIterable((x: number) => x, [], { concurrency: -1 })).toThrow(
      RangeError,
    );
    await dvt.shutdown();
    const iterator = dvt.task.mapIterable((x: number) => x, [1]);
    await expect(iterator.next()).rejects.toBeInstanceOf(ShutdownError);
  });

  it('reports method mapIterable', async () => {
    const dvt = create();
    const methods = new Set<string>();
    dvt.events.on(Event.QUEUED, (p) => methods.add(p.method));
    for await (const _ of dvt.task.mapIterable((x: number) => x, [1, 2])) {
      // consume
    }
    expect([...methods]).toEqual(['mapIterable']);
  });

  it('cancels queued items with CancelledError on shutdown without waiting', async () => {
    const dvt = create({ concurrency: 1 });
    const iterator = dvt.task.mapIterable(() => new Promise(() => {}), [1, 2, 3], {
      concurrency: 3,
    });
    const first = iterator.next();
    await flush();
    await dvt.shutdown({ wait: false });
    await expect(first).rejects.toBeInstanceOf(CancelledError);
    expect(dvt.pending).toBe(0);
  });
});

describe('map policy options', () => {
  it('applies timeout, retries and shouldRetry given to map to its items', async () => {
    const dvt = create();
    const calls = new Map<number, number>();
    const out = await dvt.task.map(
      (n: number) => {
        calls.set(n, (calls.get(n) ?? 0) + 1);
        if (calls.get(n) === 1) throw new Error(`first try of ${n}`);
        return n;
      },
      [1, 2],
      { retries: 1 },
    );
    expect(out).toEqual([1, 2]);
    expect([...calls.values()]).toEqual([2, 2]);
  });

  it('validates them with the same rules as with()', () => {
    const dvt = create();
    expect(() => dvt.task.map((x: number) => x, [], { timeout: 0 })).toThrow(RangeError);
    expect(() => dvt.task.map((x: number) => x, [], { retries: -1 })).toThrow(/`retries`/);
    expect(() => dvt.task.mapIterable((x: number) => x, [], { retryBackoff: NaN })).toThrow(
      RangeError,
    );
    expect(() => dvt.task.map((x: number) => x, [], { shouldRetry: 3 as never })).toThrow(
      TypeError,
    );
  });
});
