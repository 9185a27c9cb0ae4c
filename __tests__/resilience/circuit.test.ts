import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import {
  CancelledError,
  CircuitOpenError,
  DovetailError,
  QueueFullError,
  ShutdownError,
  TimeoutError,
  type CircuitBreakerOptions,
  type CircuitState,
} from '../../src/index.js';
import { Circuit } from '../../src/resilience/circuit.js';
import type { CircuitListener } from '../../src/resilience/circuit-view.js';
import {
  resolveCircuitOptions,
  type ResolvedCircuitOptions,
} from '../../src/resilience/circuit-options.js';

type Seen = ['opened', number, unknown, number] | ['halfOpened'] | ['closed'];

const T0 = Date.UTC(2025, 0, 1);

function resolved(options: CircuitBreakerOptions): ResolvedCircuitOptions {
  const result = resolveCircuitOptions(options);
  if (result === undefined) throw new Error('no options');
  return result;
}

function recorder(): { seen: Seen[]; listener: CircuitListener } {
  const seen: Seen[] = [];
  const listener: CircuitListener = {
    opened: (failures, error, retryAt) => seen.push(['opened', failures, error, retryAt]),
    halfOpened: () => seen.push(['halfOpened']),
    closed: () => seen.push(['closed']),
  };
  return { seen, listener };
}

/** A circuit on the (faked) wall clock and the events it reported. */
function make(options: CircuitBreakerOptions = {}): { circuit: Circuit; seen: Seen[] } {
  const { seen, listener } = recorder();
  return { circuit: new Circuit(resolved(options), listener), seen };
}

function ticket(circuit: Circuit): number {
  const granted = circuit.admit();
  if (typeof granted !== 'number') throw new Error(`refused: ${granted.message}`);
  return granted;
}

function refused(circuit: Circuit): CircuitOpenError {
  const answer = circuit.admit();
  if (typeof answer === 'number') throw new Error('granted');
  return answer;
}

const fail = (circuit: Circuit, error: unknown = new Error('boom')): void =>
  circuit.record(ticket(circuit), false, error);
const succeed = (circuit: Circuit): void => circuit.record(ticket(circuit), true);

/** Opens a consecutive-mode circuit of `threshold` 1 and moves to the end of its open period. */
function halfOpenable(options: CircuitBreakerOptions = {}): { circuit: Circuit; seen: Seen[] } {
  const made = make({ threshold: 1, halfOpenAfter: 1000, ...options });
  fail(made.circuit);
  jest.advanceTimersByTime(1000);
  made.seen.length = 0;
  return made;
}

beforeEach(() => {
  jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'], now: T0 });
});
afterEach(() => {
  jest.useRealTimers();
});

describe('CircuitOpenError', () => {
  it('is a DovetailError carrying retryAt and cause', () => {
    const cause = new Error('down');
    const error = new CircuitOpenError('no', { retryAt: 42, cause });
    expect(error).toBeInstanceOf(DovetailError);
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('CircuitOpenError');
    expect(error.message).toBe('no');
    expect(error.retryAt).toBe(42);
    expect(error.cause).toBe(cause);
  });

  it('says until when in its default message', () => {
    expect(new CircuitOpenError(undefined, { retryAt: T0 + 30_000 }).message).toBe(
      'circuit is open until 2025-01-01T00:00:30.000Z',
    );
    expect(new CircuitOpenError(undefined, { retryAt: Infinity }).message).toBe(
      'circuit is open until reset()',
    );
    expect(new CircuitOpenError(undefined, { retryAt: 1e300 }).message).toBe(
      'circuit is open until 1e+300 (epoch ms)',
    );
  });

  it('has retryAt NaN and a plain message without options', () => {
    const error = new CircuitOpenError();
    expect(error.retryAt).toBeNaN();
    expect(error.message).toBe('circuit is open');
  });
});

