// Tracing: the trace logger and prefix, the DOVETAIL_TRACE switch, no formatting when off, and the
// `dovetail:task` diagnostics_channel.
import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { tracingChannel } from 'node:diagnostics_channel';
import {
  CancelledError,
  Event,
  TASK_CHANNEL,
  TimeoutError,
  type DovetailOptions,
} from '../src/index.js';
import { defer } from './helpers/defer.js';
import { closeAll, create } from './helpers/instances.js';

const ENV = 'DOVETAIL_TRACE';
let savedEnv: string | undefined;

beforeEach(() => {
  savedEnv = process.env[ENV];
  delete process.env[ENV];
});

afterEach(async () => {
  if (savedEnv === undefined) delete process.env[ENV];
  else process.env[ENV] = savedEnv;
  // Shut down first: a traced shutdown still writes, and must reach the spies, not the console.
  await closeAll();
  jest.restoreAllMocks();
});

/** An instance whose trace lines land in `lines`. */
function traced(options: DovetailOptions = {}): {
  dvt: ReturnType<typeof create>;
  lines: string[];
  debug: jest.Mock<(message: string) => void>;
} {
  const lines: string[] = [];
  const debug = jest.fn<(message: string) => void>((message) => void lines.push(message));
  const dvt = create({ traceLogger: { debug }, ...options });
  return { dvt, lines, debug };
}

describe('trace output', () => {
  it('writes trace(message) through the logger with DVT-<prefix>', () => {
    const { dvt, lines } = traced({ trace: true, tracePrefix: 'billing' });
    dvt.events.trace('checkpoint reached');
    expect(lines).toEqual(['DVT-billing checkpoint reached']);
  });

  it("uses the prefix 'Dovetail' by default", () => {
    const { dvt, lines } = traced({ trace: true });
    dvt.events.trace('hello');
    expect(lines).toEqual(['DVT-Dovetail hello']);
  });

  it('writes traceStruct() as one line of key=value fields', () => {
    const { dvt, lines } = traced({ trace: true, tracePrefix: 'P' });
    dvt.events.traceStruct({
      method: 'import',
      status: 'batch',
      task: 3,
      function: 'load',
      elapsed: 12.5,
      extra: { rows: 10, file: 'a b.csv', skipped: undefined },
    });
    expect(lines).toEqual([
      'DVT-P import batch task=3 function=load elapsed=12.5ms rows=10 file="a b.csv"',
    ]);
  });

  it('formats values of every kind without throwing or dumping function source', () => {
    const { dvt, lines } = traced({ trace: true });
    const circular: Record<string, unknown> = { a: 1 };
    circular['self'] = circular;
    dvt.events.traceStruct({
      method: 'm',
      status: 's',
      extra: {
        error: new TypeError('bad'),
        fn: function helper() {
          return 'source text';
        },
        circular,
        big: { n: 1n },
        list: [1, 2],
        flag: false,
        none: null,
        quoted: 'say "hi"',
      },
    });
    expect(lines).toEqual([
      'DVT-Dovetail m s error="TypeError: bad" fn=[function helper] circular=[object Object] ' +
        'big=[object Object] list=[1,2] flag=false none=null quoted="say \\"hi\\""',
    ]);
  });

  it('traces every lifecycle step of a task with the prefix, its id and its function', async () => {
    const { dvt, lines } = traced({ trace: true, tracePrefix: 'jobs' });
    const task = dvt.task.schedule(async function fetchPage() {
      return 1;
    });
    await task;
    expect(lines).toHaveLength(3);
    for (const line of lines) {
      expect(line.startsWith('DVT-jobs schedule ')).toBe(true);
      expect(line).toContain('function=fetchPage');
      expect(line).toContain(`id=${task.id}`);
    }
    expect(lines.map((line) => line.split(' ')[2])).toEqual(['queued', 'started', 'done']);
  });

  it('traces retries and failures with their error', async () => {
    const { dvt, lines } = traced({ trace: true, retries: 1 });
    await expect(dvt.task.schedule(() => Promise.reject(new RangeError('nope')))).rejects.toThrow(
      'nope',
    );
    const retry = lines.find((line) => line.includes(' retry '));
    const error = lines.find((line) => line.includes(' error '));
    expect(retry).toMatch(/attempt=1 .*sleep=0 .*error="RangeError: nope"/);
    expect(error).toMatch(/error="RangeError: nope"/);
  });

  it('writes to console.debug when no traceLogger is given', () => {
    const debug = jest.spyOn(console, 'debug').mockImplementation(() => undefined);
    const dvt = create({ trace: true });
    dvt.events.trace('to the console');
    expect(debug).toHaveBeenCalledWith('DVT-Dovetail to the console');
  });

  it('keeps the task working when the logger throws', async () => {
    const dvt = create({
      trace: true,
      traceLogger: {
        debug() {
          throw new Error('logger down');
        },
      },
    });
    await expect(dvt.task.schedule(async () => 'still fine')).resolves.toBe('still fine');
    expect(() => dvt.events.trace('x')).not.toThrow();
  });

  it('reports tracing through events.tracing', () => {
    expect(traced({ trace: true }).dvt.events.tracing).toBe(true);
    expect(traced({ trace: false }).dvt.events.tracing).toBe(false);
  });
});

