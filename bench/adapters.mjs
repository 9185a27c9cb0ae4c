// One adapter per library: the workloads (bench/workloads.mjs) call only these methods, so every
// library runs exactly the same workload code. Each adapter is written the way that library's
// README shows it, with no tuning for Dovetail.
//
//   create(options) -> {
//     schedule?(fn, x): Promise         one task, submitted now, bounded by `concurrency`
//     map?(fn, items): Promise<array>    the whole array through the library's map form
//     iterate?(fn, source): AsyncIterable  streaming map over an async iterable
//     prioritized?(fn, x, priority): Promise  W7, W9b: one task with a priority (higher first)
//     keyed?(fn, x, key): Promise       W8, W9a: one task of `key`, under `perKey` as well
//     close?(): Promise<void>
//   }
//
// options: { concurrency: number, rateLimit?: { perSecond, burst }, full?: boolean,
//            scopedListeners?: number, levels?: number,
//            perKey?: { concurrency: number, rateLimit?: { perSecond, burst? } },
//            nesting?: 'global-around-key' | 'key-around-global' }
//   full: retries 3 (backoff 10 ms) + timeout 5000 ms + a listener on every event.
//   resilient (Dovetail only): a closed circuit breaker and `retryJitter: 'full'` on top.
//   openCircuit (Dovetail only): a circuit breaker held open (`isolate()`): every task fails fast.
//   levels: the priorities in use are 0..levels-1 (Dovetail makes one `with()` API per level).
//   nesting: how p-limit's per-key limiters and its global one are composed by hand.
//
// `dovetail` is the built package, imported by name; `dovetail-base` is the same adapter over
// another build of Dovetail (bench/run.mjs --baseline REV), loaded from the path the worker is
// given (see adapterFor below).

import { pathToFileURL } from 'node:url';
import Bottleneck from 'bottleneck';
import mitt from 'mitt';
import pLimit from 'p-limit';
import pMap, { pMapIterable } from 'p-map';
import PQueue from 'p-queue';
import pRetry from 'p-retry';
import pTimeout from 'p-timeout';
import * as dovetailjs from 'dovetailjs';

export const FULL = Object.freeze({ retries: 3, retryBackoff: 10, timeout: 5000 });

/** Runs a job's body; its promise settles after the slot is freed, as a semaphore's callers expect. */
const settle = (job, release) =>
  job.fn(job.x).then(
    (value) => {
      release();
      job.resolve(value);
    },
    (error) => {
      release();
      job.reject(error);
    },
  );

/**
 * The floor: the smallest correct semaphore one could write by hand (an array queue with a head
 * index, so dequeue is O(1)), plus, for W5, a plain token bucket (one timer per waiting start).
 */
function floor({ concurrency, rateLimit, deferred = false }) {
  let active = 0;
  const queue = [];
  let head = 0;
  const release = () => {
    active -= 1;
    if (head < queue.length) {
      const job = queue[head];
      queue[head++] = undefined;
      if (head === queue.length) {
        queue.length = 0;
        head = 0;
      }
      run(job);
    }
  };
  const run = (job) => {
    active += 1;
    settle(job, release);
  };
  const gate = (fn, x) =>
    new Promise((resolve, reject) => {
      const job = { fn, x, resolve, reject };
      if (active >= concurrency) queue.push(job);
      else if (deferred) {
        // The body starts a microtask later, never inside the call that scheduled it (the rule
        // API.md sets for schedule()); the slot is taken now.
        active += 1;
        queueMicrotask(() => {
          active -= 1;
          run(job);
        });
      } else run(job);
    });
  if (rateLimit === undefined) return { schedule: gate };
  // Token bucket: each caller reserves the next token; the wait is computed, not polled.
  const interval = 1000 / rateLimit.perSecond;
  let tokens = rateLimit.burst;
  let updated = performance.now();
  const acquire = () => {
    const now = performance.now();
    tokens = Math.min(rateLimit.burst, tokens + (now - updated) / interval);
    updated = now;
    tokens -= 1;
    return tokens >= 0 ? 0 : -tokens * interval;
  };
  return {
    schedule: (fn, x) => {
      const wait = acquire();
      if (wait === 0) return gate(fn, x);
      return new Promise((resolve) => setTimeout(resolve, wait)).then(() => gate(fn, x));
    },
  };
}

