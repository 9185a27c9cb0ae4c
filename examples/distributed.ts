// Three processes, one limit: each worker runs 150 tasks under
//   new Dovetail({ concurrency: 10, rateLimit: { perSecond: 200, burst: 10 }, backend: redisBackend(redis, { key }) })
// and the three share that limit through Redis. Prints the combined start rate and the peak
// combined concurrency. Then the three call a local HTTP upstream that answers one request with
// 429 and Retry-After: 1: the worker that gets it pauses the shared instance (retryDelay reads
// retryAfter() and calls pause()), and all three hold their requests for that second.
// Run: npx tsx examples/distributed.ts
// Uses REDIS_URL when set; otherwise starts a throwaway redis-server on a free loopback port
// (Debian/Ubuntu: apt-get install -y redis-server).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const WORKERS = 3;
const TASKS = 150;
const CONCURRENCY = 10;
const PER_SECOND = 200;
const BURST = 10;

interface Report {
  pid: number;
  starts: number[];
  peak: number;
  waited: number;
  stats: Record<string, number>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        resolve(typeof address === 'object' && address !== null ? address.port : 0),
      );
    });
  });
}

async function startRedis(): Promise<{ url: string; stop: () => void }> {
  if (spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status !== 0) {
    console.error(
      'No redis-server: set REDIS_URL, or install one (apt-get install -y redis-server).',
    );
    process.exit(1);
  }
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'dovetail-example-'));
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
    {
      stdio: 'ignore',
    },
  );
  for (let i = 0; ; i += 1) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect({ port, host: '127.0.0.1' });
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => resolve(false));
    });
    if (up) break;
    if (i > 200) throw new Error('redis-server did not start');
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

function runWorker(env: Record<string, string>): Promise<Report> {
  const worker = fileURLToPath(new URL('./distributed-worker.ts', import.meta.url));
  // The same loader flags as this process (tsx), so the worker runs TypeScript too.
  const child = spawn(process.execPath, [...process.execArgv, worker], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => {
      if (code === 0) resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as Report);
      else reject(new Error(`worker exited with code ${code}`));
    });
  });
}

const own = process.env['REDIS_URL'] === undefined ? await startRedis() : undefined;
const url = process.env['REDIS_URL'] ?? own?.url ?? '';
const key = `example-${process.pid}`;
try {
  const reports = await Promise.all(
    Array.from({ length: WORKERS }, () =>
      runWorker({ REDIS_URL: url, DOVETAIL_KEY: key, TASKS: String(TASKS) }),
    ),
  );
  const starts = reports.flatMap((r) => r.starts).sort((a, b) => a - b);
  const span = (starts[starts.length - 1] ?? 0) - (starts[0] ?? 0);
  // After the burst, tokens come at perSecond: that is the rate to compare.
  const rate = ((starts.length - BURST) / span) * 1000;
  const peak = Math.max(...reports.map((r) => r.peak));
  for (const r of reports) {
    console.log(
      `worker ${r.pid}: ${r.stats['done']} done, ${r.stats['throttled']} throttled, waited ${Math.round(r.waited)} ms in all, saw ${r.peak} running at most`,
    );
  }
  console.log(`combined: ${starts.length} tasks in ${Math.round(span)} ms`);
  console.log(`combined start rate: ${rate.toFixed(1)}/s (limit ${PER_SECOND}/s, burst ${BURST})`);
  console.log(`peak combined concurrency: ${peak} (limit ${CONCURRENCY})`);
  // Above either limit would mean the processes did not share it (3% for timer granularity).
  const ok = peak <= CONCURRENCY && rate <= PER_SECOND * 1.03;
  console.log(
    ok ? 'OK: the three processes shared one limit.' : 'FAILED: a shared limit was exceeded.',
  );
  process.exitCode = ok ? 0 : 1;
  if (!(await oneRetryAfterPausesAll(url, key))) process.exitCode = 1;
} finally {
  own?.stop();
}

/**
 * Part two: a local upstream answers its 20th request with 429 and `Retry-After: 1`. The worker
 * that gets it pauses the shared instance; every worker's `paused` fires, and no request of any
 * worker reaches the upstream until the second is over.
 */
async function oneRetryAfterPausesAll(redisUrl: string, name: string): Promise<boolean> {
  const seen: { at: number; worker: string; status: number }[] = [];
  let refusedAt = 0;
  const upstream = createHttpServer((request, response) => {
    const worker = String(request.headers['x-worker']);
    if (seen.length === 19) {
      refusedAt = Date.now();
      seen.push({ at: refusedAt, worker, status: 429 });
      response.writeHead(429, { 'Retry-After': '1' }).end();
      return;
    }
    seen.push({ at: Date.now(), worker, status: 200 });
    setTimeout(() => response.writeHead(200).end('ok'), 20);
  });
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const worker = fileURLToPath(new URL('./distributed-worker.ts', import.meta.url));
  const children = Array.from({ length: WORKERS }, () =>
    spawn(process.execPath, [...process.execArgv, worker], {
      env: { ...process.env, REDIS_URL: redisUrl, DOVETAIL_KEY: name, TASKS: '20', UPSTREAM: base },
      stdio: ['pipe', 'pipe', 'inherit'],
    }),
  );
  const outputs = children.map((child) => {
    let out = '';
    child.stdout.setEncoding('utf8');
    const ready = new Promise<void>((resolve) =>
      child.stdout.on('data', (chunk: string) => {
        out += chunk;
        if (out.includes('ready')) resolve();
      }),
    );
    const done = new Promise<{ got429: number; paused: number[] }>((resolve, reject) =>
      child.once('exit', (code) =>
        code === 0
          ? resolve(
              JSON.parse(out.trim().split('\n').pop() ?? '{}') as {
                got429: number;
                paused: number[];
              },
            )
          : reject(new Error(`worker exited with code ${code}`)),
      ),
    );
    return { ready, done };
  });
  await Promise.all(outputs.map((o) => o.ready));
  // Each worker's subscriber is listening by now; all start together.
  await new Promise((resolve) => setTimeout(resolve, 300));
  for (const child of children) child.stdin.end('go\n');
  const reports = await Promise.all(outputs.map((o) => o.done));
  upstream.close();
  // Requests already sent when the 429 came back may land just after it; none later than that
  // until the Retry-After second is over.
  const during = seen.filter((s) => s.at > refusedAt + 100 && s.at < refusedAt + 950);
  const pausedAll = reports.every((r) => r.paused.length > 0);
  console.log(
    `429 to one worker: ${reports.filter((r) => r.got429 > 0).length} worker got it, ${reports.filter((r) => r.paused.length > 0).length} of ${WORKERS} paused, ${during.length} requests reached the upstream during the Retry-After second, ${seen.length} requests in all`,
  );
  const ok = pausedAll && during.length === 0 && seen.length === WORKERS * 20 + 1;
  console.log(
    ok
      ? 'OK: one 429 paused every worker for its Retry-After.'
      : 'FAILED: a worker went on during the pause.',
  );
  return ok;
}
