// The shared bucket's batches against a real redis-server: several tokens in one call, a Redis
// that stops answering (CLIENT PAUSE) under both policies, and a waiter cancelled meanwhile.
import { expect, it } from '@jest/globals';
import { BackendError, CancelledError, type BackendProblem } from '../../src/index.js';
import { RedisTokenBucket } from '../../src/redis/bucket.js';
import { redisBackend, REDIS_DEFAULTS } from '../../src/redis/index.js';
import { Store } from '../../src/redis/store.js';
import { create } from '../helpers/instances.js';
import { describeRedis, useRedisServer } from '../helpers/redis-server.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

describeRedis('the shared bucket in batches', () => {
  const suite = useRedisServer('bucket');
  const { connect, nextKey } = suite;
  const settings = (key: string, onBackendError: 'fail' | 'local' = 'fail') => ({
    ...REDIS_DEFAULTS,
    key,
    leaseTime: 10_000,
    refreshInterval: 3_000,
    timeout: 200,
    onBackendError,
  });

  // How far ahead of Redis's clock the bucket's TAT is, in µs (<= 0: a full bucket).
  const reserved = async (key: string): Promise<number> => {
    const [seconds, micros] = await suite.admin.time();
    return (
      Number(await suite.admin.get(`dovetail:${key}:bucket`)) -
      (Number(seconds) * 1e6 + Number(micros))
    );
  };

  it('reserves several tokens as one, and the requests of one tick in one call', async () => {
    const bucket = new RedisTokenBucket(
      new Store(connect(), settings(nextKey())),
      20,
      5,
      undefined,
    );
    await suite.admin.config('RESETSTAT');
    // 3 + 2 tokens of the burst at once, then 2 more: 100 ms (two intervals of 50 ms).
    const [a, b] = await Promise.all([bucket.take(3), bucket.acquire(), bucket.take(1)]);
    expect([a, b]).toEqual([0, 0]);
    const waited = await bucket.take(2);
    expect(waited).toBeGreaterThanOrEqual(80);
    const stats = await suite.admin.info('commandstats');
    // Two calls: the three requests of the first tick together, then the last.
    expect(/cmdstat_incrbyfloat:calls=(\d+)/.exec(stats)?.[1]).toBe('2');
  });

  it("with 'local', serves the tokens here while Redis does not answer, and gives the late reservation back", async () => {
    const key = nextKey();
    const reports: BackendProblem[] = [];
    const hooks = { report: (p: BackendProblem) => void reports.push(p) };
    const bucket = new RedisTokenBucket(new Store(connect(), settings(key, 'local')), 10, 5, hooks);
    await bucket.acquire();
    await suite.admin.client('PAUSE', 500);
    // Past the 200 ms bounded wait: served by the local bucket instead.
    expect(await Promise.all([bucket.take(2), bucket.acquire()])).toEqual([0, 0]);
    expect(reports[0]?.error).toBeInstanceOf(BackendError);
    expect(reports[0]?.fallback).toBe('local');
    await sleep(600);
    // The reservation Redis made once it answered was given back: no token is reserved.
    expect(await reserved(key)).toBeLessThanOrEqual(0);
  });

  it("with 'fail', fails the waiting tasks with BackendError when Redis does not answer", async () => {
    const dvt = create({
      rateLimit: { perSecond: 10, burst: 5 },
      backend: redisBackend(connect(), { key: nextKey(), timeout: 200 }),
    });
    await dvt.task.schedule(() => 1);
    await suite.admin.client('PAUSE', 500);
    const outcomes = await Promise.allSettled([1, 2].map(() => dvt.task.schedule(() => 2)));
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(BackendError);
    }
    await sleep(400);
  });

  it('gives back the token of a task cancelled while its reservation was on its way', async () => {
    const key = nextKey();
    const dvt = create({
      rateLimit: { perSecond: 1, burst: 1 },
      backend: redisBackend(connect(), { key }),
    });
    await dvt.task.schedule(() => 1);
    // The TAT is a second ahead; the reservation made after the pause moves it one more.
    const before = Number(await suite.admin.get(`dovetail:${key}:bucket`));
    await suite.admin.client('PAUSE', 300);
    const task = dvt.task.schedule(() => 2);
    await sleep(50);
    task.cancel();
    await expect(task).rejects.toBeInstanceOf(CancelledError);
    await sleep(400);
    expect(Number(await suite.admin.get(`dovetail:${key}:bucket`))).toBeCloseTo(before, -3);
    // A cancelled signal is refused at once.
    const bucket = new RedisTokenBucket(new Store(connect(), settings(key)), 10, 1, undefined);
    await expect(bucket.acquire(AbortSignal.abort('stop'))).rejects.toBe('stop');
  });
});
