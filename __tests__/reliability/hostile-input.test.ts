// Hostile input: every option and argument of every public method, given wrong types and
// out-of-range values, throws a TypeError or RangeError synchronously, naming the argument, and
// leaves the instance usable (nothing queued, nothing counted, nothing registered).
import { afterEach, describe, expect, it } from '@jest/globals';
import {
  Dovetail,
  Event,
  listActive,
  register,
  runMain,
  setAppShutdownHook,
  shutdownAll,
  unregister,
  type DovetailOptions,
} from '../../src/index.js';
import { closeAll, create } from '../helpers/instances.js';

afterEach(closeAll);

type Thrown = typeof TypeError | typeof RangeError;
/** [what, the call, the error class, the argument's name as the message must show it] */
type Row = [string, (dvt: Dovetail) => unknown, Thrown, string];

const fn = (): number => 1;
const hostile = Object.freeze({
  toString(): string {
    throw new Error('toString must not be needed to report a bad value');
  },
});
const symbol = Symbol('bad');

const constructorRows: [string, unknown, Thrown, string][] = [
  ['options: a number', 5, TypeError, 'options'],
  ['options: a string', 'fast', TypeError, 'options'],
  ['options: null', null, TypeError, 'options'],
  ['concurrency: a string', { concurrency: '4' }, TypeError, 'concurrency'],
  ['concurrency: a bigint', { concurrency: 4n }, TypeError, 'concurrency'],
  ['concurrency: 0', { concurrency: 0 }, RangeError, 'concurrency'],
  ['concurrency: -1', { concurrency: -1 }, RangeError, 'concurrency'],
  ['concurrency: 1.5', { concurrency: 1.5 }, RangeError, 'concurrency'],
  ['concurrency: NaN', { concurrency: NaN }, RangeError, 'concurrency'],
  ['concurrency: -Infinity', { concurrency: -Infinity }, RangeError, 'concurrency'],
  ['timeout: a string', { timeout: '100' }, TypeError, 'timeout'],
  ['timeout: 0', { timeout: 0 }, RangeError, 'timeout'],
  ['timeout: -5', { timeout: -5 }, RangeError, 'timeout'],
  ['timeout: NaN', { timeout: NaN }, RangeError, 'timeout'],
  ['retries: a boolean', { retries: true }, TypeError, 'retries'],
  ['retries: -1', { retries: -1 }, RangeError, 'retries'],
  ['retries: 0.5', { retries: 0.5 }, RangeError, 'retries'],
  ['retries: NaN', { retries: NaN }, RangeError, 'retries'],
  ['retryBackoff: an object', { retryBackoff: {} }, TypeError, 'retryBackoff'],
  ['retryBackoff: -1', { retryBackoff: -1 }, RangeError, 'retryBackoff'],
  ['retryBackoff: Infinity', { retryBackoff: Infinity }, RangeError, 'retryBackoff'],
  ['retryBackoff: NaN', { retryBackoff: NaN }, RangeError, 'retryBackoff'],
  ['rateLimit: a number', { rateLimit: 10 }, TypeError, 'rateLimit'],
  ['rateLimit: null', { rateLimit: null }, TypeError, 'rateLimit'],
  ['rateLimit.perSecond: missing', { rateLimit: {} }, TypeError, 'rateLimit.perSecond'],
  [
    'rateLimit.perSecond: a string',
    { rateLimit: { perSecond: '10' } },
    TypeError,
    'rateLimit.perSecond',
  ],
  ['rateLimit.perSecond: 0', { rateLimit: { perSecond: 0 } }, RangeError, 'rateLimit.perSecond'],
  ['rateLimit.perSecond: -1', { rateLimit: { perSecond: -1 } }, RangeError, 'rateLimit.perSecond'],
  [
    'rateLimit.perSecond: NaN',
    { rateLimit: { perSecond: NaN } },
    RangeError,
    'rateLimit.perSecond',
  ],
  [
    'rateLimit.perSecond: Infinity',
    { rateLimit: { perSecond: Infinity } },
    RangeError,
    'rateLimit.perSecond',
  ],
  [
    'rateLimit.burst: a string',
    { rateLimit: { perSecond: 1, burst: '2' } },
    TypeError,
    'rateLimit.burst',
  ],
  ['rateLimit.burst: 0', { rateLimit: { perSecond: 1, burst: 0 } }, RangeError, 'rateLimit.burst'],
  [
    'rateLimit.burst: 0.5',
    { rateLimit: { perSecond: 1, burst: 0.5 } },
    RangeError,
    'rateLimit.burst',
  ],
  [
    'rateLimit.burst: NaN',
    { rateLimit: { perSecond: 1, burst: NaN } },
    RangeError,
    'rateLimit.burst',
  ],
  [
    'rateLimit.burst: Infinity',
    { rateLimit: { perSecond: 1, burst: Infinity } },
    RangeError,
    'rateLimit.burst',
  ],
  ['shouldRetry: a string', { shouldRetry: 'always' }, TypeError, 'shouldRetry'],
  ['trace: a string', { trace: 'yes' }, TypeError, 'trace'],
  ['trace: 1', { trace: 1 }, TypeError, 'trace'],
  ['traceLogger: a function', { traceLogger: fn }, TypeError, 'traceLogger'],
  ['traceLogger.debug: missing', { traceLogger: {} }, TypeError, 'traceLogger.debug'],
  ['traceLogger.debug: a string', { traceLogger: { debug: 'x' } }, TypeError, 'traceLogger.debug'],
  ['tracePrefix: a number', { tracePrefix: 7 }, TypeError, 'tracePrefix'],
  ['tracePrefix: a symbol', { tracePrefix: symbol }, TypeError, 'tracePrefix'],
  ['shutdownOnExit: a string', { shutdownOnExit: 'true' }, TypeError, 'shutdownOnExit'],
  ['autoRegister: 0', { autoRegister: 0 }, TypeError, 'autoRegister'],
  ['autoRegister: a hostile object', { autoRegister: hostile }, TypeError, 'autoRegister'],
  ['backend: a string', { backend: 'redis' }, TypeError, 'backend'],
  [
    'backend.createGate: missing',
    { backend: { createRateLimiter: fn } },
    TypeError,
    'backend.createGate',
  ],
  ['signal: not an instance option', { signal: new AbortController().signal }, TypeError, 'signal'],
];

