import { afterEach, describe, expect, it } from '@jest/globals';
import { Dovetail, listActive, type DovetailOptions } from '../../src/index.js';
import { resolveHedge } from '../../src/latency/hedge-options.js';
import { closeAll, create } from '../helpers/instances.js';

afterEach(closeAll);

type Thrown = typeof TypeError | typeof RangeError;

const hostile = Object.freeze({
  toString(): string {
    throw new Error('toString must not be needed to report a bad value');
  },
});

/** [what, the hedge option as given, the error class, the name the message shows, what it shows received] */
const rows: [string, unknown, Thrown, string, string][] = [
  ['hedge: a number', 30, TypeError, 'hedge', '30'],
  ['hedge: a string', 'p95', TypeError, 'hedge', '"p95"'],
  ['hedge: null', null, TypeError, 'hedge', 'null'],
  ['hedge: a function', () => 30, TypeError, 'hedge', 'function'],
  ['hedge.delay: missing', {}, TypeError, 'hedge.delay', 'undefined'],
  ['hedge.delay: null', { delay: null }, TypeError, 'hedge.delay', 'null'],
  ['hedge.delay: a boolean', { delay: true }, TypeError, 'hedge.delay', 'true'],
  ['hedge.delay: a bigint', { delay: 30n }, TypeError, 'hedge.delay', '30'],
  ['hedge.delay: an object', { delay: hostile }, TypeError, 'hedge.delay', 'object'],
  ['hedge.delay: -1', { delay: -1 }, RangeError, 'hedge.delay', '-1'],
  ['hedge.delay: -Infinity', { delay: -Infinity }, RangeError, 'hedge.delay', '-Infinity'],
  ['hedge.delay: NaN', { delay: NaN }, RangeError, 'hedge.delay', 'NaN'],
  ['hedge.delay: "p42"', { delay: 'p42' }, RangeError, 'hedge.delay', '"p42"'],
  ['hedge.delay: "P95" (case)', { delay: 'P95' }, RangeError, 'hedge.delay', '"P95"'],
  ['hedge.delay: "30"', { delay: '30' }, RangeError, 'hedge.delay', '"30"'],
  ['hedge.delay: "toString"', { delay: 'toString' }, RangeError, 'hedge.delay', '"toString"'],
  ['hedge.delay: ""', { delay: '' }, RangeError, 'hedge.delay', '""'],
  ['hedge.max: a string', { delay: 10, max: '2' }, TypeError, 'hedge.max', '"2"'],
  ['hedge.max: null', { delay: 10, max: null }, TypeError, 'hedge.max', 'null'],
  ['hedge.max: 0', { delay: 10, max: 0 }, RangeError, 'hedge.max', '0'],
  ['hedge.max: -1', { delay: 10, max: -1 }, RangeError, 'hedge.max', '-1'],
  ['hedge.max: 1.5', { delay: 10, max: 1.5 }, RangeError, 'hedge.max', '1.5'],
  ['hedge.max: NaN', { delay: 10, max: NaN }, RangeError, 'hedge.max', 'NaN'],
  ['hedge.max: Infinity', { delay: 10, max: Infinity }, RangeError, 'hedge.max', 'Infinity'],
];

function thrownBy(call: () => unknown): unknown {
  try {
    call();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}

describe('hedge options: the constructor', () => {
  it.each(rows)('%s', async (_, hedge, type, name, shown) => {
    const thrown = thrownBy(
      () =>
        new Dovetail({
          autoRegister: false,
          shutdownOnExit: false,
          hedge: hedge as DovetailOptions['hedge'],
        }),
    );
    expect(thrown).toBeInstanceOf(type);
    expect((thrown as Error).message).toContain(`\`${name}\``);
    expect((thrown as Error).message).toContain(shown);
    expect(listActive()).toEqual([]);
    await expect(create().task.schedule(() => 1)).resolves.toBe(1);
  });
});

describe('hedge options: with()', () => {
  it.each(rows)('%s', async (_, hedge, type, name, shown) => {
    const dvt = create({ hedge: { delay: 10 } });
    const thrown = thrownBy(() => dvt.task.with({ hedge: hedge as DovetailOptions['hedge'] }));
    expect(thrown).toBeInstanceOf(type);
    expect((thrown as Error).message).toContain(`\`${name}\``);
    expect((thrown as Error).message).toContain(shown);
    // Nothing was queued or counted, and the instance still works.
    expect(dvt.events.stats()).toMatchObject({ queued: 0, started: 0, hedged: 0 });
    await expect(dvt.task.schedule(() => 2)).resolves.toBe(2);
  });

  it('validates before anything else: a shut-down instance still throws', async () => {
    const dvt = create();
    await dvt.shutdown();
    expect(() => dvt.task.with({ hedge: { delay: -1 } })).toThrow(RangeError);
  });
});

describe('hedge options: what is accepted', () => {
  it('takes each percentile, 0, a fraction, Infinity, and max at its limits', () => {
    expect(resolveHedge({ delay: 'p50' })).toEqual({ delay: NaN, quantile: 0.5, max: 1 });
    expect(resolveHedge({ delay: 'p90' })?.quantile).toBe(0.9);
    expect(resolveHedge({ delay: 'p95', max: 3 })).toEqual({ delay: NaN, quantile: 0.95, max: 3 });
    expect(resolveHedge({ delay: 'p99', max: undefined })?.quantile).toBe(0.99);
    expect(resolveHedge({ delay: 0 })).toEqual({ delay: 0, quantile: undefined, max: 1 });
    expect(resolveHedge({ delay: 12.5, max: 1 })?.delay).toBe(12.5);
    expect(resolveHedge({ delay: Infinity })?.delay).toBe(Infinity);
    expect(resolveHedge(undefined)).toBeUndefined();
    expect(Object.isFrozen(resolveHedge({ delay: 5 }))).toBe(true);
  });

  it('takes undefined for the option, in the constructor and in with()', async () => {
    const dvt = create({ hedge: undefined });
    await expect(dvt.task.with({ hedge: undefined }).schedule(() => 3)).resolves.toBe(3);
    await expect(
      create({ hedge: { delay: 'p95', max: 2 } })
        .task.with({ hedge: { delay: 20 } })
        .schedule(() => 4),
    ).resolves.toBe(4);
  });
});
