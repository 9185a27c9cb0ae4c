// Three processes on one key: the shared gate, the shared bucket, and a worker killed holding slots.
import { expect, it } from '@jest/globals';
import { create } from '../helpers/instances.js';
import { describeRedis, useRedisServer } from '../helpers/redis-server.js';
import { printed, runWorkers, startWorker } from '../helpers/workers.js';
import { redisBackend } from '../../src/redis/index.js';
import { startRate } from '../../bench/rate.mjs';

const sleep = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

describeRedis('dovetailjs/redis across processes', () => {
  const suite = useRedisServer('procs');

  it('never runs more than the shared concurrency across three processes', async () => {
    const config = {
      url: suite.server.url,
      key: 'peak',
      mode: 'run',
      tasks: 30,
      taskMs: 15,
      concurrency: 4,
      counter: 'peak:running',
    };
    const reports = await runWorkers([config, config, config]);
    const peak = Math.max(...reports.map((r) => r.peak));
    expect(reports.map((r) => r.failed)).toEqual([0, 0, 0]);
    expect(reports.map((r) => r.stats['done'])).toEqual([30, 30, 30]);
    // Recorded through Redis: INCR when a task starts, DECR when it ends.
    expect(peak).toBeLessThanOrEqual(4);
    expect(peak).toBeGreaterThanOrEqual(2);
    expect(await suite.admin.get('peak:running')).toBe('0');
    // Every slot is back, and no process holds one.
    expect(await suite.admin.llen('dovetail:peak:gate:slots')).toBe(4);
    expect(await suite.admin.keys('dovetail:peak:gate:held:*')).toEqual([]);
  }, 40_000);

  it.each([3, 10])(
    'starts 1 000 tasks of %i processes at the shared perSecond, burst honoured',
    async (processes) => {
      const perSecond = 200;
      const burst = 20;
      // They start together (process start-up is not what is measured).
      const startAt = Number(process.hrtime.bigint()) / 1e6 + 1000 + 700 * processes;
      const base = {
        url: suite.server.url,
        key: `rate-${processes}`,
        mode: 'run',
        taskMs: 0,
        perSecond,
        burst,
        startAt,
      };
      const reports = await runWorkers(
        Array.from({ length: processes }, (_, i) => ({
          ...base,
          tasks: Math.floor(1000 / processes) + (i < 1000 % processes ? 1 : 0),
        })),
      );
      const starts = reports.flatMap((r) => r.starts).sort((a, b) => a - b);
      expect(starts).toHaveLength(1000);
      // After the burst, one start per token: the start rate is the slope of start time against
      // start number (least squares over the 980 starts after the burst, so a start delayed by a
      // busy event loop at either end does not skew it as it would a first-to-last ratio).
      const rate = startRate(starts.slice(burst));
      expect(Math.abs(rate - perSecond) / perSecond).toBeLessThan(0.03);
      const overall = ((1000 - burst) / ((starts[999] ?? 0) - (starts[0] ?? 0))) * 1000;

      // Burst honoured, on Redis's clock: the bucket's last reservation time (TAT) is the first
      // reservation plus 1 000 intervals (the bucket never ran idle: all asked at once), which
      // gives the time of the first token, T0. The n-th start (wall clock, sorted) can come no
      // sooner than its token: T0 + (n - burst) intervals. A start is never early (it waits on a
      // timer) but may be late; 2 ms of slack for the millisecond clock. Checked with three
      // processes: ten may not all be up by the start line on a busy machine, and one that
      // joins after the others' reservations ran out finds the bucket idle.
      const interval = 1000 / perSecond;
      const tat = Number(await suite.admin.get(`dovetail:rate-${processes}:bucket`)) / 1000;
      const t0 = tat - 1000 * interval;
      const wall = reports.flatMap((r) => r.wall).sort((a, b) => a - b);
      let early = Infinity;
      wall.forEach((t, i) => {
        early = Math.min(early, t - (t0 + Math.max(0, i + 1 - burst) * interval));
      });
      if (processes === 3) {
        expect(early).toBeGreaterThanOrEqual(-2);
        // ...and the burst went at once.
        expect((wall[burst - 1] ?? 0) - t0).toBeLessThan(500);
      }
      process.stderr.write(
        `rate test, ${processes} processes: ${rate.toFixed(2)}/s (first to last: ${overall.toFixed(2)}/s), earliest start vs its token ${early.toFixed(1)} ms\n`,
      );
      const throttled = reports.reduce((sum, r) => sum + (r.stats['throttled'] ?? 0), 0);
      expect(throttled).toBeGreaterThan(900);
      expect(reports.every((r) => r.waited > 0)).toBe(true);
    },
    40_000,
  );

  it('survives Redis stopped and restarted under three processes: no task hangs, failures are BackendErrors', async () => {
    const config = {
      url: suite.server.url,
      key: 'outage',
      mode: 'stream',
      tasks: 0,
      taskMs: 20,
      every: 15,
      duration: 4000,
      concurrency: 4,
      perSecond: 100,
      burst: 10,
      leaseTime: 1000,
      timeout: 300,
    };
    const workers = [config, config, config].map((c) => startWorker(c));
    const running = Promise.all(workers.map((w) => w.output));
    // Each worker prints 'ready' as its stream of tasks begins; Redis goes away 1 s after the last.
    await Promise.all(workers.map(({ child }) => printed(child, 'ready')));
    const clock = (): number => Number(process.hrtime.bigint()) / 1e6;
    await sleep(1000);
    await suite.server.pause();
    await sleep(800);
    await suite.server.resume();
    const resumedAt = clock();
    const reports = (await running).map(
      (text) =>
        JSON.parse(text.trim().split('\n').pop() ?? '{}') as {
          outcomes: { at: number; outcome: 'done' | 'backend' | 'other' }[];
          unsettled: number;
          stats: Record<string, number>;
        },
    );
    const outcomes = reports.flatMap((r) => r.outcomes);
    expect(reports.map((r) => r.unsettled)).toEqual([0, 0, 0]);
    expect(outcomes.filter((o) => o.outcome === 'other')).toEqual([]);
    expect(outcomes.some((o) => o.outcome === 'backend')).toBe(true);
    // The shared limits resumed: what was asked for a while after the restart ran.
    const late = outcomes.filter((o) => o.at > resumedAt + 1000);
    expect(late.length).toBeGreaterThan(0);
    expect(late.every((o) => o.outcome === 'done')).toBe(true);
    const count = (kind: string): number => outcomes.filter((o) => o.outcome === kind).length;
    process.stderr.write(
      `outage test: ${outcomes.length} tasks, ${count('done')} done, ${count('backend')} BackendError, ${late.length} asked 1 s after the restart all done\n`,
    );
    for (const { stats } of reports) {
      expect(stats['queued']).toBe(
        (stats['done'] ?? 0) + (stats['error'] ?? 0) + (stats['cancelled'] ?? 0),
      );
    }
  }, 40_000);

  it('gives the slots of a worker killed with SIGKILL back within the lease time', async () => {
    const leaseTime = 1000;
    const key = 'killed';
    const hog = startWorker({
      url: suite.server.url,
      key,
      mode: 'hold',
      tasks: 3,
      taskMs: 0,
      concurrency: 3,
      leaseTime,
    });
    hog.output.catch(() => {});
    await printed(hog.child, 'holding');
    const dvt = create({
      concurrency: 3,
      backend: redisBackend(suite.connect(), { key, leaseTime }),
    });
    const started: number[] = [];
    const tasks = [1, 2, 3].map(() =>
      dvt.task.schedule(() => void started.push(performance.now())),
    );
    // The hog's leases are refreshed while its tasks run: well past one lease time, still held.
    await new Promise((resolve) => setTimeout(resolve, 2.5 * leaseTime));
    expect(started).toEqual([]);
    expect(dvt.pending).toBe(3);
    const killedAt = performance.now();
    hog.child.kill('SIGKILL');
    await Promise.all(tasks);
    const regained = Math.max(...started) - killedAt;
    expect(regained).toBeLessThanOrEqual(leaseTime + 500);
    await dvt.shutdown();
  }, 30_000);
});
