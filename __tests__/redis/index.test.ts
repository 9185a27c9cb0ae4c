// dovetailjs/redis in one process: options, sharing between instances, and Redis going away.
import { describe, expect, it } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import {
  BackendError,
  BackendEvent,
  CancelledError,
  Event,
  type BackendErrorPayload,
} from '../../src/index.js';
import { redisBackend, RedisBackend, REDIS_DEFAULTS } from '../../src/redis/index.js';
import { defer } from '../helpers/defer.js';
import { create } from '../helpers/instances.js';
import { describeRedis, useRedisServer } from '../helpers/redis-server.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describe('the core without Redis', () => {
  it('imports no Redis code: only src/redis/ names redis-semaphore or ioredis', () => {
    const root = fileURLToPath(new URL('../../src/', import.meta.url));
    const offenders = readdirSync(root, { recursive: true, encoding: 'utf8' })
      .filter((file) => file.endsWith('.ts') && !file.startsWith('redis'))
      .filter((file) =>
        /from '(ioredis|redis-semaphore)'|from '\.{1,2}\/(\.\.\/)*redis\//.test(
          readFileSync(join(root, file), 'utf8'),
        ),
      );
    expect(offenders).toEqual([]);
  });
});

describe('redisBackend options', () => {
  // A client that is never connected: validation happens before any command.
  const client = new Redis({ lazyConnect: true });

  it('rejects a missing or empty key', () => {
    expect(() => redisBackend(client, {} as never)).toThrow(TypeError);
    expect(() => redisBackend(client, { key: '' })).toThrow(RangeError);
  });

  it('names the option and the value received', () => {
    expect(() => redisBackend(client, { key: 'k', leaseTime: 0 })).toThrow(
      '`leaseTime` must be a number > 0, received 0',
    );
    expect(() => redisBackend(client, { key: 'k', timeout: '5' as never })).toThrow(TypeError);
    expect(() => redisBackend(client, { key: 'k', onBackendError: 'retry' as never })).toThrow(
      "`onBackendError` must be 'fail' or 'local', received \"retry\" (string)",
    );
    expect(() => redisBackend(client, { key: 'k', leaseTime: 100, refreshInterval: 100 })).toThrow(
      RangeError,
    );
  });

  it('rejects something that is not a Redis client', () => {
    expect(() => redisBackend({} as never, { key: 'k' })).toThrow(
      '`client.evalsha` must be a function',
    );
  });

  it('has frozen defaults', () => {
    expect(REDIS_DEFAULTS).toEqual({
      prefix: 'dovetail:',
      leaseTime: 10_000,
      pollInterval: 5_000,
      timeout: 5_000,
      onBackendError: 'fail',
      retryAfter: 1_000,
      syncInterval: 5_000,
    });
    expect(Object.isFrozen(REDIS_DEFAULTS)).toBe(true);
    expect(redisBackend(client, { key: 'k' })).toBeInstanceOf(RedisBackend);
  });
});

