import { objectText } from './internal/util.js';
import type { TraceLogger } from './options.js';

/** Fields of a structured trace line, for `events.traceStruct()`. */
export interface TraceStruct {
  /** The API method or component the line is about (`schedule`, `shutdown`, ...). */
  method: string;
  /** What happened (`queued`, `done`, `start`, ...). */
  status: string;
  /** Task number, when the line is about one task. */
  task?: number | undefined;
  /** Function name, when the line is about one task. */
  function?: string | undefined;
  /** Milliseconds, when something was timed. */
  elapsed?: number | undefined;
  /** Further `key=value` pairs. */
  extra?: Readonly<Record<string, unknown>> | undefined;
}

const formatValue = (value: unknown): string => {
  if (typeof value === 'string') return /[\s="]/.test(value) ? JSON.stringify(value) : value;
  if (value instanceof Error) return JSON.stringify(`${value.name}: ${value.message}`);
  // A function's source would flood the line: its name says enough.
  if (typeof value === 'function') return `[function ${value.name || '<anonymous>'}]`;
  if (typeof value === 'object' && value !== null) return objectText(value);
  return String(value);
};

/** A trace writer bound to one instance's logger and prefix. @internal */
export class Tracer {
  enabled: boolean;
  readonly #logger: TraceLogger;
  readonly #tag: string;

  constructor(enabled: boolean, logger: TraceLogger, prefix: string) {
    this.enabled = enabled;
    this.#logger = logger;
    this.#tag = `DVT-${prefix}`;
  }

  /** Writes `message` when tracing is on; a logger that throws is ignored. */
  line(message: string): void {
    if (!this.enabled) return;
    try {
      this.#logger.debug(`${this.#tag} ${message}`);
    } catch {
      // A broken logger must not break the task that is being traced.
    }
  }

  /** Formats and writes a structured line; builds no string when tracing is off. */
  struct(fields: TraceStruct): void {
    if (!this.enabled) return;
    let text = `${fields.method} ${fields.status}`;
    if (fields.task !== undefined) text += ` task=${fields.task}`;
    if (fields.function !== undefined) text += ` function=${formatValue(fields.function)}`;
    if (fields.elapsed !== undefined)
      text += ` elapsed=${Math.round(fields.elapsed * 1000) / 1000}ms`;
    if (fields.extra !== undefined) {
      for (const [key, value] of Object.entries(fields.extra)) {
        if (value !== undefined) text += ` ${key}=${formatValue(value)}`;
      }
    }
    this.line(text);
  }
}
