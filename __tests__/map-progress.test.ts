// map / mapIterable `onProgress` (API.md "Progress") and the `index` of a map item's payloads.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { CancelledError, Event, type MapProgress, type TaskPayload } from '../src/index.js';
import { defer, flush } from './helpers/defer.js';
import { closeAll, create } from './helpers/instances.js';

afterEach(() => {
  jest.restoreAllMocks();
  return closeAll();
});

function spyWarnings(): jest.SpiedFunction<typeof process.emitWarning> {
  return jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
}

async function* countTo(n: number): AsyncGenerator<number> {
  for (let i = 0; i < n; i++) yield i;
}

function* generate(n: number): Generator<number> {
  for (let i = 0; i < n; i++) yield i;
}

/** An onProgress that records every call. */
function recorder(): { calls: MapProgress[]; onProgress: (p: MapProgress) => void } {
  const calls: MapProgress[] = [];
  return { calls, onProgress: (p) => void calls.push({ ...p }) };
}

const fail = (n: number): number => {
  if (n % 2 === 1) throw new Error(`odd ${n}`);
  return n;
};

describe('onProgress on map', () => {
  it('is called once after each item settles, done counting up to the total', async () => {
    const dvt = create();
    const { calls, onProgress } = recorder();
    const out = await dvt.task.map(async (n: number) => n * 10, [1, 2, 3, 4, 5], {
      concurrency: 2,
      onProgress,
    });
    expect(out).toEqual([10, 20, 30, 40, 50]);
    expect(calls.map((p) => p.done)).toEqual([1, 2, 3, 4, 5]);
    expect(calls.every((p) => p.failed === 0 && p.total === 5)).toBe(true);
    // Never more running than the call's concurrency, and the last call sees none.
    expect(calls.every((p) => p.running >= 0 && p.running <= 1)).toBe(true);
    expect(calls.at(-1)).toEqual({ done: 5, failed: 0, running: 0, total: 5 });
  });

  it('counts the items still running, not the one just settled', async () => {
    const dvt = create();
    const gates = [defer(), defer(), defer()];
    const { calls, onProgress } = recorder();
    const run = dvt.task.map((n: number) => gates[n]?.promise, [0, 1, 2], { onProgress });
    await flush();
    gates[1]?.resolve();
    await flush();
    expect(calls).toEqual([{ done: 1, failed: 0, running: 2, total: 3 }]);
    gates[0]?.resolve();
    gates[2]?.resolve();
    await run;
    expect(calls.map((p) => p.running)).toEqual([2, 1, 0]);
  });

  it('has the final counts before the map resolves', async () => {
    const dvt = create();
    let last: MapProgress | undefined;
    const out = await dvt.task.map((n: number) => n, [1, 2], { onProgress: (p) => (last = p) });
    expect(out).toEqual([1, 2]);
    expect(last).toEqual({ done: 2, failed: 0, running: 0, total: 2 });
  });

  it('totals: an array, a Set (size), an object with a numeric length, a Map, a string', async () => {
    const dvt = create();
    const totalOf = async (items: Iterable<unknown>): Promise<number | undefined> => {
      const { calls, onProgress } = recorder();
      await dvt.task.map((x: unknown) => x, items, { onProgress });
      return calls.at(-1)?.total;
    };
    expect(await totalOf([1, 2, 3])).toBe(3);
    expect(await totalOf(new Set(['a', 'b']))).toBe(2);
    expect(await totalOf(new Map([[1, 'a']]))).toBe(1);
    expect(await totalOf('abcd')).toBe(4);
    expect(await totalOf(new Uint8Array(6))).toBe(6);
    const withLength = {
      length: 2,
      *[Symbol.iterator]() {
        yield 'x';
        yield 'y';
      },
    };
    expect(await totalOf(withLength)).toBe(2);
  });

  it('total is undefined for an iterator, an async iterable, or a length that is not a number', async () => {
    const dvt = create();
    const { calls, onProgress } = recorder();
    await dvt.task.map((x: number) => x, generate(3), { onProgress });
    expect(calls).toHaveLength(3);
    expect(calls.every((p) => p.total === undefined)).toBe(true);

    const fromAsync = recorder();
    await dvt.task.map((x: number) => x, countTo(2), { onProgress: fromAsync.onProgress });
    expect(fromAsync.calls.map((p) => p.total)).toEqual([undefined, undefined]);

    const odd = recorder();
    const notNumbers = {
      length: '2',
      size: null,
      *[Symbol.iterator]() {
        yield 1;
      },
    };
    await dvt.task.map((x: number) => x, notNumbers, { onProgress: odd.onProgress });
    expect(odd.calls).toEqual([{ done: 1, failed: 0, running: 0, total: undefined }]);
  });

  it('a length getter that throws gives no total and does not fail the map', async () => {
    const dvt = create();
    const { calls, onProgress } = recorder();
    const hostile = {
      get length(): number {
        throw new Error('no length here');
      },
      *[Symbol.iterator]() {
        yield 7;
      },
    };
    await expect(dvt.task.map((x: number) => x, hostile, { onProgress })).resolves.toEqual([7]);
    expect(calls).toEqual([{ done: 1, failed: 0, running: 0, total: undefined }]);
  });

  it('with returnErrors, failures are counted in failed and the map goes on', async () => {
    const dvt = create();
    const { calls, onProgress } = recorder();
    const out = await dvt.task.map(fail, [0, 1, 2, 3, 4], {
      concurrency: 1,
      returnErrors: true,
      onProgress,
    });
    expect(out.map((r) => (r instanceof Error ? r.message : r))).toEqual([
      0,
      'odd 1',
      2,
      'odd 3',
      4,
    ]);
    expect(calls.map(({ done, failed }) => [done, failed])).toEqual([
      [1, 0],
      [1, 1],
      [2, 1],
      [2, 2],
      [3, 2],
    ]);
    expect(calls.at(-1)).toEqual({ done: 3, failed: 2, running: 0, total: 5 });
  });

  it('a fatal failure is counted, and is the last call (the items it cancels are not)', async () => {
    const dvt = create();
    const { calls, onProgress } = recorder();
    const hold = defer();
    const run = dvt.task.map(
      async (n: number) => {
        if (n === 1) throw new Error('fatal');
        await hold.promise;
        return n;
      },
      [0, 1, 2],
      { onProgress },
    );
    await expect(run).rejects.toThrow('fatal');
    expect(calls).toEqual([{ done: 0, failed: 1, running: 2, total: 3 }]);
    hold.resolve();
    await flush();
    expect(calls).toHaveLength(1);
  });

  it('counts a retried item once, when it settles', async () => {
    const dvt = create({ retries: 2, retryBackoff: 1 });
    const { calls, onProgress } = recorder();
    let tries = 0;
    const out = await dvt.task.map(
      (n: number) => {
        if (n === 0 && tries++ < 2) throw new Error('flaky');
        return n;
      },
      [0, 1],
      { onProgress },
    );
    expect(out).toEqual([0, 1]);
    expect(calls.map((p) => p.done)).toEqual([1, 2]);
    expect(calls.at(-1)?.failed).toBe(0);
  });

  it('counts an item cancelled from the queue as failed (returnErrors keeps it)', async () => {
    const dvt = create({ concurrency: 1 });
    const { calls, onProgress } = recorder();
    const hold = defer();
    const blocker = dvt.task.schedule(() => hold.promise);
    const run = dvt.task.map((n: number) => n, [1, 2], {
      concurrency: 2,
      returnErrors: true,
      onProgress,
    });
    await flush();
    dvt.clearQueue();
    hold.resolve();
    await blocker;
    const out = await run;
    expect(out.every((r) => r instanceof CancelledError)).toBe(true);
    expect(calls.at(-1)).toEqual({ done: 0, failed: 2, running: 0, total: 2 });
  });

  it('a throwing onProgress is reported as a listener warning and never fails the map', async () => {
    const warn = spyWarnings();
    const dvt = create();
    let calls = 0;
    const out = await dvt.task.map((n: number) => n * 2, [1, 2, 3], {
      onProgress: () => {
        calls += 1;
        throw new Error('bar broke');
      },
    });
    expect(out).toEqual([2, 4, 6]);
    expect(calls).toBe(3);
    expect(warn).toHaveBeenCalledTimes(3);
    const [message, options] = warn.mock.calls[0] as unknown as [string, { code: string }];
    expect(message).toMatch(/onProgress/);
    expect(message).toMatch(/bar broke/);
    expect(options).toMatchObject({ code: 'DOVETAIL_LISTENER_ERROR' });
  });

  it('a rejecting async onProgress is reported too, with no unhandled rejection', async () => {
    const warn = spyWarnings();
    const dvt = create();
    const onProgress = async (): Promise<void> => {
      await flush();
      throw new Error('async bar broke');
    };
    // The contract types onProgress as returning void; an async one must still be safe.
    // eslint-disable-next-line @typescript-eslint/no-misused-promises -- what this test is about
    await expect(dvt.task.map((n: number) => n, [1], { onProgress })).resolves.toEqual([1]);
    await flush();
    await flush();
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]?.[0]).toMatch(/async bar broke/);
    expect(warn.mock.calls[0]?.[1]).toMatchObject({ code: 'DOVETAIL_LISTENER_ERROR' });
  });

  it('an onProgress that aborts the map ends it with the signal reason', async () => {
    const dvt = create();
    const controller = new AbortController();
    const seen: MapProgress[] = [];
    const run = dvt.task.map((n: number) => n, [1, 2, 3, 4], {
      concurrency: 1,
      signal: controller.signal,
      onProgress: (p) => {
        seen.push(p);
        if (p.done === 2) controller.abort(new Error('enough'));
      },
    });
    await expect(run).rejects.toThrow('enough');
    expect(seen.map((p) => p.done)).toEqual([1, 2]);
  });
});