const badOverrides: [string, unknown, Thrown, string][] = [
  ['overrides: a number', 5, TypeError, 'overrides'],
  ['overrides: null', null, TypeError, 'overrides'],
  ['timeout: a string', { timeout: '5' }, TypeError, 'timeout'],
  ['timeout: 0', { timeout: 0 }, RangeError, 'timeout'],
  ['timeout: NaN', { timeout: NaN }, RangeError, 'timeout'],
  ['retries: -1', { retries: -1 }, RangeError, 'retries'],
  ['retries: 2.5', { retries: 2.5 }, RangeError, 'retries'],
  ['retries: a string', { retries: '1' }, TypeError, 'retries'],
  ['retryBackoff: -10', { retryBackoff: -10 }, RangeError, 'retryBackoff'],
  ['retryBackoff: a string', { retryBackoff: '10' }, TypeError, 'retryBackoff'],
  ['signal: an object', { signal: {} }, TypeError, 'signal'],
  ['signal: an AbortController', { signal: new AbortController() }, TypeError, 'signal'],
  ['shouldRetry: true', { shouldRetry: true }, TypeError, 'shouldRetry'],
];

const badMapOptions: [string, unknown, Thrown, string][] = [
  ['options: a number', 3, TypeError, 'options'],
  ['options: a string', 'fast', TypeError, 'options'],
  ['options: null', null, TypeError, 'options'],
  ['concurrency: 0', { concurrency: 0 }, RangeError, 'concurrency'],
  ['concurrency: -2', { concurrency: -2 }, RangeError, 'concurrency'],
  ['concurrency: 2.5', { concurrency: 2.5 }, RangeError, 'concurrency'],
  ['concurrency: NaN', { concurrency: NaN }, RangeError, 'concurrency'],
  ['concurrency: a string', { concurrency: '2' }, TypeError, 'concurrency'],
  ['returnErrors: a string', { returnErrors: 'yes' }, TypeError, 'returnErrors'],
  ['returnErrors: 1', { returnErrors: 1 }, TypeError, 'returnErrors'],
  ['signal: a string', { signal: 'stop' }, TypeError, 'signal'],
  ['signal: an object', { signal: { aborted: false } }, TypeError, 'signal'],
];

const notFunctions: [string, unknown][] = [
  ['undefined', undefined],
  ['null', null],
  ['a number', 42],
  ['a string', 'fn'],
  ['an object', {}],
  ['a symbol', symbol],
];

