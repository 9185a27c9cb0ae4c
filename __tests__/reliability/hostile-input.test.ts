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
  ['concurrency: another string', { concurrency: 'auto' }, TypeError, 'concurrency'],
  ['adaptive without adaptive concurrency', { adaptive: {} }, TypeError, 'adaptive'],
  ['adaptive: a number', { concurrency: 'adaptive', adaptive: 5 }, TypeError, 'adaptive'],
  ['adaptive: null', { concurrency: 'adaptive', adaptive: null }, TypeError, 'adaptive'],
  [
    'adaptive.min: a string',
    { concurrency: 'adaptive', adaptive: { min: '1' } },
    TypeError,
    'adaptive.min',
  ],
  [
    'adaptive.min: 0',
    { concurrency: 'adaptive', adaptive: { min: 0 } },
    RangeError,
    'adaptive.min',
  ],
  [
    'adaptive.min: 1.5',
    { concurrency: 'adaptive', adaptive: { min: 1.5 } },
    RangeError,
    'adaptive.min',
  ],
  [
    'adaptive.max: Infinity',
    { concurrency: 'adaptive', adaptive: { max: Infinity } },
    RangeError,
    'adaptive.max',
  ],
  [
    'adaptive.max: NaN',
    { concurrency: 'adaptive', adaptive: { max: NaN } },
    RangeError,
    'adaptive.max',
  ],
  [
    'adaptive.max < min',
    { concurrency: 'adaptive', adaptive: { min: 8, max: 4 } },
    RangeError,
    'adaptive.max',
  ],
  [
    'adaptive.initial: a symbol',
    { concurrency: 'adaptive', adaptive: { initial: symbol } },
    TypeError,
    'adaptive.initial',
  ],
  [
    'adaptive.initial < min',
    { concurrency: 'adaptive', adaptive: { min: 4, initial: 2 } },
    RangeError,
    'adaptive.initial',
  ],
  [
    'adaptive.initial > max',
    { concurrency: 'adaptive', adaptive: { max: 10, initial: 20 } },
    RangeError,
    'adaptive.initial',
  ],
  [
    'adaptive.isOverload: a string',
    { concurrency: 'adaptive', adaptive: { isOverload: 'yes' } },
    TypeError,
    'adaptive.isOverload',
  ],
  [
    'adaptive.isOverload: hostile',
    { concurrency: 'adaptive', adaptive: { isOverload: hostile } },
    TypeError,
    'adaptive.isOverload',
  ],
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
  ['onProgress: null', { onProgress: null }, TypeError, 'onProgress'],
  ['onProgress: a string', { onProgress: 'log' }, TypeError, 'onProgress'],
  ['onProgress: an object', { onProgress: { call: () => {} } }, TypeError, 'onProgress'],
  ['onProgress: true', { onProgress: true }, TypeError, 'onProgress'],
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
        onProgress: undefined,
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

// ---- Queue control (API.md 0.2): every new option and method -------------------------------
// Each row also names how the message shows the value received (the style's second rule).

/** An instance bucket of burst 3; keys with a bucket of burst 2; both. */
// Fast refills: the rows that pass run a few tasks through them.
const BUCKET: DovetailOptions = { rateLimit: { perSecond: 1000, burst: 3 } };
const KEY_BUCKET: DovetailOptions = { perKey: { rateLimit: { perSecond: 1000, burst: 2 } } };
const BOTH_BUCKETS: DovetailOptions = { ...BUCKET, ...KEY_BUCKET };

/** [what, the options, the error class, the option's name, the value as the message shows it] */
type ShownRow = [string, unknown, Thrown, string, string];

