// Instance events: the InstanceEvent names, listeners without a task scope, and the bus's
// instance() emission that builds a payload only when someone hears it.
import { tracingChannel } from 'node:diagnostics_channel';
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import {
  BackendError,
  BackendEvent,
  Event,
  InstanceEvent,
  LocalGate,
  ShutdownError,
  TASK_CHANNEL,
  type Backend,
  type BackendHooks,
  type EventName,
  type InstanceEventName,
  type ListenerScope,
  type OnceScope,
} from '../../src/index.js';
import { flush } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';

afterEach(async () => {
  jest.restoreAllMocks();
  await closeAll();
});

const INSTANCE_EVENTS: readonly InstanceEventName[] = Object.values(InstanceEvent);

/** Silences and records process warnings. */
function spyWarnings(): jest.SpiedFunction<typeof process.emitWarning> {
  return jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
}

/** `{ limit: 4, previous: 2 }` whose `limit` counts how often it is read. */
function watchedFields(): { fields: { limit: number; previous: number }; reads: () => number } {
  let reads = 0;
  const fields = {
    get limit(): number {
      reads += 1;
      return 4;
    },
    previous: 2,
  };
  return { fields, reads: () => reads };
}

describe('InstanceEvent', () => {
  it('is a frozen object with the seven instance event names', () => {
    expect(Object.isFrozen(InstanceEvent)).toBe(true);
    expect(Object.values(InstanceEvent)).toEqual([
      'circuit_open',
      'circuit_half_open',
      'circuit_closed',
      'paused',
      'resumed',
      'limit_changed',
      'backend_error',
    ]);
    // Each key is its value in capitals: CIRCUIT_OPEN = 'circuit_open', ...
    expect(
      Object.entries(InstanceEvent).filter(([key, value]) => key !== value.toUpperCase()),
    ).toEqual([]);
  });

  it('shares no name with Event, which keeps its seven task events', () => {
    const task = new Set<string>(Object.values(Event));
    expect(task.size).toBe(7);
    expect(INSTANCE_EVENTS.filter((name) => task.has(name))).toEqual([]);
  });

  it('keeps BackendEvent as a frozen alias of its one member', () => {
    expect(Object.isFrozen(BackendEvent)).toBe(true);
    expect(BackendEvent).toEqual({ BACKEND_ERROR: 'backend_error' });
    expect(BackendEvent.BACKEND_ERROR).toBe(InstanceEvent.BACKEND_ERROR);
  });
});

describe('on and once with an instance event: scopes', () => {
  const fn = (): number => 1;

  // Typed as scopes, as code generic over events holds them: for an instance event the compiler
  // already refuses a literal `{ function }` or `{ execution }`.
  type Scope = ListenerScope & OnceScope;
  const byFunction: Scope = { function: fn };
  const byExecution: Scope = { execution: 'x-7' };

  it.each(INSTANCE_EVENTS)(
    'refuses a function or execution scope on %s with TypeError',
    (event) => {
      const dvt = create();
      const listener = (): undefined => undefined;
      expect(() => dvt.events.on(event, listener, byFunction)).toThrow(TypeError);
      expect(() => dvt.events.on(event, listener, byExecution)).toThrow(TypeError);
      expect(() => dvt.events.on(event, byFunction)).toThrow(TypeError);
      expect(() => dvt.events.on(event, byExecution)).toThrow(TypeError);
      expect(() => dvt.events.once(event, byFunction)).toThrow(TypeError);
      expect(() => dvt.events.once(event, byExecution)).toThrow(TypeError);
      expect(dvt.events.listenerCount).toBe(0);
    },
  );

  it('names the event, the scope field and the value received in the message', () => {
    const dvt = create();
    expect(() => dvt.events.on('paused', () => undefined, byFunction)).toThrow(
      /`scope\.function`.*'paused'.*instance event.*function fn/,
    );
    expect(() => dvt.events.once('limit_changed', byExecution)).toThrow(
      /`scope\.execution`.*'limit_changed'.*"x-7"/,
    );
  });

  it('accepts reentry rules, explicit undefined targets and a signal', async () => {
    const dvt = create();
    const untargeted: ListenerScope = { function: undefined, execution: undefined };
    expect(typeof dvt.events.on('paused', () => undefined, { allowReentry: true })).toBe('string');
    expect(typeof dvt.events.on('paused', () => undefined, untargeted)).toBe('string');
    expect(typeof dvt.events.on('resumed', { maxChainDepth: 2 })).toBe('function');
    const controller = new AbortController();
    const next = dvt.events.once('resumed', { signal: controller.signal });
    controller.abort(new Error('stop'));
    await expect(next).rejects.toThrow('stop');
  });

  it('still validates the reentry rules of an instance event listener', () => {
    const dvt = create();
    expect(() => dvt.events.on('paused', () => undefined, { maxChainDepth: 0 })).toThrow(
      RangeError,
    );
  });

  it('keeps the unknown-name error, which now lists the instance events too', () => {
    const dvt = create();
    expect(() => dvt.events.on('pause' as EventName, () => undefined)).toThrow(TypeError);
    expect(() => dvt.events.on('pause' as EventName, () => undefined)).toThrow(
      /`event` must be one of .*limit_changed.*received "pause"/,
    );
  });
});

