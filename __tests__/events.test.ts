// dvt.events: listeners, scopes, registrars, once/off/clear, reentry, listener isolation, counters.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import {
  BackendEvent,
  CancelledError,
  DovetailError,
  Event,
  ShutdownError,
  TimeoutError,
  type Dovetail,
  type EventName,
  type NodeCallback,
  type TaskPayload,
} from '../src/index.js';
import { defer, flush } from './helpers/defer.js';
import { TASK_EVENTS } from './helpers/events.js';
import { closeAll, create } from './helpers/instances.js';

afterEach(async () => {
  jest.restoreAllMocks();
  await closeAll();
});

function record(dvt: Dovetail): TaskPayload[] {
  const seen: TaskPayload[] = [];
  for (const event of TASK_EVENTS) dvt.events.on(event, (p: TaskPayload) => void seen.push(p));
  return seen;
}

const payload = (event: EventName, executionId = 'x-1'): TaskPayload => ({
  event,
  method: 'schedule',
  task: 1,
  executionId,
});

/** Silences and records process warnings. */
function spyWarnings(): jest.SpiedFunction<typeof process.emitWarning> {
  return jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
}

function callback(value: number): (cb: NodeCallback<number>) => void {
  return function nodeStyle(cb) {
    setImmediate(() => cb(null, value));
  };
}

describe('Event', () => {
  it('is a frozen object with the seven lifecycle names', () => {
    expect(Object.isFrozen(Event)).toBe(true);
    // Exactly these: backend_error lives in BackendEvent.
    expect(Event).toEqual({
      QUEUED: 'queued',
      STARTED: 'started',
      RETRY: 'retry',
      RATE_LIMITED: 'rate_limited',
      ERROR: 'error',
      CANCELLED: 'cancelled',
      DONE: 'done',
    });
    expect(BackendEvent).toEqual({ BACKEND_ERROR: 'backend_error' });
  });
});

describe('payload method and ids', () => {
  it('sets method to the API method that started the task, for every method', async () => {
    const dvt = create();
    const methods: string[] = [];
    dvt.events.on(Event.QUEUED, (p) => void methods.push(p.method));
    await dvt.task.schedule(async () => 1);
    await dvt.task.toThread(() => 2);
    await dvt.task.map(async (x: number) => x, [3]);
    for await (const value of dvt.task.mapIterable(async (x: number) => x, [4]))
      expect(value).toBe(4);
    await dvt.task.fromCallback(callback(5));
    await dvt.task.promisify(callback(6))();
    await dvt.task.wrap(async () => 7)();
    expect(methods).toEqual([
      'schedule',
      'toThread',
      'map',
      'mapIterable',
      'fromCallback',
      'promisify',
      'wrap',
    ]);
  });

  it('keeps the method through with() overrides', async () => {
    const dvt = create();
    const methods: string[] = [];
    dvt.events.on(Event.DONE, (p) => void methods.push(p.method));
    await dvt.task.with({ retries: 1 }).schedule(() => 1);
    await dvt.task.with({ timeout: 1000 }).wrap(() => 2)();
    expect(methods).toEqual(['schedule', 'wrap']);
  });

  it('uses one id for Task.id, payload.executionId and current().id', async () => {
    const dvt = create();
    const seen = record(dvt);
    const inside: (string | undefined)[] = [];
    const task = dvt.task.schedule(async () => {
      inside.push(dvt.task.current()?.id);
      await flush();
      inside.push(dvt.task.current()?.id);
    });
    await task;
    expect(typeof task.id).toBe('string');
    expect(inside).toEqual([task.id, task.id]);
    expect(seen.map((p) => p.executionId)).toEqual([task.id, task.id, task.id]);
  });

  it('uses one id per map item for payload.executionId and current().id', async () => {
    const dvt = create();
    const byEvent = new Map<string, string[]>();
    dvt.events.on(
      Event.STARTED,
      (p) => void byEvent.set('started', [...(byEvent.get('started') ?? []), p.executionId]),
    );
    const ids = await dvt.task.map(async () => dvt.task.current()?.id, ['a', 'b', 'c']);
    expect(ids).toEqual(byEvent.get('started'));
    expect(new Set(ids).size).toBe(3);
  });

  it('gives current().function and payload.function the same name', async () => {
    const dvt = create();
    let fromPayload: string | undefined;
    dvt.events.on(Event.STARTED, (p) => {
      fromPayload = p.function;
    });
    const fromContext = await dvt.task.schedule(function namedWork() {
      return dvt.task.current()?.function;
    });
    expect(fromContext).toBe('namedWork');
    expect(fromPayload).toBe('namedWork');
  });
});