/**
 * The W7 floor: the same semaphore with a binary max-heap for its queue, ordered by priority, then
 * by a sequence number (a heap is not stable: the number keeps submission order among equals).
 */
function heapFloor({ concurrency }) {
  let active = 0;
  let sequence = 0;
  const heap = [];
  const before = (a, b) => a.priority > b.priority || (a.priority === b.priority && a.seq < b.seq);
  const push = (job) => {
    let i = heap.push(job) - 1;
    for (let parent = (i - 1) >> 1; i > 0 && before(job, heap[parent]); parent = (i - 1) >> 1) {
      heap[i] = heap[parent];
      i = parent;
    }
    heap[i] = job;
  };
  const pop = () => {
    const top = heap[0];
    const last = heap.pop();
    if (heap.length === 0) return top;
    let i = 0;
    for (let child = 1; child < heap.length; child = 2 * i + 1) {
      if (child + 1 < heap.length && before(heap[child + 1], heap[child])) child += 1;
      if (!before(heap[child], last)) break;
      heap[i] = heap[child];
      i = child;
    }
    heap[i] = last;
    return top;
  };
  const release = () => {
    active -= 1;
    if (heap.length > 0) run(pop());
  };
  const run = (job) => {
    active += 1;
    settle(job, release);
  };
  const prioritized = (fn, x, priority) =>
    new Promise((resolve, reject) => {
      const job = { fn, x, priority, seq: sequence++, resolve, reject };
      if (active >= concurrency) push(job);
      else run(job);
    });
  return { prioritized, schedule: (fn, x) => prioritized(fn, x, 0) };
}

/** One limiter per key, made on first use and kept, as p-limit users write it (p-limit #5). */
function limiters(concurrency, make) {
  const byKey = new Map();
  return (key) => {
    let limiter = byKey.get(key);
    if (limiter === undefined) byKey.set(key, (limiter = make(concurrency)));
    return limiter;
  };
}

function plimit({ concurrency, perKey, nesting }) {
  const limit = pLimit(concurrency);
  const schedule = (fn, x) => limit(fn, x);
  if (perKey === undefined) return { schedule };
  const forKey = limiters(perKey.concurrency, pLimit);
  // W8: the two ways to compose them. Global around key holds a global slot while its job waits
  // for the key; key around global queues at most one job per key for the global slots.
  const keyed =
    nesting === 'global-around-key'
      ? (fn, x, key) => limit(() => forKey(key)(fn, x))
      : (fn, x, key) => forKey(key)(() => limit(fn, x));
  return { schedule, keyed };
}

function pmap({ concurrency }) {
  return {
    map: (fn, items) => pMap(items, fn, { concurrency }),
    iterate: (fn, source) => pMapIterable(source, fn, { concurrency, backpressure: concurrency }),
  };
}

function pqueue({ concurrency, rateLimit }) {
  // p-queue has no token bucket: "100 per second" is written as a fixed window.
  const queue = new PQueue(
    rateLimit === undefined
      ? { concurrency }
      : { concurrency, intervalCap: rateLimit.perSecond, interval: 1000 },
  );
  return {
    schedule: (fn, x) => queue.add(() => fn(x)),
    prioritized: (fn, x, priority) => queue.add(() => fn(x), { priority }),
  };
}

function bottleneck({ concurrency, rateLimit, perKey }) {
  if (perKey !== undefined) return bottleneckGroup({ concurrency, perKey });
  // Bottleneck's README spaces starts with `minTime` (it has no burst); its reservoir refresh runs
  // on a polling heartbeat that started only about 4 tasks a second here at a 10 ms interval.
  const limiter = new Bottleneck(
    rateLimit === undefined
      ? { maxConcurrent: concurrency }
      : {
          maxConcurrent: concurrency === Infinity ? null : concurrency,
          minTime: 1000 / rateLimit.perSecond,
        },
  );
  return { schedule: (fn, x) => limiter.schedule(fn, x), close: () => limiter.disconnect() };
}

/**
 * W8: Bottleneck's per-key form as its README shows it, a Group of limiters (one per key, made on
 * first use) each chained to one global limiter.
 */
