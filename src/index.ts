// Public surface: named re-exports only.
export { Dovetail } from './dovetail.js';
export type { ShutdownOptions } from './lifecycle/instance.js';
export { TaskApi } from './task.js';
export type { CallbackApi, CallbackParameters, CallbackResult, NodeCallback } from './task.js';
export type { Task } from './engine/task-promise.js';
export type { MapInput } from './map/source.js';
export { currentTask } from './context.js';
export type { TaskContext } from './context.js';
export { retryAfter } from './resilience/retry-after.js';
export { Event } from './events/types.js';
export { BackendEvent, InstanceEvent } from './events/instance.js';
export { Events } from './events/bus.js';
export type {
  AnyFunction,
  BackendErrorPayload,
  CancelledPayload,
  DonePayload,
  ErrorPayload,
  EventMap,
  EventName,
  Listener,
  ListenerScope,
  ListenerScopeFor,
  MethodName,
  OnceScope,
  OnceScopeFor,
  QueuedPayload,
  RateLimitedPayload,
  Registrar,
  RetryPayload,
  StartedPayload,
  TaskEventName,
  TaskPayload,
} from './events/types.js';
export type {
  CircuitClosedPayload,
  CircuitHalfOpenPayload,
  CircuitOpenPayload,
  InstanceEventName,
  InstancePayload,
  LimitChangedPayload,
  PausedPayload,
  ResumedPayload,
} from './events/instance.js';
export type { Stats } from './events/stats.js';
export { TASK_CHANNEL, TASK_RETRY_CHANNEL } from './events/channel.js';
export type { TaskRetryMessage } from './events/channel.js';
export type { TraceStruct } from './trace.js';
export {
  BackendError,
  CancelledError,
  CircuitOpenError,
  DovetailError,
  QueueFullError,
  ShutdownError,
  TimeoutError,
} from './errors.js';
export type {
  BackendErrorOptions,
  CircuitOpenErrorOptions,
  DovetailErrorOptions,
  QueueFullErrorOptions,
  TimeoutErrorOptions,
} from './errors.js';
export { DEFAULTS } from './options.js';
export type { PerKeyOptions, QueueOptions, QueueOverflow } from './queue/options.js';
export type { RetryDelayFunction, RetryDelayOptions, RetryJitter } from './resilience/backoff.js';
export type { MapOptions } from './map/options.js';
export type { MapProgress, ProgressCallback } from './map/progress.js';
export type { AdaptiveOptions } from './latency/adaptive-options.js';
export type {
  DovetailOptions,
  RateLimitOptions,
  ShouldRetry,
  TaskOverrides,
  TraceLogger,
} from './options.js';
export type { CircuitBreakerOptions, CircuitRatioOptions } from './resilience/circuit-options.js';
export type { CircuitState, CircuitView } from './resilience/circuit-view.js';
export type { HedgeDelay, HedgeOptions } from './latency/hedge-options.js';
export { LocalGate } from './policies/gate.js';
export type { Gate, GateJob } from './policies/gate.js';
export { TokenBucket } from './policies/rate-limit.js';
export type { RateLimiter, TokenWait } from './policies/rate-limit.js';
export type { Backend, BackendHooks, BackendProblem } from './policies/backend.js';
export { listActive, register, shutdownAll, unregister } from './lifecycle/registry.js';
export { runMain, setAppShutdownHook } from './lifecycle/process.js';
export type { AppShutdownHook, RunMainOptions, ShutdownSignal } from './lifecycle/process.js';
