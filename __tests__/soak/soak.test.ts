// Soak: 1 000 000 tasks through one instance (500 000 through schedule in batches, 500 000
// through mapIterable), with scoped listeners added and removed along the way. At the end, after a
// forced GC, the heap is within a few MB of where it started and no internal table has grown.
// Run by `npm run soak` (node --expose-gc), not by `npm test`.
import { describe, expect, it } from '@jest/globals';
import { currentTask, Dovetail, Event, listActive } from '../../src/index.js';

const TOTAL = Number(process.env['DOVETAIL_SOAK_TASKS'] ?? 1_000_000);
const BATCH = 10_000;
const HEAP_SLACK_MB = Number(process.env['DOVETAIL_SOAK_HEAP_MB'] ?? 8);

const gc = (globalThis as { gc?: () => void }).gc;

async function collect(): Promise<number> {
  // Several rounds: finalizers and weak references need a turn of the loop between them.
  for (let i = 0; i < 4; i++) {
    gc?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
  return process.memoryUsage().heapUsed;
}

const mb = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(1)} MB`;
const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('soak', () => {
  it(`runs ${TOTAL} tasks in bounded memory and leaves no table grown`, async () => {
    expect(typeof gc).toBe('function'); // run through `npm run soak`, which passes --expose-gc
    const dvt = new Dovetail({
      concurrency: 64,
      timeout: 30_000,
      retries: 1,
      shutdownOnExit: false,
    });
    const alwaysOn = dvt.events.on(Event.ERROR, () => undefined);
    // Every 97th item fails once (so the retry path runs); every 1000th reads its context (so
    // the AsyncLocalStorage store is switched on).
    const failedOnce = new Set<number>();
    const work = async (n: number): Promise<number> => {
      if (n % 1000 === 0 && currentTask() === undefined)
        throw new Error('no context inside a task');
      if (n % 97 === 0) {
        if (!failedOnce.has(n)) {
          failedOnce.add(n);
          throw new Error('flaky');
        }
        failedOnce.delete(n);
      }
      return n;
    };
    const schedulePhase = async (from: number, to: number): Promise<number> => {
      let sum = 0;
      for (let start = from; start < to; start += BATCH) {
        // A scoped listener per batch, removed after it; an execution-scoped one released on settle.
        let heard = 0;
        const scoped = dvt.events.on(Event.DONE, () => void heard++, { function: work });
        const tasks = [];
        for (let n = start; n < Math.min(to, start + BATCH); n++)
          tasks.push(dvt.task.schedule(work, n));
        const first = tasks[0];
        if (first !== undefined)
          dvt.events.on(Event.DONE, () => undefined, { execution: first.id });
        for (const value of await Promise.all(tasks)) sum += value;
        expect(heard).toBe(tasks.length);
        expect(dvt.events.off(scoped)).toBe(true);
      }
      return sum;
    };
    const streamPhase = async (from: number, to: number): Promise<number> => {
      async function* numbers(): AsyncGenerator<number> {
        for (let n = from; n < to; n++) yield n;
      }
      let sum = 0;
      let count = 0;
      let scoped: string | undefined;
      for await (const value of dvt.task.mapIterable(work, numbers(), { concurrency: 64 })) {
        sum += value;
        if (++count % 50_000 === 0) {
          if (scoped !== undefined) dvt.events.off(scoped);
          scoped = dvt.events.on(Event.STARTED, () => undefined, { function: work });
        }
      }
      if (scoped !== undefined) dvt.events.off(scoped);
      return sum;
    };
    const expected = (from: number, to: number): number => ((to - 1 + from) * (to - from)) / 2;

    // Warm up (jit, lazily made state), then measure.
    await schedulePhase(0, BATCH);
    await streamPhase(0, BATCH);
    const listeners = dvt.events.listenerCount;
    const registered = listActive().length;
    const timersBefore = timers();
    const before = await collect();
    const countedBefore = dvt.events.stats();
    const started = performance.now();

    const half = Math.floor(TOTAL / 2);
    expect(await schedulePhase(0, half)).toBe(expected(0, half));
    const middle = await collect();
    expect(await streamPhase(half, TOTAL)).toBe(expected(half, TOTAL));
    const seconds = (performance.now() - started) / 1000;
    const after = await collect();

    process.stdout.write(
      `soak: ${TOTAL} tasks in ${seconds.toFixed(1)} s; heap used after GC: start ${mb(before)}, ` +
        `after schedule ${mb(middle)}, end ${mb(after)} (delta ${mb(after - before)})\n`,
    );
    const stats = dvt.events.stats();
    expect(stats.queued - countedBefore.queued).toBe(TOTAL);
    expect(stats.done - countedBefore.done).toBe(TOTAL);
    expect(stats.queued).toBe(stats.done + stats.error + stats.cancelled);
    expect(stats.retries).toBeGreaterThan(0);
    expect({ active: dvt.active, pending: dvt.pending }).toEqual({ active: 0, pending: 0 });
    expect(dvt.events.listenerCount).toBe(listeners);
    expect(listActive().length).toBe(registered);
    expect(timers()).toBeLessThanOrEqual(timersBefore); // none of ours; jest's own may end
    expect(currentTask()).toBeUndefined();
    expect(failedOnce.size).toBe(0);
    expect(after - before).toBeLessThan(HEAP_SLACK_MB * 2 ** 20);

    dvt.events.off(alwaysOn);
    await dvt.shutdown();
    expect(dvt.events.listenerCount).toBe(listeners - 1);
    expect(listActive()).not.toContain(dvt);
    expect(timers()).toBeLessThanOrEqual(timersBefore); // none of ours; jest's own may end
  }, 600_000);
});