const notIterables: [string, unknown][] = [
  ['undefined', undefined],
  ['null', null],
  ['a number', 42],
  ['a plain object', { length: 2, 0: 'a', 1: 'b' }],
  ['a function', fn],
  ['an object whose iterator is not a function', { [Symbol.iterator]: 5 }],
];

const api = (dvt: Dovetail): Record<string, (...args: unknown[]) => unknown> =>
  dvt.task as unknown as Record<string, (...args: unknown[]) => unknown>;
const bus = (dvt: Dovetail): Record<string, (...args: unknown[]) => unknown> =>
  dvt.events as unknown as Record<string, (...args: unknown[]) => unknown>;

const methodRows: Row[] = [
  ...notFunctions.map(([what, value]): Row => [
    `schedule(work: ${what})`,
    (dvt) => api(dvt)['schedule']?.(value),
    TypeError,
    'work',
  ]),
  [
    'schedule(work: a non-callable object with then: 1)',
    (dvt) => api(dvt)['schedule']?.({ then: 1 }),
    TypeError,
    'work',
  ],
  ...notFunctions.map(([what, value]): Row => [
    `toThread(fn: ${what})`,
    (dvt) => api(dvt)['toThread']?.(value),
    TypeError,
    'fn',
  ]),
  ...notFunctions.map(([what, value]): Row => [
    `fromCallback(fn: ${what})`,
    (dvt) => api(dvt)['fromCallback']?.(value),
    TypeError,
    'fn',
  ]),
  ...notFunctions.map(([what, value]): Row => [
    `promisify(fn: ${what})`,
    (dvt) => api(dvt)['promisify']?.(value),
    TypeError,
    'fn',
  ]),
  ...notFunctions.map(([what, value]): Row => [
    `wrap(fn: ${what})`,
    (dvt) => api(dvt)['wrap']?.(value),
    TypeError,
    'fn',
  ]),
  ...notFunctions.map(([what, value]): Row => [
    `map(fn: ${what})`,
    (dvt) => api(dvt)['map']?.(value, [1]),
    TypeError,
    'fn',
  ]),
  ...notFunctions.map(([what, value]): Row => [
    `mapIterable(fn: ${what})`,
    (dvt) => api(dvt)['mapIterable']?.(value, [1]),
    TypeError,
    'fn',
  ]),
  ...notIterables.map(([what, value]): Row => [
    `map(items: ${what})`,
    (dvt) => api(dvt)['map']?.(fn, value),
    TypeError,
    'items',
  ]),
  ...notIterables.map(([what, value]): Row => [
    `mapIterable(items: ${what})`,
    (dvt) => api(dvt)['mapIterable']?.(fn, value),
    TypeError,
    'items',
  ]),
  ...badMapOptions.map(([what, value, type, name]): Row => [
    `map(options ${what})`,
    (dvt) => api(dvt)['map']?.(fn, [1], value),
    type,
    name,
  ]),
  ...badMapOptions.map(([what, value, type, name]): Row => [
    `mapIterable(options ${what})`,
    (dvt) => api(dvt)['mapIterable']?.(fn, [1], value),
    type,
    name,
  ]),
  [
    'mapIterable(options concurrency: Infinity)',
    (dvt) => dvt.task.mapIterable(fn, [1], { concurrency: Infinity }),
    RangeError,
    'concurrency',
  ],
  ...badOverrides.map(([what, value, type, name]): Row => [
    `with(${what})`,
    (dvt) => api(dvt)['with']?.(value),
    type,
    name,
  ]),
  [
    'with(...).with(retries: -1)',
    (dvt) => dvt.task.with({ timeout: 10 }).with({ retries: -1 }),
    RangeError,
    'retries',
  ],
  // events
  ['on(event: unknown name)', (dvt) => bus(dvt)['on']?.('finished', fn), TypeError, 'event'],
  ['on(event: a number)', (dvt) => bus(dvt)['on']?.(1, fn), TypeError, 'event'],
  ['on(event: undefined)', (dvt) => bus(dvt)['on']?.(undefined, fn), TypeError, 'event'],
  ['on(listener: a number)', (dvt) => bus(dvt)['on']?.(Event.DONE, 5), TypeError, 'listener'],
  ['on(listener: a string)', (dvt) => bus(dvt)['on']?.(Event.DONE, 'log'), TypeError, 'listener'],
  ['on(listener: null)', (dvt) => bus(dvt)['on']?.(Event.DONE, null), TypeError, 'listener'],
  ['on(scope: a number)', (dvt) => bus(dvt)['on']?.(Event.DONE, fn, 5), TypeError, 'scope'],
  [
    'on(scope: function and execution)',
    (dvt) => bus(dvt)['on']?.(Event.DONE, fn, { function: fn, execution: '1' }),
    TypeError,
    'scope',
  ],
  [
    'on(scope.function: a string)',
    (dvt) => bus(dvt)['on']?.(Event.DONE, fn, { function: 'fn' }),
    TypeError,
    'scope.function',
  ],
  [
    'on(scope.execution: a number)',
    (dvt) => bus(dvt)['on']?.(Event.DONE, fn, { execution: 7 }),
    TypeError,
    'scope.execution',
  ],
  [
    'on(scope.allowReentry: a string)',
    (dvt) => bus(dvt)['on']?.(Event.DONE, fn, { allowReentry: 'yes' }),
    TypeError,
    'scope.allowReentry',
  ],
  [
    'on(scope.maxChainDepth: 0)',
    (dvt) => bus(dvt)['on']?.(Event.DONE, fn, { maxChainDepth: 0 }),
    RangeError,
    'scope.maxChainDepth',
  ],
  [
    'on(scope.maxChainDepth: -3)',
    (dvt) => bus(dvt)['on']?.(Event.DONE, fn, { maxChainDepth: -3 }),
    RangeError,
    'scope.maxChainDepth',
  ],
  [
    'on(scope.maxChainDepth: 1.5)',
    (dvt) => bus(dvt)['on']?.(Event.DONE, fn, { maxChainDepth: 1.5 }),
    RangeError,
    'scope.maxChainDepth',
  ],
  [
    'on(scope.maxChainDepth: NaN)',
    (dvt) => bus(dvt)['on']?.(Event.DONE, fn, { maxChainDepth: NaN }),
    RangeError,
    'scope.maxChainDepth',
  ],
  [
    'on(scope.maxChainDepth: a string)',
    (dvt) => bus(dvt)['on']?.(Event.DONE, fn, { maxChainDepth: '5' }),
    TypeError,
    'scope.maxChainDepth',
  ],
  [
    'on(event) registrar scope: a string',
    (dvt) => bus(dvt)['on']?.(Event.DONE, 'scope'),
    TypeError,
    'listener',
  ],
  [
    'on(event, scope) registrar scope.maxChainDepth: 0',
    (dvt) => bus(dvt)['on']?.(Event.DONE, { maxChainDepth: 0 }),
    RangeError,
    'scope.maxChainDepth',
  ],
  [
    'registrar(listener: a number)',
    (dvt) => (dvt.events.on(Event.DONE) as unknown as (l: unknown) => unknown)(5),
    TypeError,
    'listener',
  ],
  ['onEnd(listener: a number)', (dvt) => bus(dvt)['onEnd']?.(5), TypeError, 'listener'],
  [
    'onError(scope.execution: a number)',
    (dvt) => bus(dvt)['onError']?.(fn, { execution: 1 }),
    TypeError,
    'scope.execution',
  ],
  [
    'onRetry(scope.maxChainDepth: 0)',
    (dvt) => bus(dvt)['onRetry']?.(fn, { maxChainDepth: 0 }),
    RangeError,
    'scope.maxChainDepth',
  ],
  ['onQueued(listener: a string)', (dvt) => bus(dvt)['onQueued']?.('x'), TypeError, 'listener'],
  ['onStart(scope: a number)', (dvt) => bus(dvt)['onStart']?.(fn, 1), TypeError, 'scope'],
  [
    'onCancel(scope.function: 1)',
    (dvt) => bus(dvt)['onCancel']?.(fn, { function: 1 }),
    TypeError,
    'scope.function',
  ],
  [
    'onRateLimited(scope.allowReentry: 1)',
    (dvt) => bus(dvt)['onRateLimited']?.(fn, { allowReentry: 1 }),
    TypeError,
    'scope.allowReentry',
  ],
  ['once(event: unknown name)', (dvt) => bus(dvt)['once']?.('finished'), TypeError, 'event'],
  ['once(scope: a string)', (dvt) => bus(dvt)['once']?.(Event.DONE, 'x'), TypeError, 'scope'],
  [
    'once(scope.signal: an object)',
    (dvt) => bus(dvt)['once']?.(Event.DONE, { signal: {} }),
    TypeError,
    'scope.signal',
  ],
  [
    'once(scope: function and execution)',
    (dvt) => bus(dvt)['once']?.(Event.DONE, { function: fn, execution: '1' }),
    TypeError,
    'scope',
  ],
  ['emit(event: unknown name)', (dvt) => bus(dvt)['emit']?.('finished', {}), TypeError, 'event'],
  [
    'emit(payload: undefined)',
    (dvt) => bus(dvt)['emit']?.(Event.DONE, undefined),
    TypeError,
    'payload',
  ],
  [
    'emit(payload: a string)',
    (dvt) => bus(dvt)['emit']?.(Event.DONE, 'done'),
    TypeError,
    'payload',
  ],
  ['off(idOrListener: a number)', (dvt) => bus(dvt)['off']?.(5), TypeError, 'idOrListener'],
  [
    'off(idOrListener: undefined)',
    (dvt) => bus(dvt)['off']?.(undefined),
    TypeError,
    'idOrListener',
  ],
  ['incStat(key: a number)', (dvt) => bus(dvt)['incStat']?.(5), TypeError, 'key'],
  ['incStat(key: undefined)', (dvt) => bus(dvt)['incStat']?.(undefined), TypeError, 'key'],
  ['incStat(count: a string)', (dvt) => bus(dvt)['incStat']?.('hits', '1'), TypeError, 'count'],
  ['incStat(count: NaN)', (dvt) => bus(dvt)['incStat']?.('hits', NaN), RangeError, 'count'],
  [
    'incStat(count: Infinity)',
    (dvt) => bus(dvt)['incStat']?.('hits', Infinity),
    RangeError,
    'count',
  ],
  [
    'traceStruct(fields: undefined)',
    (dvt) => bus(dvt)['traceStruct']?.(undefined),
    TypeError,
    'fields',
  ],
  [
    'traceStruct(fields: a string)',
    (dvt) => bus(dvt)['traceStruct']?.('status'),
    TypeError,
    'fields',
  ],
  // lifecycle
  [
    'shutdown(options: a boolean)',
    (dvt) => (dvt.shutdown as (o: unknown) => unknown)(false),
    TypeError,
    'options',
  ],
  [
    'shutdown(options: null)',
    (dvt) => (dvt.shutdown as (o: unknown) => unknown)(null),
    TypeError,
    'options',
  ],
  [
    'shutdown(wait: a string)',
    (dvt) => (dvt.shutdown as (o: unknown) => unknown)({ wait: 'no' }),
    TypeError,
    'wait',
  ],
  [
    'shutdown(wait: 0)',
    (dvt) => (dvt.shutdown as (o: unknown) => unknown)({ wait: 0 }),
    TypeError,
    'wait',
  ],
  ['register(dvt: an object)', () => (register as (d: unknown) => unknown)({}), TypeError, 'dvt'],
  [
    'register(dvt: undefined)',
    () => (register as (d: unknown) => unknown)(undefined),
    TypeError,
    'dvt',
  ],
  [
    'unregister(dvt: a string)',
    () => (unregister as (d: unknown) => unknown)('dvt'),
    TypeError,
    'dvt',
  ],
  ['unregister(dvt: null)', () => (unregister as (d: unknown) => unknown)(null), TypeError, 'dvt'],
  [
    'setAppShutdownHook(hook: a number)',
    () => (setAppShutdownHook as (h: unknown) => unknown)(5),
    TypeError,
    'hook',
  ],
  [
    'runMain(main: a string)',
    () => (runMain as (m: unknown) => unknown)('main'),
    TypeError,
    'main',
  ],
  [
    'runMain(options: a number)',
    () => (runMain as (m: unknown, o: unknown) => unknown)(fn, 5),
    TypeError,
    'options',
  ],
  [
    'runMain(grace: -1)',
    () => (runMain as (m: unknown, o: unknown) => unknown)(fn, { grace: -1 }),
    RangeError,
    'grace',
  ],
  [
    'runMain(grace: a string)',
    () => (runMain as (m: unknown, o: unknown) => unknown)(fn, { grace: '1s' }),
    TypeError,
    'grace',
  ],
];

