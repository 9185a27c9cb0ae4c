import { afterEach, describe, expect, it } from '@jest/globals';
import { CancelledError, Event, TimeoutError } from '../src/index.js';
import { closeAll, create } from './helpers/instances.js';

afterEach(closeAll);

describe('smoke', () => {
  it('schedules, maps, retries, times out', async () => {
    const dvt = create({ concurrency: 2, retries: 2 });
    const events: string[] = [];
    dvt.events.on(Event.RETRY, (p) => events.push(`retry ${p.attempt}`));
    expect(await dvt.task.schedule(async (x: number) => x * 2, 21)).toBe(42);
    let n = 0;
    expect(
      await dvt.task.schedule(() => {
        n += 1;
        if (n < 3) throw new TypeError('x');
        return n;
      }),
    ).toBe(3);
    expect(events).toEqual(['retry 1', 'retry 2']);
    expect(await dvt.task.map(async (x: number) => x + 1, [1, 2, 3])).toEqual([2, 3, 4]);
    const out: number[] = [];
    for await (const v of dvt.task.mapIterable(async (x: number) => x * 10, [1, 2, 3])) out.push(v);
    expect(out).toEqual([10, 20, 30]);
    const t = dvt.task.with({ timeout: 20, retries: 0 }).schedule(() => new Promise(() => {}));
    await expect(t).rejects.toBeInstanceOf(TimeoutError);
    const c = dvt.task.schedule(() => new Promise(() => {}));
    expect(c.cancel()).toBe(true);
    await expect(c).rejects.toBeInstanceOf(CancelledError);
    expect(dvt.events.stats()).toMatchObject({
      queued: 10,
      done: 8,
      error: 1,
      cancelled: 1,
      retries: 2,
    });
    expect(dvt.active + dvt.pending).toBe(0);
  });
});