describe('events.instance', () => {
  it('delivers { event, at: Date.now(), ...fields } to the listeners of that event only', () => {
    jest.spyOn(Date, 'now').mockReturnValue(1_700_000_000_000);
    const dvt = create();
    const seen: unknown[] = [];
    for (const name of INSTANCE_EVENTS) dvt.events.on(name, (p) => void seen.push(p));
    dvt.events.instance('paused', { until: 1_700_000_005_000 });
    dvt.events.instance('limit_changed', { limit: 8, previous: 4 });
    expect(seen).toEqual([
      { event: 'paused', at: 1_700_000_000_000, until: 1_700_000_005_000 },
      { event: 'limit_changed', at: 1_700_000_000_000, limit: 8, previous: 4 },
    ]);
  });

  it('leaves `until` out of an untimed pause', () => {
    const dvt = create();
    const seen: object[] = [];
    dvt.events.on('paused', (p) => void seen.push(p));
    dvt.events.instance('paused', {});
    expect(seen).toHaveLength(1);
    expect('until' in seen[0]!).toBe(false);
  });

  it('carries each payload field unchanged (circuit_open)', () => {
    const dvt = create();
    const error = new Error('down');
    const seen: unknown[] = [];
    dvt.events.on(
      InstanceEvent.CIRCUIT_OPEN,
      (p) => void seen.push(p.error, p.failures, p.retryAt),
    );
    dvt.events.instance('circuit_open', { failures: 5, error, retryAt: Infinity });
    expect(seen[0]).toBe(error);
    expect(seen.slice(1)).toEqual([5, Infinity]);
  });

  it('resolves once() with the next payload and then stops listening', async () => {
    const dvt = create();
    const next = dvt.events.once('limit_changed');
    expect(dvt.events.listenerCount).toBe(1);
    dvt.events.instance('limit_changed', { limit: 3, previous: 1 });
    await expect(next).resolves.toMatchObject({ event: 'limit_changed', limit: 3, previous: 1 });
    expect(dvt.events.listenerCount).toBe(0);
  });

  it('rejects a pending once() with ShutdownError when the instance shuts down first', async () => {
    const dvt = create();
    const next = dvt.events.once('circuit_closed');
    await dvt.shutdown();
    await expect(next).rejects.toBeInstanceOf(ShutdownError);
  });

  it('is not broken by a throwing or rejecting listener: the others run, each failure is a warning', async () => {
    const warn = spyWarnings();
    const dvt = create();
    const order: string[] = [];
    dvt.events.on('resumed', () => {
      order.push('thrower');
      throw new Error('listener broke');
    });
    dvt.events.on('resumed', async () => {
      order.push('async');
      await flush();
      throw new Error('async listener broke');
    });
    dvt.events.on('resumed', () => void order.push('last'));
    expect(() => dvt.events.instance('resumed', {})).not.toThrow();
    await flush();
    expect(order).toEqual(['thrower', 'async', 'last']);
    expect(warn.mock.calls.map(([message]) => String(message))).toEqual([
      expect.stringMatching(/'resumed'.*listener broke/),
      expect.stringMatching(/'resumed'.*async listener broke/),
    ]);
    expect(warn.mock.calls[0]?.[1]).toMatchObject({ code: 'DOVETAIL_LISTENER_ERROR' });
  });

  it('builds no payload when nobody listens to that event and tracing is off', () => {
    const dvt = create();
    const watched = watchedFields();
    dvt.events.instance('limit_changed', watched.fields);
    // Listeners of other events, scoped task listeners and once() of another event change nothing.
    dvt.events.on('paused', () => undefined);
    dvt.events.on(Event.DONE, () => undefined, { function: () => 1 });
    void dvt.events.once('resumed').catch(() => undefined);
    dvt.events.instance('limit_changed', watched.fields);
    expect(watched.reads()).toBe(0);
    const id = dvt.events.on('limit_changed', () => undefined);
    dvt.events.instance('limit_changed', watched.fields);
    expect(watched.reads()).toBe(1);
    dvt.events.off(id);
    dvt.events.instance('limit_changed', watched.fields);
    expect(watched.reads()).toBe(1);
  });

  it('writes one trace line per instance event when tracing is on, listened to or not', () => {
    const lines: string[] = [];
    const dvt = create({ trace: true, traceLogger: { debug: (m) => void lines.push(m) } });
    const watched = watchedFields();
    dvt.events.instance('limit_changed', watched.fields);
    dvt.events.instance('circuit_half_open', {});
    expect(watched.reads()).toBe(1);
    expect(lines).toEqual([
      'DVT-Dovetail instance limit_changed limit=4 previous=2',
      'DVT-Dovetail instance circuit_half_open',
    ]);
  });

  it('touches neither stats() nor the dovetail:task channel', () => {
    const dvt = create();
    const published: string[] = [];
    const channel = tracingChannel<object, object>(TASK_CHANNEL);
    const handlers = {
      start: () => void published.push('start'),
      end: () => void published.push('end'),
      asyncStart: () => void published.push('asyncStart'),
      asyncEnd: () => void published.push('asyncEnd'),
      error: () => void published.push('error'),
    };
    channel.subscribe(handlers);
    try {
      for (const name of INSTANCE_EVENTS) dvt.events.on(name, () => undefined);
      const before = dvt.events.stats();
      dvt.events.instance('paused', {});
      dvt.events.instance('circuit_open', { failures: 1, error: new Error('x'), retryAt: 1 });
      expect(dvt.events.stats()).toEqual(before);
      expect(published).toEqual([]);
    } finally {
      channel.unsubscribe(handlers);
    }
  });

  it('lets emit() deliver an instance payload by hand', () => {
    const dvt = create();
    const seen: unknown[] = [];
    dvt.events.on(InstanceEvent.CIRCUIT_CLOSED, (p) => void seen.push(p));
    dvt.events.emit('circuit_closed', { event: 'circuit_closed', at: 5 });
    expect(seen).toEqual([{ event: 'circuit_closed', at: 5 }]);
  });
});

