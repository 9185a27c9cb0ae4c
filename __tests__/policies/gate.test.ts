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
      run: (release) => {
        order.push(n);
        const hold = defer();
        holds.push(hold);
        void hold.promise.then(release);
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

  it('frees the slot when a job releases it at once, or throws', async () => {
    const gate = new LocalGate(1);
    const ran: number[] = [];
    gate.run({
      run: (release) => {
        ran.push(0);
        release();
      },
      reject: () => undefined,
    });
    gate.run({
      run: () => {
        ran.push(1);
        throw new Error('a job that throws');
      },
      reject: () => undefined,
    });
    gate.run({ run: () => void ran.push(2), reject: () => undefined });
    await flush();
    expect(ran).toEqual([0, 1, 2]);
    expect([gate.active, gate.pending]).toEqual([1, 0]);
  });

  it('passes the slot on within the same lane: a second release is ignored', async () => {
    const gate = new LocalGate(1);
    const releases: Array<() => void> = [];
    const ran: number[] = [];
    for (let n = 0; n < 3; n++) {
      gate.run({
        run: (release) => {
          ran.push(n);
          releases.push(release);
        },
        reject: () => undefined,
      });
    }
    await flush();
    expect(ran).toEqual([0]);
    releases[0]?.();
    releases[0]?.();
    await flush();
    expect(ran).toEqual([0, 1]);
    expect([gate.active, gate.pending]).toEqual([1, 1]);
  });

  it('does not start the next job inside the releasing call', async () => {
    const gate = new LocalGate(1);
    let release: (() => void) | undefined;
    let second = false;
    gate.run({ run: (r) => void (release = r), reject: () => undefined });
    gate.run({ run: () => void (second = true), reject: () => undefined });
    await flush();
    release?.();
    expect(second).toBe(false);
    await flush();
    expect(second).toBe(true);
  });

  it('a long run of jobs that release synchronously does not grow the stack', async () => {
    const gate = new LocalGate(1);
    let count = 0;
    const all = 50_000;
    await new Promise<void>((resolve) => {
      for (let n = 0; n < all; n++) {
        gate.run({
          run: (release) => {
            count += 1;
            release();
            if (count === all) resolve();
          },
          reject: () => undefined,
        });
      }
    });
    expect(count).toBe(all);
  });

  it('clear() drops waiting jobs', async () => {
    const gate = new LocalGate(1);
    const hold = defer();
    let ran = false;
    gate.run({ run: (release) => void hold.promise.then(release), reject: () => undefined });
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