describe('DOVETAIL_TRACE', () => {
  it.each(['1', 'true', 'yes', 'on', 'TRUE', 'Yes', 'ON', 'oN', ' on '])(
    'turns tracing on for %j',
    (value) => {
      process.env[ENV] = value;
      const { dvt, lines } = traced();
      dvt.events.trace('x');
      expect(dvt.events.tracing).toBe(true);
      expect(lines).toEqual(['DVT-Dovetail x']);
    },
  );

  it.each(['0', 'false', 'no', 'off', '', 'FALSE', 'Off', 'No', 'maybe'])(
    'leaves tracing off for %j',
    async (value) => {
      process.env[ENV] = value;
      const { dvt, debug } = traced();
      dvt.events.trace('x');
      await dvt.task.schedule(() => 1);
      expect(dvt.events.tracing).toBe(false);
      expect(debug).not.toHaveBeenCalled();
    },
  );

  it('leaves tracing off when unset', () => {
    const { dvt, debug } = traced();
    dvt.events.trace('x');
    expect(debug).not.toHaveBeenCalled();
  });

  it('is overridden by an explicit trace: false', async () => {
    process.env[ENV] = '1';
    const { dvt, debug } = traced({ trace: false });
    dvt.events.trace('x');
    await dvt.task.schedule(() => 1);
    expect(debug).not.toHaveBeenCalled();
  });

  it('is overridden by an explicit trace: true', () => {
    process.env[ENV] = 'off';
    const { dvt, lines } = traced({ trace: true });
    dvt.events.trace('x');
    expect(lines).toEqual(['DVT-Dovetail x']);
  });

  it('is read when the instance is built', () => {
    process.env[ENV] = 'on';
    const { dvt, debug } = traced();
    process.env[ENV] = 'off';
    dvt.events.trace('x');
    expect(debug).toHaveBeenCalledTimes(1);
  });
});