describe('Circuit, consecutive mode', () => {
  it('grants attempts while closed and reports nothing for successes', () => {
    const { circuit, seen } = make();
    for (let i = 0; i < 20; i++) succeed(circuit);
    expect(typeof circuit.admit()).toBe('number');
    expect(circuit.state).toBe('closed');
    expect(seen).toEqual([]);
  });

  it('opens after threshold failures in a row, with the count, the last error and retryAt', () => {
    const { circuit, seen } = make({ threshold: 3 });
    fail(circuit);
    fail(circuit);
    expect(circuit.state).toBe('closed');
    const third = new Error('third');
    fail(circuit, third);
    expect(circuit.state).toBe('open');
    expect(seen).toEqual([['opened', 3, third, T0 + 30_000]]);
  });

  it('opens after 5 failures in a row by default', () => {
    const { circuit } = make();
    for (let i = 0; i < 4; i++) fail(circuit);
    expect(circuit.state).toBe('closed');
    fail(circuit);
    expect(circuit.state).toBe('open');
  });

  it('starts the count again after a success', () => {
    const { circuit, seen } = make({ threshold: 3 });
    fail(circuit);
    fail(circuit);
    succeed(circuit);
    fail(circuit);
    fail(circuit);
    expect(circuit.state).toBe('closed');
    fail(circuit);
    expect(seen).toEqual([['opened', 3, expect.any(Error), T0 + 30_000]]);
  });

  it('refuses while open with one CircuitOpenError per period carrying retryAt', () => {
    const { circuit } = make({ threshold: 1 });
    fail(circuit);
    const error = refused(circuit);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error.retryAt).toBe(T0 + 30_000);
    expect(error.message).toBe('circuit is open until 2025-01-01T00:00:30.000Z');
    expect(refused(circuit)).toBe(error);
    expect(circuit.refusal()).toBe(error);
    jest.advanceTimersByTime(29_999);
    expect(refused(circuit)).toBe(error);
    expect(circuit.state).toBe('open');
  });

  it('turns half-open at the first attempt at or after retryAt, arming no timer', () => {
    const { circuit, seen } = make({ threshold: 1 });
    fail(circuit);
    expect(jest.getTimerCount()).toBe(0);
    jest.advanceTimersByTime(30_000);
    // Nobody looked yet: nothing fired.
    expect(seen).toEqual([['opened', 1, expect.any(Error), T0 + 30_000]]);
    expect(typeof circuit.admit()).toBe('number');
    expect(seen.slice(1)).toEqual([['halfOpened']]);
    expect(circuit.state).toBe('half-open');
    expect(seen).toHaveLength(2);
  });

  it('turns half-open when its state is read after retryAt, firing once', () => {
    const { circuit, seen } = halfOpenable();
    expect(circuit.state).toBe('half-open');
    expect(circuit.state).toBe('half-open');
    expect(circuit.refusal()).toBeUndefined();
    expect(seen).toEqual([['halfOpened']]);
  });

  it('refuses the attempts after its one trial until the trial decides', () => {
    const { circuit, seen } = halfOpenable();
    const trial = ticket(circuit);
    const error = refused(circuit);
    expect(error.retryAt).toBe(T0 + 1000);
    expect(error.message).toBe('circuit is half-open: its trial attempt has started');
    expect(circuit.refusal()).toBe(error);
    circuit.record(trial, true);
    expect(circuit.state).toBe('closed');
    expect(seen).toEqual([['halfOpened'], ['closed']]);
  });

  it('opens again for another halfOpenAfter when the trial fails', () => {
    const { circuit, seen } = halfOpenable();
    const trialError = new Error('still down');
    fail(circuit, trialError);
    expect(circuit.state).toBe('open');
    expect(refused(circuit).retryAt).toBe(T0 + 2000);
    expect(seen).toEqual([['halfOpened'], ['opened', 1, trialError, T0 + 2000]]);
    jest.advanceTimersByTime(1000);
    expect(circuit.state).toBe('half-open');
  });

  it('lets halfOpenCalls trials in at once and closes when all of them succeed', () => {
    const { circuit, seen } = halfOpenable({ halfOpenCalls: 3 });
    const trials = [ticket(circuit), ticket(circuit), ticket(circuit)];
    expect(refused(circuit).message).toBe(
      'circuit is half-open: all 3 trial attempts have started',
    );
    circuit.record(trials[0]!, true);
    circuit.record(trials[2]!, true);
    expect(circuit.state).toBe('half-open');
    // Succeeded trials keep their places: the period's trials are in total, not at once.
    expect(circuit.refusal()).toBeInstanceOf(CircuitOpenError);
    circuit.record(trials[1]!, true);
    expect(circuit.state).toBe('closed');
    expect(seen).toEqual([['halfOpened'], ['closed']]);
  });

  it('opens again on any failing trial, and ignores the other trials of that period', () => {
    const { circuit, seen } = halfOpenable({ halfOpenCalls: 3 });
    const [a, b, c] = [ticket(circuit), ticket(circuit), ticket(circuit)];
    circuit.record(a, true);
    circuit.record(b, false, new Error('b'));
    circuit.record(c, true);
    expect(circuit.state).toBe('open');
    jest.advanceTimersByTime(1000);
    const d = ticket(circuit);
    circuit.record(c, true);
    circuit.record(a, true);
    expect(circuit.state).toBe('half-open');
    circuit.record(d, false, new Error('d'));
    expect(seen.map((event) => event[0])).toEqual(['halfOpened', 'opened', 'halfOpened', 'opened']);
  });

  it('does not take an attempt admitted while closed for a trial', () => {
    const { circuit, seen } = make({ threshold: 1, halfOpenAfter: 1000 });
    const early = ticket(circuit);
    const late = ticket(circuit);
    fail(circuit);
    circuit.record(late, false, new Error('late'));
    jest.advanceTimersByTime(1000);
    const trial = ticket(circuit);
    circuit.record(early, true);
    expect(circuit.state).toBe('half-open');
    circuit.record(trial, true);
    expect(circuit.state).toBe('closed');
    expect(seen.map((event) => event[0])).toEqual(['opened', 'halfOpened', 'closed']);
  });

  it('does not count an outcome from before an opening once closed again', () => {
    const { circuit } = make({ threshold: 2, halfOpenAfter: 1000 });
    const before = ticket(circuit);
    fail(circuit);
    fail(circuit);
    jest.advanceTimersByTime(1000);
    succeed(circuit);
    expect(circuit.state).toBe('closed');
    circuit.record(before, false, new Error('old news'));
    fail(circuit);
    expect(circuit.state).toBe('closed');
  });

  it('tells its refusal without taking a trial place', () => {
    const { circuit } = halfOpenable();
    expect(circuit.refusal()).toBeUndefined();
    expect(circuit.refusal()).toBeUndefined();
    ticket(circuit);
    expect(circuit.refusal()).toBeInstanceOf(CircuitOpenError);
  });

  it('reads the clock it is given', () => {
    let now = 5000;
    const { seen, listener } = recorder();
    const circuit = new Circuit(
      resolved({ threshold: 1, halfOpenAfter: 100 }),
      listener,
      () => now,
    );
    fail(circuit);
    expect(seen).toEqual([['opened', 1, expect.any(Error), 5100]]);
    now = 5099;
    expect(circuit.state).toBe('open');
    now = 5100;
    expect(circuit.state).toBe('half-open');
  });
});

