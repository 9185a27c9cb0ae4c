// Runs ONE workload with ONE library in this (fresh) process and prints one JSON line.
// Started by bench/run.mjs: node bench/worker.mjs '<spec json>' (W9 with --expose-gc)
//   spec: { workload, lib, mode: 'schedule'|'map'|'iterate', n, concurrency, sleep?,
//           rateLimit?, full?, scopedListeners?, baseline?, levels?, perKey?, nesting?, keys? }
//   baseline: for lib 'dovetail-base', the path of another build's dist/index.js.
//   levels: W7/W9b, priorities 0..levels-1 (0 or absent: the tasks carry no priority).
//   perKey, nesting, keys: W8/W9a, the per-key limits and the shape of the keys.
// The workload code below is the same for every library; only the adapter differs.
// A workload that throws (a library that refuses an option, an API that does not exist yet) prints
// `error: <name>: <message>` as the last line of stderr and exits 1: the runner shows that line
// in the row and goes on with the other cases.

import { adapterFor } from './adapters.mjs';

const spec = JSON.parse(process.argv[2]);
const n = spec.n;
/** The adapter, made inside the guarded part below (a constructor may refuse an option). */
let adapter;

const identity = async (x) => x;
const sleeper = (ms) => (x) => new Promise((resolve) => setTimeout(resolve, ms, x));
const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function* generate(n) {
  for (let i = 0; i < n; i++) yield i;
}

/** Runs `fn` over 0..n-1 in the spec's mode; resolves with how many results came back. */
async function drive(fn, n) {
  if (spec.mode === 'iterate') {
    let count = 0;
    for await (const _ of adapter.iterate(fn, generate(n))) count += 1;
    return count;
  }
  const items = Array.from({ length: n }, (_, i) => i);
  const results =
    spec.mode === 'map'
      ? await adapter.map(fn, items)
      : await Promise.all(items.map((x) => adapter.schedule(fn, x)));
  return results.length;
}

function check(count, n) {
  if (count !== n) throw new Error(`${spec.lib}: ${count} results for ${n} tasks`);
}

/**
 * Priorities 0..levels-1 for n tasks, the same sequence in every process (mulberry32 from a fixed
 * seed): every library orders exactly the same submissions.
 */
function seededPriorities(n, levels) {
  let state = 0x15;
  return Array.from({ length: n }, () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * levels);
  });
}

/**
 * Adjacent pairs of `starts` (task indexes in the order their bodies began) that are out of the
 * order a priority queue owes them; 0 exactly when that order was kept. Everything is submitted
 * before the first start, so the first `concurrency` tasks start in submission order (they find a
 * free slot), the rest by priority (higher first), then submission order.
 */
function orderViolations(starts, priorities, concurrency) {
  const waiting = priorities.map((_, i) => i).slice(concurrency);
  waiting.sort((a, b) => priorities[b] - priorities[a] || a - b);
  const rank = new Int32Array(priorities.length);
  for (let i = 0; i < Math.min(concurrency, priorities.length); i++) rank[i] = i;
  waiting.forEach((task, k) => (rank[task] = concurrency + k));
  let violations = 0;
  for (let k = 1; k < starts.length; k++)
    if (rank[starts[k - 1]] > rank[starts[k]]) violations += 1;
  return violations;
}

/** Heap in use after a full collection, in bytes (W9 runs with --expose-gc). */
function heapAfterGc() {
  if (typeof global.gc !== 'function') throw new Error('W9 needs node --expose-gc');
  // A second pass collects what the first one's finalizers released.
  global.gc();
  global.gc();
  return process.memoryUsage().heapUsed;
}