describe('on: validation', () => {
  it('throws TypeError for an unknown event name', () => {
    const dvt = create();
    expect(() => dvt.events.on('finished' as EventName, () => undefined)).toThrow(TypeError);
    expect(() => dvt.events.on('finished' as EventName)).toThrow(TypeError);
    expect(() => dvt.events.once('finished' as EventName)).toThrow(TypeError);
    expect(() => dvt.events.emit('finished' as EventName, payload('done') as never)).toThrow(
      TypeError,
    );
  });

  it('throws TypeError for a listener that is not a function', () => {
    const dvt = create();
    expect(() => dvt.events.on(Event.DONE, 42 as never)).toThrow(TypeError);
    expect(() => dvt.events.on(Event.DONE, 'listener' as never)).toThrow(TypeError);
    expect(() => dvt.events.on(Event.DONE, null as never)).toThrow(TypeError);
    expect(() => dvt.events.onEnd(42 as never)).toThrow(TypeError);
    const reg = dvt.events.on(Event.DONE);
    expect(() => reg(42 as never)).toThrow(TypeError);
    expect(dvt.events.listenerCount).toBe(0);
  });

  it('throws TypeError when a scope gives both function and execution', () => {
    const dvt = create();
    const scope = { function: () => 1, execution: '1' };
    expect(() => dvt.events.on(Event.DONE, () => undefined, scope)).toThrow(TypeError);
    expect(() => dvt.events.on(Event.DONE, scope)).toThrow(TypeError);
    expect(() => dvt.events.once(Event.DONE, scope)).toThrow(TypeError);
    expect(dvt.events.listenerCount).toBe(0);
  });

  it('throws TypeError for a scope of the wrong type', () => {
    const dvt = create();
    expect(() => dvt.events.on(Event.DONE, () => undefined, { function: 'f' as never })).toThrow(
      TypeError,
    );
    expect(() => dvt.events.on(Event.DONE, () => undefined, { execution: 7 as never })).toThrow(
      TypeError,
    );
    expect(() =>
      dvt.events.on(Event.DONE, () => undefined, { allowReentry: 'yes' as never }),
    ).toThrow(TypeError);
  });

  it('throws RangeError when maxChainDepth < 1', () => {
    const dvt = create();
    expect(() => dvt.events.on(Event.DONE, () => undefined, { maxChainDepth: 0 })).toThrow(
      RangeError,
    );
    expect(() =>
      dvt.events.on(Event.DONE, () => undefined, { allowReentry: true, maxChainDepth: -1 }),
    ).toThrow(RangeError);
    expect(() => dvt.events.on(Event.DONE, { maxChainDepth: 0 })).toThrow(RangeError);
    expect(() => dvt.events.on(Event.DONE, () => undefined, { maxChainDepth: 1.5 })).toThrow(
      RangeError,
    );
    expect(() => dvt.events.on(Event.DONE, () => undefined, { maxChainDepth: 1 })).not.toThrow();
  });

  it('names the offending option in the message', () => {
    const dvt = create();
    expect(() => dvt.events.on(Event.DONE, () => undefined, { maxChainDepth: 0 })).toThrow(
      /maxChainDepth.*0/,
    );
    expect(() => dvt.events.on('nope' as EventName, () => undefined)).toThrow(/nope/);
  });
});