describe('Circuit: what counts', () => {
  class NotFound extends Error {}
  const isFailure = (error: unknown): boolean => !(error instanceof NotFound);

  it('counts an error isFailure does not count as a success', () => {
    const { circuit } = make({ threshold: 2, isFailure });
    fail(circuit);
    fail(circuit, new NotFound());
    fail(circuit);
    expect(circuit.state).toBe('closed');
    fail(circuit);
    expect(circuit.state).toBe('open');
  });

  it('hands isFailure the error unchanged', () => {
    const decide = jest.fn((_error: unknown) => true);
    const { circuit } = make({ threshold: 5, isFailure: decide });
    const error = { code: 'ECONNRESET' };
    fail(circuit, error);
    expect(decide).toHaveBeenCalledTimes(1);
    expect(decide.mock.calls[0]?.[0]).toBe(error);
  });

  it('closes on a trial whose error isFailure does not count', () => {
    const { circuit, seen } = halfOpenable({ isFailure });
    fail(circuit, new NotFound());
    expect(circuit.state).toBe('closed');
    expect(seen).toEqual([['halfOpened'], ['closed']]);
  });

  it('does not consult isFailure for an outcome of an earlier period', () => {
    const decide = jest.fn((_error: unknown) => true);
    const { circuit } = make({ threshold: 1, isFailure: decide });
    const early = ticket(circuit);
    fail(circuit);
    decide.mockClear();
    circuit.record(early, false, new Error('late'));
    expect(decide).not.toHaveBeenCalled();
  });

  it('counts a timeout as a failure by default', () => {
    const { circuit } = make({ threshold: 1 });
    fail(circuit, new TimeoutError(undefined, { timeout: 10 }));
    expect(circuit.state).toBe('open');
  });

  it.each([
    ['CancelledError', () => new CancelledError()],
    ['ShutdownError', () => new ShutdownError()],
    ['QueueFullError', () => new QueueFullError(undefined, { maxQueue: 0 })],
    ['CircuitOpenError', () => new CircuitOpenError(undefined, { retryAt: 1 })],
  ])('never counts a %s, whatever isFailure says', (_, error) => {
    const decide = jest.fn((_error: unknown) => true);
    const { circuit } = make({ threshold: 2, isFailure: decide });
    fail(circuit);
    decide.mockClear();
    fail(circuit, error());
    expect(decide).not.toHaveBeenCalled();
    // Neither a failure (it would open) nor a success (the next failure would not open).
    expect(circuit.state).toBe('closed');
    fail(circuit);
    expect(circuit.state).toBe('open');
  });

  it.each([
    ['CancelledError', () => new CancelledError()],
    ['ShutdownError', () => new ShutdownError()],
    ['QueueFullError', () => new QueueFullError()],
    ['CircuitOpenError', () => new CircuitOpenError()],
  ])('gives a trial ending with a %s its place back', (_, error) => {
    const { circuit, seen } = halfOpenable();
    fail(circuit, error());
    expect(circuit.state).toBe('half-open');
    succeed(circuit);
    expect(seen).toEqual([['halfOpened'], ['closed']]);
  });

  it('counts the outcome as a failure when isFailure throws, then throws it', () => {
    const problem = new Error('bad predicate');
    const { circuit, seen } = make({
      threshold: 1,
      isFailure: () => {
        throw problem;
      },
    });
    const error = new Error('boom');
    expect(() => fail(circuit, error)).toThrow(problem);
    expect(seen).toEqual([['opened', 1, error, T0 + 30_000]]);
  });

  it('ignores an outcome whose isFailure changed the circuit', () => {
    const { circuit, seen } = make({
      threshold: 1,
      isFailure: () => {
        circuit.reset();
        return true;
      },
    });
    // The failure belonged to the period reset() ended: the new one starts with nothing.
    fail(circuit);
    expect(circuit.state).toBe('closed');
    expect(seen).toEqual([]);
  });
});

