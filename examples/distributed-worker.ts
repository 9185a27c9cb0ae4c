// One worker of examples/distributed.ts: runs its share of the tasks under the limits it shares,
// through Redis, with the other workers. Prints one JSON line with what it saw.
import { Redis } from 'ioredis';
import { Dovetail, Event } from 'dovetailjs';
import { redisBackend } from 'dovetailjs/redis';

const url = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
const key = process.env['DOVETAIL_KEY'] ?? 'example';
const tasks = Number(process.env['TASKS'] ?? '150');

const redis = new Redis(url);
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