describe('scoped listeners', () => {
  it('hears only the tasks of the function object given as scope', async () => {
    const dvt = create();
    const f = async (): Promise<string> => 'f';
    const g = async (): Promise<string> => 'g';
    const heard: string[] = [];
    dvt.events.on(Event.DONE, (p) => void heard.push(p.executionId), { function: f });
    const a = dvt.task.schedule(f);
    const b = dvt.task.schedule(g);
    const c = dvt.task.schedule(f);
    await Promise.all([a, b, c]);
    expect(heard).toEqual([a.id, c.id]);
  });

  it('matches by identity, not by name', async () => {
    const dvt = create();
    const make = (): (() => number) =>
      function same() {
        return 1;
      };
    const f = make();
    const heard: string[] = [];
    dvt.events.on(Event.DONE, (p) => void heard.push(p.executionId), { function: f });
    await dvt.task.schedule(make());
    expect(heard).toEqual([]);
  });

  it('keys map items on the function given to map and mapIterable', async () => {
    const dvt = create();
    const fn = async (x: number): Promise<number> => x;
    let count = 0;
    dvt.events.on(Event.DONE, () => void (count += 1), { function: fn });
    await dvt.task.map(fn, [1, 2, 3]);
    for await (const value of dvt.task.mapIterable(fn, [4, 5])) expect(value).toBeGreaterThan(3);
    expect(count).toBe(5);
  });

  it('keys wrap() tasks on the function given to wrap, not the wrapper', async () => {
    const dvt = create();
    const fn = async (x: number): Promise<number> => x;
    const wrapped = dvt.task.wrap(fn);
    const heard: number[] = [];
    const wrapperHeard: number[] = [];
    dvt.events.on(Event.DONE, (p) => void heard.push(p.task), { function: fn });
    dvt.events.on(Event.DONE, (p) => void wrapperHeard.push(p.task), { function: wrapped });
    await wrapped(1);
    await wrapped(2);
    expect(heard).toHaveLength(2);
    expect(wrapperHeard).toEqual([]);
  });

  it('keys promisify(), fromCallback() and toThread() tasks on the function given', async () => {
    const dvt = create();
    const nodeStyle = callback(1);
    const sync = (): number => 2;
    const heard: string[] = [];
    dvt.events.on(Event.DONE, (p) => void heard.push(p.method), { function: nodeStyle });
    dvt.events.on(Event.DONE, (p) => void heard.push(p.method), { function: sync });
    await dvt.task.promisify(nodeStyle)();
    await dvt.task.fromCallback(nodeStyle);
    await dvt.task.toThread(sync);
    await dvt.task.schedule(async () => 3);
    expect(heard).toEqual(['promisify', 'fromCallback', 'toThread']);
  });

  it('hears one execution by id, and drops that listener when the execution ends', async () => {
    const dvt = create();
    const hold = defer<string>();
    const task = dvt.task.schedule(() => hold.promise);
    const other = dvt.task.schedule(async () => 'other');
    const heard: string[] = [];
    dvt.events.on(Event.DONE, (p) => void heard.push(p.executionId), { execution: task.id });
    expect(dvt.events.listenerCount).toBe(1);
    await other;
    expect(heard).toEqual([]);
    hold.resolve('mine');
    await task;
    expect(heard).toEqual([task.id]);
    expect(dvt.events.listenerCount).toBe(0);
  });

  it('delivers a hand-emitted payload to listeners scoped to its executionId', () => {
    const dvt = create();
    const heard: string[] = [];
    dvt.events.on(Event.RETRY, () => void heard.push('scoped'), { execution: 'x-1' });
    dvt.events.on(Event.RETRY, () => void heard.push('other'), { execution: 'x-2' });
    dvt.events.emit(Event.RETRY, {
      ...payload(Event.RETRY, 'x-1'),
      event: 'retry',
      attempt: 1,
      sleep: 0,
      error: 1,
    });
    expect(heard).toEqual(['scoped']);
  });

  it('calls none of 1 000 listeners scoped to another function for unrelated tasks', async () => {
    const dvt = create();
    const watched = async (): Promise<number> => 0;
    const unrelated = async (x: number): Promise<number> => x;
    const listeners = Array.from({ length: 1000 }, () => jest.fn());
    const ids = listeners.flatMap((listener) =>
      TASK_EVENTS.map((event) => dvt.events.on(event, listener, { function: watched })),
    );
    const publish = jest.spyOn(dvt.events, 'publish');
    await dvt.task.map(
      unrelated,
      Array.from({ length: 200 }, (_, i) => i),
    );
    for (const listener of listeners) expect(listener).not.toHaveBeenCalled();
    // Not even a payload was built: the index says at once that nobody listens.
    expect(publish).not.toHaveBeenCalled();
    expect(dvt.events.listenerCount).toBe(7000);
    await dvt.task.schedule(watched);
    for (const listener of listeners) expect(listener).toHaveBeenCalledTimes(3);
    for (const id of ids) expect(dvt.events.off(id)).toBe(true);
    expect(dvt.events.listenerCount).toBe(0);
  });

  it('leaves no table entry behind once scoped listeners are removed', () => {
    const dvt = create();
    const fns = Array.from({ length: 1000 }, () => (): number => 1);
    const ids = fns.map((fn) => dvt.events.on(Event.DONE, () => undefined, { function: fn }));
    const byExecution = Array.from({ length: 1000 }, (_, i) =>
      dvt.events.on(Event.DONE, () => undefined, { execution: `e-${i}` }),
    );
    expect(dvt.events.listenerCount).toBe(2000);
    expect(dvt.events.wants(Event.DONE, { fn: fns[0], id: 'e-0', channelContext: undefined })).toBe(
      true,
    );
    for (const id of [...ids, ...byExecution]) dvt.events.off(id);
    expect(dvt.events.listenerCount).toBe(0);
    // `wants` reads the scope tables: false means neither the function nor the id is left in them.
    expect(dvt.events.wants(Event.DONE, { fn: fns[0], id: 'e-0', channelContext: undefined })).toBe(
      false,
    );
  });
});