describe('Circuit.abandon', () => {
  it('gives an abandoned trial place to the next attempt', () => {
    const { circuit, seen } = halfOpenable();
    const trial = ticket(circuit);
    refused(circuit);
    circuit.abandon(trial);
    const next = ticket(circuit);
    circuit.record(next, true);
    expect(seen).toEqual([['halfOpened'], ['closed']]);
  });

  it('changes nothing for an attempt admitted while closed', () => {
    const { circuit } = make({ threshold: 2 });
    fail(circuit);
    circuit.abandon(ticket(circuit));
    fail(circuit);
    expect(circuit.state).toBe('open');
  });

  it('ignores a ticket of an earlier period and a second abandon of one trial', () => {
    const { circuit } = halfOpenable({ halfOpenCalls: 2 });
    const old = ticket(circuit);
    fail(circuit);
    jest.advanceTimersByTime(1000);
    const [a, b] = [ticket(circuit), ticket(circuit)];
    circuit.abandon(old);
    expect(circuit.refusal()).toBeInstanceOf(CircuitOpenError);
    circuit.record(a, true);
    circuit.abandon(b);
    circuit.abandon(b);
    // One place is free again, not two: one more trial success closes it.
    const c = ticket(circuit);
    expect(circuit.refusal()).toBeInstanceOf(CircuitOpenError);
    circuit.record(c, true);
    expect(circuit.state).toBe('closed');
  });
});

