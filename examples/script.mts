// examples/script.mjs with types, so that Node 20 and 22 can run it: `npx tsx examples/script.mts`.
// tsx lowers `await using`, which plain JavaScript gets only from Node 24 on. The code below is
// script.mjs's with type annotations added; keep the two files in step.
import cliProgress from 'cli-progress';
import { Dovetail, Event, type MapProgress } from 'dovetailjs';

const count = Number(process.argv[2] ?? 12);
if (!Number.isInteger(count) || count < 1) {
  console.error(`usage: script [pages], pages an integer >= 1, received ${process.argv[2]}`);
  process.exit(2);
}
const pages = Array.from({ length: count }, (_, i) => `/docs/page-${i + 1}`);
const missing = new Set(['/docs/page-5', '/docs/page-9']);
/** A failed response: only server errors (5xx) are worth a retry. */
class HttpError extends Error {
  readonly status: number;
  constructor(message: string, status: number) {
    super(message);
    this.status = status;
  }
}
const flaky = new Set(['/docs/page-3']);

/** A fake HTTP HEAD request: a little latency, a 404 now and then, one transient failure. */
async function check(path: string, signal: AbortSignal): Promise<string> {
  await new Promise<void>((resolve, reject) => {
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

/** What the script shows progress with. */
interface ProgressDisplay {
  onProgress: (progress: MapProgress) => void;
  log: (line: string) => void;
  stop: () => void;
}

/**
 * Shows how far the map is: a bar redrawn in place on a terminal, a plain line at each quarter
 * elsewhere (a log keeps every line). `log` prints a line without breaking the bar.
 */
function progressDisplay(total: number): ProgressDisplay {
  if (process.stdout.isTTY) {
    const bars = new cliProgress.MultiBar(
      { format: 'checking [{bar}] {percentage}% | {value}/{total} pages | {failed} failed' },
      cliProgress.Presets.shades_classic,
    );
    const bar = bars.create(total, 0, { failed: 0 });
    return {
      onProgress: ({ done, failed }) => bar.update(done + failed, { failed }),
      log: (line: string) => bars.log(`${line}\n`),
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
    log: (line: string) => console.log(line),
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
  display.log(`retrying item ${p.index} after: ${(p.error as Error).message}`),
);

// With returnErrors each slot holds the page's line or what was thrown. The bar stops before
// anything else is printed, even if the map threw.
const results = await retrying
  .map((path: string) => check(path, dvt.task.current()!.signal), pages, {
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
