// Behaviours of src/engine/execution.ts and of the shared-circuit path of src/engine/admission.ts
// found untested by mutation testing (Stryker over src/engine/, see stryker.conf.json): each test
// names the mutants it kills, which survived (or were not covered by) the rest of the suite.
//
// A circuit shared by a back end (`Backend.createCircuit`, what `dovetailjs/redis` provides) may
// answer an attempt's admission with a promise: the store decides whether it is a half-open
// trial. Here a scripted circuit stands in for the store, so that path runs in process, and its
// log shows what the engine told it: each admission, each outcome with its ticket, each ticket
// given back.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import {
  CancelledError,
  CircuitOpenError,
  currentTask,
  LocalGate,
  type Backend,
  type CircuitState,
} from '../../src/index.js';
import { defer, flush, type Deferred } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';

afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

type Admission = number | CircuitOpenError | Promise<number | CircuitOpenError>;

/** A circuit whose admissions are scripted, which logs every call the engine makes. */
class ScriptedCircuit {
  readonly log: string[] = [];
  /** Answers of the next admissions, in order; then tickets 0, 1, 2, ... */
  readonly answers: Admission[] = [];
  /** Throws this from record() when set (a breaker's `isFailure` that threw). */
  recordThrows: unknown = undefined;
  #ticket = 0;
  readonly state: CircuitState = 'closed';
  readonly view = {
    state: 'closed' as CircuitState,
    isolate: (): void => undefined,
    reset: (): void => undefined,
  };

  admit(): Admission {
    this.log.push('admit');
    return this.answers.length > 0 ? (this.answers.shift() as Admission) : this.#ticket++;
  }

  refusal(): CircuitOpenError | undefined {
    return undefined;
  }

  record(ticket: number, ok: boolean): void {
    this.log.push(`record ${ticket} ${ok}`);
    if (this.recordThrows !== undefined) throw this.recordThrows;
  }

  abandon(ticket: number): void {
    this.log.push(`abandon ${ticket}`);
  }

  close(): void {
    return undefined;
  }
}

/** A back end with in-process gate and limiter whose circuit breaker is `circuit`. */
function sharedCircuit(circuit: ScriptedCircuit): Backend {
  return {
    createGate: ({ concurrency }) => new LocalGate(concurrency),
    createRateLimiter: () => ({ acquire: () => 0 }),
    createCircuit: () => circuit,
  };
}

function withCircuit(circuit: ScriptedCircuit, options: Parameters<typeof create>[0] = {}) {
  return create({
    concurrency: 4,
    circuitBreaker: {},
    backend: sharedCircuit(circuit),
    ...options,
  });
}

/**
 * A task cancelled while its admission is still with the store; `answer` is the store's answer
 * to come, `ends` the task's terminal events.
 */
async function cancelledWhileAdmitted() {
  const circuit = new ScriptedCircuit();
  const answer = defer<number | CircuitOpenError>();
  circuit.answers.push(answer.promise);
  const dvt = withCircuit(circuit);
  const ends: string[] = [];
  for (const event of ['done', 'error', 'cancelled'] as const)
    dvt.events.on(event, () => void ends.push(event));
  const work = jest.fn(() => 'ran');
  const task = dvt.task.schedule(work);
  await flush();
  expect(circuit.log).toEqual(['admit']);
  expect(task.cancel()).toBe(true);
  await expect(task).rejects.toBeInstanceOf(CancelledError);
  return { answer, circuit, dvt, ends, work };
}

