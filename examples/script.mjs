// An ESM command-line script: top-level `await`, `await using`, a bounded-concurrency map over a
// list, a summary at the end. Twelve fake pages are "checked", at most three at a time; one fails
// once with a 503 and is retried, two are missing (404, not retried).
//
// Run it:
//   Node 24 and later:  node examples/script.mjs
//   Node 20 and 22:     npx tsx examples/script.mts
// Node 20 and 22 cannot parse `await using` in plain JavaScript (it arrived in Node 24), and tsx
// leaves .mjs files alone, so script.mts is this same script with types: tsx lowers `await using`
// there, as TypeScript does when you compile it. Keep the two files in step.
import { Dovetail, Event } from 'dovetailjs';

const pages = Array.from({ length: 12 }, (_, i) => `/docs/page-${i + 1}`);
const missing = new Set(['/docs/page-5', '/docs/page-9']);
/** A failed response: only server errors (5xx) are worth a retry. */
class HttpError extends Error {
  constructor(message, status) {
    super(message);
    this.status = status;
  }
}
const flaky = new Set(['/docs/page-3']);

/** A fake HTTP HEAD request: a little latency, a 404 now and then, one transient failure. */
async function check(path, signal) {
  await new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, 20 + (path.length % 5) * 10);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
  if (flaky.delete(path)) throw new HttpError(`${path}: 503 Service Unavailable`, 503);
  if (missing.has(path)) throw new HttpError(`${path}: 404 Not Found`, 404);
  return `${path}: 200 OK`;
}

// Shut down (waiting for running tasks) when the script leaves this scope, even on a throw.
await using dvt = new Dovetail({ concurrency: 3, retries: 1, retryBackoff: 50, timeout: 2_000 });

let running = 0;
let peak = 0;
dvt.events.on(Event.STARTED, () => {
  running += 1;
  peak = Math.max(peak, running);
});
for (const event of [Event.DONE, Event.ERROR, Event.RETRY])
  dvt.events.on(event, () => (running -= 1));
const retrying = dvt.task.with({
  shouldRetry: (error) => !(error instanceof HttpError && error.status < 500),
});
dvt.events.on(Event.RETRY, (p) => console.log(`retrying after: ${p.error.message}`));

const results = await retrying.map((path) => check(path, dvt.task.current().signal), pages, {
  returnErrors: true,
});

for (const result of results)
  console.log(result instanceof Error ? `FAILED ${result.message}` : result);
const failed = results.filter((result) => result instanceof Error).length;
const stats = dvt.events.stats();
console.log(
  `summary: ${results.length} checked, ${results.length - failed} ok, ${failed} failed, ` +
    `${stats.retries} retried, peak ${peak} running (limit ${dvt.concurrency})`,
);
