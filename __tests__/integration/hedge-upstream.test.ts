// A hedge against a real node:http upstream in a child process (bench/upstream.mjs): the hedge
// wins, and the server sees the losing request's client go away.
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { currentTask, Event, type StartedPayload } from '../../src/index.js';
import { startUpstream, type Upstream } from '../../bench/upstream.mjs';
import { closeAll, create } from '../helpers/instances.js';

let upstream: Upstream;

beforeAll(async () => {
  upstream = await startUpstream({ mode: 'fixed', service: 10, capacity: 8, queueLimit: 64 });
});
afterAll(async () => {
  await closeAll();
  await upstream.stop();
});

/** Polls the server's counters until `done` says so (or the wide bound passes). */
async function until(done: (stats: Awaited<ReturnType<Upstream['stats']>>) => boolean) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const stats = await upstream.stats();
    if (done(stats) || Date.now() > deadline) return stats;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('hedge against a real upstream', () => {
  it('the hedge wins and the losing request is aborted at the server', async () => {
    await upstream.reset();
    // The first request to reach a worker takes 30 s; once it is being served, requests take 10 ms.
    await upstream.configure({ service: 30_000 });
    const dvt = create({ concurrency: 4, hedge: { delay: 300 } });
    const started: (boolean | undefined)[] = [];
    dvt.events.on(Event.STARTED, (p: StartedPayload) => void started.push(p.hedge));
    const begin = Date.now();
    const task = dvt.task.schedule(async () => {
      const { signal } = currentTask()!;
      const response = await fetch(upstream.url, { signal });
      return [response.status, await response.text()];
    });
    await until((stats) => stats.busy === 1);
    await upstream.configure({ service: 10 });
    const [status] = (await task) as [number, string];
    expect(status).toBe(200);
    // Far sooner than the first request's 30 s: the hedge answered.
    expect(Date.now() - begin).toBeLessThan(15_000);
    expect(started).toEqual([undefined, true]);
    expect(dvt.events.stats()).toMatchObject({ hedged: 1, done: 1 });
    const stats = await until((s) => s.aborted === 1);
    expect(stats).toMatchObject({ requests: 2, served: 1, aborted: 1, abortedServing: 1, busy: 0 });
  }, 30_000);
});