describe('registrar and shorthands', () => {
  it('on(event) returns a registrar that registers the listener and returns it', async () => {
    const dvt = create();
    const reg = dvt.events.on(Event.DONE);
    const seen: string[] = [];
    const listener = (p: TaskPayload): void => void seen.push(p.executionId);
    expect(reg(listener)).toBe(listener);
    expect(dvt.events.listenerCount).toBe(1);
    const task = dvt.task.schedule(() => 1);
    await task;
    expect(seen).toEqual([task.id]);
    expect(dvt.events.off(listener)).toBe(true);
  });

  it('on(event, scope) returns a registrar that applies the scope', async () => {
    const dvt = create();
    const f = (): number => 1;
    const seen: string[] = [];
    const reg = dvt.events.on(Event.STARTED, { function: f });
    reg((p) => void seen.push(p.executionId));
    const mine = dvt.task.schedule(f);
    await Promise.all([mine, dvt.task.schedule(() => 2)]);
    expect(seen).toEqual([mine.id]);
  });

  it.each([
    ['onQueued', 'queued'],
    ['onStart', 'started'],
    ['onEnd', 'done'],
    ['onError', 'error'],
    ['onRetry', 'retry'],
    ['onCancel', 'cancelled'],
    ['onRateLimited', 'rate_limited'],
  ] as const)('%s(listener) listens to %s', (name, event) => {
    const dvt = create();
    const listener = jest.fn();
    const id = (dvt.events[name] as (l: typeof listener) => string)(listener);
    expect(typeof id).toBe('string');
    for (const other of TASK_EVENTS) dvt.events.emit(other, payload(other) as never);
    expect(listener).toHaveBeenCalledTimes(1);
    expect(listener).toHaveBeenCalledWith(expect.objectContaining({ event }));
    expect(dvt.events.off(id)).toBe(true);
  });

  it.each([
    ['onQueued', 'queued'],
    ['onStart', 'started'],
    ['onEnd', 'done'],
    ['onError', 'error'],
    ['onRetry', 'retry'],
    ['onCancel', 'cancelled'],
    ['onRateLimited', 'rate_limited'],
  ] as const)('%s(scope) returns a scoped registrar for %s', (name, event) => {
    const dvt = create();
    const listener = jest.fn();
    const reg = (dvt.events[name] as (s: object) => (l: typeof listener) => typeof listener)({
      execution: 'x-1',
    });
    expect(reg(listener)).toBe(listener);
    for (const other of TASK_EVENTS) dvt.events.emit(other, payload(other, 'x-2') as never);
    for (const other of TASK_EVENTS) dvt.events.emit(other, payload(other, 'x-1') as never);
    expect(listener).toHaveBeenCalledTimes(1);
    expect(listener).toHaveBeenCalledWith(expect.objectContaining({ event, executionId: 'x-1' }));
  });

  it('shorthands take the scope as second argument after a listener', async () => {
    const dvt = create({ retries: 1 });
    const f = async (): Promise<never> => {
      throw new Error('f');
    };
    const seen: number[] = [];
    dvt.events.onRetry((p) => void seen.push(p.attempt), { function: f });
    await expect(dvt.task.schedule(async () => Promise.reject(new Error('other')))).rejects.toThrow(
      'other',
    );
    await expect(dvt.task.schedule(f)).rejects.toThrow('f');
    expect(seen).toEqual([1]);
  });
});

