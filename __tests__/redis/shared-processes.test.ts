// The shared controls with three real processes on one key: pause, concurrency, perKey, the
// circuit breaker; a worker SIGKILLed during a pause and during a half-open trial; Redis
// restarted with every control in use.
import { afterEach, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describeRedis, useRedisServer } from '../helpers/redis-server.js';

const WORKER = fileURLToPath(new URL('./fixtures/control-worker.ts', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface Line {
  at: number;
  event: string;
  [field: string]: unknown;
}

/** One worker process: send it commands, wait for lines it prints. */
class Worker {
  readonly child: ChildProcess;
  readonly lines: Line[] = [];
  readonly #waiters = new Set<() => void>();

  constructor(config: Record<string, unknown>) {
    this.child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(config)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    let buffer = '';
    this.child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      let end: number;
      while ((end = buffer.indexOf('\n')) >= 0) {
        this.lines.push(JSON.parse(buffer.slice(0, end)) as Line);
        buffer = buffer.slice(end + 1);
        for (const wake of this.#waiters) wake();
      }
    });
  }

  send(command: Record<string, unknown>): void {
    this.child.stdin?.write(`${JSON.stringify(command)}\n`);
  }

  count(event: string): number {
    return this.lines.filter((line) => line.event === event).length;
  }

  /** The first line (after `from` lines) matching `event`, waiting up to `ms` for it. */
  async next(event: string, ms = 10_000, from = 0): Promise<Line> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.lines.slice(from).find((line) => line.event === event);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`no '${event}' within ${ms} ms`);
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          this.#waiters.delete(wake);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(wake, 50);
        this.#waiters.add(wake);
      });
    }
  }

  /** Waits until `count(event) >= n`. */
  async reach(event: string, n: number, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.count(event) < n) {
      if (Date.now() > deadline) throw new Error(`${this.count(event)} '${event}', not ${n}`);
      await sleep(20);
    }
  }

  async exit(): Promise<Line> {
    this.send({ op: 'exit' });
    return this.next('exit');
  }
}

