// concurrency: 'adaptive' against the real upstream (bench/upstream.mjs in a child process):
// the limit rises to meet doubled capacity and falls when it halves. Bounds are wide: the
// machine is shared and busy.
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { startUpstream, type Upstream } from '../../bench/upstream.mjs';
import { closeAll, create } from '../helpers/instances.js';

jest.setTimeout(60_000);

describe("concurrency: 'adaptive' against a real upstream", () => {
  let upstream: Upstream;
  beforeAll(async () => {
    upstream = await startUpstream({ capacity: 4, service: 40, queueLimit: 64 });
  });
  afterAll(async () => {
    await closeAll();
    await upstream.stop();
  });

  it('rises when capacity doubles and falls when it halves', async () => {
    const dvt = create({ concurrency: 'adaptive', adaptive: { initial: 4, max: 64 } });
    let stopped = false;
    const call = async () => {
      const response = await fetch(upstream.url);
      await response.text();
    };
    const loops = Array.from({ length: 64 }, async () => {
      while (!stopped) await dvt.task.schedule(call).catch(() => undefined);
    });
    const settle = () => new Promise((resolve) => setTimeout(resolve, 4_000));
    await settle();
    const atFour = dvt.concurrency;
    await upstream.configure({ capacity: 16 });
    await settle();
    const atSixteen = dvt.concurrency;
    await upstream.configure({ capacity: 4 });
    await settle();
    const backAtFour = dvt.concurrency;
    stopped = true;
    await Promise.all(loops);
    expect(atSixteen).toBeGreaterThan(atFour);
    expect(atSixteen).toBeGreaterThanOrEqual(10);
    expect(backAtFour).toBeLessThan(atSixteen);
    expect((await upstream.stats()).rejected).toBe(0);
  });
});