describe('backend_error as an instance event', () => {
  /** A back end with in-process limits that keeps the hooks it was handed. */
  function reportingBackend(): { backend: Backend; hooks: () => BackendHooks } {
    let kept: BackendHooks | undefined;
    const backend: Backend = {
      createGate: ({ concurrency }, hooks) => {
        kept = hooks;
        return new LocalGate(concurrency);
      },
      createRateLimiter: () => ({ acquire: () => 0 }),
    };
    return { backend, hooks: () => kept! };
  }

  const problem = () =>
    ({
      error: new BackendError('no answer within 300 ms', { key: 'api' }),
      key: 'api',
      operation: 'gate',
      fallback: 'local',
    }) as const;

  it('carries `at` besides the fields it always had', () => {
    jest.spyOn(Date, 'now').mockReturnValue(42);
    const { backend, hooks } = reportingBackend();
    const dvt = create({ concurrency: 2, backend });
    const seen: unknown[] = [];
    dvt.events.on(BackendEvent.BACKEND_ERROR, (p) => void seen.push(p));
    const reported = problem();
    hooks().report(reported);
    expect(seen).toEqual([
      { event: 'backend_error', at: 42, method: 'backend', task: 0, executionId: '', ...reported },
    ]);
  });

  it('keeps its trace line, without the constant task fields', () => {
    const lines: string[] = [];
    const { backend, hooks } = reportingBackend();
    create({ concurrency: 2, backend, trace: true, traceLogger: { debug: (m) => lines.push(m) } });
    hooks().report(problem());
    expect(lines).toEqual([
      'DVT-Dovetail backend backend_error error="BackendError: no answer within 300 ms" key=api operation=gate fallback=local',
    ]);
  });
});