const queueConstructorRows: ShownRow[] = [
  ['maxQueue: a string', { maxQueue: '3' }, TypeError, 'maxQueue', '"3"'],
  ['maxQueue: null', { maxQueue: null }, TypeError, 'maxQueue', 'null'],
  ['maxQueue: a boolean', { maxQueue: true }, TypeError, 'maxQueue', 'true'],
  ['maxQueue: -1', { maxQueue: -1 }, RangeError, 'maxQueue', '-1'],
  ['maxQueue: 1.5', { maxQueue: 1.5 }, RangeError, 'maxQueue', '1.5'],
  ['maxQueue: NaN', { maxQueue: NaN }, RangeError, 'maxQueue', 'NaN'],
  ['maxQueue: -Infinity', { maxQueue: -Infinity }, RangeError, 'maxQueue', '-Infinity'],
  ['queueOverflow: a number', { queueOverflow: 5 }, TypeError, 'queueOverflow', '5'],
  ['queueOverflow: null', { queueOverflow: null }, TypeError, 'queueOverflow', 'null'],
  ['queueOverflow: a boolean', { queueOverflow: true }, TypeError, 'queueOverflow', 'true'],
  [
    "queueOverflow: 'drop-newest'",
    { queueOverflow: 'drop-newest' },
    RangeError,
    'queueOverflow',
    '"drop-newest"',
  ],
  ["queueOverflow: 'Reject'", { queueOverflow: 'Reject' }, RangeError, 'queueOverflow', '"Reject"'],
  ["queueOverflow: ''", { queueOverflow: '' }, RangeError, 'queueOverflow', '""'],
  ['perKey: a number', { perKey: 5 }, TypeError, 'perKey', '5'],
  ['perKey: a string', { perKey: 'user' }, TypeError, 'perKey', '"user"'],
  ['perKey: null', { perKey: null }, TypeError, 'perKey', 'null'],
  ['perKey: a function', { perKey: fn }, TypeError, 'perKey', 'function fn'],
  [
    'perKey.concurrency: a string',
    { perKey: { concurrency: '2' } },
    TypeError,
    'perKey.concurrency',
    '"2"',
  ],
  ['perKey.concurrency: 0', { perKey: { concurrency: 0 } }, RangeError, 'perKey.concurrency', '0'],
  [
    'perKey.concurrency: -1',
    { perKey: { concurrency: -1 } },
    RangeError,
    'perKey.concurrency',
    '-1',
  ],
  [
    'perKey.concurrency: 1.5',
    { perKey: { concurrency: 1.5 } },
    RangeError,
    'perKey.concurrency',
    '1.5',
  ],
  [
    'perKey.concurrency: NaN',
    { perKey: { concurrency: NaN } },
    RangeError,
    'perKey.concurrency',
    'NaN',
  ],
  [
    'perKey.concurrency: -Infinity',
    { perKey: { concurrency: -Infinity } },
    RangeError,
    'perKey.concurrency',
    '-Infinity',
  ],
  ['perKey.rateLimit: a number', { perKey: { rateLimit: 5 } }, TypeError, 'perKey.rateLimit', '5'],
  [
    'perKey.rateLimit: null',
    { perKey: { rateLimit: null } },
    TypeError,
    'perKey.rateLimit',
    'null',
  ],
  [
    'perKey.rateLimit.perSecond: missing',
    { perKey: { rateLimit: {} } },
    TypeError,
    'perKey.rateLimit.perSecond',
    'undefined',
  ],
  [
    'perKey.rateLimit.perSecond: a string',
    { perKey: { rateLimit: { perSecond: '5' } } },
    TypeError,
    'perKey.rateLimit.perSecond',
    '"5"',
  ],
  [
    'perKey.rateLimit.perSecond: 0',
    { perKey: { rateLimit: { perSecond: 0 } } },
    RangeError,
    'perKey.rateLimit.perSecond',
    '0',
  ],
  [
    'perKey.rateLimit.perSecond: -1',
    { perKey: { rateLimit: { perSecond: -1 } } },
    RangeError,
    'perKey.rateLimit.perSecond',
    '-1',
  ],
  [
    'perKey.rateLimit.perSecond: NaN',
    { perKey: { rateLimit: { perSecond: NaN } } },
    RangeError,
    'perKey.rateLimit.perSecond',
    'NaN',
  ],
  [
    'perKey.rateLimit.perSecond: Infinity',
    { perKey: { rateLimit: { perSecond: Infinity } } },
    RangeError,
    'perKey.rateLimit.perSecond',
    'Infinity',
  ],
  [
    'perKey.rateLimit.burst: a string',
    { perKey: { rateLimit: { perSecond: 1, burst: '2' } } },
    TypeError,
    'perKey.rateLimit.burst',
    '"2"',
  ],
  [
    'perKey.rateLimit.burst: 0',
    { perKey: { rateLimit: { perSecond: 1, burst: 0 } } },
    RangeError,
    'perKey.rateLimit.burst',
    '0',
  ],
  [
    'perKey.rateLimit.burst: 0.5',
    { perKey: { rateLimit: { perSecond: 1, burst: 0.5 } } },
    RangeError,
    'perKey.rateLimit.burst',
    '0.5',
  ],
  [
    'perKey.rateLimit.burst: NaN',
    { perKey: { rateLimit: { perSecond: 1, burst: NaN } } },
    RangeError,
    'perKey.rateLimit.burst',
    'NaN',
  ],
  [
    'perKey.rateLimit.burst: Infinity',
    { perKey: { rateLimit: { perSecond: 1, burst: Infinity } } },
    RangeError,
    'perKey.rateLimit.burst',
    'Infinity',
  ],
];

