// A discrete-event model of the benchmark's upstream (capacity workers, a FIFO queue, 503s beyond
// queueLimit) driven by a closed-loop client that keeps `limit` attempts in flight, for the unit
// tests of the adaptive limit: the same series on every run, minutes of traffic in milliseconds.
import { mulberry32 } from '../../bench/upstream.mjs';
import { AdaptiveLimit, type AdaptiveTuning } from '../../src/latency/adaptive-limit.js';

export interface ModelPhase {
  /** Until this time (ms) the phase holds. */
  until: number;
  capacity: number;
  /** Service time of one request (ms), or a function of a draw in [0, 1). */
  service: number | ((draw: number) => number);
  /** Most requests the client has to send at once (default: as many as the limit allows). */
  demand?: number;
}

export interface ModelOptions {
  phases: ModelPhase[];
  min?: number;
  max?: number;
  initial?: number;
  queueLimit?: number;
  /** Latency the client adds to every request (ms), a function of a draw in [0, 1). */
  overhead?: (draw: number) => number;
  /** The first `count` requests take `extra` ms more on the client (opening connections). */
  coldStart?: { count: number; extra: number };
  /** Attempts slower than this fail as overloads (a timeout), ms. */
  timeout?: number;
  tuning?: AdaptiveTuning;
  seed?: number;
}

export interface ModelResult {
  /** [time, limit] at each change, starting with the initial limit at 0. */
  limits: [number, number][];
  /** Per phase: successes, 503s, timeouts, median latency of successes. */
  phases: { served: number; rejected: number; timeouts: number; p50: number }[];
  /** The limit at `at` (ms). */
  limitAt(at: number): number;
  /** The mean limit over [from, to), weighted by time. */
  meanLimit(from: number, to: number): number;
}

export function runModel(options: ModelOptions): ModelResult {
  const { phases, queueLimit = 64, timeout = Infinity } = options;
  const random = mulberry32(options.seed ?? 1);
  const overhead = options.overhead ?? (() => 0);
  const cold = options.coldStart ?? { count: 0, extra: 0 };
  let sent = 0;
  const adaptive = new AdaptiveLimit(
    { min: options.min ?? 1, max: options.max ?? 1000, initial: options.initial ?? 20 },
    options.tuning,
  );
  const end = phases[phases.length - 1]!.until;
  const phaseAt = (t: number) => phases.findIndex((p) => t < p.until);
  // Events: a worker finishing (ends one request, starts the next waiting one).
  type Request = { sent: number; extra: number; rejected?: boolean };
  const queue: Request[] = [];
  const finishing: { at: number; request: Request }[] = [];
  let busy = 0;
  let inFlight = 0;
  let now = 0;
  const limits: [number, number][] = [[0, adaptive.limit]];
  const stats = phases.map(() => ({
    served: 0,
    rejected: 0,
    timeouts: 0,
    latencies: [] as number[],
  }));

  const serve = (request: Request) => {
    const phase = phases[phaseAt(now)]!;
    const service = typeof phase.service === 'number' ? phase.service : phase.service(random());
    busy += 1;
    finishing.push({ at: now + service, request });
  };
  const record = (latency: number, overload: boolean) => {
    const changed = adaptive.record({ latency, overload, inFlight, at: now });
    inFlight -= 1;
    if (changed !== undefined) limits.push([now, changed]);
  };
  const send = () => {
    for (;;) {
      const phase = phases[phaseAt(now)]!;
      if (inFlight >= Math.min(adaptive.limit, phase.demand ?? Infinity)) return;
      inFlight += 1;
      sent += 1;
      const request = {
        sent: now,
        extra: overhead(random()) + (sent <= cold.count ? cold.extra : 0),
      };
      const capacity = phase.capacity;
      if (busy < capacity) serve(request);
      else if (queue.length < queueLimit) queue.push(request);
      // A 503 comes back a millisecond later (at once, the client would spin in one instant).
      else finishing.push({ at: now + 1, request: { ...request, rejected: true } });
    }
  };
  send();
  while (now < end) {
    // The next finishing worker; none: the client waits for nothing (demand 0), time jumps.
    let next = -1;
    for (let i = 0; i < finishing.length; i += 1)
      if (next < 0 || finishing[i]!.at < finishing[next]!.at) next = i;
    if (next < 0) {
      now = phases[phaseAt(now)]!.until;
      if (now < end) send();
      continue;
    }
    const done = finishing.splice(next, 1)[0]!;
    now = done.at;
    if (now >= end) break;
    if (done.request.rejected === true) {
      stats[phaseAt(now)]!.rejected += 1;
      record(1, true);
      send();
      continue;
    }
    busy -= 1;
    const phase = phases[phaseAt(now)]!;
    while (busy < phase.capacity && queue.length > 0) serve(queue.shift()!);
    const latency = now - done.request.sent + done.request.extra;
    const s = stats[phaseAt(now)]!;
    if (latency > timeout) {
      s.timeouts += 1;
      record(latency, true);
    } else {
      s.served += 1;
      s.latencies.push(latency);
      record(latency, false);
    }
    send();
  }

  const limitAt = (at: number) => {
    let limit = limits[0]![1];
    for (const [t, l] of limits) if (t <= at) limit = l;
    return limit;
  };
  return {
    limits,
    phases: stats.map((s) => {
      const sorted = [...s.latencies].sort((a, b) => a - b);
      return {
        served: s.served,
        rejected: s.rejected,
        timeouts: s.timeouts,
        p50: sorted[sorted.length >> 1] ?? NaN,
      };
    }),
    limitAt,
    meanLimit(from, to) {
      let sum = 0;
      for (let t = from; t < to; t += 10) sum += limitAt(t);
      return sum / Math.ceil((to - from) / 10);
    },
  };
}
