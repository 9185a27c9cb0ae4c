// The shared gate's waiting: woken by Redis when a slot frees (no polling), what happens when a
// wake-up is lost, scripts flushed, Redis restarted, and the connections a gate opens.
import { expect, it } from '@jest/globals';
import {
  BackendError,
  BackendEvent,
  type BackendErrorPayload,
  type Dovetail,
} from '../../src/index.js';
import { redisBackend } from '../../src/redis/index.js';
import { defer, type Deferred } from '../helpers/defer.js';
import { create } from '../helpers/instances.js';
import { describeRedis, useRedisServer } from '../helpers/redis-server.js';
import { startWorker, type WorkerReport } from '../helpers/workers.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
// CLOCK_MONOTONIC, as the workers read it.
const clock = (): number => Number(process.hrtime.bigint()) / 1e6;

describeRedis('the shared gate wakes waiting processes', () => {
  const suite = useRedisServer('wake');
  const { connect, nextKey } = suite;
  const calls = async (command: string): Promise<number> => {
    const text = await suite.admin.info('commandstats');
    const found = new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(text);
    return Number(found?.[1] ?? 0);
  };
  const connections = async (): Promise<number> =>
    String(await suite.admin.client('LIST'))
      .trim()
      .split('\n').length;

  // Two instances of concurrency 1 on one key (on two connections), the first holding the slot.
  const holderAndWaiter = async (
    pollInterval: number,
  ): Promise<{ waiter: Dovetail; held: Deferred<void>; holding: Promise<unknown> }> => {
    const options = { key: nextKey(), pollInterval };
    const holder = create({ concurrency: 1, backend: redisBackend(connect(), options) });
    const waiter = create({ concurrency: 1, backend: redisBackend(connect(), options) });
    const held = defer();
    const holding = holder.task.schedule(() => held.promise);
    await sleep(100);
    return { waiter, held, holding };
  };

  it('hands a slot freed in another process to the waiting one at once, with polling an hour away', async () => {
    const key = nextKey();
    const pollInterval = 3_600_000;
    // The worker holds the only slot for 1.5 s.
    const holder = startWorker({
      url: suite.server.url,
      key,
      mode: 'run',
      tasks: 1,
      taskMs: 1500,
      concurrency: 1,
      pollInterval,
      counter: `${key}:running`,
    });
    while ((await suite.admin.get(`${key}:running`)) !== '1') await sleep(10);
    const dvt = create({
      concurrency: 1,
      backend: redisBackend(connect(), { key, pollInterval }),
    });
    await suite.admin.config('RESETSTAT');
    let startedAt = 0;
    await dvt.task.schedule(() => void (startedAt = clock()));
    const report = JSON.parse(
      (await holder.output).trim().split('\n').pop() ?? '{}',
    ) as WorkerReport;
    const freedAt = (report.starts[0] ?? 0) + 1500;
    // Not before the holder's task ended (the limit held), and soon after: woken, not polling.
    expect(startedAt).toBeGreaterThanOrEqual(freedAt);
    expect(startedAt - freedAt).toBeLessThan(1000);
    // One request sat in Redis the whole time: no request per poll.
    expect(await calls('blmove')).toBeLessThanOrEqual(2);
  }, 30_000);

  it('remakes a gate lost while a process waits (no wake-up comes): the heartbeat finds it', async () => {
    const key = nextKey();
    const options = { key, pollInterval: 3_600_000, leaseTime: 900, refreshInterval: 300 };
    const holderClient = connect();
    const holder = create({ concurrency: 1, backend: redisBackend(holderClient, options) });
    const reports: BackendErrorPayload[] = [];
    holder.events.on(BackendEvent.BACKEND_ERROR, (p) => void reports.push(p));
    const held = defer();
    const holding = holder.task.schedule(() => held.promise);
    await sleep(100);
    const waiter = create({ concurrency: 1, backend: redisBackend(connect(), options) });
    let started = false;
    const waiting = waiter.task.schedule(() => void (started = true));
    await sleep(100);
    expect(started).toBe(false);
    // Redis loses every key of the gate: the holder's release will give back nothing, so no
    // wake-up will come for the waiter.
    await suite.admin.del(...(await suite.admin.keys(`dovetail:${key}:gate:*`)));
    const lostAt = performance.now();
    await waiting;
    // Within a heartbeat or two (refreshInterval 300 ms), not the hour of the poll.
    expect(performance.now() - lostAt).toBeLessThan(2_000);
    // The holder learns at its next heartbeat that its slot was lost.
    await sleep(700);
    expect(reports.map((p) => p.operation)).toContain('lease');
    held.resolve();
    await holding;
    // Its release does not give back the remade slot a second time.
    await sleep(100);
    expect(await suite.admin.lrange(`dovetail:${key}:gate:slots`, 0, -1)).toEqual(['1']);
  }, 30_000);

  it('asks again when its waiting connection is killed, and gets the slot freed meanwhile', async () => {
    const { waiter, held, holding } = await holderAndWaiter(3_600_000);
    const waiting = waiter.task.schedule(() => 'mine');
    await sleep(200);
    const list = String(await suite.admin.client('LIST'));
    const blocked = list.split('\n').filter((line: string) => line.includes('flags=b '));
    expect(blocked).toHaveLength(1);
    const id = /id=(\d+)/.exec(blocked[0] ?? '')?.[1] ?? '';
    await suite.admin.client('KILL', 'ID', id);
    held.resolve();
    await holding;
    const asked = performance.now();
    expect(await waiting).toBe('mine');
    expect(performance.now() - asked).toBeLessThan(2_000);
    expect(waiter.events.stats().error).toBe(0);
  }, 30_000);

  it('sends a request again after pollInterval, and fails nothing for it', async () => {
    const { waiter, held, holding } = await holderAndWaiter(100);
    await suite.admin.config('RESETSTAT');
    const waiting = waiter.task.schedule(() => 'mine');
    await sleep(800);
    // Each request timed out after about 100 ms (Redis checks time-outs every 100 ms or so).
    expect(await calls('blmove')).toBeGreaterThanOrEqual(3);
    held.resolve();
    await holding;
    expect(await waiting).toBe('mine');
  }, 30_000);

  it('runs on after SCRIPT FLUSH (NOSCRIPT): the scripts are sent again', async () => {
    const key = nextKey();
    const dvt = create({
      concurrency: 2,
      rateLimit: { perSecond: 1000, burst: 10 },
      backend: redisBackend(connect(), { key, leaseTime: 900, refreshInterval: 300 }),
    });
    const reports: BackendErrorPayload[] = [];
    dvt.events.on(BackendEvent.BACKEND_ERROR, (p) => void reports.push(p));
    const work = (): Promise<void> => sleep(5);
    await dvt.task.map(work, [1, 2, 3, 4]);
    await suite.admin.script('FLUSH');
    await suite.admin.config('RESETSTAT');
    // A task that runs across a heartbeat, and more tokens.
    await dvt.task.map(() => sleep(400), [1, 2]);
    await dvt.task.map(work, [1, 2, 3, 4]);
    expect(await calls('eval')).toBeGreaterThanOrEqual(2);
    expect(reports).toEqual([]);
    expect(dvt.events.stats()).toMatchObject({ done: 10, error: 0 });
  }, 30_000);

  it('after a Redis restart, no waiting task hangs, failures are BackendErrors, and the limit holds again', async () => {
    const key = nextKey();
    const options = { key, timeout: 300, leaseTime: 900, refreshInterval: 300 };
    const a = create({ concurrency: 2, backend: redisBackend(connect(), options) });
    const b = create({ concurrency: 2, backend: redisBackend(connect(), options) });
    let running = 0;
    let peak = 0;
    const work = async (): Promise<void> => {
      running += 1;
      peak = Math.max(peak, running);
      await sleep(30);
      running -= 1;
    };
    const items = Array.from({ length: 12 }, (_, i) => i);
    // Tasks waiting for slots when Redis goes away.
    const before = [a, b].flatMap((dvt) =>
      items.map((i) => dvt.task.schedule(() => (i < 2 ? sleep(400) : work()))),
    );
    await sleep(100);
    await suite.server.pause();
    const outcomes = await Promise.allSettled(before);
    const failures = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected');
    expect(failures.length).toBeGreaterThan(0);
    for (const failure of failures) expect(failure.reason).toBeInstanceOf(BackendError);
    await suite.server.resume();
    await sleep(500);
    peak = 0;
    await Promise.all([a.task.map(work, items), b.task.map(work, items)]);
    expect(peak).toBeLessThanOrEqual(2);
    expect(peak).toBeGreaterThanOrEqual(1);
  }, 30_000);

  it('closes the connections it opened when the instance shuts down', async () => {
    const key = nextKey();
    const client = connect();
    await client.ping();
    const baseline = await connections();
    const dvt = create({ concurrency: 1, backend: redisBackend(client, { key }) });
    const held = defer();
    const holding = dvt.task.schedule(() => held.promise);
    const waiting = dvt.task.schedule(() => 'second');
    await sleep(100);
    // The waiting connection is open while a task waits, beside the one that hears changes.
    expect(await connections()).toBe(baseline + 2);
    held.resolve();
    await holding;
    expect(await waiting).toBe('second');
    await dvt.shutdown();
    await sleep(100);
    expect(await connections()).toBe(baseline);
    // Nothing is held, nothing registered.
    expect(await suite.admin.llen(`dovetail:${key}:gate:slots`)).toBe(1);
    expect(await suite.admin.zcard(`dovetail:${key}:gate:procs`)).toBe(0);
  }, 30_000);
});