/** [what, the instance's options, the fields, the error class, the name, the value as shown] */
type FieldRow = [string, DovetailOptions, Record<string, unknown>, Thrown, string, string];

/** `priority`, `key` (as a string) and `cost`: the same rules in with() and in map options. */
const badTaskFields: FieldRow[] = [
  ['priority: a string', {}, { priority: '1' }, TypeError, 'priority', '"1"'],
  ['priority: null', {}, { priority: null }, TypeError, 'priority', 'null'],
  ['priority: a bigint', {}, { priority: 1n }, TypeError, 'priority', '(bigint)'],
  ['priority: NaN', {}, { priority: NaN }, RangeError, 'priority', 'NaN'],
  ['priority: Infinity', {}, { priority: Infinity }, RangeError, 'priority', 'Infinity'],
  ['priority: -Infinity', {}, { priority: -Infinity }, RangeError, 'priority', '-Infinity'],
  ['key: a number', {}, { key: 5 }, TypeError, 'key', '5 (number)'],
  ['key: null', {}, { key: null }, TypeError, 'key', 'null'],
  ['key: an object', {}, { key: { id: 1 } }, TypeError, 'key', '(object)'],
  ['key: a symbol', {}, { key: symbol }, TypeError, 'key', 'Symbol(bad)'],
  ['cost: a string', {}, { cost: '1' }, TypeError, 'cost', '"1"'],
  ['cost: null', {}, { cost: null }, TypeError, 'cost', 'null'],
  ['cost: 0', {}, { cost: 0 }, RangeError, 'cost', '0'],
  ['cost: -2', {}, { cost: -2 }, RangeError, 'cost', '-2'],
  ['cost: NaN', {}, { cost: NaN }, RangeError, 'cost', 'NaN'],
  ['cost: Infinity', {}, { cost: Infinity }, RangeError, 'cost', 'Infinity'],
  ['cost: above rateLimit.burst', BUCKET, { cost: 4 }, RangeError, 'cost', '4'],
  [
    'cost: above rateLimit.burst (defaulted to perSecond)',
    { rateLimit: { perSecond: 2 } },
    { cost: 2.5 },
    RangeError,
    'cost',
    '2.5',
  ],
  [
    'cost: above perKey.rateLimit.burst, keyed',
    KEY_BUCKET,
    { key: 'a', cost: 3 },
    RangeError,
    'cost',
    '3',
  ],
  [
    'cost: above perKey.rateLimit.burst (defaulted to perSecond), keyed',
    { perKey: { rateLimit: { perSecond: 2 } } },
    { key: 'a', cost: 3 },
    RangeError,
    'cost',
    '3',
  ],
  [
    'cost: within rateLimit.burst, above perKey.rateLimit.burst, keyed',
    BOTH_BUCKETS,
    { key: 'a', cost: 3 },
    RangeError,
    'cost',
    '3',
  ],
];

/** [what, the instance's options, the call, the error class, the name, the value as shown] */
type QueueRow = [string, DovetailOptions, (dvt: Dovetail) => unknown, Thrown, string, string];

const write = (value: unknown) => (dvt: Dovetail) => {
  (dvt as unknown as { concurrency: unknown }).concurrency = value;
};
const pause =
  (...args: unknown[]) =>
  (dvt: Dovetail): unknown =>
    (dvt.pause as (...values: unknown[]) => unknown)(...args);
