// Adaptive concurrency against an upstream whose capacity changes: `concurrency: 'adaptive'`
// finds how many requests the upstream serves at once without queueing them, and follows it when
// the upstream grows and shrinks, with no number to tune.
//
//   npx tsx examples/adaptive.ts
//
// The upstream is bench/upstream.mjs in a child process: `capacity` workers of 50 ms each, a
// queue of 64 behind them, 503 beyond. Its capacity is 4 for 2.5 s, then 16, then 2.
// The client keeps far more requests submitted than any capacity; the adaptive limit decides how
// many are in flight. Per phase it prints the limit (the median over the second half of the
// phase, once it has settled), the throughput and the median latency the client saw.
import { Dovetail, InstanceEvent } from 'dovetailjs';
import { startUpstream } from '../bench/upstream.mjs';

const PHASES = [4, 16, 2];
const PHASE_MS = 2_500;

const upstream = await startUpstream({ capacity: PHASES[0] ?? 4, service: 50, queueLimit: 64 });
const dvt = new Dovetail({
  concurrency: 'adaptive',
  adaptive: { min: 1, initial: 4, max: 100 },
  timeout: 2_000,
});
let changes = 0;
dvt.events.on(InstanceEvent.LIMIT_CHANGED, () => void (changes += 1));

/** Each finished request: when, how long it took, whether it was served. */
const finished: { at: number; ms: number; ok: boolean }[] = [];
/** The limit, sampled every 50 ms. */
const limits: { at: number; limit: number }[] = [];
const began = performance.now();
const sampler = setInterval(
  () => limits.push({ at: performance.now(), limit: dvt.concurrency }),
  50,
);

async function call(): Promise<void> {
  const start = performance.now();
  const response = await fetch(upstream.url, { signal: dvt.task.current()?.signal ?? null });
  await response.arrayBuffer();
  finished.push({ at: performance.now(), ms: performance.now() - start, ok: response.ok });
}

/** Requests for as long as the phases last. */
function* load(): Generator<number> {
  for (let n = 0; performance.now() - began < PHASES.length * PHASE_MS; n++) yield n;
}

// Change the upstream's capacity at each phase's start.
const switches = PHASES.slice(1).map((capacity, i) =>
  setTimeout(() => void upstream.configure({ capacity }), (i + 1) * PHASE_MS),
);
for await (const _ of dvt.task.mapIterable(call, load(), { concurrency: 100 }));
clearInterval(sampler);
for (const timer of switches) clearTimeout(timer);

const median = (values: number[]) =>
  [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
for (const [i, capacity] of PHASES.entries()) {
  const from = began + i * PHASE_MS;
  const settled = from + PHASE_MS / 2;
  const to = from + PHASE_MS;
  const limit = median(limits.filter((s) => s.at >= settled && s.at < to).map((s) => s.limit));
  const part = finished.filter((f) => f.at >= settled && f.at < to);
  const served = part.filter((f) => f.ok);
  const perSecond = Math.round(served.length / ((to - settled) / 1000));
  console.log(
    `capacity ${capacity}: limit ${limit}, ${perSecond} served/s (at most ${capacity * 20}), ` +
      `median latency ${Math.round(median(served.map((f) => f.ms)))} ms (service 50 ms), ` +
      `${part.length - served.length} refused`,
  );
}
const stats = await upstream.stats();
console.log(
  `upstream: ${stats.served} served, ${stats.rejected} refused (503), at most ${stats.maxQueued} queued; ` +
    `${changes} limit changes in ${((performance.now() - began) / 1000).toFixed(1)} s`,
);
await dvt.shutdown();
await upstream.stop();