describeRedis('dovetailjs/redis on a real redis-server', () => {
  const suite = useRedisServer('test');
  const { connect, nextKey } = suite;

  it('shares one concurrency limit between two instances', async () => {
    const key = nextKey();
    const a = create({ concurrency: 2, backend: redisBackend(connect(), { key }) });
    const b = create({ concurrency: 2, backend: redisBackend(connect(), { key }) });
    let running = 0;
    let peak = 0;
    const work = async (): Promise<void> => {
      running += 1;
      peak = Math.max(peak, running);
      await sleep(5);
      running -= 1;
    };
    await Promise.all([
      a.task.map(
        work,
        Array.from({ length: 10 }, (_, i) => i),
      ),
      b.task.map(
        work,
        Array.from({ length: 10 }, (_, i) => i),
      ),
    ]);
    expect(peak).toBe(2);
    expect(a.events.stats()).toMatchObject({ queued: 10, done: 10 });
  });

  it('reports the wait as rate_limited and counts throttled', async () => {
    const backend = redisBackend(connect(), { key: nextKey() });
    const dvt = create({ rateLimit: { perSecond: 50, burst: 2 }, backend });
    const waited: number[] = [];
    dvt.events.on(Event.RATE_LIMITED, (p) => void waited.push(p.waited));
    await Promise.all([1, 2, 3, 4].map(() => dvt.task.schedule(() => 1)));
    expect(dvt.events.stats().throttled).toBe(2);
    expect(waited).toHaveLength(2);
    // 20 ms per token after the burst of 2: about 20 and 40 ms.
    expect(Math.min(...waited)).toBeGreaterThanOrEqual(10);
    expect(Math.max(...waited)).toBeGreaterThanOrEqual(30);
  });

  it('gives a token back when a task waiting for it is cancelled', async () => {
    const client = connect();
    const key = nextKey();
    const dvt = create({
      rateLimit: { perSecond: 1, burst: 1 },
      backend: redisBackend(client, { key }),
    });
    await dvt.task.schedule(() => 1);
    const before = Number(await client.get(`dovetail:${key}:bucket`));
    const waiting = dvt.task.schedule(() => 2);
    await sleep(50);
    expect(waiting.cancel()).toBe(true);
    await expect(waiting).rejects.toBeInstanceOf(CancelledError);
    await sleep(50);
    // The reservation (one interval, 1 s in µs) was taken back.
    expect(Number(await client.get(`dovetail:${key}:bucket`))).toBeCloseTo(before, -3);
  });

  it('fails tasks with BackendError naming the key when Redis is down (default policy)', async () => {
    const key = nextKey();
    const dvt = create({
      concurrency: 2,
      rateLimit: { perSecond: 100 },
      backend: redisBackend(connect(), { key, timeout: 300 }),
    });
    const reports: BackendErrorPayload[] = [];
    dvt.events.on(BackendEvent.BACKEND_ERROR, (p) => void reports.push(p));
    expect(await dvt.task.schedule(() => 'up')).toBe('up');
    await suite.server.pause();
    const started = performance.now();
    const outcomes = await Promise.allSettled(
      [1, 2, 3].map(() => dvt.task.schedule(() => 'never')),
    );
    expect(performance.now() - started).toBeLessThan(3_000);
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      const error = (outcome as PromiseRejectedResult).reason as BackendError;
      expect(error).toBeInstanceOf(BackendError);
      expect(error.key).toBe(key);
      expect(error.message).toContain(key);
      expect(error.cause).toBeDefined();
    }
    expect(reports[0]).toMatchObject({ event: 'backend_error', key, fallback: 'fail' });
    const stats = dvt.events.stats();
    expect(stats.queued).toBe(stats.done + stats.error + stats.cancelled);
  }, 15_000);

  it('survives Redis stopped and restarted mid-run: nothing hangs, failures are BackendErrors', async () => {
    const key = nextKey();
    const dvt = create({
      concurrency: 3,
      rateLimit: { perSecond: 100, burst: 5 },
      backend: redisBackend(connect(), { key, timeout: 300, leaseTime: 1_000 }),
    });
    const tasks: Promise<unknown>[] = [];
    const run = async (ms: number): Promise<void> => {
      const end = performance.now() + ms;
      while (performance.now() < end) {
        const task = dvt.task.schedule(() => sleep(20));
        // Collected and awaited at the end: a failure before then is not an unhandled rejection.
        task.catch(() => undefined);
        tasks.push(task);
        await sleep(15);
      }
    };
    await run(500);
    await suite.server.pause();
    await run(800);
    await suite.server.resume();
    await sleep(300);
    const after = tasks.length;
    await run(500);
    // No task hangs: all settle within a bound.
    let guard: NodeJS.Timeout | undefined;
    const settled = await Promise.race([
      Promise.allSettled(tasks),
      new Promise<'hung'>((resolve) => (guard = setTimeout(() => resolve('hung'), 10_000))),
    ]);
    clearTimeout(guard);
    expect(settled).not.toBe('hung');
    const outcomes = settled as PromiseSettledResult<unknown>[];
    const rejected = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(rejected.length).toBeGreaterThan(0);
    for (const outcome of rejected) expect(outcome.reason).toBeInstanceOf(BackendError);
    // The shared limits resumed: what was started after the restart ran.
    expect(outcomes.slice(after).every((o) => o.status === 'fulfilled')).toBe(true);
    await dvt.onIdle();
    const stats = dvt.events.stats();
    expect(stats.queued).toBe(tasks.length);
    expect(stats.queued).toBe(stats.done + stats.error + stats.cancelled);
    expect(dvt.active + dvt.pending).toBe(0);
  }, 30_000);

  it("with onBackendError: 'local', runs under in-process limits while Redis is away, then shares again", async () => {
    const key = nextKey();
    const client = connect();
    const dvt = create({
      concurrency: 2,
      rateLimit: { perSecond: 200, burst: 5 },
      backend: redisBackend(client, {
        key,
        timeout: 300,
        leaseTime: 1_000,
        onBackendError: 'local',
        retryAfter: 200,
      }),
    });
    const reports: BackendErrorPayload[] = [];
    dvt.events.on(BackendEvent.BACKEND_ERROR, (p) => void reports.push(p));
    let running = 0;
    let peak = 0;
    const work = async (): Promise<void> => {
      running += 1;
      peak = Math.max(peak, running);
      await sleep(10);
      running -= 1;
    };
    await dvt.task.map(work, [1, 2, 3, 4]);
    // A client still making its first connection is not an outage.
    expect(reports).toEqual([]);
    await suite.server.pause();
    const results = await dvt.task.map(
      work,
      Array.from({ length: 12 }, (_, i) => i),
    );
    expect(results).toHaveLength(12);
    expect(peak).toBeLessThanOrEqual(2);
    expect(reports.length).toBeGreaterThan(0);
    expect(reports.every((p) => p.fallback === 'local' && p.key === key)).toBe(true);
    expect(reports[0]?.error).toBeInstanceOf(BackendError);
    await suite.server.resume();
    await sleep(500);
    // Shared again: a task now holds one of the two slots in Redis while it runs.
    const gate = defer();
    const holding = dvt.task.schedule(() => gate.promise);
    await sleep(100);
    expect(await client.llen(`dovetail:${key}:gate:slots`)).toBe(1);
    gate.resolve();
    await holding;
    const stats = dvt.events.stats();
    expect(stats.error).toBe(0);
    expect(stats.queued).toBe(stats.done + stats.error + stats.cancelled);
  }, 30_000);

  it('reports a task that outlives its lease, and never counts its slot twice', async () => {
    const key = nextKey();
    const client = connect();
    const dvt = create({ concurrency: 1, backend: redisBackend(client, { key, leaseTime: 300 }) });
    const reports: BackendErrorPayload[] = [];
    dvt.events.on(BackendEvent.BACKEND_ERROR, (p) => void reports.push(p));
    const gate = defer();
    const task = dvt.task.schedule(() => gate.promise);
    await sleep(100);
    // Redis loses the gate (as after a restart without persistence).
    const gateKeys = await client.keys(`dovetail:${key}:gate:*`);
    expect(gateKeys.length).toBeGreaterThan(0);
    await client.del(...gateKeys);
    await sleep(400);
    expect(reports.map((p) => p.operation)).toContain('lease');
    gate.resolve();
    await task;
    await sleep(50);
    // The slot made again when the gate was lost is not given back a second time.
    expect(await client.lrange(`dovetail:${key}:gate:slots`, 0, -1)).toEqual(['1']);
    expect(await dvt.task.schedule(() => 'next')).toBe('next');
  }, 15_000);
});
