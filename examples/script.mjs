// An ESM command-line script: top-level `await`, `await using`, a bounded-concurrency map over a
// list with a progress bar, a summary at the end. Fake pages are "checked", at most three at a
// time (12 pages, or the number given); one fails once with a 503 and is retried, two are missing
// (404, not retried).
//
// Run it:
//   Node 24 and later:  node examples/script.mjs [pages]
//   Node 20 and 22:     npx tsx examples/script.mts [pages]
// On a terminal it draws a progress bar (cli-progress; try 300 pages); when stdout is not a
// terminal (CI, a pipe, a file) it prints a plain line at each quarter instead.
// Node 20 and 22 cannot parse `await using` in plain JavaScript (it arrived in Node 24), and tsx
// leaves .mjs files alone, so script.mts is this same script with types: tsx lowers `await using`
// there, as TypeScript does when you compile it. Keep the two files in step.
import cliProgress from 'cli-progress';
import { Dovetail, Event } from 'dovetailjs';

const count = Number(process.argv[2] ?? 12);
if (!Number.isInteger(count) || count < 1) {
  console.error(`usage: script [pages], pages an integer >= 1, received ${process.argv[2]}`);
  process.exit(2);
}
const pages = Array.from({ length: count }, (_, i) => `/docs/page-${i + 1}`);
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

/**
 * Shows how far the map is: a bar redrawn in place on a terminal, a plain line at each quarter
 * elsewhere (a log keeps every line). `log` prints a line without breaking the bar.
 */
function progressDisplay(total) {
  if (process.stdout.isTTY) {
    const bars = new cliProgress.MultiBar(
      { format: 'checking [{bar}] {percentage}% | {value}/{total} pages | {failed} failed' },
      cliProgress.Presets.shades_classic,
    );
    const bar = bars.create(total, 0, { failed: 0 });
    return {
      onProgress: ({ done, failed }) => bar.update(done + failed, { failed }),
      log: (line) => bars.log(`${line}\n`),
      stop: () => {
        bars.update(); // draws what log() holds and the last value
        bars.stop();
      },
    };
  }
  let shown = 0;
  return {
    onProgress: ({ done, failed }) => {
      const settled = done + failed;
      const quarter = Math.floor((settled * 4) / total);
      if (quarter <= shown) return;
      shown = quarter;
      const percent = Math.round((settled / total) * 100);
      console.log(`progress: ${settled}/${total} pages (${percent}%), ${failed} failed`);
    },
    log: (line) => console.log(line),
    stop: () => {},
  };
}

// Shut down (waiting for running tasks) when the script leaves this scope, even on a throw.
await using dvt = new Dovetail({ concurrency: 3, retries: 1, retryBackoff: 50, timeout: 2_000 });
const display = progressDisplay(pages.length);

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
// A map item's payloads carry `index`, its position in `pages`.
dvt.events.on(Event.RETRY, (p) =>
  display.log(`retrying item ${p.index} after: ${p.error.message}`),
);

// With returnErrors each slot holds the page's line or what was thrown. The bar stops before
// anything else is printed, even if the map threw.
const results = await retrying
  .map((path) => check(path, dvt.task.current().signal), pages, {
    returnErrors: true,
    onProgress: display.onProgress,
  })
  .finally(display.stop);

// Only the failures, one line each: a long run's successes would bury them.
for (const result of results) if (result instanceof Error) console.log(`FAILED ${result.message}`);
const failed = results.filter((result) => result instanceof Error).length;
const stats = dvt.events.stats();
console.log(
  `summary: ${results.length} checked, ${results.length - failed} ok, ${failed} failed, ` +
    `${stats.retries} retried, peak ${peak} running (limit ${dvt.concurrency})`,
);
