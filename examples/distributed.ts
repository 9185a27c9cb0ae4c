// Three processes, one limit: each worker runs 150 tasks under
//   new Dovetail({ concurrency: 10, rateLimit: { perSecond: 200, burst: 10 }, backend: redisBackend(redis, { key }) })
// and the three share that limit through Redis. Prints the combined start rate and the peak
// combined concurrency. Run: npx tsx examples/distributed.ts
// Uses REDIS_URL when set; otherwise starts a throwaway redis-server on a free loopback port
// (Debian/Ubuntu: apt-get install -y redis-server).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
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
} finally {
  own?.stop();
}
