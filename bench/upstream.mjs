// A real upstream for the latency benchmarks and their integration tests: a `node:http` server in a
// child process on a free loopback port, with `capacity` workers of `service` ms each and a FIFO
// queue behind them; a request arriving when `queueLimit` requests already wait gets a 503.
//
//   import { startUpstream } from './upstream.mjs';
//   const upstream = await startUpstream({ capacity: 8, service: 20, queueLimit: 64 });
//   await fetch(upstream.url);             // 200 after its turn in the queue and `service` ms
//   await upstream.configure({ capacity: 16 }); // mid-run; waiting requests start at once
//   const { requests, served, rejected, aborted } = await upstream.stats();
//   await upstream.stop();
//
// Run alone: `node bench/upstream.mjs [--capacity 8] [--service 20] [--queue-limit 64]
// [--tail-p 0.03 --tail-fast 10 --tail-slow 200 --seed 1] [--port N]` prints `listening <port>`.
//
// Modes. `fixed`: every request takes `service` ms. `tail`: `tailFast` ms (10), or `tailSlow` ms
// (200) with probability `tailP` (0.03), drawn from a seeded generator (mulberry32) so that every
// run sees the same sequence of slow requests (the n-th request to reach a worker gets the n-th draw).
//
// Counted: `requests` (every request to the work path), `served` (200s), `rejected` (503s), and
// `aborted`: requests whose client closed them before the response ended (the request's `close`
// with the response unfinished), whether they were waiting (dropped from the queue) or being served
// (their worker is freed at once, as a server that watches its client would). Also `maxBusy`,
// `maxQueued` and the current `busy` and `queued`.
//
// Paths: `GET /` (or any other path): the work; `GET /stats`: the counters as JSON;
// `POST /control?capacity=16&service=20&queueLimit=64&mode=tail&tailP=0.03`: changes the
// configuration (only the fields given) and answers it as JSON; `POST /reset`: zeroes the counters.
// With IPC (the `startUpstream` helper), the same over messages: { type: 'configure', config },
// { type: 'stats' }, { type: 'reset' }, { type: 'stop' }, each answered with the same `id`.
//
// The child exits when told to stop or when its parent goes away (IPC disconnect), and the helper
// holds no handle once `stop()` resolved: a test that awaits it leaves nothing behind.

import { fork } from 'node:child_process';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';

const self = fileURLToPath(import.meta.url);

/** The configuration keys, their defaults and how each is checked. */
const DEFAULTS = Object.freeze({
  capacity: 8,
  service: 20,
  queueLimit: 64,
  mode: 'fixed',
  tailFast: 10,
  tailSlow: 200,
  tailP: 0.03,
  seed: 1,
});

function checkConfig(config) {
  const out = {};
  for (const [key, raw] of Object.entries(config)) {
    if (raw === undefined) continue;
    if (!(key in DEFAULTS)) throw new TypeError(`unknown upstream option \`${key}\``);
    if (key === 'mode') {
      if (raw !== 'fixed' && raw !== 'tail')
        throw new RangeError(`\`mode\` must be 'fixed' or 'tail', received ${String(raw)}`);
      out[key] = raw;
      continue;
    }
    const value = typeof raw === 'string' ? Number(raw) : raw;
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0)
      throw new RangeError(`\`${key}\` must be a finite number >= 0, received ${String(raw)}`);
    if ((key === 'capacity' || key === 'queueLimit') && !Number.isInteger(value))
      throw new RangeError(`\`${key}\` must be an integer, received ${value}`);
    if (key === 'capacity' && value < 1)
      throw new RangeError(`\`capacity\` must be >= 1, received ${value}`);
    if (key === 'tailP' && value > 1)
      throw new RangeError(`\`tailP\` must be within [0, 1], received ${value}`);
    out[key] = value;
  }
  return out;
}

/** mulberry32: a small seeded generator of numbers in [0, 1). */
export function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The server itself, in this process. Returns { server, listen(port?), configure(config), stats(),
 * reset(), close() }. `startUpstream` runs it in a child process; this is for that child (and for
 * running it by hand).
 */