const sizeBelow =
  (...args: unknown[]) =>
  (dvt: Dovetail): unknown =>
    (dvt.onSizeLessThan as (...values: unknown[]) => unknown)(...args);

/** The rows of {@link badTaskFields}, each given to one method. */
const fieldRows = (
  label: (what: string) => string,
  call: (fields: Record<string, unknown>) => (dvt: Dovetail) => unknown,
): QueueRow[] =>
  badTaskFields.map(([what, options, fields, type, name, shown]) => [
    label(what),
    options,
    call(fields),
    type,
    name,
    shown,
  ]);

const queueMethodRows: QueueRow[] = [
  ...fieldRows(
    (what) => `with(${what})`,
    (fields) => (dvt) => api(dvt)['with']?.(fields),
  ),
  ...fieldRows(
    (what) => `map(options ${what})`,
    (fields) => (dvt) => api(dvt)['map']?.(fn, [1], fields),
  ),
  ...fieldRows(
    (what) => `mapIterable(options ${what})`,
    (fields) => (dvt) => api(dvt)['mapIterable']?.(fn, [1], fields),
  ),
  // with() takes a key as a string only; the function form is for map and mapIterable.
  [
    'with(key: a function)',
    {},
    (dvt) => api(dvt)['with']?.({ key: fn }),
    TypeError,
    'key',
    'function fn',
  ],
  [
    'with(key).with(cost above perKey.rateLimit.burst)',
    KEY_BUCKET,
    (dvt) => dvt.task.with({ key: 'a' }).with({ cost: 3 }),
    RangeError,
    'cost',
    '3',
  ],
  [
    'with(cost above perKey.rateLimit.burst).with(key)',
    KEY_BUCKET,
    (dvt) => dvt.task.with({ cost: 3 }).with({ key: 'a' }),
    RangeError,
    'cost',
    '3',
  ],
  [
    'map(options key: a function, cost above perKey.rateLimit.burst)',
    KEY_BUCKET,
    (dvt) => dvt.task.map(fn, [1], { key: () => 'a', cost: 3 }),
    RangeError,
    'cost',
    '3',
  ],
  ['concurrency = a string', {}, write('4'), TypeError, 'concurrency', '"4"'],
  ['concurrency = null', {}, write(null), TypeError, 'concurrency', 'null'],
  ['concurrency = undefined', {}, write(undefined), TypeError, 'concurrency', 'undefined'],
  ['concurrency = 0', { concurrency: 2 }, write(0), RangeError, 'concurrency', '0'],
  ['concurrency = -1', { concurrency: 2 }, write(-1), RangeError, 'concurrency', '-1'],
  ['concurrency = 1.5', { concurrency: 2 }, write(1.5), RangeError, 'concurrency', '1.5'],
  ['concurrency = NaN', { concurrency: 2 }, write(NaN), RangeError, 'concurrency', 'NaN'],
  ['concurrency = -Infinity', {}, write(-Infinity), RangeError, 'concurrency', '-Infinity'],
  ['pause(ms: a string)', {}, pause('100'), TypeError, 'ms', '"100"'],
  ['pause(ms: null)', {}, pause(null), TypeError, 'ms', 'null'],
  ['pause(ms: an object)', {}, pause({ ms: 5 }), TypeError, 'ms', '(object)'],
  ['pause(ms: 0)', {}, pause(0), RangeError, 'ms', '0'],
  ['pause(ms: -1)', {}, pause(-1), RangeError, 'ms', '-1'],
  ['pause(ms: NaN)', {}, pause(NaN), RangeError, 'ms', 'NaN'],
  ['pause(ms: -Infinity)', {}, pause(-Infinity), RangeError, 'ms', '-Infinity'],
  ['onSizeLessThan(n: missing)', {}, sizeBelow(), TypeError, 'n', 'undefined'],
  ['onSizeLessThan(n: a string)', {}, sizeBelow('1'), TypeError, 'n', '"1"'],
  ['onSizeLessThan(n: null)', {}, sizeBelow(null), TypeError, 'n', 'null'],
  ['onSizeLessThan(n: 0)', {}, sizeBelow(0), RangeError, 'n', '0'],
  ['onSizeLessThan(n: -1)', {}, sizeBelow(-1), RangeError, 'n', '-1'],
  ['onSizeLessThan(n: NaN)', {}, sizeBelow(NaN), RangeError, 'n', 'NaN'],
  ['onSizeLessThan(n: -Infinity)', {}, sizeBelow(-Infinity), RangeError, 'n', '-Infinity'],
];