describe('tracing off', () => {
  it('never calls the logger, for tasks, failures, trace() or traceStruct()', async () => {
    const warn = jest.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    const { dvt, debug } = traced({ trace: false, retries: 1 });
    dvt.events.on(Event.DONE, () => {
      throw new Error('listener error');
    });
    await dvt.task.schedule(() => 1);
    await expect(dvt.task.schedule(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
    dvt.events.trace('x');
    dvt.events.traceStruct({ method: 'm', status: 's' });
    await dvt.shutdown();
    expect(debug).not.toHaveBeenCalled();
    expect(warn).toHaveBeenCalled();
  });

  it('builds no string: traceStruct() reads none of its fields', () => {
    const { dvt } = traced({ trace: false });
    let reads = 0;
    const fields = {
      get method(): string {
        reads += 1;
        return 'm';
      },
      get status(): string {
        reads += 1;
        return 's';
      },
      get extra(): Record<string, unknown> {
        reads += 1;
        return { big: { toString: () => 'never' } };
      },
    };
    dvt.events.traceStruct(fields);
    expect(reads).toBe(0);
  });

  it('builds no string: trace() does not convert its message', () => {
    const { dvt } = traced({ trace: false });
    const toString = jest.fn(() => 'message');
    dvt.events.trace({ toString } as unknown as string);
    expect(toString).not.toHaveBeenCalled();
  });

  it('still rejects fields that are not an object with TypeError', () => {
    const { dvt } = traced({ trace: false });
    expect(() => dvt.events.traceStruct(null as never)).toThrow(TypeError);
    expect(() => dvt.events.traceStruct('line' as never)).toThrow(TypeError);
  });

  it('reads the fields once tracing is on (the check above is meaningful)', () => {
    const { dvt, lines } = traced({ trace: true });
    let reads = 0;
    dvt.events.traceStruct({
      get method(): string {
        reads += 1;
        return 'm';
      },
      status: 's',
    });
    expect(reads).toBeGreaterThan(0);
    expect(lines).toEqual(['DVT-Dovetail m s']);
  });

  it('builds no payload for a listener-less instance (nothing wants one)', async () => {
    const { dvt } = traced({ trace: false });
    const publish = jest.spyOn(dvt.events, 'publish');
    const source = { fn: undefined, id: '1', channelContext: undefined };
    expect(dvt.events.wants(Event.QUEUED, source)).toBe(false);
    await dvt.task.schedule(() => 1);
    expect(publish).not.toHaveBeenCalled();
  });

  it('tracing on alone makes the engine build payloads', () => {
    const { dvt } = traced({ trace: true });
    const source = { fn: undefined, id: '1', channelContext: undefined };
    expect(dvt.events.wants(Event.QUEUED, source)).toBe(true);
  });
});

describe('diagnostics_channel dovetail:task', () => {
  type Message = Record<string, unknown>;
  interface Recorder {
    calls: [string, Message][];
    unsubscribe(): void;
  }

  function subscribe(): Recorder {
    const calls: [string, Message][] = [];
    const channel = tracingChannel<object, object>(TASK_CHANNEL);
    const handlers = {
      start: (m: object) => void calls.push(['start', { ...(m as Message) }]),
      end: (m: object) => void calls.push(['end', { ...(m as Message) }]),
      asyncStart: (m: object) => void calls.push(['asyncStart', { ...(m as Message) }]),
      asyncEnd: (m: object) => void calls.push(['asyncEnd', { ...(m as Message) }]),
      error: (m: object) => void calls.push(['error', { ...(m as Message) }]),
    };
    channel.subscribe(handlers);
    return { calls, unsubscribe: () => void channel.unsubscribe(handlers) };
  }

  let recorder: Recorder | undefined;
  afterEach(() => {
    recorder?.unsubscribe();
    recorder = undefined;
  });

  it("is named 'dovetail:task'", () => {
    expect(TASK_CHANNEL).toBe('dovetail:task');
  });

  it('publishes start and end, then asyncStart and asyncEnd, with the payload for a task that succeeds', async () => {
    const dvt = create();
    recorder = subscribe();
    const task = dvt.task.schedule(async function work() {
      return 1;
    });
    await task;
    expect(recorder.calls.map(([name]) => name)).toEqual([
      'start',
      'end',
      'asyncStart',
      'asyncEnd',
    ]);
    const [, start] = recorder.calls[0]!;
    expect(start).toMatchObject({
      event: 'started',
      method: 'schedule',
      function: 'work',
      executionId: task.id,
      attempt: 1,
    });
    const [, end] = recorder.calls[3]!;
    expect(end).toMatchObject({ event: 'done', executionId: task.id, elapsed: expect.any(Number) });
  });

  it('publishes the same context object from start to asyncEnd', async () => {
    const dvt = create();
    const seen: object[] = [];
    const channel = tracingChannel<object, object>(TASK_CHANNEL);
    const handlers = {
      start: (m: object) => void seen.push(m),
      end: () => undefined,
      asyncStart: () => undefined,
      asyncEnd: (m: object) => void seen.push(m),
      error: () => undefined,
    };
    channel.subscribe(handlers);
    try {
      await dvt.task.schedule(() => 1);
    } finally {
      channel.unsubscribe(handlers);
    }
    expect(seen).toHaveLength(2);
    expect(seen[0]).toBe(seen[1]);
  });

  it('publishes error before asyncStart and asyncEnd for a task that fails', async () => {
    const dvt = create({ timeout: 20 });
    recorder = subscribe();
    const task = dvt.task.schedule(() => new Promise<never>(() => {}));
    await expect(task).rejects.toBeInstanceOf(TimeoutError);
    expect(recorder.calls.map(([name]) => name)).toEqual([
      'start',
      'end',
      'error',
      'asyncStart',
      'asyncEnd',
    ]);
    const [, error] = recorder.calls[2]!;
    expect(error['error']).toBeInstanceOf(TimeoutError);
    expect(error).toMatchObject({ event: 'error', executionId: task.id, timeout: 20 });
  });

  it('publishes start once for a task that retries', async () => {
    const dvt = create({ retries: 2 });
    recorder = subscribe();
    let calls = 0;
    await dvt.task.schedule(() => {
      calls += 1;
      if (calls < 3) throw new Error('again');
      return calls;
    });
    expect(recorder.calls.map(([name]) => name)).toEqual([
      'start',
      'end',
      'asyncStart',
      'asyncEnd',
    ]);
  });

  it('publishes a whole sequence for a task cancelled before it started', async () => {
    const dvt = create({ concurrency: 1 });
    const hold = defer<void>();
    const running = dvt.task.schedule(() => hold.promise);
    const waiting = dvt.task.schedule(() => 'never');
    recorder = subscribe();
    waiting.cancel();
    await expect(waiting).rejects.toBeInstanceOf(CancelledError);
    const mine = recorder.calls
      .filter(([, m]) => m['executionId'] === waiting.id)
      .map(([name]) => name);
    expect(mine).toEqual(['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
    hold.resolve();
    await running;
  });

  it('publishes nothing and builds no payload when nobody subscribes', async () => {
    const dvt = create({ trace: false });
    const publish = jest.spyOn(dvt.events, 'publish');
    await dvt.task.schedule(() => 1);
    expect(publish).not.toHaveBeenCalled();
    recorder = subscribe();
    await dvt.task.schedule(() => 1);
    expect(publish).toHaveBeenCalled();
    recorder.unsubscribe();
    publish.mockClear();
    await dvt.task.schedule(() => 1);
    expect(publish).not.toHaveBeenCalled();
  });
});