describe('once', () => {
  it('resolves with the next payload of the event and then stops listening', async () => {
    const dvt = create();
    const next = dvt.events.once(Event.DONE);
    expect(dvt.events.listenerCount).toBe(1);
    const task = dvt.task.schedule(() => 'x');
    await expect(next).resolves.toMatchObject({ event: 'done', executionId: task.id });
    expect(dvt.events.listenerCount).toBe(0);
  });

  it('honours a function scope', async () => {
    const dvt = create();
    const f = (): number => 1;
    const next = dvt.events.once(Event.DONE, { function: f });
    await dvt.task.schedule(() => 0);
    const mine = dvt.task.schedule(f);
    await expect(next).resolves.toMatchObject({ executionId: mine.id });
  });

  it('rejects with ShutdownError when the instance shuts down first', async () => {
    const dvt = create();
    const next = dvt.events.once(Event.RETRY);
    await dvt.shutdown();
    await expect(next).rejects.toBeInstanceOf(ShutdownError);
    expect(dvt.events.listenerCount).toBe(0);
  });

  it('rejects with signal.reason when its signal aborts', async () => {
    const dvt = create();
    const controller = new AbortController();
    const next = dvt.events.once(Event.DONE, { signal: controller.signal });
    controller.abort(new Error('stop waiting'));
    await expect(next).rejects.toThrow('stop waiting');
    expect(dvt.events.listenerCount).toBe(0);
  });

  it('rejects at once for an already-aborted signal', async () => {
    const dvt = create();
    await expect(dvt.events.once(Event.DONE, { signal: AbortSignal.abort('gone') })).rejects.toBe(
      'gone',
    );
    expect(dvt.events.listenerCount).toBe(0);
  });

  it('rejects with DovetailError when its execution ends without the event', async () => {
    const dvt = create();
    const boom = new Error('failed');
    const task = dvt.task.schedule(async () => {
      await flush();
      throw boom;
    });
    const done = dvt.events.once(Event.DONE, { execution: task.id });
    const error = dvt.events.once(Event.ERROR, { execution: task.id });
    await expect(task).rejects.toBe(boom);
    await expect(error).resolves.toMatchObject({ event: 'error', error: boom });
    await expect(done).rejects.toBeInstanceOf(DovetailError);
    await expect(done).rejects.toThrow(`execution ${task.id} ended without a 'done' event`);
    expect(dvt.events.listenerCount).toBe(0);
  });

  it('leaves nothing behind once settled: a later shutdown finds no waiter', async () => {
    const dvt = create();
    const task = dvt.task.schedule(() => 1);
    const retry = dvt.events.once(Event.RETRY, { execution: task.id });
    retry.catch(() => undefined);
    await task;
    await expect(retry).rejects.toBeInstanceOf(DovetailError);
    await expect(retry).rejects.not.toBeInstanceOf(ShutdownError);
    await dvt.shutdown();
    expect(dvt.events.listenerCount).toBe(0);
  });

  it('removes its abort listener from the signal once settled', async () => {
    const dvt = create();
    const controller = new AbortController();
    const remove = jest.spyOn(controller.signal, 'removeEventListener');
    const next = dvt.events.once(Event.DONE, { signal: controller.signal });
    await dvt.task.schedule(() => 1);
    await next;
    expect(remove).toHaveBeenCalledWith('abort', expect.any(Function));
    controller.abort();
    await expect(next).resolves.toMatchObject({ event: 'done' });
  });

  it('throws TypeError for a signal that is not an AbortSignal', () => {
    const dvt = create();
    expect(() => dvt.events.once(Event.DONE, { signal: {} as AbortSignal })).toThrow(TypeError);
  });
});

describe('off and clear', () => {
  it('off(id) removes one subscription and answers whether it existed', () => {
    const dvt = create();
    const listener = jest.fn();
    const a = dvt.events.on(Event.DONE, listener);
    const b = dvt.events.on(Event.DONE, listener);
    expect(a).not.toBe(b);
    expect(dvt.events.off(a)).toBe(true);
    expect(dvt.events.off(a)).toBe(false);
    dvt.events.emit(Event.DONE, payload(Event.DONE) as never);
    expect(listener).toHaveBeenCalledTimes(1);
  });

  it('off(listener) removes every subscription of that function, whatever the event or scope', () => {
    const dvt = create();
    const listener = jest.fn();
    const kept = jest.fn();
    dvt.events.on(Event.DONE, listener);
    dvt.events.on(Event.ERROR, listener);
    dvt.events.on(Event.DONE, listener, { execution: 'x-1' });
    dvt.events.on(Event.DONE, kept);
    expect(dvt.events.off(listener)).toBe(true);
    expect(dvt.events.off(listener)).toBe(false);
    expect(dvt.events.listenerCount).toBe(1);
    dvt.events.emit(Event.DONE, payload(Event.DONE) as never);
    dvt.events.emit(Event.ERROR, payload(Event.ERROR) as never);
    expect(listener).not.toHaveBeenCalled();
    expect(kept).toHaveBeenCalledTimes(1);
  });

  it('off() of something else throws TypeError', () => {
    const dvt = create();
    expect(() => dvt.events.off(42 as never)).toThrow(TypeError);
  });

  it('clear() removes every listener and returns how many there were', () => {
    const dvt = create();
    const listener = jest.fn();
    dvt.events.on(Event.DONE, listener);
    dvt.events.onStart(listener);
    dvt.events.on(Event.DONE, listener, { function: () => 1 });
    dvt.events.on(Event.DONE, listener, { execution: 'x-1' });
    expect(dvt.events.clear()).toBe(4);
    expect(dvt.events.listenerCount).toBe(0);
    expect(dvt.events.clear()).toBe(0);
    for (const event of TASK_EVENTS) dvt.events.emit(event, payload(event, 'x-1') as never);
    expect(listener).not.toHaveBeenCalled();
  });

  it('a listener removed during an emission does not stop the others', () => {
    const dvt = create();
    const calls: string[] = [];
    const first = dvt.events.on(Event.DONE, () => {
      calls.push('first');
      dvt.events.off(first);
    });
    dvt.events.on(Event.DONE, () => void calls.push('second'));
    dvt.events.emit(Event.DONE, payload(Event.DONE) as never);
    dvt.events.emit(Event.DONE, payload(Event.DONE) as never);
    expect(calls).toEqual(['first', 'second', 'second']);
  });
});