/** The error thrown by `call`, checked for its class and for naming `name` and `shown`. */
function expectRefused(call: () => unknown, type: Thrown, name: string, shown: string): void {
  const error = thrownBy(call);
  expect(error).toBeInstanceOf(type);
  const { message } = error as Error;
  expect(message).toMatch(naming(name));
  expect(message).toContain(shown);
}

describe('hostile input: queue control options (0.2)', () => {
  it.each(queueConstructorRows)('%s', async (_, options, type, name, shown) => {
    expectRefused(
      () => new Dovetail({ autoRegister: false, shutdownOnExit: false, ...(options as object) }),
      type,
      name,
      shown,
    );
    expect(listActive()).toEqual([]);
    await expectUsable(create());
  });

  it('accepts each at its limits, and undefined for each', async () => {
    const accepted: DovetailOptions[] = [
      { maxQueue: 0 },
      { maxQueue: 5 },
      { maxQueue: Infinity },
      { queueOverflow: 'reject' },
      { queueOverflow: 'drop-oldest' },
      { perKey: {} },
      { perKey: { concurrency: 1 } },
      { perKey: { concurrency: Infinity } },
      { perKey: { rateLimit: { perSecond: 0.5 } } },
      { perKey: { rateLimit: { perSecond: 100, burst: 1 } } },
      { maxQueue: undefined, queueOverflow: undefined, perKey: undefined },
      { perKey: { concurrency: undefined, rateLimit: undefined } },
      { perKey: { rateLimit: { perSecond: 3, burst: undefined } } },
    ];
    for (const options of accepted) await expectUsable(create(options));
  });
});

describe('hostile input: queue control methods (0.2)', () => {
  it.each(queueMethodRows)('%s', async (_, options, call, type, name, shown) => {
    const dvt = create(options);
    const limit = dvt.concurrency;
    expectRefused(() => call(dvt), type, name, shown);
    // Refused with nothing changed: not paused, the same limit, and the instance works.
    expect([dvt.isPaused, dvt.concurrency]).toEqual([false, limit]);
    await expectUsable(dvt);
  });

  it('validates before anything else: a shut-down instance still throws', async () => {
    const made = new Map<DovetailOptions, Dovetail>();
    for (const [label, options, call, type] of queueMethodRows) {
      let dvt = made.get(options);
      if (dvt === undefined) {
        dvt = create(options);
        made.set(options, dvt);
        await dvt.shutdown();
      }
      const error = thrownBy(() => call(dvt));
      expect({ label, error: error instanceof type }).toEqual({ label, error: true });
    }
  });

  it('names the bucket whose burst a cost is above, and that burst', () => {
    const dvt = create(BOTH_BUCKETS);
    expect(() => dvt.task.with({ cost: 4 })).toThrow(/`rateLimit\.burst` \(3\)/);
    expect(() => dvt.task.with({ key: 'a', cost: 3 })).toThrow(/`perKey\.rateLimit\.burst` \(2\)/);
  });

  it('accepts priority, key and cost within their limits, in with() and in map options', async () => {
    const dvt = create(BOTH_BUCKETS);
    const calls = [
      dvt.task.with({ priority: -1.5 }).schedule(fn),
      dvt.task.with({ priority: 1e9, key: '' }).schedule(fn),
      dvt.task.with({ priority: undefined, key: undefined, cost: undefined }).schedule(fn),
      dvt.task.with({ cost: 0.5 }).schedule(fn),
      dvt.task.with({ key: 'a', cost: 2 }).schedule(fn),
      dvt.task.map(fn, [1], { priority: -0.25, key: (_: unknown, i: number) => `k${i}`, cost: 1 }),
    ];
    await expect(Promise.all(calls)).resolves.toEqual([1, 1, 1, 1, 1, [1]]);
  });

  it('accepts any cost > 0 on an instance with no bucket at all, where it has no effect', async () => {
    const dvt = create({ concurrency: 2 });
    await expect(dvt.task.with({ cost: 1000 }).schedule(fn)).resolves.toBe(1);
    await expect(dvt.task.map(fn, [1, 2], { cost: 1e6 })).resolves.toEqual([1, 1]);
  });

  // API.md, "cost must be <= the burst of every bucket the task passes (the instance's and, with
  // perKey.rateLimit, its key's)": a task without a key passes no key's bucket, so only the
  // instance's burst bounds its cost (and with no instance bucket, nothing does).
  it('accepts a keyless cost above perKey.rateLimit.burst: it passes no key bucket', async () => {
    await expect(create(BOTH_BUCKETS).task.with({ cost: 3 }).schedule(fn)).resolves.toBe(1);
    await expect(create(KEY_BUCKET).task.with({ cost: 5 }).schedule(fn)).resolves.toBe(1);
  });

  it('a concurrency write to Infinity or an integer >= 1 is accepted; a refused one changes nothing', () => {
    const dvt = create({ concurrency: 2 });
    dvt.concurrency = 5;
    expect(dvt.concurrency).toBe(5);
    dvt.concurrency = Infinity;
    expect(dvt.concurrency).toBe(Infinity);
    dvt.concurrency = 1;
    expect(() => (dvt.concurrency = 0)).toThrow(RangeError);
    expect(dvt.concurrency).toBe(1);
  });

  it('pause() takes no argument, undefined, Infinity or any number > 0', async () => {
    const dvt = create();
    for (const args of [[], [undefined], [Infinity], [0.5], [60_000]] as const) {
      (dvt.pause as (...values: unknown[]) => void)(...args);
      expect(dvt.isPaused).toBe(true);
      dvt.resume();
      expect(dvt.isPaused).toBe(false);
    }
    await expectUsable(dvt);
  });

  it('onSizeLessThan(n) takes any number > 0, Infinity included', async () => {
    const dvt = create();
    await expect(
      Promise.all([dvt.onSizeLessThan(0.5), dvt.onSizeLessThan(1), dvt.onSizeLessThan(Infinity)]),
    ).resolves.toEqual([undefined, undefined, undefined]);
  });
});

