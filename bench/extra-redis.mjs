// The dovetailjs/redis benchmark: `node bench/extra-redis.mjs [--quick]` (after `npm run build`),
// also run by `npm run bench`, which appends the markdown section it prints on stdout.
//
// 1. Overhead per task of the shared gate (acquire + release through Redis on loopback), and of
//    the shared bucket (one token per task), in one process: no-op tasks, Dovetail with its
//    in-process limits, Dovetail with dovetailjs/redis, and bottleneck with its Redis clustering
//    (the same limit, datastore 'ioredis').
// 2. Three processes sharing one concurrency limit of 30 on tasks that each take 5 ms (ideal:
//    6 000 tasks/s): the combined throughput, and the peak combined concurrency seen in Redis.
// 3. What Redis pays: 3, 10 and 20 processes sharing one limit of 5 on tasks of 100 ms (ideal:
//    50 tasks/s), and 10 processes sharing one bucket: the Redis commands per finished task (per
//    token), read from `INFO commandstats` (reset with `CONFIG RESETSTAT` just before the start
//    line, so process start-up is not counted; every command a script runs counts, as Redis
//    counts it; the INCR/DECR of the tasks' own concurrency probe are left out), throughput, and
//    the peak combined concurrency / the start rate.
//
// Uses REDIS_URL when set, else starts a throwaway redis-server on a free loopback port; without
// one (and without REDIS_URL) it prints a section saying so and exits 0.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import os, { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRate } from './rate.mjs';

const quick = process.argv.includes('--quick');
// Only part 3 (what Redis pays).
const costOnly = process.argv.includes('--cost');
const childIndex = process.argv.indexOf('--child');
const now = () => Number(process.hrtime.bigint()) / 1e6;
const log = (text) => process.stderr.write(`    ${text}\n`);

const { Dovetail } = await import('../dist/index.js');
const { redisBackend } = await import('../dist/redis/index.js');
const { Redis } = await import('ioredis');
const Bottleneck = (await import('bottleneck')).default;

// Waits until `at` (process.hrtime, the same clock in every process): a common start line.
const until = (at) =>
  new Promise((resolve) => setTimeout(resolve, at === undefined ? 0 : Math.max(0, at - now())));

// Without a start line given: says 'ready' and waits for the parent to send one (the cases
// whose start-up under load could outlast any fixed line).
const go = async () => {
  process.stdout.write('ready\n');
  for await (const chunk of process.stdin) return Number(String(chunk).trim());
  return undefined;
};

// ---- one library, one workload, in this process ----------------------------------------------

/**
 * Runs `tasks` tasks of `taskMs` ms (0: a no-op) under a limit of `concurrency` (and a bucket of
 * `perSecond` when given), with `lib` = 'local' | 'redis' | 'bottleneck'. Returns timings and the
 * peak running count recorded in Redis (INCR/DECR on `counter`) when `counter` is given.
 */
async function workload({
  lib,
  url,
  key,
  tasks,
  taskMs,
  concurrency,
  perSecond,
  burst,
  counter,
  startAt,
  every,
}) {
  const redis = new Redis(url);
  let peak = 0;
  const body = async () => {
    if (counter !== undefined) peak = Math.max(peak, await redis.incr(counter));
    if (taskMs > 0) await new Promise((resolve) => setTimeout(resolve, taskMs));
    if (counter !== undefined) await redis.decr(counter);
  };
  const items = Array.from({ length: tasks }, (_, i) => i);
  let start;
  let end;
  const starts = [];
  if (lib === 'bottleneck') {
    const limiter = new Bottleneck({
      id: key,
      datastore: 'ioredis',
      clientOptions: { host: new URL(url).hostname, port: Number(new URL(url).port) },
      maxConcurrent: concurrency,
      ...(perSecond === undefined
        ? {}
        : {
            reservoir: perSecond,
            reservoirRefreshAmount: perSecond,
            reservoirRefreshInterval: 1000,
          }),
    });
    await limiter.ready();
    await until(startAt);
    start = now();
    await Promise.all(items.map(() => limiter.schedule(body)));
    end = now();
    await limiter.disconnect();
  } else {
    const dvt = new Dovetail({
      autoRegister: false,
      shutdownOnExit: false,
      ...(concurrency === undefined ? {} : { concurrency }),
      ...(perSecond === undefined ? {} : { rateLimit: { perSecond, burst: burst ?? perSecond } }),
      ...(lib === 'redis' ? { backend: redisBackend(redis, { key }) } : {}),
    });
    await redis.ping();
    await until(startAt ?? (await go()));
    start = now();
    const run = async () => {
      starts.push(now());
      await body();
    };
    if (every === undefined) await dvt.task.map(run, items);
    else {
      // One task every `every` ms: the tokens are asked for one at a time.
      const pending = [];
      for (const _ of items) {
        pending.push(dvt.task.schedule(run));
        await new Promise((resolve) => setTimeout(resolve, every));
      }
      await Promise.all(pending);
    }
    end = now();
    await dvt.shutdown();
  }
  await redis.quit();
  return { start, end, peak, tasks, starts };
}