export function createUpstream(initial = {}) {
  const config = { ...DEFAULTS, ...checkConfig(initial) };
  let random = mulberry32(config.seed);
  // A FIFO with a head index (requests that left it early are marked and skipped).
  let queue = [];
  let head = 0;
  let queued = 0;
  let busy = 0;
  const counters = () => ({
    requests: 0,
    served: 0,
    rejected: 0,
    aborted: 0,
    abortedWaiting: 0,
    abortedServing: 0,
    maxBusy: 0,
    maxQueued: 0,
  });
  let count = counters();

  const serviceTime = () => {
    if (config.mode === 'fixed') return config.service;
    return random() < config.tailP ? config.tailSlow : config.tailFast;
  };

  const startNext = () => {
    while (busy < config.capacity && head < queue.length) {
      const job = queue[head];
      queue[head] = undefined;
      head += 1;
      if (job.gone) continue;
      queued -= 1;
      serve(job);
    }
    if (head > 1024 && head * 2 > queue.length) {
      queue = queue.slice(head);
      head = 0;
    }
  };

  const serve = (job) => {
    busy += 1;
    count.maxBusy = Math.max(count.maxBusy, busy);
    job.serving = true;
    const ms = serviceTime();
    job.timer = setTimeout(() => {
      job.timer = undefined;
      job.done = true;
      busy -= 1;
      count.served += 1;
      job.res.writeHead(200, { 'content-type': 'application/json' });
      job.res.end(`{"ok":true,"service":${ms}}`);
      startNext();
    }, ms);
  };

  const work = (req, res) => {
    count.requests += 1;
    if (busy >= config.capacity && queued >= config.queueLimit) {
      count.rejected += 1;
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end('{"ok":false,"error":"overloaded"}');
      return;
    }
    const job = { res, gone: false, serving: false, done: false, timer: undefined };
    // The client closing the request before the response ended: a timeout or a hedge's loser.
    res.once('close', () => {
      if (job.done || res.writableFinished) return;
      count.aborted += 1;
      job.gone = true;
      if (job.serving) {
        count.abortedServing += 1;
        if (job.timer !== undefined) clearTimeout(job.timer);
        job.timer = undefined;
        job.done = true;
        busy -= 1;
        startNext();
      } else {
        count.abortedWaiting += 1;
        queued -= 1;
      }
    });
    if (busy < config.capacity) serve(job);
    else {
      queue.push(job);
      queued += 1;
      count.maxQueued = Math.max(count.maxQueued, queued);
    }
  };

  const api = {
    configure(change) {
      const checked = checkConfig(change);
      Object.assign(config, checked);
      if (checked.seed !== undefined) random = mulberry32(config.seed);
      startNext();
      return { ...config };
    },
    stats: () => ({ ...count, busy, queued, config: { ...config } }),
    reset() {
      count = counters();
      random = mulberry32(config.seed);
      return api.stats();
    },
  };

  const json = (res, status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://upstream');
    if (url.pathname === '/stats') return json(res, 200, api.stats());
    if (url.pathname === '/reset' && req.method === 'POST') return json(res, 200, api.reset());
    if (url.pathname === '/control' && req.method === 'POST') {
      try {
        return json(res, 200, api.configure(Object.fromEntries(url.searchParams)));
      } catch (error) {
        return json(res, 400, { error: error.message });
      }
    }
    req.resume();
    return work(req, res);
  });
  // Many short requests from a pool of keep-alive connections: no idle cut while a run pauses.
  server.keepAliveTimeout = 60_000;

  return {
    server,
    ...api,
    listen(port = 0) {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', () => {
          server.off('error', reject);
          resolve(server.address().port);
        });
      });
    },
    close() {
      for (const job of queue.slice(head)) if (job !== undefined && !job.gone) job.res.destroy();
      queue = [];
      head = 0;
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * Starts the server in a child process and resolves once it listens. The handle:
 * { port, url, pid, configure(config) -> config, stats() -> counters, reset(), stop() }.
 * `options` are the initial configuration (see DEFAULTS); `options.port` a fixed port (default: a
 * free one).
 */
export function startUpstream(options = {}) {
  const { port = 0, ...config } = options;
  checkConfig(config);
  const child = fork(self, ['--serve-ipc'], {
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    env: { ...process.env, DOVETAIL_UPSTREAM_CONFIG: JSON.stringify({ ...config, port }) },
  });
  let next = 0;
  const waiting = new Map();
  let exited = false;
  const exit = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      exited = true;
      for (const { reject } of waiting.values())
        reject(new Error(`upstream exited (${signal ?? code})`));
      waiting.clear();
      resolve();
    }),
  );
  child.on('message', (message) => {
    const entry = waiting.get(message.id);
    if (entry === undefined) return;
    waiting.delete(message.id);
    if (message.error !== undefined) entry.reject(new Error(message.error));
    else entry.resolve(message.result);
  });
  const call = (type, payload) =>
    new Promise((resolve, reject) => {
      if (exited) return reject(new Error('upstream is not running'));
      const id = ++next;
      waiting.set(id, { resolve, reject });
      child.send({ type, id, ...payload });
    });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    void exit.then(() => reject(new Error('upstream exited before it listened')));
    const ready = (message) => {
      if (message.type !== 'listening') return;
      child.off('message', ready);
      resolve({
        port: message.port,
        url: `http://127.0.0.1:${message.port}/`,
        pid: child.pid,
        configure: (change) => call('configure', { config: change }),
        stats: () => call('stats'),
        reset: () => call('reset'),
        async stop() {
          if (!exited) {
            // The child answers once its server closed, then leaves; a kill only if it hangs.
            const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
            await call('stop').catch(() => undefined);
            await exit;
            clearTimeout(timer);
          }
        },
      });
    };
    child.on('message', ready);
  });
}

