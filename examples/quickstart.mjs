// The demo: a small tour of Dovetail against the built package (npm run demo).
// Ten fake upstream calls, at most three at once, a flaky one retried, a slow one timed out.
import { Dovetail, Event, TimeoutError } from 'dovetailjs';

const sleep = (ms, signal) =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });

// Node 20 has no `await using` syntax (TypeScript compiles it down; Node 24 runs it as is), so
// this plain .mjs file shuts down by hand at the end.
const dvt = new Dovetail({ concurrency: 3, retries: 2, retryBackoff: 20, timeout: 300 });

let running = 0;
let peak = 0;
dvt.events.on(Event.STARTED, () => {
  running += 1;
  peak = Math.max(peak, running);
});
for (const event of [Event.DONE, Event.ERROR, Event.RETRY])
  dvt.events.on(event, () => (running -= 1));
// A map item's payloads carry `index`, its position in the input (the results' index below).
dvt.events.on(Event.RETRY, (p) =>
  console.log(
    `  retry: item ${p.index} attempt ${p.attempt} failed (${p.error}), next in ${p.sleep} ms`,
  ),
);

const failedOnce = new Set();
async function fetchItem(id) {
  const { signal } = dvt.task.current();
  if (id === 4 && !failedOnce.has(id)) {
    failedOnce.add(id);
    throw new Error('upstream 503');
  }
  await sleep(id === 7 ? 1000 : 30 + id * 5, signal);
  return `item-${id}`;
}

console.log('Dovetail demo: 10 items, concurrency 3, retries 2, timeout 300 ms');
const results = await dvt.task.map(fetchItem, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], {
  returnErrors: true,
});
results.forEach((result, index) => {
  const shown =
    result instanceof TimeoutError ? `TimeoutError after ${result.timeout} ms` : String(result);
  console.log(`  ${index}: ${shown}`);
});
console.log(`peak running: ${peak} (limit 3)`);
console.log('stats:', JSON.stringify(dvt.events.stats()));
await dvt.shutdown();