if (childIndex >= 0) {
  const result = await workload(JSON.parse(process.argv[childIndex + 1]));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}

// ---- the parent: a server, the cases, the markdown --------------------------------------------

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) return undefined;
  const port = await freePort();
  const dir = mkdtempSync(path.join(tmpdir(), 'dovetail-bench-'));
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 400; i += 1) {
    const up = await new Promise((resolve) => {
      const socket = connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (up) break;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: () => {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Runs one child with `config`; with `ready` (a promise's resolve), its 'ready' line resolves it
 * with a function that sends the start line.
 */
function child(config, ready) {
  return new Promise((resolve, reject) => {
    const proc = spawn(
      process.execPath,
      [fileURLToPath(import.meta.url), '--child', JSON.stringify(config)],
      {
        stdio: [ready === undefined ? 'ignore' : 'pipe', 'pipe', 'inherit'],
      },
    );
    let out = '';
    proc.stdout.on('data', (d) => {
      out += d;
      if (ready !== undefined && out.startsWith('ready\n')) {
        ready((at) => proc.stdin.end(`${at}\n`));
        ready = undefined;
      }
    });
    proc.on('close', (code) =>
      code === 0
        ? resolve(JSON.parse(out.trim().split('\n').pop()))
        : reject(new Error(`child exited ${code}`)),
    );
  });
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

const own = process.env.REDIS_URL === undefined ? await startRedis() : undefined;
const url = process.env.REDIS_URL ?? own?.url;
if (url === undefined) {
  process.stdout.write(
    '## Shared limits on Redis (dovetailjs/redis)\n\nSkipped: no redis-server here and no REDIS_URL (apt-get install -y redis-server).\n',
  );
  process.exit(0);
}

const runs = quick ? 1 : 3;
const perTaskN = quick ? 500 : 2000;
const sharedN = quick ? 300 : 1000;
let seq = 0;
const key = (name) => `bench-${process.pid}-${name}-${++seq}`;
const lines = [];
const say = (...text) => lines.push(...text);

try {
  // 1. overhead per task, one process (each case in a fresh process)
  const perTask = [];
  const cases = costOnly
    ? []
    : [
        ['gate, concurrency 1', { concurrency: 1 }],
        ['gate, concurrency 16', { concurrency: 16 }],
        ['bucket, one token per task', { concurrency: 16, perSecond: 1e6 }],
      ];
  for (const [label, limits] of cases) {
    const row = { label };
    for (const lib of ['local', 'redis', 'bottleneck']) {
      if (lib === 'bottleneck' && limits.perSecond !== undefined) {
        row[lib] = undefined; // bottleneck's reservoir refills by interval: no per-token equivalent
        continue;
      }
      const times = [];
      for (let r = 0; r < runs; r += 1) {
        log(`per-task: ${label}, ${lib}, run ${r + 1}`);
        const result = await child({
          lib,
          url,
          key: key(lib),
          tasks: perTaskN,
          taskMs: 0,
          ...limits,
        });
        times.push(((result.end - result.start) * 1000) / result.tasks);
      }
      row[lib] = median(times);
    }
    perTask.push(row);
  }

  // 2. three processes, one limit of 30, 5 ms tasks
  const shared = [];
  const concurrency = 30;
  for (const lib of costOnly ? [] : ['local', 'redis', 'bottleneck']) {
    const results = [];
    for (let r = 0; r < runs; r += 1) {
      log(`3 processes: ${lib}, run ${r + 1}`);
      const k = key(lib);
      // 'local' is the reference without sharing: each process has its own third of the limit.
      const limit = lib === 'local' ? concurrency / 3 : concurrency;
      // All three start together, once they are up (process start-up is not measured).
      const startAt = now() + 2000;
      const reports = await Promise.all(
        [0, 1, 2].map(() =>
          child({
            lib,
            url,
            key: k,
            tasks: sharedN,
            taskMs: 5,
            concurrency: limit,
            counter: `${k}:running`,
            startAt,
          }),
        ),
      );
      const start = Math.min(...reports.map((x) => x.start));
      const end = Math.max(...reports.map((x) => x.end));
      results.push({
        rate: (3 * sharedN * 1000) / (end - start),
        peak: Math.max(...reports.map((x) => x.peak)),
      });
    }
    results.sort((a, b) => a.rate - b.rate);
    shared.push({ lib, ...results[Math.floor(results.length / 2)] });
  }

  // 3. what Redis pays, from INFO commandstats
  const admin = new Redis(url);
  const commandstats = async () => {
    const text = await admin.info('commandstats');
    const counts = {};
    for (const [, name, calls] of text.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) {
      // The parent's own, and the workload's (its probe, its client's ping and quit).
      const harness = ['config|resetstat', 'info', 'incr', 'decr', 'ping', 'quit'];
      if (!harness.includes(name)) counts[name] = Number(calls);
    }
    return counts;
  };
  // `procs` children on one start line, set once they are all up; the counts reset just before.
  const together = async (procs, config) => {
    const starters = [];
    const up = [];
    const children = Array.from({ length: procs }, () => {
      up.push(new Promise((resolve) => starters.push(resolve)));
      return child(config, (start) => starters.shift()(start));
    });
    const starts = await Promise.all(up);
    const at = now() + 200;
    await admin.config('RESETSTAT');
    for (const start of starts) start(at);
    return Promise.all(children);
  };
  const sum = (counts) => Object.values(counts).reduce((a, b) => a + b, 0);
  const costTasks = quick ? 200 : 600;
  const cost = [];
  const gateLimit = 5;
  for (const procs of [3, 10, 20]) {
    const results = [];
    for (let r = 0; r < runs; r += 1) {
      log(`cost: gate, ${procs} processes, run ${r + 1}`);
      const k = key('cost');
      const done = await together(procs, {
        lib: 'redis',
        url,
        key: k,
        tasks: Math.round(costTasks / procs),
        taskMs: 100,
        concurrency: gateLimit,
        counter: `${k}:running`,
      });
      const counts = await commandstats();
      const tasks = done.reduce((a, x) => a + x.tasks, 0);
      const start = Math.min(...done.map((x) => x.start));
      const end = Math.max(...done.map((x) => x.end));
      results.push({
        perTask: sum(counts) / tasks,
        rate: (tasks * 1000) / (end - start),
        perSecond: (sum(counts) * 1000) / (end - start),
        peak: Math.max(...done.map((x) => x.peak)),
        counts,
        tasks,
      });
    }
    results.sort((a, b) => a.perTask - b.perTask);
    cost.push({ procs, ...results[Math.floor(results.length / 2)] });
  }
  const bucketProcs = 10;
  const bucketRate = 500;
  const bucketTokens = quick ? 500 : 1500;
  // All at once (each process's tasks queue for tokens), and one at a time (each process asks
  // 40 a second, together below the quota, so no reservation waits for another).
  const bucketCases = [
    ['all at once', { tasks: bucketTokens / bucketProcs }],
    ['one at a time, 40/s per process', { tasks: bucketTokens / bucketProcs / 2, every: 25 }],
  ];
  const bucketRows = [];
  for (const [label, shape] of bucketCases) {
    const rows = [];
    for (let r = 0; r < runs; r += 1) {
      log(`cost: bucket, ${bucketProcs} processes, ${label}, run ${r + 1}`);
      const done = await together(bucketProcs, {
        lib: 'redis',
        url,
        key: key('bucket'),
        taskMs: 0,
        perSecond: bucketRate,
        burst: 10,
        ...shape,
      });
      const counts = await commandstats();
      const tokens = done.reduce((a, x) => a + x.tasks, 0);
      // After the burst, one start per token: the slope of start time against start number.
      const ys = done
        .flatMap((x) => x.starts)
        .sort((a, b) => a - b)
        .slice(10);
      rows.push({ perToken: sum(counts) / tokens, rate: startRate(ys), counts, tokens });
    }
    rows.sort((a, b) => a.perToken - b.perToken);
    bucketRows.push({
      label,
      queued: shape.every === undefined,
      ...rows[Math.floor(rows.length / 2)],
    });
  }
  await admin.quit();
  const breakdown = (counts, n) =>
    Object.entries(counts)
      .sort((a, b) => b[1] - a[1])
      .map(([name, calls]) => `${name} ${(calls / n).toFixed(2)}`)
      .join(', ');

  const us = (v) => (v === undefined ? '–' : `${v.toFixed(1)} µs`);
  const sections12 = () => [
    `### Time per no-op task in one process (${perTaskN} tasks)`,
    '',
    '| limit | local | redis | bottleneck |',
    '| --- | ---: | ---: | ---: |',
    ...perTask.map((r) => `| ${r.label} | ${us(r.local)} | ${us(r.redis)} | ${us(r.bottleneck)} |`),
    '',
    'The gate costs a BLMOVE (on a connection of its own, several in flight while slots are free) and an LMOVE ' +
      '(not awaited) per task; the bucket one script call per batch of reservations asked for during the previous ' +
      'one. The machine load during the run (1-minute average) was ' +
      os.loadavg()[0].toFixed(1) +
      ` on ${os.cpus().length} cores.`,
    '',
    `### Three processes sharing one limit of ${concurrency} (${3 * sharedN} tasks of 5 ms; ideal ${(concurrency / 5) * 1000} tasks/s)`,
    '',
    '| library | tasks/s | peak combined running (seen in Redis) |',
    '| --- | ---: | ---: |',
    ...shared.map(
      (r) =>
        `| ${r.lib === 'local' ? 'local (no sharing: ' + concurrency / 3 + ' per process)' : r.lib} | ${Math.round(r.rate)} | ${r.peak} |`,
    ),
    '',
  ];
  say(
    '## Shared limits on Redis (dovetailjs/redis)',
    '',
    `Redis on loopback (${own === undefined ? 'REDIS_URL' : 'a redis-server started for the run'}), ${runs} run(s) per case, median; each case in a fresh process. ` +
      '`local`: Dovetail with its in-process limits; `redis`: Dovetail with `dovetailjs/redis`; ' +
      "`bottleneck`: bottleneck 2 with `datastore: 'ioredis'` and the same limit.",
    '',
    ...(costOnly ? [] : sections12()),
    `### What Redis pays: one limit of ${gateLimit}, tasks of 100 ms (ideal 50 tasks/s), ${costTasks} tasks in all`,
    '',
    '| processes | Redis commands per task | commands/s | tasks/s | peak combined running (seen in Redis) |',
    '| ---: | ---: | ---: | ---: | ---: |',
    ...cost.map(
      (r) =>
        `| ${r.procs} | ${r.perTask.toFixed(2)} | ${Math.round(r.perSecond)} | ${r.rate.toFixed(1)} | ${r.peak} |`,
    ),
    '',
    ...cost.map((r) => `- ${r.procs} processes, per task: ${breakdown(r.counts, r.tasks)}`),
    '',
    `### What Redis pays: ${bucketProcs} processes, one bucket of ${bucketRate}/s (burst 10)`,
    '',
    '| tokens asked for | Redis commands per token | start rate | off the quota |',
    '| --- | ---: | ---: | ---: |',
    ...bucketRows.map(
      (b) =>
        `| ${b.label} | ${b.perToken.toFixed(2)} | ${b.rate.toFixed(1)}/s | ${b.queued ? ((Math.abs(b.rate - bucketRate) / bucketRate) * 100).toFixed(1) + '%' : '– (below the quota)'} |`,
    ),
    '',
    ...bucketRows.map((b) => `- ${b.label}, per token: ${breakdown(b.counts, b.tokens)}`),
    '',
    'The start rate is the slope of start time against start number after the burst (least squares), on wall-clock ' +
      'starts: on a loaded machine timers fire late and in clumps, so read it as a check, not a precise figure.',
    '',
    'Counted by Redis (`INFO commandstats`, every command a script runs included), from `CONFIG RESETSTAT` at the start ' +
      "line to the last process's exit (its shutdown included); the workload's own commands (the INCR/DECR " +
      "probe, its client's PING and QUIT) are left out. " +
      `Machine load (1-minute average) at the end: ${os.loadavg()[0].toFixed(1)} on ${os.cpus().length} cores.`,
    '',
    'Reproduce: `npm run build && node bench/extra-redis.mjs` (or `--quick`; `--cost` for this last part alone).',
    '',
  );
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  own?.stop();
}