describe('Circuit.isolate and reset', () => {
  it('isolates a closed circuit: open with no end, until reset()', () => {
    const { circuit, seen } = make({ threshold: 5, halfOpenAfter: 10 });
    fail(circuit);
    fail(circuit);
    circuit.isolate();
    expect(seen).toEqual([['opened', 2, undefined, Infinity]]);
    const error = refused(circuit);
    expect(error.retryAt).toBe(Infinity);
    expect(error.message).toBe('circuit is open until reset()');
    jest.advanceTimersByTime(365 * 24 * 3600 * 1000);
    expect(circuit.state).toBe('open');
    circuit.reset();
    expect(circuit.state).toBe('closed');
    expect(seen).toEqual([['opened', 2, undefined, Infinity], ['closed']]);
    // The count before isolate() is forgotten.
    for (let i = 0; i < 4; i++) fail(circuit);
    expect(circuit.state).toBe('closed');
  });

  it('reports an isolate() once, however often it is called', () => {
    const { circuit, seen } = make();
    circuit.isolate();
    circuit.isolate();
    expect(seen).toEqual([['opened', 0, undefined, Infinity]]);
  });

  it('holds an open circuit open without an event', () => {
    const { circuit, seen } = make({ threshold: 1, halfOpenAfter: 1000 });
    fail(circuit);
    const timed = refused(circuit);
    circuit.isolate();
    expect(seen).toHaveLength(1);
    const held = refused(circuit);
    expect(held).not.toBe(timed);
    expect(held.retryAt).toBe(Infinity);
    jest.advanceTimersByTime(5000);
    expect(circuit.state).toBe('open');
    expect(seen).toHaveLength(1);
  });

  it('isolates a half-open circuit and ignores its trials', () => {
    const { circuit, seen } = halfOpenable();
    const trial = ticket(circuit);
    circuit.isolate();
    circuit.record(trial, true);
    expect(circuit.state).toBe('open');
    expect(seen).toEqual([['halfOpened'], ['opened', 0, undefined, Infinity]]);
  });

  it('resets a closed circuit silently, forgetting its count and its attempts', () => {
    const { circuit, seen } = make({ threshold: 2 });
    const before = ticket(circuit);
    fail(circuit);
    circuit.reset();
    circuit.record(before, false, new Error('before'));
    fail(circuit);
    expect(circuit.state).toBe('closed');
    expect(seen).toEqual([]);
  });

  it.each<[string, (circuit: Circuit) => void]>([
    ['open', () => undefined],
    ['half-open', (circuit) => void circuit.admit()],
  ])('resets a %s circuit with one closed event', (state, prepare) => {
    const { circuit, seen } = make({ threshold: 1, halfOpenAfter: 1000 });
    fail(circuit);
    if (state === 'half-open') jest.advanceTimersByTime(1000);
    prepare(circuit);
    expect(circuit.state).toBe(state);
    seen.length = 0;
    circuit.reset();
    circuit.reset();
    expect(circuit.state).toBe('closed');
    expect(seen).toEqual([['closed']]);
  });

  it('lets a listener reset the circuit from halfOpened; the asking attempt starts as closed', () => {
    const seen: string[] = [];
    const circuit: Circuit = new Circuit(resolved({ threshold: 1, halfOpenAfter: 10 }), {
      opened: () => seen.push('opened'),
      halfOpened: () => {
        seen.push('halfOpened');
        circuit.reset();
      },
      closed: () => seen.push('closed'),
    });
    fail(circuit);
    jest.advanceTimersByTime(10);
    const granted = circuit.admit();
    expect(typeof granted).toBe('number');
    expect(circuit.state).toBe('closed');
    circuit.record(granted as number, false, new Error('again'));
    expect(seen).toEqual(['opened', 'halfOpened', 'closed', 'opened']);
  });
});

describe('Circuit.view', () => {
  it('is a frozen view of the state whose methods work detached', () => {
    const { circuit, seen } = make();
    const view = circuit.view;
    expect(Object.isFrozen(view)).toBe(true);
    expect(Object.keys(view).sort()).toEqual(['isolate', 'reset', 'state']);
    const { isolate, reset } = view;
    isolate();
    expect(view.state).toBe('open');
    reset();
    expect(view.state).toBe('closed');
    expect(seen.map((event) => event[0])).toEqual(['opened', 'closed']);
  });
});

