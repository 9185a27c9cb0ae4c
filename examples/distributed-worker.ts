// One worker of examples/distributed.ts: runs its share of the tasks under the limits it shares,
// through Redis, with the other workers. Prints one JSON line with what it saw.
import { Redis } from 'ioredis';
import { Dovetail, Event, InstanceEvent, retryAfter } from 'dovetailjs';
import { redisBackend } from 'dovetailjs/redis';

const url = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const key = process.env['DOVETAIL_KEY'] ?? 'example';
const tasks = Number(process.env['TASKS'] ?? '150');
const upstream = process.env['UPSTREAM'];

const redis = new Redis(url);
if (upstream !== undefined) await callUpstream(upstream);
const dvt = new Dovetail({
  concurrency: 10,
  rateLimit: { perSecond: 200, burst: 10 },
  backend: redisBackend(redis, { key }),
});

// The combined running count lives in Redis too, so the peak is the peak of all workers together.
const running = `${key}:running`;
let peak = 0;
let waited = 0;
dvt.events.on(Event.RATE_LIMITED, (p) => {
  waited += p.waited;
});
const starts: number[] = [];
// CLOCK_MONOTONIC: the same clock in every process on this machine.
const now = (): number => Number(process.hrtime.bigint()) / 1e6;

await dvt.task.map(
  async () => {
    starts.push(now());
    peak = Math.max(peak, await redis.incr(running));
    await new Promise((resolve) => setTimeout(resolve, 10 + Math.random() * 10));
    await redis.decr(running);
  },
  Array.from({ length: tasks }, (_, i) => i),
);
await dvt.shutdown();
await redis.quit();
process.stdout.write(
  `${JSON.stringify({ pid: process.pid, starts, peak, waited, stats: dvt.events.stats() })}\n`,
);

/**
 * The second part: call an upstream that answers one 429. The worker that gets it pauses the
 * shared instance for the Retry-After, and every worker holds its requests until then.
 */
async function callUpstream(base: string): Promise<never> {
  class HttpError extends Error {
    readonly response: Response;
    constructor(response: Response) {
      super(`${response.status} ${response.statusText}`);
      this.response = response;
    }
  }
  const dvt = new Dovetail({
    concurrency: 4,
    retries: 3,
    // A 429 says when to come back: hold every process until then, and sleep as long.
    retryDelay: (error) => {
      if (!(error instanceof HttpError) || error.response.status !== 429) return undefined;
      const wait = retryAfter(error.response);
      if (wait !== undefined && wait > 0) dvt.pause(wait);
      return wait;
    },
    backend: redisBackend(redis, { key: `${key}:upstream` }),
  });
  const paused: number[] = [];
  dvt.events.on(InstanceEvent.PAUSED, (p) => void paused.push(p.until ?? Infinity));
  // Ready when the others are: the orchestrator says go on stdin.
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  let got429 = 0;
  await dvt.task.map(
    async (i: number) => {
      const response = await fetch(`${base}/item/${i}`, {
        headers: { 'x-worker': `${process.pid}` },
      });
      await response.arrayBuffer();
      if (response.status === 429) got429 += 1;
      if (!response.ok) throw new HttpError(response);
    },
    Array.from({ length: tasks }, (_, i) => i),
  );
  await dvt.shutdown();
  await redis.quit();
  process.stdout.write(`${JSON.stringify({ pid: process.pid, got429, paused })}\n`);
  process.exit(0);
}
