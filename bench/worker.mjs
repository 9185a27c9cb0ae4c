// Runs ONE workload with ONE library in this (fresh) process and prints one JSON line.
// Started by bench/run.mjs: node bench/worker.mjs '<spec json>'
//   spec: { workload, lib, mode: 'schedule'|'map'|'iterate', n, concurrency, sleep?,
//           rateLimit?, full?, scopedListeners?, baseline? }
//   baseline: for lib 'dovetail-base', the path of another build's dist/index.js.
// The workload code below is the same for every library; only the adapter differs.

import { adapterFor } from './adapters.mjs';

const spec = JSON.parse(process.argv[2]);
const create = await adapterFor(spec.lib, spec.baseline);
const adapter = create({
  concurrency: spec.concurrency ?? Infinity,
  rateLimit: spec.rateLimit,
  full: spec.full === true,
  scopedListeners: spec.scopedListeners ?? 0,
});

const identity = async (x) => x;
const sleeper = (ms) => (x) => new Promise((resolve) => setTimeout(resolve, ms, x));

async function* generate(n) {
  for (let i = 0; i < n; i++) yield i;
}

/** Runs `fn` over 0..n-1 in the spec's mode; resolves with how many results came back. */
async function drive(fn, n) {
  if (spec.mode === 'iterate') {
    let count = 0;
    for await (const _ of adapter.iterate(fn, generate(n))) count += 1;
    return count;
  }
  const items = Array.from({ length: n }, (_, i) => i);
  const results =
    spec.mode === 'map'
      ? await adapter.map(fn, items)
      : await Promise.all(items.map((x) => adapter.schedule(fn, x)));
  return results.length;
}

function check(count, n) {
  if (count !== n) throw new Error(`${spec.lib}: ${count} results for ${n} tasks`);
}

const out = {};
const n = spec.n;
if (spec.workload === 'overhead') {
  // W1, W1b, W6: no-op tasks; wall time per task.
  const t0 = process.hrtime.bigint();
  check(await drive(identity, n), n);
  out.ms = Number(process.hrtime.bigint() - t0) / 1e6;
  out.nsPerTask = (out.ms * 1e6) / n;
} else if (spec.workload === 'sleep') {
  // W2-W4: every task sleeps `sleep` ms (a real timer); ceiling = ideal / actual.
  const ideal = Math.ceil(n / spec.concurrency) * spec.sleep;
  const t0 = performance.now();
  check(await drive(sleeper(spec.sleep), n), n);
  out.ms = performance.now() - t0;
  out.ideal = ideal;
  out.ceiling = ideal / out.ms;
} else if (spec.workload === 'rate') {
  // W5: start times against the ideal token bucket: `burst` at t0, then one every 1000/perSecond ms.
  const { perSecond, burst } = spec.rateLimit;
  const starts = [];
  const record = async (x) => {
    starts.push(performance.now());
    return x;
  };
  const t0 = performance.now();
  check(await drive(record, n), n);
  const interval = 1000 / perSecond;
  starts.sort((a, b) => a - b);
  let deviation = 0;
  for (let i = 0; i < starts.length; i++) {
    const ideal = i < burst ? 0 : (i - burst + 1) * interval;
    deviation = Math.max(deviation, Math.abs(starts[i] - t0 - ideal));
  }
  // Most starts inside any sliding one-second window (a fixed window lets two windows' worth by).
  let windowMax = 0;
  for (let i = 0, j = 0; i < starts.length; i++) {
    while (starts[i] - starts[j] >= 1000) j += 1;
    windowMax = Math.max(windowMax, i - j + 1);
  }
  const last = starts[starts.length - 1] - t0;
  out.ms = last;
  out.rate = ((n - burst) * 1000) / last;
  out.deviation = deviation;
  out.windowMax = windowMax;
} else {
  throw new Error(`unknown workload ${spec.workload}`);
}
await adapter.close?.();
// Peak RSS of this process (the child), in MB: resourceUsage().maxRSS is in kilobytes.
out.rssMB = process.resourceUsage().maxRSS / 1024;
process.stdout.write(`${JSON.stringify(out)}\n`);