describe('a shared circuit that admits later', () => {
  // Kills, in admitLater(): the empty callback, `if (false)`/`!==` for `typeof ticket ===
  // 'number'`, its empty block, the empty else block; in launch(): the empty block of
  // `isThenable(ticket)`, and `if (... && true)` for `this.ticket < 0` (a second admission for an
  // attempt that holds its ticket already).
  it('runs the attempt once the store grants its ticket, and records the outcome with it', async () => {
    const circuit = new ScriptedCircuit();
    const grant = defer<number>();
    circuit.answers.push(grant.promise);
    const dvt = withCircuit(circuit);
    const work = jest.fn(() => 'ran');
    const task = dvt.task.schedule(work);
    await flush();
    expect(work).not.toHaveBeenCalled();
    expect(circuit.log).toEqual(['admit']);
    grant.resolve(3);
    await expect(task).resolves.toBe('ran');
    expect(work).toHaveBeenCalledTimes(1);
    expect(circuit.log).toEqual(['admit', 'record 3 true']);
    expect(dvt.events.stats()).toMatchObject({ done: 1, error: 0, shortCircuited: 0 });
  });

  // Kills `this.ticket <= 0` for `this.ticket < 0` in launch(): ticket 0 is a ticket.
  it('takes ticket 0 as a ticket: no second admission', async () => {
    const circuit = new ScriptedCircuit();
    circuit.answers.push(Promise.resolve(0));
    const dvt = withCircuit(circuit);
    await expect(dvt.task.schedule(() => 'ran')).resolves.toBe('ran');
    expect(circuit.log).toEqual(['admit', 'record 0 true']);
  });

  // Kills `if (true)` for `typeof ticket === 'number'` (a refusal taken for a ticket), and
  // `if (false)`/`!==` for `this.phase === Phase.TOKEN` in the refusal branch (a task left
  // waiting for ever).
  it('fails the task with the store’s refusal, unrun and short-circuited', async () => {
    const circuit = new ScriptedCircuit();
    const refusal = new CircuitOpenError('open in the store', { retryAt: 0 });
    circuit.answers.push(Promise.resolve(refusal));
    const dvt = withCircuit(circuit);
    const work = jest.fn(() => 'ran');
    await expect(dvt.task.schedule(work)).rejects.toBe(refusal);
    expect(work).not.toHaveBeenCalled();
    expect(circuit.log).toEqual(['admit']);
    expect(dvt.events.stats()).toMatchObject({ error: 1, shortCircuited: 1 });
  });

  // Kills `if (false)`/`===` for `this.phase !== Phase.TOKEN` in admitLater() (a ticket granted
  // to a task cancelled meanwhile, never given back) and `if (true)` there (a ticket given back
  // while the task still waits for it: the task never runs).
  it('gives back a ticket granted after the task was cancelled', async () => {
    const { answer, circuit, dvt, ends, work } = await cancelledWhileAdmitted();
    answer.resolve(5);
    await flush();
    expect(work).not.toHaveBeenCalled();
    expect(circuit.log).toEqual(['admit', 'abandon 5']);
    expect(ends).toEqual(['cancelled']);
    expect(dvt.active + dvt.pending).toBe(0);
  });

  // Kills `if (true)` for `this.phase === Phase.TOKEN` in admitLater()'s refusal branch: a
  // refusal that comes after the task was cancelled does not settle it again.
  it('leaves a task cancelled meanwhile as it is when the store refuses later', async () => {
    const { answer, dvt, ends } = await cancelledWhileAdmitted();
    answer.resolve(new CircuitOpenError('open in the store', { retryAt: 0 }));
    await flush();
    expect(ends).toEqual(['cancelled']);
    expect(dvt.events.stats()).toMatchObject({ cancelled: 1, error: 0, shortCircuited: 0 });
  });

  // Kills `if (true)` for `this.phase === Phase.TOKEN` in admitLater()'s rejection handler: a
  // task cancelled meanwhile is not settled a second time by the store's late failure.
  it('leaves a task cancelled meanwhile as it is when the admission rejects later', async () => {
    const { answer, dvt, ends } = await cancelledWhileAdmitted();
    answer.reject(new Error('store down'));
    await flush();
    expect(ends).toEqual(['cancelled']);
    expect(dvt.events.stats()).toMatchObject({ cancelled: 1, error: 0 });
  });

  // Kills `if (false)`/`!==` for `this.phase === Phase.TOKEN` in admitLater()'s rejection
  // handler and its empty block: a store that failed fails the task (not left waiting).
  it('fails the task with the store’s error when the admission rejects', async () => {
    const circuit = new ScriptedCircuit();
    const down = new Error('store down');
    circuit.answers.push(Promise.reject(down));
    const dvt = withCircuit(circuit);
    const work = jest.fn(() => 'ran');
    await expect(dvt.task.schedule(work)).rejects.toBe(down);
    expect(work).not.toHaveBeenCalled();
    expect(dvt.events.stats()).toMatchObject({ error: 1, cancelled: 0 });
  });
});

describe('outcomes told to the circuit', () => {
  // Kills `this.ticket > 0` for `this.ticket >= 0` in succeed(): the first ticket is 0.
  it('records the outcome of the attempt that holds ticket 0', async () => {
    const circuit = new ScriptedCircuit();
    const dvt = withCircuit(circuit);
    await expect(dvt.task.schedule(() => 'ok')).resolves.toBe('ok');
    await expect(
      dvt.task.schedule(() => {
        throw new Error('no');
      }),
    ).rejects.toThrow('no');
    expect(circuit.log).toEqual(['admit', 'record 0 true', 'admit', 'record 1 false']);
  });

  // Kills `return true` for `return false` in recordCopy(): a breaker that throws while told of
  // an attempt settles the task once, with that error, and nothing after it.
  it('settles once, with the error the breaker threw, when told of a success', async () => {
    const circuit = new ScriptedCircuit();
    const thrown = new Error('isFailure threw');
    circuit.recordThrows = thrown;
    const dvt = withCircuit(circuit);
    const ends: string[] = [];
    dvt.events.on('done', () => void ends.push('done'));
    dvt.events.on('error', () => void ends.push('error'));
    await expect(dvt.task.schedule(() => 'ok')).rejects.toBe(thrown);
    await flush();
    expect(ends).toEqual(['error']);
    expect(dvt.events.stats()).toMatchObject({ done: 0, error: 1 });
  });

  // The same on the failure path, with the in-process breaker's `isFailure`: no retry either.
  it('settles once, with the error the breaker threw, when told of a failure', async () => {
    const thrown = new Error('isFailure threw');
    const dvt = create({
      circuitBreaker: {
        isFailure: () => {
          throw thrown;
        },
      },
      retries: 2,
      retryBackoff: 0,
    });
    const ends: string[] = [];
    dvt.events.on('retry', () => void ends.push('retry'));
    dvt.events.on('error', () => void ends.push('error'));
    const work = jest.fn(() => {
      throw new Error('upstream');
    });
    await expect(dvt.task.schedule(work)).rejects.toBe(thrown);
    await flush();
    expect(work).toHaveBeenCalledTimes(1);
    expect(ends).toEqual(['error']);
    expect(dvt.events.stats()).toMatchObject({ done: 0, error: 1, retries: 0 });
  });
});