describe('reentry', () => {
  const doneOf = (executionId: string): never => payload(Event.DONE, executionId) as never;

  it('skips a listener while it runs when its own work emits the same event (default)', () => {
    const dvt = create();
    let calls = 0;
    dvt.events.on(Event.DONE, () => {
      calls += 1;
      dvt.events.emit(Event.DONE, doneOf('nested'));
    });
    dvt.events.emit(Event.DONE, doneOf('outer'));
    expect(calls).toBe(1);
    // Once it has returned it hears the next emission again.
    dvt.events.emit(Event.DONE, doneOf('again'));
    expect(calls).toBe(2);
  });

  it('still calls the other listeners for the nested emission', () => {
    const dvt = create();
    const heard: string[] = [];
    dvt.events.on(Event.DONE, (p) => {
      if (p.executionId === 'outer') dvt.events.emit(Event.DONE, doneOf('nested'));
    });
    dvt.events.on(Event.DONE, (p) => void heard.push(p.executionId));
    dvt.events.emit(Event.DONE, doneOf('outer'));
    expect(heard).toEqual(['nested', 'outer']);
  });

  it('lets a listener with allowReentry nest, cut at maxChainDepth active calls', () => {
    const dvt = create();
    const depths: number[] = [];
    let depth = 0;
    dvt.events.on(
      Event.DONE,
      () => {
        depth += 1;
        depths.push(depth);
        dvt.events.emit(Event.DONE, doneOf('nested'));
        depth -= 1;
      },
      { allowReentry: true, maxChainDepth: 3 },
    );
    dvt.events.emit(Event.DONE, doneOf('outer'));
    expect(depths).toEqual([1, 2, 3]);
  });

  it('cuts allowReentry at 5 active calls by default', () => {
    const dvt = create();
    let calls = 0;
    dvt.events.on(
      Event.DONE,
      () => {
        calls += 1;
        dvt.events.emit(Event.DONE, doneOf('nested'));
      },
      { allowReentry: true },
    );
    dvt.events.emit(Event.DONE, doneOf('outer'));
    expect(calls).toBe(5);
  });

  it('maxChainDepth 1 with allowReentry behaves as no reentry', () => {
    const dvt = create();
    let calls = 0;
    dvt.events.on(
      Event.DONE,
      () => {
        calls += 1;
        dvt.events.emit(Event.DONE, doneOf('nested'));
      },
      { allowReentry: true, maxChainDepth: 1 },
    );
    dvt.events.emit(Event.DONE, doneOf('outer'));
    expect(calls).toBe(1);
  });

  it('does not treat a different event emitted from a listener as reentry', () => {
    const dvt = create();
    const calls: string[] = [];
    dvt.events.on(Event.DONE, () => {
      calls.push('done');
      dvt.events.emit(Event.ERROR, payload(Event.ERROR) as never);
    });
    dvt.events.on(Event.ERROR, () => void calls.push('error'));
    dvt.events.emit(Event.DONE, doneOf('outer'));
    expect(calls).toEqual(['done', 'error']);
  });

  it('guards reentry through a task: a done listener that runs a task synchronously', async () => {
    const dvt = create();
    let calls = 0;
    const inner: Promise<unknown>[] = [];
    dvt.events.on(Event.QUEUED, () => {
      calls += 1;
      // schedule() emits `queued` synchronously: that emission is the listener's own.
      if (calls < 10) inner.push(dvt.task.schedule(() => 'inner'));
    });
    await dvt.task.schedule(() => 'outer');
    await Promise.all(inner);
    // Outer queued → listener schedules inner (its queued skipped: reentry) → stop.
    expect(calls).toBe(1);
    expect(inner).toHaveLength(1);
  });
});