describe('Circuit, ratio mode', () => {
  const ratio = (
    fields: Partial<{ failures: number; window: number; minimumCalls: number }>,
  ): CircuitBreakerOptions => ({
    ratio: { failures: 0.5, window: 1000, minimumCalls: 4, ...fields },
    halfOpenAfter: 100,
  });

  it('does not judge before minimumCalls outcomes', () => {
    const { circuit, seen } = make(ratio({}));
    fail(circuit);
    fail(circuit);
    fail(circuit);
    expect(circuit.state).toBe('closed');
    const fourth = new Error('fourth');
    fail(circuit, fourth);
    expect(seen).toEqual([['opened', 4, fourth, T0 + 100]]);
  });

  it('opens when the share reaches failures, on a success too, with the latest failure', () => {
    const { circuit, seen } = make(ratio({}));
    const second = new Error('second');
    fail(circuit);
    succeed(circuit);
    fail(circuit, second);
    expect(circuit.state).toBe('closed');
    succeed(circuit);
    expect(seen).toEqual([['opened', 2, second, T0 + 100]]);
  });

  it('stays closed while the share is below failures', () => {
    const { circuit } = make(ratio({ failures: 0.6, minimumCalls: 5 }));
    for (const ok of [false, true, true, false, true, false]) {
      if (ok) succeed(circuit);
      else fail(circuit);
    }
    // 2 of 5, then 3 of 6.
    expect(circuit.state).toBe('closed');
  });

  it('is not reset by successes: failures apart still open it', () => {
    const { circuit } = make(ratio({ failures: 0.6, minimumCalls: 5 }));
    fail(circuit);
    fail(circuit);
    succeed(circuit);
    succeed(circuit);
    fail(circuit);
    expect(circuit.state).toBe('open');
  });

  it('keeps an outcome for the window, in steps of a tenth of it', () => {
    const { circuit } = make(ratio({ failures: 1, minimumCalls: 2 }));
    fail(circuit);
    jest.advanceTimersByTime(999);
    fail(circuit);
    expect(circuit.state).toBe('open');
  });

  it('drops an outcome once its bucket is window ms behind', () => {
    const { circuit } = make(ratio({ failures: 1, minimumCalls: 2 }));
    jest.advanceTimersByTime(50);
    fail(circuit);
    // 950 ms later the first failure's bucket (0-100 ms) has left the window.
    jest.advanceTimersByTime(950);
    fail(circuit);
    expect(circuit.state).toBe('closed');
    fail(circuit);
    expect(circuit.state).toBe('open');
  });

  it('forgets everything after a quiet spell longer than the window', () => {
    const { circuit } = make(ratio({ failures: 1, minimumCalls: 3 }));
    fail(circuit);
    fail(circuit);
    jest.advanceTimersByTime(5000);
    fail(circuit);
    fail(circuit);
    expect(circuit.state).toBe('closed');
  });

  it('does not take the errors that never count for calls', () => {
    const { circuit } = make(ratio({ failures: 1, minimumCalls: 2 }));
    fail(circuit);
    fail(circuit, new CancelledError());
    fail(circuit, new ShutdownError());
    expect(circuit.state).toBe('closed');
    fail(circuit);
    expect(circuit.state).toBe('open');
  });

  it('counts every outcome since it closed with an Infinity window', () => {
    const { circuit } = make(ratio({ window: Infinity, failures: 1, minimumCalls: 3 }));
    fail(circuit);
    jest.advanceTimersByTime(1e9);
    fail(circuit);
    jest.advanceTimersByTime(1e9);
    fail(circuit);
    expect(circuit.state).toBe('open');
  });

  it('starts with an empty window after closing from half-open', () => {
    const { circuit } = make(ratio({ failures: 1, minimumCalls: 2 }));
    fail(circuit);
    fail(circuit);
    jest.advanceTimersByTime(100);
    succeed(circuit);
    expect(circuit.state).toBe('closed');
    fail(circuit);
    expect(circuit.state).toBe('closed');
    fail(circuit);
    expect(circuit.state).toBe('open');
  });

  it('forgets the buckets of the window when it closes, not only their totals', () => {
    const { circuit } = make(ratio({ failures: 1, minimumCalls: 2 }));
    fail(circuit);
    fail(circuit);
    jest.advanceTimersByTime(100);
    succeed(circuit);
    jest.advanceTimersByTime(50);
    fail(circuit);
    // The window moves bucket by bucket past the buckets of the period before the close.
    for (let i = 0; i < 9; i++) jest.advanceTimersByTime(100);
    expect(circuit.state).toBe('closed');
    fail(circuit);
    expect(circuit.state).toBe('open');
  });

  it('reports the failures within the window on isolate()', () => {
    const { circuit, seen } = make(ratio({ minimumCalls: 10 }));
    fail(circuit);
    jest.advanceTimersByTime(2000);
    fail(circuit);
    fail(circuit);
    succeed(circuit);
    circuit.isolate();
    expect(seen).toEqual([['opened', 2, undefined, Infinity]]);
  });

  it('keeps counting in the latest bucket when the clock goes back', () => {
    let now = 10_000;
    const circuit = new Circuit(
      resolved(ratio({ failures: 1, minimumCalls: 2 })),
      undefined,
      () => now,
    );
    now = 10_500;
    fail(circuit);
    now = 9_000;
    fail(circuit);
    expect(circuit.state).toBe('open');
  });
});

// ---- model-based: the breaker against a reference written from the specification -----------