/** The argument named in backticks, as every message in the library shows it. */
const naming = (name: string): RegExp => new RegExp(`\`${name.replace(/\./g, '\\.')}\``);

/** Throws synchronously; a rejected promise instead of a throw fails the row. */
function thrownBy(call: () => unknown): unknown {
  let result: unknown;
  try {
    result = call();
  } catch (error) {
    return error;
  }
  if (result instanceof Promise) result.catch(() => undefined);
  return `no synchronous throw (returned ${result instanceof Promise ? 'a promise' : typeof result})`;
}

async function expectUsable(dvt: Dovetail): Promise<void> {
  expect(dvt.events.stats()).toMatchObject({ queued: 0, started: 0 });
  expect([dvt.active, dvt.pending, dvt.isShutdown]).toEqual([0, 0, false]);
  await expect(dvt.task.schedule(async (n: number) => n + 1, 1)).resolves.toBe(2);
  await expect(dvt.task.map((n: number) => n * 2, [1, 2])).resolves.toEqual([2, 4]);
  expect(dvt.events.stats()).toMatchObject({ queued: 3, done: 3 });
}

describe('hostile input: the constructor', () => {
  it.each(constructorRows)('%s', async (_, options, type, name) => {
    // Objects get the test instance's options too, so that a missed throw leaves no handler.
    const bare = options === null || typeof options !== 'object';
    const thrown = thrownBy(() =>
      bare
        ? new Dovetail(options as DovetailOptions)
        : new Dovetail({ autoRegister: false, shutdownOnExit: false, ...options }),
    );
    expect(thrown).toBeInstanceOf(type);
    expect((thrown as Error).message).toMatch(naming(name));
    // A failed construction leaves nothing behind, and the next instance works.
    expect(listActive()).toEqual([]);
    await expectUsable(create());
  });

  it('says which value it received', () => {
    expect(() => new Dovetail({ concurrency: 2.5 })).toThrow(/2\.5/);
    expect(() => new Dovetail({ timeout: 'soon' as never })).toThrow(/"soon"/);
    expect(() => new Dovetail({ retries: -3 })).toThrow(/-3/);
  });
});