describeRedis('the shared controls across three processes', () => {
  const suite = useRedisServer('procs');
  const workers = new Set<Worker>();

  /** Three workers on one new key, each listening for changes. */
  async function three(options: Record<string, unknown>, extra: Record<string, unknown> = {}) {
    const key = suite.nextKey();
    const made = [0, 1, 2].map(() => {
      const worker = new Worker({ url: suite.server.url, key, options, ...extra });
      workers.add(worker);
      return worker;
    });
    await Promise.all(made.map((worker) => worker.next('ready', 20_000)));
    // Subscribed by then on a busy machine (the subscriber connects as the instance is made).
    await sleep(500);
    return { key, workers: made as [Worker, Worker, Worker] };
  }

  afterEach(() => {
    for (const worker of workers) worker.child.kill('SIGKILL');
    workers.clear();
  });

  it('a pause in one process holds all three; resume() in another lifts it', async () => {
    const {
      workers: [a, b, c],
    } = await three({ concurrency: 4 });
    a.send({ op: 'pause' });
    const paused = await Promise.all([a, b, c].map((w) => w.next('paused')));
    const lag = Math.max(...paused.map((p) => p.at)) - (paused[0]?.at ?? 0);
    process.stderr.write(`pause reached the other processes in ${lag} ms\n`);
    expect(lag).toBeLessThan(250);
    for (const w of [a, b, c]) w.send({ op: 'schedule', n: 2 });
    await sleep(500);
    expect([a, b, c].map((w) => w.count('start'))).toEqual([0, 0, 0]);
    b.send({ op: 'resume' });
    await Promise.all([a, b, c].map((w) => w.reach('done', 2)));
    expect([a, b, c].map((w) => w.count('resumed'))).toEqual([1, 1, 1]);
  }, 60_000);

  it('a timed pause outlives the process that made it (SIGKILL) and ends on time in the others', async () => {
    const {
      key,
      workers: [a, b, c],
    } = await three({});
    a.send({ op: 'pause', ms: 1_500 });
    const [paused] = await Promise.all([b.next('paused'), c.next('paused')]);
    const until = paused.until as number;
    a.child.kill('SIGKILL');
    b.send({ op: 'schedule', n: 1 });
    await sleep(300);
    expect(b.count('start')).toBe(0);
    expect(await suite.admin.exists(`dovetail:${key}:pause`)).toBe(1);
    const [resumedB, resumedC] = await Promise.all([b.next('resumed'), c.next('resumed')]);
    for (const resumed of [resumedB, resumedC]) {
      expect(resumed.at).toBeGreaterThanOrEqual(until - 5);
      expect(resumed.at).toBeLessThan(until + 1_000);
    }
    await b.next('done');
    expect(await suite.admin.exists(`dovetail:${key}:pause`)).toBe(0);
  }, 60_000);

  it('writing concurrency in one process is the limit of all three', async () => {
    const counter = `${suite.nextKey()}-counter`;
    const {
      workers: [a, b, c],
    } = await three({ concurrency: 6 }, { counter });
    a.send({ op: 'concurrency', value: 2 });
    const changed = await Promise.all([b, c].map((w) => w.next('limit_changed')));
    expect(changed.map((line) => line.limit)).toEqual([2, 2]);
    for (const w of [a, b, c]) w.send({ op: 'schedule', n: 4, hold: true });
    await sleep(1_000);
    expect(Number(await suite.admin.get(counter))).toBe(2);
    for (const w of [a, b, c]) w.send({ op: 'release' });
    await sleep(300);
    for (const w of [a, b, c]) w.send({ op: 'release' });
    await sleep(300);
    for (const w of [a, b, c]) w.send({ op: 'release' });
    const exits = await Promise.all([a, b, c].map((w) => w.exit()));
    expect(Math.max(...exits.map((line) => line.peak as number))).toBeLessThanOrEqual(2);
  }, 60_000);

  it('a key is limited across the three: perKey concurrency 2', async () => {
    const counter = `${suite.nextKey()}-counter`;
    const {
      workers: [a, b, c],
    } = await three({ perKey: { concurrency: 2 } }, { counter });
    for (const w of [a, b, c]) w.send({ op: 'schedule', n: 3, hold: true, key: 'hot' });
    await sleep(1_000);
    expect(Number(await suite.admin.get(counter))).toBe(2);
    expect([a, b, c].reduce((sum, w) => sum + w.count('start'), 0)).toBe(2);
    for (let round = 0; round < 6; round++) {
      for (const w of [a, b, c]) w.send({ op: 'release' });
      await sleep(200);
    }
    await Promise.all([a, b, c].map((w) => w.reach('done', 3)));
    const exits = await Promise.all([a, b, c].map((w) => w.exit()));
    expect(Math.max(...exits.map((line) => line.peak as number))).toBe(2);
  }, 60_000);

  it('the breaker opens for all on failures counted across them, lets one trial in, and closes for all', async () => {
    const {
      workers: [a, b, c],
    } = await three({ circuitBreaker: { threshold: 3, halfOpenAfter: 1_000 } });
    for (const w of [a, b, c]) w.send({ op: 'schedule', n: 1, fail: true });
    await Promise.all([a, b, c].map((w) => w.next('circuit_open')));
    await sleep(1_100);
    for (const w of [a, b, c]) w.send({ op: 'schedule', n: 2, hold: true });
    await sleep(1_000);
    expect([a, b, c].reduce((sum, w) => sum + w.count('start'), 0)).toBe(3 + 1);
    for (const w of [a, b, c]) w.send({ op: 'release' });
    await Promise.all([a, b, c].map((w) => w.next('circuit_closed')));
  }, 60_000);

  it('a trial whose process is SIGKILLed gives its place back after the lease', async () => {
    const leaseTime = 1_000;
    const {
      workers: [a, b, c],
    } = await three({ circuitBreaker: { threshold: 1, halfOpenAfter: 500 } }, { leaseTime });
    a.send({ op: 'schedule', n: 1, fail: true });
    await Promise.all([a, b, c].map((w) => w.next('circuit_open')));
    await sleep(600);
    a.send({ op: 'schedule', n: 1, hold: true });
    await a.reach('start', 2);
    a.child.kill('SIGKILL');
    const killedAt = Date.now();
    // b asks every 100 ms: refused while the dead trial's lease runs, then it is the trial.
    let started = false;
    while (!started && Date.now() - killedAt < 5_000) {
      b.send({ op: 'schedule', n: 1 });
      await sleep(100);
      started = b.count('start') > 0;
    }
    expect(started).toBe(true);
    const waited = Date.now() - killedAt;
    expect(waited).toBeGreaterThan(leaseTime / 2);
    await Promise.all([b, c].map((w) => w.next('circuit_closed')));
  }, 60_000);

  it('isolate() in one process holds the circuit open in all until reset() in another', async () => {
    const {
      workers: [a, b, c],
    } = await three({ circuitBreaker: {} });
    a.send({ op: 'isolate' });
    const opened = await Promise.all([b, c].map((w) => w.next('circuit_open')));
    expect(opened.map((line) => line.retryAt)).toEqual([null, null]);
    c.send({ op: 'schedule', n: 1 });
    await c.next('failed');
    b.send({ op: 'reset' });
    await Promise.all([a, c].map((w) => w.next('circuit_closed')));
    c.send({ op: 'schedule', n: 1 });
    await c.next('done');
  }, 60_000);

  it('survives a Redis restart with every control in use across three processes: no task hangs, failures are BackendErrors, limits resume', async () => {
    const {
      key,
      workers: [a, b, c],
    } = await three(
      {
        concurrency: 3,
        rateLimit: { perSecond: 200, burst: 10 },
        perKey: { concurrency: 2 },
        circuitBreaker: { threshold: 1_000 },
      },
      { leaseTime: 1_000, timeout: 300 },
    );
    const all = [a, b, c];
    // Every worker is sent one task every 20 ms, keyed k0 / k1; when each was asked, by id.
    const asked = all.map(() => new Map<number, number>());
    let stop = false;
    const stream = async (): Promise<void> => {
      for (let i = 0; !stop; i++) {
        all.forEach((w, n) => {
          asked[n]?.set((asked[n]?.size ?? 0) + 1, Date.now());
          w.send({ op: 'schedule', n: 1, key: `k${i % 2}`, taskMs: 10 });
        });
        await sleep(20);
      }
    };
    const streaming = stream();
    await sleep(500);
    a.send({ op: 'pause', ms: 100 });
    await suite.server.pause();
    a.send({ op: 'concurrency', value: 2 });
    await sleep(700);
    await suite.server.resume();
    const resumedAt = Date.now();
    await sleep(1_500);
    // The controls work again across the three: a limit and a pause made now reach all.
    const from = all.map((w) => w.lines.length);
    a.send({ op: 'concurrency', value: 4 });
    const changed = await Promise.all(
      [b, c].map((w, n) => w.next('limit_changed', 5_000, from[n + 1])),
    );
    expect(changed.map((line) => line.limit)).toEqual([4, 4]);
    c.send({ op: 'pause', ms: 200 });
    await Promise.all(all.map((w, n) => w.next('paused', 5_000, from[n])));
    stop = true;
    await streaming;
    // No task hangs: every one asked ends, done or failed.
    const ended = (w: Worker): number => w.count('done') + w.count('failed');
    await Promise.all(
      all.map(async (w, n) => {
        const deadline = Date.now() + 15_000;
        while (ended(w) < (asked[n]?.size ?? 0) && Date.now() < deadline) await sleep(50);
        expect(ended(w)).toBe(asked[n]?.size);
      }),
    );
    const outcomes = all.flatMap((w, n) =>
      w.lines
        .filter((line) => line.event === 'done' || line.event === 'failed')
        .map((line) => ({
          at: asked[n]?.get(line['id'] as number) ?? 0,
          outcome: line.event === 'done' ? 'done' : String(line['error']),
        })),
    );
    expect(outcomes.filter((o) => o.outcome !== 'done' && o.outcome !== 'BackendError')).toEqual(
      [],
    );
    expect(outcomes.some((o) => o.outcome === 'BackendError')).toBe(true);
    const late = outcomes.filter((o) => o.at > resumedAt + 1_000);
    expect(late.length).toBeGreaterThan(0);
    expect(late.every((o) => o.outcome === 'done')).toBe(true);
    const count = (kind: string): number => outcomes.filter((o) => o.outcome === kind).length;
    process.stderr.write(
      `restart under three processes: ${outcomes.length} tasks, ${count('done')} done, ${count('BackendError')} BackendError, ${late.length} asked 1 s after the restart all done\n`,
    );
    // The shared limit and the gate's slots follow the write made after the restart.
    expect(await suite.admin.get(`dovetail:${key}:limit`)).toBe('4');
    expect(await suite.admin.get(`dovetail:${key}:gate:limit`)).toBe('4');
    const exits = await Promise.all(all.map((w) => w.exit()));
    for (const exit of exits) {
      const stats = exit['stats'] as Record<string, number>;
      expect(stats['queued']).toBe(
        (stats['done'] ?? 0) + (stats['error'] ?? 0) + (stats['cancelled'] ?? 0),
      );
      expect(exit['state']).toBe('closed');
    }
  }, 90_000);
});