describe('onProgress on mapIterable', () => {
  it('counts done and failed, with the total of a sized input', async () => {
    const dvt = create();
    const { calls, onProgress } = recorder();
    const out: unknown[] = [];
    for await (const r of dvt.task.mapIterable(fail, [0, 1, 2, 3], {
      concurrency: 2,
      returnErrors: true,
      onProgress,
    })) {
      out.push(r instanceof Error ? r.message : r);
    }
    expect(out).toEqual([0, 'odd 1', 2, 'odd 3']);
    expect(calls).toHaveLength(4);
    expect(calls.every((p) => p.total === 4)).toBe(true);
    expect(calls.at(-1)).toEqual({ done: 2, failed: 2, running: 0, total: 4 });
  });

  it('total is undefined for an async source, and a fatal failure is counted', async () => {
    const dvt = create();
    const { calls, onProgress } = recorder();
    const stream = dvt.task.mapIterable(fail, countTo(5), { concurrency: 1, onProgress });
    const seen: number[] = [];
    await expect(
      (async () => {
        for await (const r of stream) seen.push(r);
      })(),
    ).rejects.toThrow('odd 1');
    expect(seen).toEqual([0]);
    expect(calls).toEqual([
      { done: 1, failed: 0, running: 0, total: undefined },
      { done: 1, failed: 1, running: 0, total: undefined },
    ]);
  });

  it('a throwing onProgress is a warning; the stream goes on', async () => {
    const warn = spyWarnings();
    const dvt = create();
    const out: number[] = [];
    for await (const r of dvt.task.mapIterable((n: number) => n + 1, new Set([1, 2]), {
      onProgress: () => {
        throw new Error('stream bar broke');
      },
    })) {
      out.push(r);
    }
    expect(out).toEqual([2, 3]);
    expect(warn).toHaveBeenCalledTimes(2);
    expect(warn.mock.calls[0]?.[1]).toMatchObject({ code: 'DOVETAIL_LISTENER_ERROR' });
  });

  it('an onProgress that stops the stream (return()) hears nothing more', async () => {
    const dvt = create();
    const seen: MapProgress[] = [];
    const stream = dvt.task.mapIterable((n: number) => n, [1, 2, 3], {
      concurrency: 3,
      onProgress: (p) => {
        seen.push(p);
        void stream.return?.();
      },
    });
    await expect(stream.next()).resolves.toEqual({ done: true, value: undefined });
    await flush();
    expect(seen).toHaveLength(1);
  });
});