type Ending = 'ok' | 'fail' | 'benign' | 'never';
type Step =
  | { readonly kind: 'admit' }
  | { readonly kind: 'end'; readonly pick: number; readonly ending: Ending; readonly never: number }
  | { readonly kind: 'abandon'; readonly pick: number }
  | { readonly kind: 'advance'; readonly ms: number }
  | { readonly kind: 'read' }
  | { readonly kind: 'isolate' }
  | { readonly kind: 'reset' };

class Benign extends Error {}
const NEVER = [
  () => new CancelledError(),
  () => new ShutdownError(),
  () => new QueueFullError(),
  () => new CircuitOpenError(),
];

/**
 * The specification, restated as plainly as possible: every outcome kept in a list, the ratio
 * window filtered from it on each judgement.
 */
class Model {
  state: CircuitState = 'closed';
  retryAt = NaN;
  period = 0;
  trials = 0;
  passed = 0;
  inARow = 0;
  outcomes: { at: number; failed: boolean }[] = [];
  latestFailure: unknown = undefined;
  readonly seen: Seen[] = [];
  readonly options: ResolvedCircuitOptions;
  readonly clock: () => number;
  readonly origin: number;

  constructor(options: ResolvedCircuitOptions, clock: () => number, origin: number) {
    this.options = options;
    this.clock = clock;
    this.origin = origin;
  }

  #look(): void {
    if (this.state === 'open' && this.clock() >= this.retryAt) {
      this.#enter('half-open');
      this.seen.push(['halfOpened']);
    }
  }

  #enter(state: CircuitState, retryAt = NaN): void {
    if (state === 'half-open') retryAt = this.retryAt;
    this.state = state;
    this.retryAt = retryAt;
    this.period += 1;
    this.trials = this.passed = 0;
    this.inARow = 0;
    this.outcomes = [];
    this.latestFailure = undefined;
  }

  #open(failures: number, error: unknown, retryAt: number): void {
    this.#enter('open', retryAt);
    this.seen.push(['opened', failures, error, retryAt]);
  }

  #window(): { calls: number; failures: number } {
    const ratio = this.options.ratio!;
    const bucket = (at: number): number => Math.floor((at - this.origin) / (ratio.window / 10));
    const now = bucket(this.clock());
    const inside = this.outcomes.filter((outcome) => now - bucket(outcome.at) < 10);
    return { calls: inside.length, failures: inside.filter((outcome) => outcome.failed).length };
  }

  readState(): CircuitState {
    this.#look();
    return this.state;
  }

  /** The period an attempt was admitted in, or the retryAt of the refusal. */
  admit(): { period: number } | { retryAt: number } {
    this.#look();
    if (this.state === 'closed') return { period: this.period };
    if (this.state === 'half-open' && this.trials < this.options.halfOpenCalls) {
      this.trials += 1;
      return { period: this.period };
    }
    return { retryAt: this.retryAt };
  }

  abandon(period: number): void {
    if (period === this.period && this.state === 'half-open' && this.trials > this.passed) {
      this.trials -= 1;
    }
  }

  end(period: number, ending: Ending, error: unknown): void {
    if (period !== this.period) return;
    if (ending === 'never') return this.abandon(period);
    const failed = ending === 'fail';
    const retryAt = this.clock() + this.options.halfOpenAfter;
    if (this.state === 'half-open') {
      if (failed) this.#open(1, error, retryAt);
      else if (++this.passed === this.options.halfOpenCalls) {
        this.#enter('closed');
        this.seen.push(['closed']);
      }
    } else if (this.options.ratio === undefined) {
      this.inARow = failed ? this.inARow + 1 : 0;
      if (this.inARow >= this.options.threshold!) this.#open(this.inARow, error, retryAt);
    } else {
      this.outcomes.push({ at: this.clock(), failed });
      if (failed) this.latestFailure = error;
      const { calls, failures } = this.#window();
      if (
        calls >= this.options.ratio.minimumCalls &&
        failures / calls >= this.options.ratio.failures
      ) {
        this.#open(failures, this.latestFailure, retryAt);
      }
    }
  }

  isolate(): void {
    if (this.state === 'open') {
      this.retryAt = Infinity;
      return;
    }
    const failures =
      this.state === 'half-open'
        ? 0
        : this.options.ratio === undefined
          ? this.inARow
          : this.#window().failures;
    this.#open(failures, undefined, Infinity);
  }

  reset(): void {
    const was = this.state;
    this.#enter('closed');
    if (was !== 'closed') this.seen.push(['closed']);
  }
}

