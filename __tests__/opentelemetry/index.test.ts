// dovetailjs/opentelemetry with the real SDK: spans, their parents, retries, failures, and
// unsubscribing.
import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { context, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import {
  CancelledError,
  TASK_RETRY_CHANNEL,
  TimeoutError,
  currentTask,
  type TaskRetryMessage,
} from '../../src/index.js';
import { instrument, RETRY_EVENT, SpanAttribute } from '../../src/opentelemetry/index.js';
import { defer, flush } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
const contextManager = new AsyncLocalStorageContextManager();
const tracer = provider.getTracer('test');
let stops: (() => void)[] = [];

/** instrument(), undone after the test. */
function on(options: Parameters<typeof instrument>[0] = { tracerProvider: provider }): () => void {
  const stop = instrument(options);
  stops.push(stop);
  return stop;
}

const dovetailSpans = (): ReadableSpan[] =>
  exporter.getFinishedSpans().filter((span) => span.name.startsWith('dovetail '));
const named = (name: string): ReadableSpan => {
  const span = exporter.getFinishedSpans().find((s) => s.name === name);
  if (span === undefined) throw new Error(`no span ${name}`);
  return span;
};
const parentOf = (span: ReadableSpan): string | undefined => span.parentSpanContext?.spanId;
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(() => {
  context.setGlobalContextManager(contextManager.enable());
});
afterEach(async () => {
  for (const stop of stops) stop();
  stops = [];
  await closeAll();
  exporter.reset();
  jest.useRealTimers();
});
afterAll(async () => {
  context.disable();
  await provider.shutdown();
});

describe('the core without OpenTelemetry', () => {
  it('imports no OpenTelemetry code: only src/opentelemetry/ names @opentelemetry', () => {
    const root = fileURLToPath(new URL('../../src/', import.meta.url));
    const offenders = readdirSync(root, { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && !file.startsWith('opentelemetry'))
      .filter((file) =>
        /from '@opentelemetry\/|from '\.{1,2}\/(\.\.\/)*opentelemetry\//.test(
          readFileSync(join(root, file), 'utf8'),
        ),
      );
    expect(offenders).toEqual([]);
  });
});

describe('instrument', () => {
  it('makes one INTERNAL span per task, named after the method and the function', async () => {
    on();
    const dvt = create();
    await dvt.task.schedule(async function fetchPage() {
      return 1;
    });
    await dvt.task.with({ key: 'host-a' }).schedule(() => 2);
    await dvt.task.schedule(Promise.resolve(3));
    const spans = dovetailSpans();
    expect(spans.map((s) => s.name)).toEqual([
      'dovetail schedule fetchPage',
      'dovetail schedule <anonymous>',
      'dovetail schedule <promise>',
    ]);
    expect(spans.map((s) => s.kind)).toEqual([
      SpanKind.INTERNAL,
      SpanKind.INTERNAL,
      SpanKind.INTERNAL,
    ]);
    expect(spans.map((s) => s.status.code)).toEqual([
      SpanStatusCode.UNSET,
      SpanStatusCode.UNSET,
      SpanStatusCode.UNSET,
    ]);
    expect(spans[0]?.instrumentationScope.name).toBe('dovetailjs');
    expect(spans[1]?.attributes).toEqual({
      [SpanAttribute.METHOD]: 'schedule',
      [SpanAttribute.FUNCTION]: '<anonymous>',
      [SpanAttribute.EXECUTION_ID]: expect.stringMatching(/^\d+$/),
      [SpanAttribute.KEY]: 'host-a',
      [SpanAttribute.ATTEMPTS]: 1,
      [SpanAttribute.OUTCOME]: 'done',
    });
    expect(spans[2]?.attributes[SpanAttribute.FUNCTION]).toBeUndefined();
  });

  it('gives the span the execution id the task sees', async () => {
    on();
    const dvt = create();
    const task = dvt.task.schedule(async () => currentTask()?.id);
    const id = await task;
    expect(id).toBe(task.id);
    expect(dovetailSpans()[0]?.attributes[SpanAttribute.EXECUTION_ID]).toBe(task.id);
  });

  it('makes the span active inside the task: a span the task starts is its child', async () => {
    on();
    const dvt = create();
    await dvt.task.schedule(async function job() {
      await sleep(1);
      tracer.startSpan('inside').end();
    });
    const job = named('dovetail schedule job');
    expect(parentOf(named('inside'))).toBe(job.spanContext().spanId);
    expect(named('inside').spanContext().traceId).toBe(job.spanContext().traceId);
  });

  it('parents the task span on the span active where it was scheduled, however long it waited', async () => {
    on();
    const dvt = create({ concurrency: 1 });
    const gate = defer();
    const blocker = dvt.task.schedule(async function blocker() {
      await gate.promise;
    });
    const parent = tracer.startSpan('request');
    const waited = context.with(trace.setSpan(context.active(), parent), () =>
      dvt.task.schedule(async function queued() {
        tracer.startSpan('inside').end();
      }),
    );
    await flush();
    gate.resolve();
    await Promise.all([blocker, waited]);
    parent.end();
    const queued = named('dovetail schedule queued');
    expect(parentOf(queued)).toBe(parent.spanContext().spanId);
    expect(parentOf(named('dovetail schedule blocker'))).toBeUndefined();
    expect(parentOf(named('inside'))).toBe(queued.spanContext().spanId);
  });

  it('keeps the span active on every attempt, and adds an event per retry', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
    on();
    const dvt = create({ retries: 2, retryBackoff: 100 });
    let calls = 0;
    const task = dvt.task.schedule(async function flaky() {
      calls += 1;
      tracer.startSpan(`attempt ${calls}`).end();
      if (calls < 3) throw new TypeError(`fail ${calls}`);
      return calls;
    });
    await jest.advanceTimersByTimeAsync(300);
    await expect(task).resolves.toBe(3);
    const flaky = named('dovetail schedule flaky');
    for (const n of [1, 2, 3])
      expect(parentOf(named(`attempt ${n}`))).toBe(flaky.spanContext().spanId);
    expect(flaky.attributes[SpanAttribute.ATTEMPTS]).toBe(3);
    expect(flaky.status.code).toBe(SpanStatusCode.UNSET);
    expect(flaky.events.map((e) => [e.name, e.attributes])).toEqual([
      [
        RETRY_EVENT,
        {
          [SpanAttribute.ATTEMPT]: 1,
          [SpanAttribute.RETRY_DELAY]: 100,
          'exception.type': 'TypeError',
          'exception.message': 'fail 1',
        },
      ],
      [
        RETRY_EVENT,
        {
          [SpanAttribute.ATTEMPT]: 2,
          [SpanAttribute.RETRY_DELAY]: 200,
          'exception.type': 'TypeError',
          'exception.message': 'fail 2',
        },
      ],
    ]);
  });

  it('ends a failed task with status ERROR and the exception recorded', async () => {
    on();
    const dvt = create();
    const boom = new Error('boom');
    await expect(
      dvt.task.schedule(async function broken() {
        throw boom;
      }),
    ).rejects.toBe(boom);
    await expect(dvt.task.schedule(() => Promise.reject('a string'))).rejects.toBe('a string');
    const [broken, stringly] = dovetailSpans();
    expect(broken?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'Error: boom' });
    expect(broken?.attributes[SpanAttribute.OUTCOME]).toBe('error');
    const exception = broken?.events.find((e) => e.name === 'exception');
    expect(exception?.attributes?.['exception.message']).toBe('boom');
    expect(exception?.attributes?.['exception.type']).toBe('Error');
    expect(stringly?.status).toEqual({ code: SpanStatusCode.ERROR, message: 'a string' });
    expect(stringly?.events.find((e) => e.name === 'exception')?.attributes).toEqual({
      'exception.message': 'a string',
    });
  });

  it('records a timed-out task as ERROR with its timeout', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
    on();
    const dvt = create({ timeout: 50 });
    const task = dvt.task.schedule(function slow() {
      return new Promise(() => {});
    });
    const outcome = expect(task).rejects.toBeInstanceOf(TimeoutError);
    await jest.advanceTimersByTimeAsync(50);
    await outcome;
    const slow = named('dovetail schedule slow');
    expect(slow.status.code).toBe(SpanStatusCode.ERROR);
    expect(slow.attributes[SpanAttribute.TIMEOUT]).toBe(50);
    expect(slow.attributes[SpanAttribute.OUTCOME]).toBe('error');
    expect(slow.events.find((e) => e.name === 'exception')?.attributes?.['exception.type']).toBe(
      'TimeoutError',
    );
  });

  it('records cancelled tasks, running or still queued, as cancelled and ERROR', async () => {
    on();
    const dvt = create({ concurrency: 1 });
    const running = dvt.task.schedule(function running() {
      return new Promise(() => {});
    });
    const queued = dvt.task.schedule(async function queued() {});
    await flush();
    queued.cancel();
    running.cancel();
    await expect(running).rejects.toBeInstanceOf(CancelledError);
    await expect(queued).rejects.toBeInstanceOf(CancelledError);
    const spans = ['running', 'queued'].map((name) => named(`dovetail schedule ${name}`));
    expect(spans.map((s) => s.attributes[SpanAttribute.OUTCOME])).toEqual([
      'cancelled',
      'cancelled',
    ]);
    expect(spans.map((s) => s.attributes[SpanAttribute.ATTEMPTS])).toEqual([1, 0]);
    expect(spans.map((s) => s.status.code)).toEqual([SpanStatusCode.ERROR, SpanStatusCode.ERROR]);
  });

  it('makes a span per map item, each a child of the span around map()', async () => {
    on();
    const dvt = create({ concurrency: 2 });
    const parent = tracer.startSpan('migration');
    const out = await context.with(trace.setSpan(context.active(), parent), () =>
      dvt.task.map(
        async function double(x: number) {
          tracer.startSpan(`item ${x}`).end();
          return x * 2;
        },
        [1, 2, 3],
      ),
    );
    parent.end();
    expect(out).toEqual([2, 4, 6]);
    const items = dovetailSpans();
    expect(items.map((s) => s.name)).toEqual([
      'dovetail map double',
      'dovetail map double',
      'dovetail map double',
    ]);
    expect(items.map(parentOf)).toEqual(Array(3).fill(parent.spanContext().spanId));
    const ids = new Set(items.map((s) => s.spanContext().spanId));
    for (const x of [1, 2, 3]) expect(ids.has(parentOf(named(`item ${x}`)) ?? '')).toBe(true);
  });

  it('makes no spans after the returned function is called, and ends those still open', async () => {
    const stop = on();
    const dvt = create();
    const gate = defer();
    const open = dvt.task.schedule(async function open() {
      await gate.promise;
    });
    await flush();
    stop();
    expect(dovetailSpans().map((s) => s.name)).toEqual(['dovetail schedule open']);
    gate.resolve();
    await open;
    await dvt.task.schedule(async function after() {});
    expect(dovetailSpans()).toHaveLength(1);
    stop(); // a second call does nothing
  });

  it('replaces the instrumentation when called twice: one span per task, from the latest', async () => {
    const first = new InMemorySpanExporter();
    const firstProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(first)],
    });
    const stopFirst = on({ tracerProvider: firstProvider });
    const dvt = create();
    await dvt.task.schedule(async function one() {});
    on({ tracerProvider: provider });
    await dvt.task.schedule(async function two() {
      tracer.startSpan('inside').end();
    });
    stopFirst(); // replaced already: does nothing
    await dvt.task.schedule(async function three() {});
    expect(first.getFinishedSpans().map((s) => s.name)).toEqual(['dovetail schedule one']);
    expect(dovetailSpans().map((s) => s.name)).toEqual([
      'dovetail schedule two',
      'dovetail schedule three',
    ]);
    expect(parentOf(named('inside'))).toBe(named('dovetail schedule two').spanContext().spanId);
    await firstProvider.shutdown();
  });

  it('uses the tracer option over the provider', async () => {
    const own = provider.getTracer('own-tracer');
    on({ tracer: own, tracerProvider: new BasicTracerProvider() });
    await create().task.schedule(async function job() {});
    expect(dovetailSpans()[0]?.instrumentationScope.name).toBe('own-tracer');
  });

  it('uses the global tracer provider by default', async () => {
    trace.setGlobalTracerProvider(provider);
    try {
      on(undefined);
      await create().task.schedule(async function job() {});
      expect(dovetailSpans().map((s) => s.name)).toEqual(['dovetail schedule job']);
    } finally {
      trace.disable();
    }
  });

  it('keeps a task running when the tracer throws, and reports it as a warning', async () => {
    const emitted = jest.spyOn(process, 'emitWarning').mockImplementation(() => {});
    try {
      const broken = {
        startSpan: () => {
          throw new Error('tracer down');
        },
        startActiveSpan: () => {
          throw new Error('tracer down');
        },
      } as unknown as Tracer;
      on({ tracer: broken });
      await expect(create().task.schedule(async () => 7)).resolves.toBe(7);
      expect(emitted).toHaveBeenCalledWith(
        'dovetailjs/opentelemetry: Error: tracer down',
        expect.objectContaining({ code: 'DOVETAIL_OTEL_ERROR' }),
      );
    } finally {
      emitted.mockRestore();
    }
  });

  it('rejects bad options with a TypeError naming them', () => {
    expect(() => instrument(null as never)).toThrow(/`options` must be an object, received null/);
    expect(() => instrument({ tracer: {} as never })).toThrow(
      /`options.tracer.startSpan` must be a function/,
    );
    expect(() => instrument({ tracerProvider: 'x' as never })).toThrow(
      /`options.tracerProvider` must be an object/,
    );
    expect(() => instrument({ tracerProvider: {} as never })).toThrow(
      /`options.tracerProvider.getTracer` must be a function/,
    );
  });
});

describe('dovetail:task:retry', () => {
  it('publishes each retry with the object the task channel carries', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
    on();
    const messages: TaskRetryMessage[] = [];
    const listener = (m: unknown): void => {
      messages.push(m as TaskRetryMessage);
    };
    subscribe(TASK_RETRY_CHANNEL, listener);
    try {
      const dvt = create({ retries: 1, retryBackoff: 10 });
      let calls = 0;
      const task = dvt.task.schedule(async () => {
        calls += 1;
        if (calls === 1) throw new Error('once');
      });
      await jest.advanceTimersByTimeAsync(10);
      await task;
      expect(messages).toHaveLength(1);
      expect(messages[0]).toMatchObject({ event: 'retry', attempt: 1, sleep: 10 });
      expect(messages[0]?.context).toMatchObject({ executionId: task.id, event: 'done' });
    } finally {
      unsubscribe(TASK_RETRY_CHANNEL, listener);
    }
  });
});