function bottleneckGroup({ concurrency, perKey }) {
  const global = new Bottleneck({ maxConcurrent: concurrency });
  const group = new Bottleneck.Group({ maxConcurrent: perKey.concurrency });
  group.on('created', (limiter) => limiter.chain(global));
  return {
    keyed: (fn, x, key) => group.key(key).schedule(fn, x),
    close: async () => {
      await group.disconnect();
      await global.disconnect();
    },
  };
}

/**
 * The "naive" path: what a user composes by hand from the same packages Dovetail builds on:
 * p-limit for the gate, p-retry around p-timeout for each task, mitt for lifecycle events.
 */
function naive({ concurrency }) {
  const limit = pLimit(concurrency);
  const bus = mitt();
  let heard = 0;
  bus.on('*', () => {
    heard += 1;
  });
  let sequence = 0;
  const schedule = (fn, x) => {
    const id = ++sequence;
    bus.emit('queued', { id });
    return limit(() =>
      pRetry(
        (attempt) => {
          bus.emit('started', { id, attempt });
          return pTimeout(fn(x), { milliseconds: FULL.timeout });
        },
        {
          retries: FULL.retries,
          minTimeout: FULL.retryBackoff,
          factor: 2,
          onFailedAttempt: ({ error, attemptNumber }) =>
            bus.emit('retry', { id, attempt: attemptNumber, error }),
        },
      ),
    ).then(
      (value) => {
        bus.emit('done', { id });
        return value;
      },
      (error) => {
        bus.emit('error', { id, error });
        throw error;
      },
    );
  };
  return { schedule, close: async () => heard };
}

/**
 * Dovetail through its public API. The first argument is what `import('dovetailjs')` gives: the
 * built package, or the build of another commit (the baseline).
 */
function dovetailOf(
  { Dovetail, Event },
  { concurrency, rateLimit, full, resilient, openCircuit, scopedListeners, levels, perKey },
) {
  const options = { concurrency };
  if (full) Object.assign(options, FULL);
  if (resilient) Object.assign(options, { circuitBreaker: {}, retryJitter: 'full' });
  if (openCircuit) options.circuitBreaker = {};
  if (rateLimit !== undefined) options.rateLimit = rateLimit;
  if (perKey !== undefined) options.perKey = perKey;
  const dvt = new Dovetail(options);
  if (openCircuit) dvt.circuit.isolate();
  // W7: one API per priority level, made up front, as a user would hold them.
  const byPriority = Array.from({ length: levels }, (_, priority) => dvt.task.with({ priority }));
  let heard = 0;
  if (full) {
    const listener = () => {
      heard += 1;
    };
    for (const event of Object.values(Event)) dvt.events.on(event, listener);
  }
  if (scopedListeners > 0) {
    // W6: listeners scoped to functions that never run here, spread over every event.
    const events = Object.values(Event);
    for (let i = 0; i < scopedListeners; i++) {
      const unrelated = async () => i;
      dvt.events.on(events[i % events.length], () => {}, { function: unrelated });
    }
  }
  return {
    schedule: (fn, x) => dvt.task.schedule(fn, x),
    map: (fn, items) => dvt.task.map(fn, items),
    iterate: (fn, source) => dvt.task.mapIterable(fn, source),
    prioritized: (fn, x, priority) => byPriority[priority].schedule(fn, x),
    keyed: (fn, x, key) => dvt.task.with({ key }).schedule(fn, x),
    close: async () => {
      await dvt.shutdown();
      return heard;
    },
  };
}

export const adapters = {
  floor,
  'floor-deferred': (options) => floor({ ...options, deferred: true }),
  'floor-heap': heapFloor,
  'p-limit': plimit,
  'p-map': pmap,
  'p-queue': pqueue,
  bottleneck,
  naive,
  dovetail: (options) => dovetailOf(dovetailjs, options),
};

/**
 * The adapter factory for `lib`. `dovetail-base` needs `baseline`, the path of the other build's
 * dist/index.js.
 */
export async function adapterFor(lib, baseline) {
  if (lib !== 'dovetail-base') return adapters[lib];
  if (baseline === undefined) throw new Error('dovetail-base needs spec.baseline');
  const built = await import(pathToFileURL(baseline).href);
  return (options) => dovetailOf(built, options);
}