/** A work function whose every call (first copy or hedge) waits until the test ends it. */
function held() {
  const calls: { signal: AbortSignal; end: Deferred<string> }[] = [];
  const work = (): Promise<string> => {
    const context = currentTask();
    if (context === undefined) throw new Error('no task context');
    const end = defer<string>();
    calls.push({ signal: context.signal, end });
    return end.promise;
  };
  return { calls, work };
}

describe('hedges', () => {
  // Kills `if (false)` for `this.holdings?.hedge?.firstSucceeded() === false` in succeed(): when
  // the first copy wins, the hedge in flight is aborted as a loser, not with the winner's value.
  it('aborts a hedge in flight as a loser when the first copy succeeds', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
    const dvt = create({ concurrency: 4, hedge: { delay: 10 } });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(2);
    calls[0]?.end.resolve('first');
    await expect(task).resolves.toBe('first');
    const reason: unknown = calls[1]?.signal.reason;
    expect(reason).toBeInstanceOf(CancelledError);
    expect((reason as Error).message).toBe('another copy of attempt 1 succeeded first');
    calls[1]?.end.reject(reason);
  });

  // Kills, in hedgeWon(): `if (false)`, `this.ticket > 0` and `this.ticket < 0` for
  // `this.ticket >= 0` and its empty block (the first copy's ticket, 0, given back only after
  // its signal was aborted), and `this.ticket = +1` (ticket 1, the winner's, given back again at
  // the settle).
  it('gives the losing first copy’s ticket back before aborting it, and no other', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
    const circuit = new ScriptedCircuit();
    const dvt = withCircuit(circuit, { hedge: { delay: 10 } });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await jest.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(2);
    const first = calls[0] as (typeof calls)[number];
    first.signal.addEventListener('abort', () => void circuit.log.push('first aborted'));
    calls[1]?.end.resolve('hedge');
    await expect(task).resolves.toBe('hedge');
    first.end.reject(first.signal.reason);
    await flush();
    expect(circuit.log).toEqual(['admit', 'admit', 'record 1 true', 'abandon 0', 'first aborted']);
  });
});

describe('the adaptive limit', () => {
  // Kills `false` for `true` in succeed()'s report to the adaptive limit: a success is no
  // failure, so `isOverload` is never asked about it.
  it('asks isOverload about failures only', async () => {
    const isOverload = jest.fn(() => false);
    const dvt = create({ concurrency: 'adaptive', adaptive: { isOverload } });
    await expect(dvt.task.schedule(() => 'ok')).resolves.toBe('ok');
    expect(isOverload).not.toHaveBeenCalled();
    const failure = new Error('upstream');
    await expect(
      dvt.task.schedule(() => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(isOverload.mock.calls).toEqual([[failure]]);
  });

  // Kills `if (false)` for `hedge?.decided === true` in fail(): once a hedge won a retried
  // attempt, the first copy, aborted as the loser, is no failure of the attempt, so the
  // adaptive limit does not ask `isOverload` about its abort.
  it('asks isOverload nothing about the first copy a hedge beat', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask', 'setImmediate'] });
    const isOverload = jest.fn(() => false);
    const dvt = create({
      concurrency: 'adaptive',
      adaptive: { isOverload },
      hedge: { delay: 10 },
      retries: 1,
      retryBackoff: 0,
    });
    const { calls, work } = held();
    const task = dvt.task.schedule(work);
    await flush();
    const failure = new Error('upstream');
    calls[0]?.end.reject(failure);
    await jest.advanceTimersByTimeAsync(0);
    expect(calls).toHaveLength(2);
    // Attempt 2: its first copy ends (rejects) as soon as it is aborted.
    const second = calls[1] as (typeof calls)[number];
    second.signal.addEventListener('abort', () => second.end.reject(second.signal.reason));
    await jest.advanceTimersByTimeAsync(10);
    expect(calls).toHaveLength(3);
    calls[2]?.end.resolve('hedge');
    await expect(task).resolves.toBe('hedge');
    await flush();
    expect(isOverload.mock.calls).toEqual([[failure]]);
  });
});