const workloads = {
  /** W1, W1b, W6: no-op tasks; wall time per task. */
  async overhead(out) {
    const t0 = process.hrtime.bigint();
    check(await drive(identity, n), n);
    out.ms = Number(process.hrtime.bigint() - t0) / 1e6;
    out.nsPerTask = (out.ms * 1e6) / n;
  },

  /** W10: no-op tasks against an open circuit, every one failing fast; wall time per task. */
  async shortCircuit(out) {
    const t0 = process.hrtime.bigint();
    const items = Array.from({ length: n }, (_, i) => i);
    const outcomes = await Promise.allSettled(items.map((x) => adapter.schedule(identity, x)));
    out.ms = Number(process.hrtime.bigint() - t0) / 1e6;
    out.nsPerTask = (out.ms * 1e6) / n;
    const failed = outcomes.filter((outcome) => outcome.status === 'rejected').length;
    if (failed !== n) throw new Error(`${spec.lib}: ${failed} of ${n} tasks failed fast`);
  },

  /** W2-W4: every task sleeps `sleep` ms (a real timer); ceiling = ideal / actual. */
  async sleep(out) {
    const ideal = Math.ceil(n / spec.concurrency) * spec.sleep;
    const t0 = performance.now();
    check(await drive(sleeper(spec.sleep), n), n);
    out.ms = performance.now() - t0;
    out.ideal = ideal;
    out.ceiling = ideal / out.ms;
  },

  /** W5: start times against the ideal token bucket: `burst` at t0, then one every 1000/perSecond ms. */
  async rate(out) {
    const { perSecond, burst } = spec.rateLimit;
    const starts = [];
    const record = async (x) => {
      starts.push(performance.now());
      return x;
    };
    const t0 = performance.now();
    check(await drive(record, n), n);
    const interval = 1000 / perSecond;
    starts.sort((a, b) => a - b);
    let deviation = 0;
    for (let i = 0; i < starts.length; i++) {
      const ideal = i < burst ? 0 : (i - burst + 1) * interval;
      deviation = Math.max(deviation, Math.abs(starts[i] - t0 - ideal));
    }
    // Most starts inside any sliding one-second window (a fixed window lets two windows' worth by).
    let windowMax = 0;
    for (let i = 0, j = 0; i < starts.length; i++) {
      while (starts[i] - starts[j] >= 1000) j += 1;
      windowMax = Math.max(windowMax, i - j + 1);
    }
    const last = starts[starts.length - 1] - t0;
    out.ms = last;
    out.rate = ((n - burst) * 1000) / last;
    out.deviation = deviation;
    out.windowMax = windowMax;
  },

  /**
   * W7: no-op tasks with seeded priorities, all submitted at once; wall time per task, and the
   * order in which the bodies started. Without `levels` every task goes through plain `schedule`
   * (no priority in use) and the order owed is submission order.
   */
  async priority(out) {
    const levels = spec.levels ?? 0;
    const priorities = levels > 0 ? seededPriorities(n, levels) : new Array(n).fill(0);
    const starts = [];
    const record = async (i) => {
      starts.push(i);
    };
    const t0 = process.hrtime.bigint();
    const items = Array.from({ length: n }, (_, i) => i);
    const results = await Promise.all(
      levels > 0
        ? items.map((i) => adapter.prioritized(record, i, priorities[i]))
        : items.map((i) => adapter.schedule(record, i)),
    );
    out.ms = Number(process.hrtime.bigint() - t0) / 1e6;
    out.nsPerTask = (out.ms * 1e6) / n;
    check(results.length, n);
    check(starts.length, n);
    out.orderViolations = orderViolations(starts, priorities, spec.concurrency);
  },

  /**
   * W8: head-of-line blocking. The hot key's tasks are submitted first, then the cold keys' in
   * rounds (one task of each cold key, `perCold` times: submitted key by key instead, a global
   * limit around per-key ones would also block on each cold key's own tasks); every task sleeps
   * `sleep` ms. Measures when the last cold task and the last task of all settled, and the most
   * tasks seen running at once (in all, and of one key) so the runner can tell a fast row from one
   * that broke its limits.
   */
  async keys(out) {
    const { hot, coldKeys, perCold } = spec.keys;
    const keys = Array.from({ length: hot }, () => 'hot');
    for (let j = 0; j < perCold; j++) for (let k = 0; k < coldKeys; k++) keys.push(`cold-${k}`);
    const running = new Map();
    let active = 0;
    out.peak = 0;
    out.keyPeak = 0;
    const body = (i) => {
      const key = keys[i];
      const mine = (running.get(key) ?? 0) + 1;
      running.set(key, mine);
      out.keyPeak = Math.max(out.keyPeak, mine);
      out.peak = Math.max(out.peak, ++active);
      return new Promise((resolve) =>
        setTimeout(() => {
          running.set(key, running.get(key) - 1);
          active -= 1;
          resolve(i);
        }, spec.sleep),
      );
    };
    let cold = 0;
    const t0 = performance.now();
    await Promise.all(
      keys.map((key, i) =>
        adapter.keyed(body, i, key).then(() => {
          if (key !== 'hot') cold = performance.now() - t0;
        }),
      ),
    );
    out.ms = performance.now() - t0;
    out.coldMs = cold;
  },

  /**
   * W9a: `n` distinct keys, one quick task each, all submitted at once, must leave no key state:
   * the heap after a full collection against the heap before them (after a warm-up of 1 000 keys,
   * so that compiled code and lazily made tables count in both). A key's bucket is dropped only
   * once it is full again: the run waits `burst / perSecond` seconds on a real timer first.
   */
  async keyMemory(out) {
    const { perSecond, burst = perSecond } = spec.perKey.rateLimit;
    const refill = (1000 * burst) / perSecond + 50;
    /** Runs one task on each of `count` new keys; returns the heap while they were all live. */
    const pass = async (prefix, count) => {
      const tasks = [];
      for (let i = 0; i < count; i++) tasks.push(adapter.keyed(identity, i, `${prefix}-${i}`));
      const live = heapAfterGc();
      check((await Promise.all(tasks)).length, count);
      await pause(refill);
      return live;
    };
    await pass('warm', Math.max(1000, n / 10));
    const start = heapAfterGc();
    const t0 = performance.now();
    out.liveMB = (await pass('key', n)) / 2 ** 20;
    out.ms = performance.now() - t0;
    const end = heapAfterGc();
    out.startMB = start / 2 ** 20;
    out.endMB = end / 2 ** 20;
    out.heapRatio = end / start;
    out.bytesLeftPerKey = (end - start) / n;
  },

  /**
   * W9b: the heap each queued task costs. The first task holds the only slot (concurrency 1) on a
   * promise released only after the measure, so all `n` others wait; with `levels` they carry
   * seeded priorities, without they go through plain `schedule`.
   */
  async queueMemory(out) {
    const levels = spec.levels ?? 0;
    const priorities = levels > 0 ? seededPriorities(n, levels) : undefined;
    const submit = (i) =>
      priorities === undefined
        ? adapter.schedule(identity, i)
        : adapter.prioritized(identity, i, priorities[i]);
    // Warm-up: the same path once on a few tasks, so compiled code and first-use tables count in
    // the heap before as well as after.
    check((await Promise.all(Array.from({ length: 1000 }, (_, i) => submit(i)))).length, 1000);
    let started;
    let release;
    const holding = new Promise((resolve) => (started = resolve));
    const blocker = adapter.schedule(() => {
      started();
      return new Promise((resolve) => (release = resolve));
    }, -1);
    // Its body may start a microtask later (Dovetail never runs it inside `schedule`).
    await holding;
    // The array that holds the tasks is made before the first measure: only the tasks count.
    const tasks = Array.from({ length: n }, () => undefined);
    const before = heapAfterGc();
    const t0 = performance.now();
    for (let i = 0; i < n; i++) tasks[i] = submit(i);
    out.scheduleMs = performance.now() - t0;
    const after = heapAfterGc();
    out.bytesPerTask = (after - before) / n;
    release();
    await blocker;
    check((await Promise.all(tasks)).length, n);
    out.ms = performance.now() - t0;
  },
};

const out = {};
try {
  const create = await adapterFor(spec.lib, spec.baseline);
  adapter = create({
    concurrency: spec.concurrency ?? Infinity,
    rateLimit: spec.rateLimit,
    full: spec.full === true,
    resilient: spec.resilient === true,
    openCircuit: spec.openCircuit === true,
    scopedListeners: spec.scopedListeners ?? 0,
    levels: spec.levels ?? 0,
    perKey: spec.perKey,
    nesting: spec.nesting,
  });
  const workload = workloads[spec.workload];
  if (workload === undefined) throw new Error(`unknown workload ${spec.workload}`);
  await workload(out);
  await adapter.close?.();
} catch (error) {
  process.stderr.write(
    `${error?.stack ?? error}\nerror: ${error?.name ?? 'Error'}: ${error?.message ?? error}\n`,
  );
  process.exit(1);
}
// Peak RSS of this process (the child), in MB: resourceUsage().maxRSS is in kilobytes.
out.rssMB = process.resourceUsage().maxRSS / 1024;
process.stdout.write(`${JSON.stringify(out)}\n`);