describe('hostile input: a key function that returns a non-string', () => {
  const badKeys: [string, unknown, string][] = [
    ['a number', 7, '7 (number)'],
    ['undefined', undefined, 'undefined'],
    ['null', null, 'null'],
    ['an object', { id: 1 }, '(object)'],
  ];

  it.each(badKeys)(
    'fails map() with a TypeError naming key and the value: %s',
    async (_, bad, shown) => {
      const dvt = create();
      const call = dvt.task.map(fn, [1, 2], { key: (() => bad) as never });
      await expect(call).rejects.toThrow(TypeError);
      await expect(call).rejects.toThrow(naming('key'));
      await expect(call).rejects.toThrow(shown);
      await expectUsable(dvt);
    },
  );

  it('fails map() at a later item too, cancelling the items already started', async () => {
    const dvt = create();
    const keyOf = (item: number): unknown => (item === 3 ? 3 : `k${item}`);
    const call = dvt.task.map(fn, [1, 2, 3], { key: keyOf as never });
    await expect(call).rejects.toThrow(TypeError);
    await dvt.onIdle();
    expect(dvt.events.stats()).toMatchObject({ queued: 2, cancelled: 2 });
    expect([dvt.active, dvt.pending]).toEqual([0, 0]);
  });

  it("fails map() with returnErrors: true too: the key is the call's, not an item's failure", async () => {
    const dvt = create();
    const call = dvt.task.map(fn, [1], { key: (() => 5) as never, returnErrors: true });
    await expect(call).rejects.toThrow(TypeError);
    expect(dvt.events.stats()).toMatchObject({ queued: 0 });
  });

  it.each(badKeys)('throws a TypeError from the mapIterable() loop: %s', async (_, bad, shown) => {
    const dvt = create();
    const stream = dvt.task.mapIterable(fn, [1, 2], { key: (() => bad) as never });
    const error: unknown = await stream.next().then(
      () => 'no error',
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(TypeError);
    expect((error as Error).message).toMatch(naming('key'));
    expect((error as Error).message).toContain(shown);
    await expectUsable(dvt);
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