const optionsArb: fc.Arbitrary<CircuitBreakerOptions> = fc
  .record({
    mode: fc.oneof(
      fc.record({ threshold: fc.integer({ min: 1, max: 4 }) }),
      fc.record({
        ratio: fc.record({
          failures: fc.constantFrom(0.25, 0.3, 0.5, 0.75, 1),
          window: fc.constantFrom(100, 250, 1000, Infinity),
          minimumCalls: fc.integer({ min: 1, max: 5 }),
        }),
      }),
    ),
    halfOpenAfter: fc.constantFrom(20, 50, 100, 333),
    halfOpenCalls: fc.integer({ min: 1, max: 3 }),
  })
  .map(({ mode, ...rest }) => ({ ...mode, ...rest, isFailure: (e) => !(e instanceof Benign) }));

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.constant({ kind: 'admit' } as const), weight: 5 },
  {
    arbitrary: fc.record({
      kind: fc.constant('end' as const),
      pick: fc.nat(),
      ending: fc.constantFrom<Ending>('ok', 'ok', 'fail', 'fail', 'fail', 'benign', 'never'),
      never: fc.nat({ max: NEVER.length - 1 }),
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ kind: fc.constant('abandon' as const), pick: fc.nat() }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      // Mostly steps shorter than a bucket or a window, so that the window moves bucket by
      // bucket, with now and then one that empties it or ends an open period at once.
      ms: fc.oneof(
        { arbitrary: fc.integer({ min: 0, max: 60 }), weight: 4 },
        { arbitrary: fc.constantFrom(1, 20, 25, 50, 100, 333, 1000), weight: 1 },
      ),
    }),
    weight: 3,
  },
  { arbitrary: fc.constant({ kind: 'read' } as const), weight: 1 },
  { arbitrary: fc.constant({ kind: 'isolate' } as const), weight: 1 },
  { arbitrary: fc.constant({ kind: 'reset' } as const), weight: 1 },
);

describe('Circuit against a model of its specification', () => {
  it('follows the model for any sequence of attempts, outcomes, time, isolate and reset', () => {
    fc.assert(
      fc.property(
        optionsArb,
        fc.array(stepArb, { minLength: 10, maxLength: 150, size: 'max' }),
        (options, steps) => {
          const origin = T0;
          let now = origin;
          const clock = (): number => now;
          const resolvedOptions = resolved(options);
          const { seen, listener } = recorder();
          const circuit = new Circuit(resolvedOptions, listener, clock);
          const model = new Model(resolvedOptions, clock, origin);
          const running: { ticket: number; period: number }[] = [];
          let errors = 0;
          for (const step of steps) {
            switch (step.kind) {
              case 'admit': {
                const real = circuit.admit();
                const expected = model.admit();
                if ('period' in expected) {
                  expect(typeof real).toBe('number');
                  running.push({ ticket: real as number, period: expected.period });
                } else {
                  expect(real).toBeInstanceOf(CircuitOpenError);
                  expect((real as CircuitOpenError).retryAt).toBe(expected.retryAt);
                }
                break;
              }
              case 'end':
              case 'abandon': {
                if (running.length === 0) break;
                const [attempt] = running.splice(step.pick % running.length, 1);
                if (attempt === undefined) break;
                if (step.kind === 'abandon') {
                  circuit.abandon(attempt.ticket);
                  model.abandon(attempt.period);
                  break;
                }
                errors += 1;
                const error =
                  step.ending === 'benign'
                    ? new Benign(`benign ${errors}`)
                    : step.ending === 'never'
                      ? NEVER[step.never]!()
                      : new Error(`failure ${errors}`);
                circuit.record(attempt.ticket, step.ending === 'ok', error);
                model.end(attempt.period, step.ending, error);
                break;
              }
              case 'advance':
                now += step.ms;
                break;
              case 'read':
                expect(circuit.state).toBe(model.readState());
                break;
              case 'isolate':
                circuit.isolate();
                model.isolate();
                break;
              case 'reset':
                circuit.reset();
                model.reset();
                break;
            }
            expect(seen).toEqual(model.seen);
          }
          expect(circuit.state).toBe(model.readState());
          expect(seen).toEqual(model.seen);
        },
      ),
      { numRuns: 400 },
    );
  });
});