describe('listener errors', () => {
  it('a throwing listener does not affect the task or the other listeners, and becomes a warning', async () => {
    const warn = spyWarnings();
    const dvt = create();
    const order: string[] = [];
    dvt.events.on(Event.DONE, () => {
      order.push('thrower');
      throw new Error('listener broke');
    });
    dvt.events.on(Event.DONE, () => void order.push('second'));
    await expect(dvt.task.schedule(async () => 'fine')).resolves.toBe('fine');
    expect(order).toEqual(['thrower', 'second']);
    expect(warn).toHaveBeenCalledTimes(1);
    const [message, options] = warn.mock.calls[0] as unknown as [string, { code: string }];
    expect(message).toMatch(/listener broke/);
    expect(options).toMatchObject({ code: 'DOVETAIL_LISTENER_ERROR' });
  });

  it('a rejecting async listener does not affect the task or the other listeners, and becomes a warning', async () => {
    const warn = spyWarnings();
    const dvt = create();
    const order: string[] = [];
    dvt.events.on(Event.STARTED, async () => {
      order.push('async');
      await flush();
      throw new Error('async listener broke');
    });
    dvt.events.on(Event.STARTED, () => void order.push('second'));
    await expect(dvt.task.schedule(async () => 'fine')).resolves.toBe('fine');
    await flush();
    expect(order).toEqual(['async', 'second']);
    expect(warn).toHaveBeenCalledTimes(1);
    expect(warn.mock.calls[0]?.[0]).toMatch(/async listener broke/);
    expect(warn.mock.calls[0]?.[1]).toMatchObject({ code: 'DOVETAIL_LISTENER_ERROR' });
  });

  it('a listener that throws a non-Error is reported too', async () => {
    const warn = spyWarnings();
    const dvt = create();
    dvt.events.on(Event.QUEUED, () => {
      throw 'plain string';
    });
    await expect(dvt.task.schedule(() => 1)).resolves.toBe(1);
    expect(warn.mock.calls[0]?.[0]).toMatch(/plain string/);
  });

  it('a throwing listener on error or cancelled does not change how the task settles', async () => {
    spyWarnings();
    const dvt = create();
    dvt.events.on(Event.ERROR, () => {
      throw new Error('in error listener');
    });
    dvt.events.on(Event.CANCELLED, () => {
      throw new Error('in cancelled listener');
    });
    const boom = new Error('task failed');
    await expect(dvt.task.schedule(() => Promise.reject(boom))).rejects.toBe(boom);
    const held = dvt.task.schedule(() => new Promise(() => {}));
    held.cancel();
    await expect(held).rejects.toBeInstanceOf(CancelledError);
  });

  it('writes the failure to the trace when tracing is on', async () => {
    spyWarnings();
    const lines: string[] = [];
    const dvt = create({ trace: true, traceLogger: { debug: (m) => void lines.push(m) } });
    dvt.events.on(Event.DONE, () => {
      throw new Error('traced failure');
    });
    await dvt.task.schedule(() => 1);
    expect(
      lines.some((line) => line.includes('listener_error') && line.includes('traced failure')),
    ).toBe(true);
  });
});

describe('counters', () => {
  beforeEach(() => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
  });
  afterEach(async () => {
    await closeAll();
    jest.useRealTimers();
  });

  it('count a mixed batch: done, error, retries, timeout, cancel, throttled', async () => {
    const dvt = create({
      concurrency: 3,
      retries: 1,
      retryBackoff: 10,
      timeout: 100,
      rateLimit: { perSecond: 100, burst: 5 },
    });
    let throttled = 0;
    dvt.events.onRateLimited(() => void (throttled += 1));
    let flaky = 0;
    const tasks = [
      dvt.task.schedule(async () => 'ok'),
      dvt.task.schedule(async () => {
        flaky += 1;
        if (flaky === 1) throw new Error('first time');
        return 'second time';
      }),
      dvt.task.schedule(async () => {
        throw new Error('always');
      }),
      dvt.task.with({ retries: 0 }).schedule(() => new Promise<never>(() => {})),
      dvt.task.schedule(async () => 'cancelled before start'),
      ...Array.from({ length: 5 }, (_, i) => dvt.task.schedule(async () => i)),
    ];
    for (const task of tasks) task.catch(() => undefined);
    tasks[4]?.cancel();
    await jest.advanceTimersByTimeAsync(1000);
    await dvt.onIdle();
    const results = await Promise.allSettled(tasks);
    expect(results.map((r) => r.status)).toEqual([
      'fulfilled',
      'fulfilled',
      'rejected',
      'rejected',
      'rejected',
      ...Array<string>(5).fill('fulfilled'),
    ]);
    expect((results[3] as PromiseRejectedResult).reason).toBeInstanceOf(TimeoutError);
    const stats = dvt.events.stats();
    expect(stats).toMatchObject({ queued: 10, done: 7, error: 2, cancelled: 1, retries: 2 });
    // Attempts: 1 + 2 + 2 + 1 + 0 + 5.
    expect(stats.started).toBe(11);
    // Burst 5 for 11 attempts: some waited, and each wait was counted once and announced once.
    expect(stats.throttled).toBeGreaterThan(0);
    expect(stats.throttled).toBe(throttled);
    expect(stats.queued).toBe(stats.done + stats.error + stats.cancelled);
  });

  it('count without any listener attached', async () => {
    const dvt = create();
    await Promise.all([dvt.task.schedule(() => 1), dvt.task.map((x: number) => x, [1, 2])]);
    expect(dvt.events.listenerCount).toBe(0);
    expect(dvt.events.stats()).toEqual({
      queued: 3,
      started: 3,
      done: 3,
      error: 0,
      retries: 0,
      throttled: 0,
      cancelled: 0,
      shed: 0,
      shortCircuited: 0,
      hedged: 0,
    });
  });

  it('keep queued == done + error + cancelled at rest after shutdown({ wait: false })', async () => {
    const dvt = create({ concurrency: 2, retries: 2, retryBackoff: 1000 });
    const tasks = Array.from({ length: 8 }, (_, i) =>
      dvt.task.schedule(async () => {
        if (i % 2 === 0) throw new Error('even');
        return new Promise<never>(() => {});
      }),
    );
    for (const task of tasks) task.catch(() => undefined);
    await jest.advanceTimersByTimeAsync(50);
    await dvt.shutdown({ wait: false });
    // Running attempts that ignore their signal are cancelled by hand; what sleeps was cancelled.
    for (const task of tasks) task.cancel();
    await jest.advanceTimersByTimeAsync(5000);
    await dvt.onIdle();
    const stats = dvt.events.stats();
    expect(stats.queued).toBe(8);
    expect(stats.queued).toBe(stats.done + stats.error + stats.cancelled);
  });
});

