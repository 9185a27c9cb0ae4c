// The benchmark's upstream (bench/upstream.mjs), checked on its own: the latency tests and the
// benchmark rely on its queue, its 503s, its abort count and its seeded tail.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { startUpstream, type Upstream, type UpstreamStats } from '../../bench/upstream.mjs';

jest.setTimeout(30_000);

/** Polls the server until `check` holds of its counters (a few seconds at most). */
async function until(upstream: Upstream, check: (stats: UpstreamStats) => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(await upstream.stats()); i += 1)
    await new Promise((resolve) => setTimeout(resolve, 10));
}

async function status(url: string, signal?: AbortSignal): Promise<number> {
  const response = await fetch(url, signal === undefined ? {} : { signal });
  await response.text();
  return response.status;
}

describe('bench/upstream.mjs', () => {
  let upstream: Upstream;
  beforeAll(async () => {
    upstream = await startUpstream({ capacity: 2, service: 100, queueLimit: 2 });
  });
  afterAll(async () => {
    await upstream.stop();
  });

  it('serves capacity at once, queues queueLimit more and answers 503 beyond', async () => {
    await upstream.reset();
    const statuses = await Promise.all(Array.from({ length: 6 }, () => status(upstream.url)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(4);
    expect(statuses.filter((s) => s === 503)).toHaveLength(2);
    const stats = await upstream.stats();
    expect(stats).toMatchObject({ requests: 6, served: 4, rejected: 2, aborted: 0 });
    expect(stats.maxBusy).toBe(2);
    expect(stats.maxQueued).toBe(2);
  });

  it('counts a request its client aborts, waiting or being served, and frees its place', async () => {
    await upstream.reset();
    // Long enough that the aborts arrive while the first two are still served, on a busy machine.
    await upstream.configure({ service: 1_500 });
    const controllers = Array.from({ length: 4 }, () => new AbortController());
    const send = (c: AbortController) => status(upstream.url, c.signal).catch(() => 'aborted');
    // Two are being served, then two wait; abort one of each.
    const outcomes = controllers.slice(0, 2).map(send);
    await until(upstream, (s) => s.busy === 2);
    outcomes.push(...controllers.slice(2).map(send));
    await until(upstream, (s) => s.queued === 2);
    // The waiting one first, so that the freed worker cannot pick it up before its abort arrives.
    controllers[3]?.abort();
    await until(upstream, (s) => s.queued === 1);
    controllers[0]?.abort();
    expect(await Promise.all(outcomes)).toEqual(['aborted', 200, 200, 'aborted']);
    const stats = await upstream.stats();
    expect(stats).toMatchObject({ served: 2, aborted: 2, abortedServing: 1, abortedWaiting: 1 });
    expect(stats.busy).toBe(0);
    expect(stats.queued).toBe(0);
    await upstream.configure({ service: 100 });
  });

  it('changes capacity mid-run: waiting requests start at once', async () => {
    await upstream.reset();
    const outcomes = Array.from({ length: 4 }, () => status(upstream.url));
    await until(upstream, (s) => s.queued === 2);
    expect((await upstream.stats()).queued).toBe(2);
    await upstream.configure({ capacity: 4 });
    expect((await upstream.stats()).busy).toBe(4);
    expect(await Promise.all(outcomes)).toEqual([200, 200, 200, 200]);
    expect((await upstream.configure({ capacity: 2 })).capacity).toBe(2);
  });

  it('refuses a bad configuration with the field and the value', async () => {
    await expect(upstream.configure({ capacity: 0 })).rejects.toThrow('`capacity` must be >= 1');
    await expect(upstream.configure({ mode: 'slow' as never })).rejects.toThrow('`mode`');
  });
});

describe('bench/upstream.mjs in tail mode', () => {
  it('makes a seeded share of the requests slow, the same on every run', async () => {
    const durations: number[][] = [];
    for (let run = 0; run < 2; run += 1) {
      const upstream = await startUpstream({
        mode: 'tail',
        capacity: 64,
        tailFast: 1,
        tailSlow: 2,
        tailP: 0.25,
        seed: 7,
      });
      const seen: number[] = [];
      // One at a time, so the n-th draw goes to the n-th request.
      for (let i = 0; i < 80; i += 1) {
        const body = (await (await fetch(upstream.url)).json()) as { service: number };
        seen.push(body.service);
      }
      durations.push(seen);
      await upstream.stop();
    }
    expect(durations[0]).toEqual(durations[1]);
    const slow = durations[0]?.filter((ms) => ms === 2).length ?? 0;
    // 25% of 80 is 20; a seeded draw is within a wide band of it.
    expect(slow).toBeGreaterThan(8);
    expect(slow).toBeLessThan(35);
  });
});
