// `dovetailjs/opentelemetry`: one OpenTelemetry span per task, made from what the engine publishes
// on `dovetail:task` and `dovetail:task:retry`. Only this entry point loads `@opentelemetry/api`
// (the caller's, an optional peer); the engine knows nothing of it.
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  channel as plainChannel,
  tracingChannel,
  type TracingChannelSubscribers,
} from 'node:diagnostics_channel';
import {
  SpanKind,
  SpanStatusCode,
  context as contextApi,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import { TASK_CHANNEL, TASK_RETRY_CHANNEL, type TaskRetryMessage } from '../events/channel.js';
import { assertFunction, assertObject } from '../internal/assert.js';
import { errorText, warn } from '../internal/util.js';

/**
 * The attributes of a task's span, and of its retry events. Every name starts with `dovetail.`.
 *
 * @example
 * ```ts
 * import { SpanAttribute } from 'dovetailjs/opentelemetry';
 * const isDovetailSpan = (attributes: Record<string, unknown>) =>
 *   typeof attributes[SpanAttribute.EXECUTION_ID] === 'string';
 * ```
 */
export const SpanAttribute = Object.freeze({
  /** The API method that started the task: `schedule`, `map`, `wrap`, ... */
  METHOD: 'dovetail.method',
  /** The function's name (`'<anonymous>'` when it has none); absent for a promise. */
  FUNCTION: 'dovetail.function',
  /** The execution id: the same string as `Task.id` and `current().id`. */
  EXECUTION_ID: 'dovetail.execution_id',
  /** The task's key (`with({ key })`, the `key` map option), when it has one. */
  KEY: 'dovetail.key',
  /** Attempts started, set when the task settles (0 for a task that never started). */
  ATTEMPTS: 'dovetail.attempts',
  /** How the task settled: `done`, `error` or `cancelled`. */
  OUTCOME: 'dovetail.outcome',
  /** The timeout in ms, when the task failed with a `TimeoutError`. */
  TIMEOUT: 'dovetail.timeout',
  /** On a retry event: the attempt that failed, 1-based. */
  ATTEMPT: 'dovetail.attempt',
  /** On a retry event: milliseconds before the next attempt. */
  RETRY_DELAY: 'dovetail.retry.delay',
} as const);

/** Name of the span event added for each retry of a task. */
export const RETRY_EVENT = 'dovetail.retry';

/**
 * Options of {@link instrument}.
 *
 * @example
 * ```ts
 * import { trace } from '@opentelemetry/api';
 * import type { InstrumentOptions } from 'dovetailjs/opentelemetry';
 * const options: InstrumentOptions = { tracer: trace.getTracer('my-service') };
 * ```
 */
export interface InstrumentOptions {
  /**
   * Where the tracer comes from: `tracerProvider.getTracer('dovetailjs')`.
   * @defaultValue the global provider (`trace.getTracer('dovetailjs')`)
   */
  tracerProvider?: TracerProvider | undefined;
  /**
   * The tracer that makes the spans; it takes precedence over `tracerProvider`.
   * @defaultValue one from `tracerProvider`
   */
  tracer?: Tracer | undefined;
}

/** The instrumentation scope name of the default tracer. */
const SCOPE_NAME = 'dovetailjs';

/** What `dovetail:task` messages carry (the task payload fields this module reads). */
interface TaskMessage {
  event?: string;
  method?: string;
  function?: string;
  executionId?: string;
  key?: string;
  attempt?: number;
  error?: unknown;
  timeout?: number;
}

/** The instrumentation now on, if any: a second {@link instrument} replaces it. */
let current: (() => void) | undefined;

/**
 * Makes one OpenTelemetry span per Dovetail task, from every instance in the process, until the
 * returned function is called. Each span is named `dovetail <method> <function>` (`<promise>` for
 * a promise handed over as it is), of kind INTERNAL, with the attributes of {@link SpanAttribute};
 * it starts with the task's first attempt (or when it settles, if it never started) and ends when
 * it settles. Each retry adds a `dovetail.retry` event (the attempt, the delay, the exception); a
 * task that fails, times out or is cancelled ends with status ERROR and its exception recorded.
 *
 * The span's parent is the span active where the task was scheduled, and the span is the active
 * one inside the task, on every attempt, so the spans its work makes (a `fetch`, a query) are its
 * children. Both need the context manager the application registered, as OpenTelemetry setups
 * do (`NodeSDK`, or `provider.register()` with an `AsyncLocalStorageContextManager`); `instrument()`
 * registers none. Making the span active relies on that manager keeping its context in an
 * `AsyncLocalStorage`, which is bound to the channel (`bindStore`); with any other manager the
 * spans are made all the same, only not active inside their tasks.
 *
 * Calling `instrument()` again replaces the instrumentation in place (one span per task, from the
 * latest tracer); the earlier function then does nothing. When nothing is instrumented, the engine
 * builds nothing for the channel.
 *
 * @param options - Where the spans' tracer comes from.
 * @returns A function that stops: no spans after it is called; the spans still open are ended.
 * @throws TypeError when `options`, `options.tracer` or `options.tracerProvider` is not what it
 * should be.
 * @example
 * ```ts
 * import { trace } from '@opentelemetry/api';
 * import { Dovetail } from 'dovetailjs';
 * import { instrument } from 'dovetailjs/opentelemetry';
 *
 * const stop = instrument({ tracer: trace.getTracer('crawler') });
 * const dvt = new Dovetail({ concurrency: 4, retries: 2 });
 * await dvt.task.schedule(async function fetchPage() {
 *   return 'ok';
 * }); // a span "dovetail schedule fetchPage"
 * stop();
 * ```
 */
export function instrument(options?: InstrumentOptions): () => void {
  const tracer = resolveTracer(options);
  current?.();
  const stop = start(tracer);
  current = stop;
  return () => {
    if (current !== stop) return;
    current = undefined;
    stop();
  };
}

function resolveTracer(options: InstrumentOptions | undefined): Tracer {
  if (options === undefined) return trace.getTracer(SCOPE_NAME);
  assertObject('options', options);
  const { tracer, tracerProvider } = options;
  if (tracer !== undefined) {
    assertObject('options.tracer', tracer);
    assertFunction('options.tracer.startSpan', Reflect.get(tracer, 'startSpan'));
    return tracer;
  }
  if (tracerProvider !== undefined) {
    assertObject('options.tracerProvider', tracerProvider);
    assertFunction('options.tracerProvider.getTracer', Reflect.get(tracerProvider, 'getTracer'));
    return tracerProvider.getTracer(SCOPE_NAME);
  }
  return trace.getTracer(SCOPE_NAME);
}

/**
 * The `AsyncLocalStorage` in which the registered context manager keeps the active context, or
 * undefined. OpenTelemetry has no public way to reach it yet (open-telemetry/opentelemetry-js
 * issue 6088), so this reads the private fields of the API's context singleton and of
 * `AsyncLocalStorageContextManager`, checking what it finds: anything else means "none".
 */
function contextStorage(): AsyncLocalStorage<Context> | undefined {
  try {
    const api = contextApi as unknown as { _getContextManager?: () => unknown };
    const manager = api._getContextManager?.() as { _asyncLocalStorage?: unknown } | undefined;
    const storage = manager?._asyncLocalStorage;
    return storage instanceof AsyncLocalStorage
      ? (storage as AsyncLocalStorage<Context>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** Reports a failure of the tracer (or of this module) without letting it reach the task. */
function report(error: unknown): void {
  warn(
    `dovetailjs/opentelemetry: ${errorText(error)}`,
    'DOVETAIL_OTEL_ERROR',
    'A span of a Dovetail task could not be made or completed; the task itself is unaffected.',
  );
}

const exception = (error: unknown): Error | string =>
  error instanceof Error ? error : String(error);

/** Subscribes with `tracer`; returns what unsubscribes. */
function start(tracer: Tracer): () => void {
  const channel = tracingChannel<object, object>(TASK_CHANNEL);
  const retries = plainChannel(TASK_RETRY_CHANNEL);
  /** The open spans, by the object each task's messages carry. */
  const spans = new Map<object, Span>();
  let storage: AsyncLocalStorage<Context> | undefined;

  /** The task's span, started if it is not yet (in the context the message is published in). */
  const spanOf = (message: object): Span => {
    let span = spans.get(message);
    if (span === undefined) {
      const m = message as TaskMessage;
      const name = m.function ?? '<promise>';
      const attributes: Attributes = { [SpanAttribute.METHOD]: m.method ?? '' };
      if (m.function !== undefined) attributes[SpanAttribute.FUNCTION] = m.function;
      if (m.executionId !== undefined) attributes[SpanAttribute.EXECUTION_ID] = m.executionId;
      if (m.key !== undefined) attributes[SpanAttribute.KEY] = m.key;
      span = tracer.startSpan(`dovetail ${m.method ?? ''} ${name}`, {
        kind: SpanKind.INTERNAL,
        attributes,
      });
      spans.set(message, span);
    }
    return span;
  };

  // The store's value while the task runs: the scheduling context with the task's span in it.
  // Node reports a throw here as an uncaught exception, so none may escape.
  const activate = (message: object): Context => {
    const parent = contextApi.active();
    try {
      return trace.setSpan(parent, spanOf(message));
    } catch (error) {
      report(error);
      return parent;
    }
  };

  /** Binds the context manager's storage, once it exists (the SDK may be set up after us). */
  const bind = (): void => {
    if (storage !== undefined) return;
    storage = contextStorage();
    if (storage !== undefined) channel.start.bindStore(storage, activate);
  };

  const guarded =
    <A extends unknown[]>(fn: (...args: A) => void) =>
    (...args: A): void => {
      try {
        fn(...args);
      } catch (error) {
        report(error);
      }
    };

  const subscribers: TracingChannelSubscribers<object> = {
    // With a bound store the span was made by `activate`; this makes the others (a task that
    // settled before it started, or no storage to bind) and binds a storage that came late.
    start: guarded((message: object) => {
      spanOf(message);
      bind();
    }),
    end: () => {},
    asyncStart: () => {},
    error: guarded((message: object) => {
      const span = spans.get(message);
      if (span === undefined) return;
      const error = (message as TaskMessage).error;
      span.recordException(exception(error));
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorText(error) });
    }),
    asyncEnd: guarded((message: object) => {
      const span = spans.get(message);
      if (span === undefined) return;
      spans.delete(message);
      const m = message as TaskMessage;
      span.setAttribute(SpanAttribute.ATTEMPTS, m.attempt ?? 0);
      if (m.event !== undefined) span.setAttribute(SpanAttribute.OUTCOME, m.event);
      if (m.timeout !== undefined) span.setAttribute(SpanAttribute.TIMEOUT, m.timeout);
      span.end();
    }),
  };

  const onRetry = guarded((message: unknown) => {
    const { context, attempt, sleep, error } = message as TaskRetryMessage;
    const span = spans.get(context);
    if (span === undefined) return;
    const attributes: Attributes = {
      [SpanAttribute.ATTEMPT]: attempt,
      [SpanAttribute.RETRY_DELAY]: sleep,
      'exception.message': error instanceof Error ? error.message : String(error),
    };
    if (error instanceof Error) attributes['exception.type'] = error.name;
    span.addEvent(RETRY_EVENT, attributes);
  });

  bind();
  channel.subscribe(subscribers);
  retries.subscribe(onRetry);
  return () => {
    channel.unsubscribe(subscribers);
    retries.unsubscribe(onRetry);
    if (storage !== undefined) channel.start.unbindStore(storage);
    for (const span of spans.values()) span.end();
    spans.clear();
  };
}