describe('hostile input: methods', () => {
  it.each(methodRows)('%s', async (_, call, type, name) => {
    const dvt = create();
    const error = thrownBy(() => call(dvt));
    expect(error).toBeInstanceOf(type);
    expect((error as Error).message).toMatch(naming(name));
    await expectUsable(dvt);
  });

  it('validates before anything else, shutdown included: a shut-down instance still throws', async () => {
    const dvt = create();
    await dvt.shutdown();
    for (const [label, call, type] of methodRows) {
      if (label.startsWith('shutdown(')) continue;
      const error = thrownBy(() => call(dvt));
      expect({ label, error: error instanceof type }).toEqual({ label, error: true });
    }
  });

  it('accepts undefined for every optional argument', async () => {
    const dvt = create();
    await expect(
      dvt.task
        .with({
          timeout: undefined,
          retries: undefined,
          retryBackoff: undefined,
          signal: undefined,
          shouldRetry: undefined,
        })
        .schedule(() => 1),
    ).resolves.toBe(1);
    await expect(
      dvt.task.map((n: number) => n, [1], {
        concurrency: undefined,
        returnErrors: undefined,
        signal: undefined,
      }),
    ).resolves.toEqual([1]);
    const stream = dvt.task.mapIterable((n: number) => n, [1], undefined);
    await expect(stream.next()).resolves.toEqual({ done: false, value: 1 });
    await stream.return?.();
    await expectUsable(
      create({
        concurrency: undefined,
        timeout: undefined,
        rateLimit: undefined,
        trace: undefined,
      }),
    );
  });
});

describe('hostile input: registry functions', () => {
  it('shutdownAll() throws synchronously for a bad option', () => {
    const error = thrownBy(() => (shutdownAll as (o: unknown) => unknown)({ wait: 'yes' }));
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(naming('wait'));
  });

  it('shutdownAll() rejects a bad option with a TypeError naming it, shutting nothing down', async () => {
    const dvt = new Dovetail({ shutdownOnExit: false });
    try {
      for (const [options, name] of [
        [5, 'options'],
        [{ wait: 'yes' }, 'wait'],
      ] as const) {
        let error: unknown;
        try {
          await (shutdownAll as (o: unknown) => Promise<void>)(options);
        } catch (thrown) {
          error = thrown;
        }
        expect(error).toBeInstanceOf(TypeError);
        expect((error as Error).message).toMatch(naming(name));
      }
      expect(dvt.isShutdown).toBe(false);
      expect(listActive()).toContain(dvt);
    } finally {
      await dvt.shutdown();
    }
  });
});
