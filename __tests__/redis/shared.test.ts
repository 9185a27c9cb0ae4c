// The 0.2 controls shared through Redis, between instances of one process, each with its own
// connection (as separate processes would have); the three-process tests are in
// shared-processes.test.ts.
import { describe, expect, it } from '@jest/globals';
import {
  BackendError,
  CancelledError,
  CircuitOpenError,
  Event,
  InstanceEvent,
  type Dovetail,
} from '../../src/index.js';
import { redisBackend, type RedisBackendOptions } from '../../src/redis/index.js';
import { defer } from '../helpers/defer.js';
import { create } from '../helpers/instances.js';
import { describeRedis, useRedisServer } from '../helpers/redis-server.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` every 5 ms for up to `ms`; the time it took, or throws. */
async function within(ms: number, check: () => boolean): Promise<number> {
  const start = performance.now();
  while (!check()) {
    if (performance.now() - start > ms) throw new Error(`not within ${ms} ms`);
    await sleep(5);
  }
  return performance.now() - start;
}

describeRedis('the shared controls on a real redis-server', () => {
  const suite = useRedisServer('shared');
  const { connect, nextKey } = suite;
  const backend = (key: string, options: Partial<RedisBackendOptions> = {}) =>
    redisBackend(connect(), { key, ...options });
  /** The slots the processes hold in the gate whose keys start with `base`. */
  const heldIn = async (base: string): Promise<number> => {
    const lists = await suite.admin.keys(`${base}:held:*`);
    const lengths = await Promise.all(lists.map((list) => suite.admin.llen(list)));
    return lengths.reduce((sum, n) => sum + n, 0);
  };

  /** Two instances on one key, both listening for changes when it resolves. */
  const pair = async (
    options: Parameters<typeof create>[0] = {},
  ): Promise<[Dovetail, Dovetail, string]> => {
    const key = nextKey();
    const made: [Dovetail, Dovetail, string] = [
      create({ ...options, backend: backend(key) }),
      create({ ...options, backend: backend(key) }),
      key,
    ];
    await sleep(100);
    return made;
  };

  it('a pause in one instance holds the other, and resume() lifts both', async () => {
    const [a, b, key] = await pair({ concurrency: 2 });
    const events: string[] = [];
    b.events.on(InstanceEvent.PAUSED, (p) => events.push(`paused ${p.until ?? 'untimed'}`));
    b.events.on(InstanceEvent.RESUMED, () => events.push('resumed'));
    // Both are listening before the pause (the subscriber connects on construction).
    await sleep(100);
    a.pause();
    const took = await within(250, () => b.isPaused);
    expect(took).toBeLessThan(250);
    expect(await suite.admin.get(`dovetail:${key}:pause`)).toBe('inf');
    let ran = false;
    const task = b.task.schedule(() => {
      ran = true;
    });
    await sleep(100);
    expect(ran).toBe(false);
    expect(b.pending).toBe(1);
    a.resume();
    await within(250, () => !b.isPaused);
    await task;
    expect(ran).toBe(true);
    expect(events).toEqual(['paused untimed', 'resumed']);
    expect(await suite.admin.exists(`dovetail:${key}:pause`)).toBe(0);
  });

  it('a timed pause ends in every instance at the same time, the later end winning', async () => {
    const [a, b, key] = await pair();
    await sleep(100);
    const untils: number[] = [];
    a.events.on(InstanceEvent.PAUSED, (p) => untils.push(p.until ?? Infinity));
    b.pause(300);
    a.pause(100);
    await within(250, () => a.isPaused && untils.length > 0);
    // b's end is the later one: a follows it.
    await within(250, () => untils.length === 2 || (untils[0] ?? 0) > Date.now() + 150);
    const end = untils[untils.length - 1] ?? 0;
    const ttl = await suite.admin.pttl(`dovetail:${key}:pause`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(300);
    await within(600, () => !a.isPaused && !b.isPaused);
    expect(Date.now()).toBeGreaterThanOrEqual(end - 5);
  });

  it('a pause made before an instance starts holds it too (read at start)', async () => {
    const key = nextKey();
    const a = create({ backend: backend(key) });
    a.pause(5_000);
    await sleep(100);
    expect(await suite.admin.exists(`dovetail:${key}:pause`)).toBe(1);
    const b = create({ backend: backend(key) });
    await within(1_000, () => b.isPaused);
    a.resume();
    await within(250, () => !b.isPaused);
  });

  it('shutdown drains through the pause without lifting it for the others', async () => {
    const [a, b, key] = await pair();
    await sleep(100);
    a.pause();
    await within(250, () => b.isPaused);
    const task = b.task.schedule(() => 'drained');
    const done = b.shutdown();
    await expect(task).resolves.toBe('drained');
    await done;
    expect(a.isPaused).toBe(true);
    expect(await suite.admin.get(`dovetail:${key}:pause`)).toBe('inf');
    a.resume();
  });

  it('writing concurrency in one instance changes the limit of the other', async () => {
    const [a, b, key] = await pair({ concurrency: 2 });
    await sleep(100);
    const changes: [number, number][] = [];
    b.events.on(InstanceEvent.LIMIT_CHANGED, (p) => changes.push([p.limit, p.previous]));
    a.concurrency = 5;
    await within(250, () => b.concurrency === 5);
    expect(changes).toEqual([[5, 2]]);
    expect(await suite.admin.get(`dovetail:${key}:limit`)).toBe('5');
    // The shared limit is used: 5 tasks run at once across both.
    const gates = Array.from({ length: 6 }, () => defer<void>());
    let running = 0;
    let peak = 0;
    const tasks = gates.map((gate, i) =>
      (i % 2 === 0 ? a : b).task.schedule(async () => {
        running += 1;
        peak = Math.max(peak, running);
        await gate.promise;
        running -= 1;
      }),
    );
    await within(2_000, () => running === 5);
    await sleep(100);
    expect(running).toBe(5);
    for (const gate of gates) gate.resolve();
    await Promise.all(tasks);
    expect(peak).toBe(5);
  });

  it("a shared write adds and removes the gate's slots: a lowered limit lets running tasks finish and gives fewer back", async () => {
    const [a, b, key] = await pair({ concurrency: 4 });
    const gate = `dovetail:${key}:gate`;
    const gates = Array.from({ length: 8 }, () => defer<void>());
    const started: number[] = [];
    let running = 0;
    let peak = 0;
    const tasks = gates.map((g, i) =>
      (i % 2 === 0 ? a : b).task.schedule(async () => {
        running += 1;
        peak = Math.max(peak, running);
        started.push(i);
        await g.promise;
        running -= 1;
      }),
    );
    await within(2_000, () => running === 4);
    expect(await suite.admin.llen(`${gate}:slots`)).toBe(0);
    expect(await heldIn(gate)).toBe(4);
    a.concurrency = 2;
    await within(250, () => b.concurrency === 2);
    // The script that wrote the limit made the gate follow it: 4 held, 2 too many.
    expect(await suite.admin.get(`${gate}:limit`)).toBe('2');
    expect(await suite.admin.get(`${gate}:debt`)).toBe('2');
    // The four running finish: two slots pay the debt, two go back and start two more, no more.
    peak = 0;
    for (const i of started.slice()) gates[i]?.resolve();
    await within(2_000, () => started.length === 6 && running === 2);
    await sleep(100);
    expect([started.length, running, peak]).toEqual([6, 2, 2]);
    expect(await suite.admin.exists(`${gate}:debt`)).toBe(0);
    expect(await suite.admin.llen(`${gate}:slots`)).toBe(0);
    expect(await heldIn(gate)).toBe(2);
    // Raised: new slots, the last two start at once, one slot stays free.
    b.concurrency = 5;
    await within(1_000, () => started.length === 8);
    expect(await suite.admin.llen(`${gate}:slots`)).toBe(1);
    for (const g of gates) g.resolve();
    await Promise.all(tasks);
    for (let i = 0; i < 100 && (await suite.admin.llen(`${gate}:slots`)) < 5; i++) await sleep(10);
    expect(await suite.admin.llen(`${gate}:slots`)).toBe(5);
    // Unbounded: no slot is taken; every task runs at once.
    a.concurrency = Infinity;
    await within(250, () => b.concurrency === Infinity);
    expect(await suite.admin.get(`${gate}:limit`)).toBe('inf');
    const open = defer<void>();
    running = 0;
    const many = Array.from({ length: 12 }, (_, i) =>
      (i % 2 === 0 ? a : b).task.schedule(async () => {
        running += 1;
        await open.promise;
      }),
    );
    await within(1_000, () => running === 12);
    open.resolve();
    await Promise.all(many);
    expect(await heldIn(gate)).toBe(0);
  });

  it('a lowered limit holds at once, even in a process that gives slots back before it hears of it', async () => {
    const [a, b, key] = await pair({ concurrency: 4 });
    const gate = `dovetail:${key}:gate`;
    const gates = Array.from({ length: 6 }, () => defer<void>());
    const started: number[] = [];
    let running = 0;
    let peak = 0;
    const run = (dvt: Dovetail, i: number): Promise<void> =>
      dvt.task.schedule(async () => {
        running += 1;
        peak = Math.max(peak, running);
        started.push(i);
        await gates[i]?.promise;
        running -= 1;
      });
    const tasks = [run(a, 0), run(a, 1)];
    await within(2_000, () => running === 2);
    // b runs two and waits in Redis for two more (its own limit is 4).
    tasks.push(...[2, 3, 4, 5].map((i) => run(b, i)));
    await within(2_000, () => running === 4);
    await sleep(100);
    a.concurrency = 2;
    // In the same tick b's two running tasks end: b gives their slots back before the new
    // limit's message reaches it, while its own two requests wait in Redis for a slot.
    for (const i of started.filter((n) => n >= 2)) gates[i]?.resolve();
    await within(1_000, () => b.concurrency === 2 && running === 2);
    await sleep(300);
    // The two slots paid the debt (checked by the process that took them): nothing started.
    expect([running, started.length]).toEqual([2, 4]);
    expect(await suite.admin.exists(`${gate}:debt`)).toBe(0);
    expect(await heldIn(gate)).toBe(2);
    peak = 0;
    for (const g of gates) g.resolve();
    await Promise.all(tasks);
    expect(started).toHaveLength(6);
    expect(peak).toBeLessThanOrEqual(2);
    // Every slot is back and unmarked.
    for (let i = 0; i < 100 && (await suite.admin.llen(`${gate}:slots`)) < 2; i++) await sleep(10);
    const free = await suite.admin.lrange(`${gate}:slots`, 0, -1);
    expect(free).toHaveLength(2);
    expect(free.filter((slot) => slot.startsWith('old:'))).toEqual([]);
  });

  it('a new instance writes its limit: the last one constructed wins', async () => {
    const key = nextKey();
    const a = create({ concurrency: 3, backend: backend(key) });
    await sleep(100);
    create({ concurrency: 7, backend: backend(key) });
    await within(250, () => a.concurrency === 7);
  });

  it('refuses a limit on an unbounded instance with the Redis back end', () => {
    const dvt = create({ backend: backend(nextKey()) });
    expect(() => {
      dvt.concurrency = 4;
    }).toThrow(/unbounded instance with a shared back end/);
  });

  it('follows a change whose message was lost, from the periodic read', async () => {
    const key = nextKey();
    const b = create({ concurrency: 2, backend: backend(key, { syncInterval: 100 }) });
    await sleep(50);
    // Written behind its back: no message.
    await suite.admin.set(`dovetail:${key}:pause`, 'inf');
    await suite.admin.set(`dovetail:${key}:limit`, '9');
    await within(1_000, () => b.isPaused && b.concurrency === 9);
    await suite.admin.del(`dovetail:${key}:pause`);
    await within(1_000, () => !b.isPaused);
    expect(b.events.stats()).toMatchObject({ queued: 0 });
  });

  it('reads the state again when its subscription is made again: a change made while the subscriber was away', async () => {
    const key = nextKey();
    const hour = { syncInterval: 3_600_000 };
    const a = create({ concurrency: 2, backend: backend(key, hour) });
    const b = create({ concurrency: 2, backend: backend(key, hour) });
    await sleep(200);
    // Both subscribers dropped; the change is published while they reconnect (50 ms later):
    // nobody hears it, and the periodic read is an hour away.
    await suite.admin.client('KILL', 'TYPE', 'pubsub');
    a.pause();
    a.concurrency = 5;
    await within(2_000, () => b.isPaused && b.concurrency === 5);
    a.resume();
    await within(250, () => !b.isPaused);
    expect(Number(await suite.admin.get(`dovetail:${key}:changes`))).toBeGreaterThanOrEqual(4);
  });

  it('reads the state again when a message skips a count (one was lost)', async () => {
    const key = nextKey();
    const b = create({ backend: backend(key, { syncInterval: 3_600_000 }) });
    await sleep(200);
    // Written behind its back, then a message whose count skips many: b reads at once.
    await suite.admin.set(`dovetail:${key}:pause`, 'inf');
    await suite.admin.publish(`dovetail:${key}:control`, '{"kind":"circuit","seq":1000}');
    await within(250, () => b.isPaused);
    // Malformed messages are ignored.
    await suite.admin.publish(`dovetail:${key}:control`, '{"kind":"resume","seq":"x"}');
    await suite.admin.publish(`dovetail:${key}:control`, 'not json');
    await sleep(100);
    expect(b.isPaused).toBe(true);
  });

  it('the breaker reads its state again when the periodic read finds a change it did not hear', async () => {
    const key = nextKey();
    const b = create({
      circuitBreaker: { threshold: 5 },
      backend: backend(key, { syncInterval: 100 }),
    });
    await sleep(200);
    // Opened behind its back (no message), the count of changes moved.
    await suite.admin.hset(`dovetail:${key}:circuit`, 's', 'open', 'g', 7, 'r', 'inf', 'o', 5);
    await suite.admin.incr(`dovetail:${key}:changes`);
    await within(1_000, () => b.circuit?.state === 'open');
  });

  it('reports a pause that cannot reach Redis and holds this process', async () => {
    const key = nextKey();
    const dvt = create({ backend: backend(key, { timeout: 200 }) });
    const operations: string[] = [];
    dvt.events.on(Event.QUEUED, () => undefined);
    dvt.events.on(InstanceEvent.BACKEND_ERROR, (p) => operations.push(p.operation));
    await sleep(50);
    await suite.server.pause();
    dvt.pause();
    expect(dvt.isPaused).toBe(true);
    await within(2_000, () => operations.includes('pause'));
    await suite.server.resume();
    dvt.resume();
    expect(dvt.isPaused).toBe(false);
  });

  it('shares one concurrency per key between instances, keys apart', async () => {
    const [a, b, key] = await pair({ perKey: { concurrency: 2 } });
    const gates = Array.from({ length: 8 }, () => defer<void>());
    const running = new Map<string, number>();
    const peaks = new Map<string, number>();
    const tasks = gates.map((gate, i) => {
      const k = i < 6 ? 'hot' : 'cold';
      return (i % 2 === 0 ? a : b).task.with({ key: k }).schedule(async () => {
        running.set(k, (running.get(k) ?? 0) + 1);
        peaks.set(k, Math.max(peaks.get(k) ?? 0, running.get(k) ?? 0));
        await gate.promise;
        running.set(k, (running.get(k) ?? 0) - 1);
      });
    });
    await within(2_000, () => running.get('hot') === 2 && running.get('cold') === 2);
    await sleep(100);
    expect(running.get('hot')).toBe(2);
    expect(a.activeKeys().sort()).toEqual(['cold', 'hot']);
    // The key's own gate: its 2 slots are out of the free list, held by the two processes.
    const hot = `dovetail:${key}:key:hot:gate`;
    expect(await suite.admin.llen(`${hot}:slots`)).toBe(0);
    expect(await heldIn(hot)).toBe(2);
    for (const gate of gates) gate.resolve();
    await Promise.all(tasks);
    expect(peaks.get('hot')).toBe(2);
    expect(a.activeKeys()).toEqual([]);
    expect(b.activeKeys()).toEqual([]);
    // Idle keys expire in Redis: the gate's slots are all back, both processes left it, and its
    // keys expire; the bucket's key is gone once the bucket is full again.
    for (let i = 0; i < 200 && (await suite.admin.zcard(`${hot}:procs`)) > 0; i++) await sleep(10);
    expect(await suite.admin.zcard(`${hot}:procs`)).toBe(0);
    expect(await suite.admin.llen(`${hot}:slots`)).toBe(2);
    expect(await heldIn(hot)).toBe(0);
    for (const part of ['limit', 'slots']) {
      expect(await suite.admin.pttl(`${hot}:${part}`)).toBeGreaterThan(0);
    }
    expect(await suite.admin.pttl(`dovetail:${key}:key:hot:bucket`)).toBe(-2);
  });

  it("draws a key's tokens and a task's cost from the one shared bucket", async () => {
    const [a, b, key] = await pair({
      rateLimit: { perSecond: 20, burst: 10 },
      perKey: { rateLimit: { perSecond: 10, burst: 4 } },
    });
    const start = performance.now();
    const wallStart = Date.now();
    // cost 4 on each of a and b: the key's burst of 4 goes to the first at once, the second
    // waits 400 ms for 4 more tokens; the instance bucket (burst 10) lets both through.
    const first = a.task.with({ key: 'k', cost: 4 }).schedule(() => performance.now() - start);
    const second = b.task.with({ key: 'k', cost: 4 }).schedule(() => performance.now() - start);
    const times = await Promise.all([first, second]);
    expect(Math.min(...times)).toBeLessThan(200);
    expect(Math.max(...times)).toBeGreaterThanOrEqual(350);
    const tat = Number(await suite.admin.get(`dovetail:${key}:key:k:bucket`));
    expect(tat).toBeGreaterThan(0);
    // The instance's shared bucket was charged 8 tokens (its TAT, in µs on Redis's clock, moved
    // 8 intervals of 50 ms past the first take).
    const moved = Number(await suite.admin.get(`dovetail:${key}:bucket`)) / 1000 - wallStart;
    expect(moved).toBeGreaterThanOrEqual(390);
    expect(moved).toBeLessThan(700);
  });

  it("refuses a cost above the shared bucket's burst", () => {
    const dvt = create({ rateLimit: { perSecond: 5, burst: 3 }, backend: backend(nextKey()) });
    expect(() => dvt.task.with({ cost: 4 })).toThrow(RangeError);
    expect(() => dvt.task.with({ cost: 3 })).not.toThrow();
  });

  it('fails a keyed task with BackendError when Redis is away (onBackendError fail)', async () => {
    const key = nextKey();
    const dvt = create({
      perKey: { concurrency: 1, rateLimit: { perSecond: 10 } },
      backend: backend(key, { timeout: 200 }),
    });
    await dvt.task.with({ key: 'k' }).schedule(() => 1);
    await suite.server.pause();
    await expect(dvt.task.with({ key: 'k' }).schedule(() => 1)).rejects.toThrow(BackendError);
    await suite.server.resume();
    await within(3_000, () => true);
    await expect(dvt.task.with({ key: 'k' }).schedule(() => 2)).resolves.toBe(2);
  });

  describe('the circuit breaker', () => {
    const boom = (): Promise<never> => Promise.reject(new Error('boom'));

    it('counts failures of every instance and opens for all', async () => {
      const [a, b] = await pair({ circuitBreaker: { threshold: 3, halfOpenAfter: 60_000 } });
      const opened: number[] = [];
      b.events.on(InstanceEvent.CIRCUIT_OPEN, (p) => void opened.push(p.failures));
      await expect(a.task.schedule(boom)).rejects.toThrow('boom');
      await expect(b.task.schedule(boom)).rejects.toThrow('boom');
      await sleep(50);
      expect(a.circuit?.state).toBe('closed');
      await expect(a.task.schedule(boom)).rejects.toThrow('boom');
      await within(250, () => b.circuit?.state === 'open');
      expect(opened).toEqual([3]);
      await expect(b.task.schedule(async () => 1)).rejects.toThrow(CircuitOpenError);
      expect(b.events.stats().shortCircuited).toBe(1);
    });

    it('a success in one instance resets the count in a row of all', async () => {
      const [a, b] = await pair({ circuitBreaker: { threshold: 2 } });
      await expect(a.task.schedule(boom)).rejects.toThrow('boom');
      await b.task.schedule(async () => 1);
      await sleep(50);
      await expect(a.task.schedule(boom)).rejects.toThrow('boom');
      await sleep(100);
      expect(a.circuit?.state).toBe('closed');
      expect(b.circuit?.state).toBe('closed');
    });

    it('opens on the failure ratio of all instances', async () => {
      const [a, b] = await pair({
        circuitBreaker: { ratio: { failures: 0.5, window: 10_000, minimumCalls: 4 } },
      });
      await a.task.schedule(async () => 1);
      await expect(b.task.schedule(boom)).rejects.toThrow('boom');
      await a.task.schedule(async () => 1);
      await sleep(50);
      expect(b.circuit?.state).toBe('closed');
      await expect(b.task.schedule(boom)).rejects.toThrow('boom');
      await within(250, () => a.circuit?.state === 'open');
    });

    it('lets halfOpenCalls trials in, in total, then closes for all', async () => {
      const [a, b] = await pair({
        circuitBreaker: { threshold: 1, halfOpenAfter: 200, halfOpenCalls: 2 },
      });
      const closed: string[] = [];
      a.events.on(InstanceEvent.CIRCUIT_CLOSED, () => void closed.push('a'));
      b.events.on(InstanceEvent.CIRCUIT_CLOSED, () => void closed.push('b'));
      await expect(a.task.schedule(boom)).rejects.toThrow('boom');
      await within(250, () => b.circuit?.state === 'open');
      await sleep(250);
      const hold = defer<void>();
      let trials = 0;
      const trial = async (): Promise<void> => {
        trials += 1;
        await hold.promise;
      };
      const tasks = [a, b, a, b, a, b].map((dvt) => dvt.task.schedule(trial));
      const outcomes = Promise.allSettled(tasks);
      await sleep(200);
      hold.resolve();
      const settled = await outcomes;
      expect(trials).toBe(2);
      const refused = settled.filter(
        (o) => o.status === 'rejected' && o.reason instanceof CircuitOpenError,
      );
      expect(refused).toHaveLength(4);
      await within(250, () => a.circuit?.state === 'closed' && b.circuit?.state === 'closed');
      expect(closed.sort()).toEqual(['a', 'b']);
    });

    it('a failed trial opens it again for everyone', async () => {
      const [a, b] = await pair({ circuitBreaker: { threshold: 1, halfOpenAfter: 150 } });
      await expect(a.task.schedule(boom)).rejects.toThrow('boom');
      await sleep(250);
      await expect(b.task.schedule(boom)).rejects.toThrow('boom');
      await within(250, () => a.circuit?.state === 'open');
      await expect(a.task.schedule(async () => 1)).rejects.toThrow(CircuitOpenError);
    });

    it('isolate() and reset() act for every instance', async () => {
      const [a, b] = await pair({ circuitBreaker: {} });
      await sleep(100);
      a.circuit?.isolate();
      expect(a.circuit?.state).toBe('open');
      await within(250, () => b.circuit?.state === 'open');
      const refused = b.task.schedule(async () => 1);
      await expect(refused).rejects.toMatchObject({ retryAt: Infinity });
      b.circuit?.reset();
      await within(250, () => a.circuit?.state === 'closed');
      await expect(a.task.schedule(async () => 2)).resolves.toBe(2);
    });

    it('a cancelled trial gives its place back', async () => {
      const [a, b] = await pair({ circuitBreaker: { threshold: 1, halfOpenAfter: 100 } });
      await expect(a.task.schedule(boom)).rejects.toThrow('boom');
      await sleep(200);
      const task = a.task.schedule(() => new Promise(() => undefined));
      await within(1_000, () => a.active === 1 && a.circuit?.state === 'half-open');
      task.cancel();
      await expect(task).rejects.toThrow(CancelledError);
      await sleep(50);
      await expect(b.task.schedule(async () => 'trial')).resolves.toBe('trial');
      await within(250, () => a.circuit?.state === 'closed');
    });
  });

  it('runs every shared script again after SCRIPT FLUSH (NOSCRIPT)', async () => {
    const [a, b] = await pair({
      concurrency: 2,
      rateLimit: { perSecond: 100, burst: 10 },
      perKey: { concurrency: 1, rateLimit: { perSecond: 100, burst: 5 } },
      circuitBreaker: { threshold: 1, halfOpenAfter: 400 },
    });
    const errors: string[] = [];
    for (const dvt of [a, b])
      dvt.events.on(InstanceEvent.BACKEND_ERROR, (p) => errors.push(p.operation));
    await a.task.with({ key: 'k', cost: 2 }).schedule(() => 1);
    await suite.admin.script('FLUSH');
    a.pause(50);
    await within(250, () => b.isPaused);
    await within(500, () => !a.isPaused && !b.isPaused);
    await suite.admin.script('FLUSH');
    a.concurrency = 3;
    await within(250, () => b.concurrency === 3);
    await suite.admin.script('FLUSH');
    await expect(b.task.with({ key: 'k', cost: 2 }).schedule(() => 2)).resolves.toBe(2);
    await suite.admin.script('FLUSH');
    await expect(a.task.schedule(() => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await within(1_000, () => a.circuit?.state === 'open' && b.circuit?.state === 'open');
    await sleep(450);
    await suite.admin.script('FLUSH');
    await expect(b.task.schedule(async () => 'trial')).resolves.toBe('trial');
    await within(250, () => a.circuit?.state === 'closed');
    expect(errors).toEqual([]);
  });

  it('survives a Redis restart with every control in use: no task hangs, failures are BackendErrors, limits resume', async () => {
    const options = {
      concurrency: 3,
      rateLimit: { perSecond: 200, burst: 10 },
      perKey: { concurrency: 2 },
      circuitBreaker: { threshold: 1_000 },
    };
    const key = nextKey();
    const make = (): Dovetail =>
      create({ ...options, backend: backend(key, { timeout: 300, leaseTime: 1_000 }) });
    const a = make();
    const b = make();
    await sleep(100);
    const outcomes: { at: number; outcome: string }[] = [];
    const pending: Promise<void>[] = [];
    let stop = false;
    const stream = async (dvt: Dovetail, i: number): Promise<void> => {
      while (!stop) {
        const at = performance.now();
        pending.push(
          dvt.task
            .with({ key: `k${i % 2}` })
            .schedule(() => sleep(10))
            .then(
              () => void outcomes.push({ at, outcome: 'done' }),
              (error: unknown) =>
                void outcomes.push({
                  at,
                  outcome: error instanceof BackendError ? 'backend' : String(error),
                }),
            ),
        );
        await sleep(15);
      }
    };
    const streams = [stream(a, 0), stream(b, 1)];
    await sleep(500);
    a.pause(100);
    await suite.server.pause();
    a.concurrency = 2;
    await sleep(700);
    await suite.server.resume();
    const resumedAt = performance.now();
    await sleep(1_500);
    a.concurrency = 4;
    await within(1_000, () => b.concurrency === 4);
    stop = true;
    await Promise.all(streams);
    let guard: ReturnType<typeof setTimeout> | undefined;
    const settled = await Promise.race([
      Promise.all(pending).then(() => true),
      new Promise<boolean>((resolve) => (guard = setTimeout(() => resolve(false), 15_000))),
    ]);
    clearTimeout(guard);
    expect(settled).toBe(true);
    expect(outcomes.filter((o) => o.outcome !== 'done' && o.outcome !== 'backend')).toEqual([]);
    expect(outcomes.some((o) => o.outcome === 'backend')).toBe(true);
    const late = outcomes.filter((o) => o.at > resumedAt + 1_000);
    expect(late.length).toBeGreaterThan(0);
    expect(late.every((o) => o.outcome === 'done')).toBe(true);
    expect(a.circuit?.state).toBe('closed');
  }, 30_000);
});