describe('index on the payloads of map items', () => {
  it('retry, done and error payloads of map and mapIterable items carry the input position', async () => {
    const dvt = create({ retries: 1, retryBackoff: 1 });
    const heard: [string, number | undefined][] = [];
    for (const event of [Event.QUEUED, Event.RETRY, Event.DONE, Event.ERROR] as const)
      dvt.events.on(event, (p: TaskPayload) => void heard.push([p.event, p.index]));
    const out = await dvt.task.map(
      (word: string) => {
        if (word === 'bad') throw new Error('bad item');
        return word;
      },
      ['a', 'bad', 'c'],
      { concurrency: 1, returnErrors: true },
    );
    expect(out[1]).toBeInstanceOf(Error);
    expect(heard.filter(([event]) => event === Event.RETRY)).toEqual([['retry', 1]]);
    expect(heard.filter(([event]) => event === Event.ERROR)).toEqual([['error', 1]]);
    expect(heard.filter(([event]) => event === Event.DONE)).toEqual([
      ['done', 0],
      ['done', 2],
    ]);
    expect(heard.filter(([event]) => event === Event.QUEUED).map(([, i]) => i)).toEqual([0, 1, 2]);

    heard.length = 0;
    for await (const _ of dvt.task.mapIterable((n: number) => n, countTo(2))) void _;
    expect(heard.filter(([event]) => event === Event.DONE)).toEqual([
      ['done', 0],
      ['done', 1],
    ]);
  });

  it('tasks that are not map items have no index', async () => {
    const dvt = create();
    const payloads: TaskPayload[] = [];
    dvt.events.on(Event.DONE, (p) => void payloads.push(p));
    await dvt.task.schedule(() => 1);
    await dvt.task.wrap(async (n: number) => n)(2);
    expect(payloads).toHaveLength(2);
    expect(payloads.every((p) => !('index' in p))).toBe(true);
  });
});