async function serveIpc() {
  const { port, ...config } = JSON.parse(process.env.DOVETAIL_UPSTREAM_CONFIG ?? '{}');
  const upstream = createUpstream(config);
  const actual = await upstream.listen(port);
  process.on('disconnect', () => void upstream.close().then(() => process.exit(0)));
  process.on('message', (message) => {
    const answer = (result) => process.send({ id: message.id, result });
    try {
      if (message.type === 'configure') answer(upstream.configure(message.config ?? {}));
      else if (message.type === 'stats') answer(upstream.stats());
      else if (message.type === 'reset') answer(upstream.reset());
      else if (message.type === 'stop')
        void upstream.close().then(() => {
          answer(true);
          process.disconnect();
          process.exit(0);
        });
      else throw new TypeError(`unknown message ${String(message.type)}`);
    } catch (error) {
      process.send({ id: message.id, error: error.message });
    }
  });
  process.send({ type: 'listening', port: actual });
}

async function serveCli(argv) {
  const names = {
    '--capacity': 'capacity',
    '--service': 'service',
    '--queue-limit': 'queueLimit',
    '--mode': 'mode',
    '--tail-fast': 'tailFast',
    '--tail-slow': 'tailSlow',
    '--tail-p': 'tailP',
    '--seed': 'seed',
  };
  const config = {};
  let port = 0;
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i];
    const value = argv[i + 1];
    if (name === '--port') port = Number(value);
    else if (name in names) config[names[name]] = name === '--mode' ? value : Number(value);
    else throw new TypeError(`unknown argument ${name}`);
  }
  if (config.tailP !== undefined && config.mode === undefined) config.mode = 'tail';
  const upstream = createUpstream(config);
  const actual = await upstream.listen(port);
  process.stdout.write(`listening ${actual}\n`);
  for (const signal of ['SIGINT', 'SIGTERM'])
    process.once(signal, () => void upstream.close().then(() => process.exit(0)));
}

if (process.argv[1] === self) {
  if (process.argv[2] === '--serve-ipc') await serveIpc();
  else await serveCli(process.argv.slice(2));
}
