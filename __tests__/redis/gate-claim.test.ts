// The shared gate's check of a marked slot (given back after the limit was lowered), against a
// real redis-server, in the states a process's own release can leave it in: the release (an
// LMOVE of the list's first slot) may give the marked slot back before its check runs.
import { expect, it } from '@jest/globals';
import { CLAIM } from '../../src/redis/gate-scripts.js';
import { REDIS_DEFAULTS } from '../../src/redis/index.js';
import { Store } from '../../src/redis/store.js';
import { describeRedis, useRedisServer } from '../helpers/redis-server.js';

describeRedis("the shared gate's check of a marked slot", () => {
  const suite = useRedisServer('gate-claim');
  const { connect, nextKey } = suite;

  /** A gate's held list, debt and free list as given, then CLAIM of `slot`: its answer and what is left. */
  const claim = async (
    state: { held: string[]; free: string[]; debt?: number },
    slot: string,
  ): Promise<{ kept: number; held: string[]; free: string[]; debt: string | null }> => {
    const key = nextKey();
    const store = new Store(connect(), { ...REDIS_DEFAULTS, key, refreshInterval: 3_000 });
    const base = `dovetail:${key}:gate`;
    const keys = [`${base}:held:me`, `${base}:debt`, `${base}:slots`];
    const [held, debt, free] = keys as [string, string, string];
    if (state.held.length > 0) await suite.admin.rpush(held, ...state.held);
    if (state.free.length > 0) await suite.admin.rpush(free, ...state.free);
    if (state.debt !== undefined) await suite.admin.set(debt, state.debt);
    const kept = Number(await store.script(CLAIM, keys, [slot]));
    return {
      kept,
      held: await suite.admin.lrange(held, 0, -1),
      free: await suite.admin.lrange(free, 0, -1),
      debt: await suite.admin.get(debt),
    };
  };

  it('pays the debt with the slot, else keeps it unmarked', async () => {
    expect(await claim({ held: ['3', 'old:2'], free: [], debt: 2 }, 'old:2')).toEqual({
      kept: 0,
      held: ['3'],
      free: [],
      debt: '1',
    });
    expect(await claim({ held: ['old:2'], free: [], debt: 1 }, 'old:2')).toEqual({
      kept: 0,
      held: [],
      free: [],
      debt: null,
    });
    expect(await claim({ held: ['3', 'old:2'], free: ['4'] }, 'old:2')).toEqual({
      kept: 1,
      held: ['3', '2'],
      free: ['4'],
      debt: null,
    });
  });

  it('given back already by a release of this process, the slot that stayed stands for it', async () => {
    // Kept: the slot that stayed is this process's; the marked one lies unmarked in the free list.
    expect(await claim({ held: ['1'], free: ['4', 'old:2'] }, 'old:2')).toEqual({
      kept: 1,
      held: ['1'],
      free: ['4', '2'],
      debt: null,
    });
    // Another process took it meanwhile: the slot that stayed is kept all the same.
    expect(await claim({ held: ['1'], free: [] }, 'old:2')).toEqual({
      kept: 1,
      held: ['1'],
      free: [],
      debt: null,
    });
    // A debt is left: the slot that stayed pays it.
    expect(await claim({ held: ['1'], free: ['old:2'], debt: 2 }, 'old:2')).toEqual({
      kept: 0,
      held: [],
      free: ['old:2'],
      debt: '1',
    });
  });

  it('with nothing in the list to stand for it (Redis lost it), keeps nothing', async () => {
    expect(await claim({ held: [], free: ['old:2'] }, 'old:2')).toEqual({
      kept: 0,
      held: [],
      free: ['old:2'],
      debt: null,
    });
  });
});
