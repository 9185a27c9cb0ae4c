import { afterEach, describe, expect, it } from '@jest/globals';
import { LocalGate, type GateJob } from '../../src/index.js';
import { defer, flush, type Deferred } from '../helpers/defer.js';
import { closeAll, create } from '../helpers/instances.js';

afterEach(closeAll);

describe('LocalGate (on p-limit)', () => {
  it('runs at most N jobs at once, in order, and reports active and pending', async () => {
    const gate = new LocalGate(2);
    const holds: Array<Deferred<void>> = [];
    const order: number[] = [];
    const job = (n: number): GateJob => ({
      run: () => {
        order.push(n);
        const hold = defer();
        holds.push(hold);
        return hold.promise;
      },
      reject: () => undefined,
    });
    for (let n = 0; n < 5; n++) gate.run(job(n));
    await flush();
    expect(order).toEqual([0, 1]);
    expect([gate.active, gate.pending]).toEqual([2, 3]);
    holds[0]?.resolve();
    await flush();
    expect(order).toEqual([0, 1, 2]);
    holds[1]?.resolve();
    holds[2]?.resolve();
    await flush();
    expect(order).toEqual([0, 1, 2, 3, 4]);
    holds[3]?.resolve();
    holds[4]?.resolve();
    await flush();
    expect([gate.active, gate.pending]).toEqual([0, 0]);
  });

  it('frees the slot when a job rejects', async () => {
    const gate = new LocalGate(1);
    const ran: number[] = [];
    gate.run({ run: () => Promise.reject(new Error('x')).catch(() => ran.push(0)), reject: () => undefined });
    gate.run({ run: () => void ran.push(1), reject: () => undefined });
    await flush();
    expect(ran).toEqual([0, 1]);
  });

  it('clear() drops waiting jobs', async () => {
    const gate = new LocalGate(1);
    const hold = defer();
    let ran = false;
    gate.run({ run: () => hold.promise, reject: () => undefined });
    gate.run({ run: () => void (ran = true), reject: () => undefined });
    gate.clear();
    hold.resolve();
    await flush();
    expect(ran).toBe(false);
    expect(gate.pending).toBe(0);
  });
});

describe('concurrency through the instance', () => {
  it('never runs more than concurrency tasks, tracked with deferreds', async () => {
    const dvt = create({ concurrency: 3 });
    let running = 0;
    let peak = 0;
    const holds = Array.from({ length: 10 }, () => defer());
    const tasks = holds.map((hold) =>
      dvt.task.schedule(async () => {
        running += 1;
        peak = Math.max(peak, running);
        await hold.promise;
        running -= 1;
      }),
    );
    await flush();
    expect([dvt.active, dvt.pending]).toEqual([3, 7]);
    for (const hold of holds) {
      hold.resolve();
      await flush();
    }
    await Promise.all(tasks);
    expect(peak).toBe(3);
    expect([dvt.active, dvt.pending]).toEqual([0, 0]);
  });

  it('frees a cancelled running task slot at once', async () => {
    const dvt = create({ concurrency: 1 });
    const stuck = dvt.task.schedule(() => new Promise(() => {}));
    const next = dvt.task.schedule(() => 'next');
    await flush();
    stuck.cancel();
    await expect(next).resolves.toBe('next');
    await stuck.catch(() => undefined);
  });

  it('onIdle resolves once every task settled', async () => {
    const dvt = create({ concurrency: 2 });
    const hold = defer();
    void dvt.task.schedule(() => hold.promise);
    let idle = false;
    const waiting = dvt.onIdle().then(() => (idle = true));
    await flush();
    expect(idle).toBe(false);
    hold.resolve();
    await waiting;
    expect(idle).toBe(true);
    await expect(dvt.onIdle()).resolves.toBeUndefined();
  });
});