describe('stats and incStat', () => {
  it('incStat creates a key on first use, counts 1 by default and adds counts', () => {
    const dvt = create();
    dvt.events.incStat('cache_hit');
    dvt.events.incStat('cache_hit');
    dvt.events.incStat('bytes', 512);
    dvt.events.incStat('bytes', 0.5);
    expect(dvt.events.stats()).toMatchObject({ cache_hit: 2, bytes: 512.5, queued: 0 });
  });

  it('incStat accepts negative counts', () => {
    const dvt = create();
    dvt.events.incStat('open', 3);
    dvt.events.incStat('open', -1);
    expect(dvt.events.stats()['open']).toBe(2);
  });

  it('incStat throws TypeError for a bad key or count, RangeError for a non-finite count', () => {
    const dvt = create();
    expect(() => dvt.events.incStat(1 as never)).toThrow(TypeError);
    expect(() => dvt.events.incStat('x', '1' as never)).toThrow(TypeError);
    expect(() => dvt.events.incStat('x', NaN)).toThrow(RangeError);
    expect(() => dvt.events.incStat('x', Infinity)).toThrow(RangeError);
    expect('x' in dvt.events.stats()).toBe(false);
  });

  it('stats() returns a copy: changing it changes nothing, and later counts do not change it', async () => {
    const dvt = create();
    const before = dvt.events.stats();
    before.queued = 99;
    before['mine'] = 1;
    expect(dvt.events.stats()).toEqual({
      queued: 0,
      started: 0,
      done: 0,
      error: 0,
      retries: 0,
      throttled: 0,
      cancelled: 0,
      shed: 0,
      shortCircuited: 0,
      hedged: 0,
    });
    const snapshot = dvt.events.stats();
    await dvt.task.schedule(() => 1);
    expect(snapshot.done).toBe(0);
    expect(dvt.events.stats().done).toBe(1);
    expect(dvt.events.stats()).not.toBe(dvt.events.stats());
  });
});

describe('cost when nobody listens', () => {
  it('builds and publishes no payload for an instance without listeners', async () => {
    const dvt = create({ trace: false, retries: 1 });
    const publish = jest.spyOn(dvt.events, 'publish');
    const fn = async (): Promise<number> => 1;
    for (const event of TASK_EVENTS) {
      expect(dvt.events.wants(event, { fn, id: '1', channelContext: undefined })).toBe(false);
    }
    let calls = 0;
    await dvt.task.schedule(fn);
    await dvt.task.map(fn, [1, 2]);
    await dvt.task.schedule(async () => {
      calls += 1;
      if (calls === 1) throw new Error('retry me');
      return calls;
    });
    const cancelled = dvt.task.schedule(() => new Promise(() => {}));
    cancelled.cancel();
    await expect(cancelled).rejects.toBeInstanceOf(CancelledError);
    expect(publish).not.toHaveBeenCalled();
    expect(dvt.events.stats().done).toBe(4);
  });

  it('wants only the events that have a listener', () => {
    const dvt = create({ trace: false });
    const source = { fn: undefined, id: '1', channelContext: undefined };
    const id = dvt.events.on(Event.RETRY, () => undefined);
    expect(TASK_EVENTS.filter((event) => dvt.events.wants(event, source))).toEqual(['retry']);
    dvt.events.off(id);
    expect(TASK_EVENTS.filter((event) => dvt.events.wants(event, source))).toEqual([]);
  });

  it('publishes once someone listens, and stops when the listener leaves', async () => {
    const dvt = create({ trace: false });
    const publish = jest.spyOn(dvt.events, 'publish');
    const id = dvt.events.on(Event.DONE, () => undefined);
    await dvt.task.schedule(() => 1);
    expect(publish.mock.calls.map(([p]) => p.event)).toEqual(['done']);
    dvt.events.off(id);
    await dvt.task.schedule(() => 1);
    expect(publish).toHaveBeenCalledTimes(1);
  });
});
