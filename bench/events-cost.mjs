// What the event path costs when nobody listens (issue 4, "Cost"): W1 (100 000 tasks of
// `async x => x` through `schedule`, concurrency 100, all submitted at once) on the built package
// as it is, against a copy of the same build whose `Events.wants()` answers `false` at once, so
// that no emission call does anything (no payload, no listener lookup, no trace, no channel
// check). Counters still count in both: they are not part of the event path.
//
//   node bench/events-cost.mjs [--runs 9] [--n 100000] [--concurrency 100] [--listener] [--paired]
//
// Each run is a fresh process; the two builds alternate (A B A B ...) so that drift on a shared
// machine hits both alike. Prints the median ns per task of each build and their ratio.
// --listener adds a third case for scale: the real build with one unscoped `done` listener.
// --paired adds a paired comparison: both builds in one process, warmed up, passes alternating.
// Last, the event path's own calls are timed in isolation (a listener-less bus, 10 M loops): on a
// machine where other processes compete for the cores, that bound is sharper than any W1 ratio.
// Builds dist/ first when it is missing or stale (under the same lock as the child-process tests).

import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.join(here, '..');
const argv = process.argv.slice(2);
const option = (name, fallback) => {
  const at = argv.indexOf(name);
  return at >= 0 && argv[at + 1] !== undefined ? Number(argv[at + 1]) : fallback;
};

/** One W1 pass through `Dovetail`: wall and CPU ns per task. */
async function w1(Dovetail, n, concurrency, listener) {
  const dvt = new Dovetail({ concurrency });
  let heard = 0;
  if (listener) dvt.events.on('done', () => void (heard += 1));
  const identity = async (x) => x;
  const items = Array.from({ length: n }, (_, i) => i);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const results = await Promise.all(items.map((x) => dvt.task.schedule(identity, x)));
  const ns = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  await dvt.shutdown();
  if (results.length !== n) throw new Error(`${results.length} results for ${n} tasks`);
  if (listener && heard !== n) throw new Error(`listener heard ${heard} of ${n}`);
  return { nsPerTask: ns / n, cpuNsPerTask: ((cpu.user + cpu.system) * 1000) / n };
}

const load = async (dir) => (await import(pathToFileURL(path.join(dir, 'index.js')).href)).Dovetail;

if (argv[0] === '--child') {
  // One measurement in this fresh process: W1 through the build in argv[1].
  const [, dir, n, concurrency, listener] = argv;
  const sample = await w1(await load(dir), Number(n), Number(concurrency), listener === '1');
  process.stdout.write(`${JSON.stringify(sample)}\n`);
  process.exit(0);
}

if (argv[0] === '--paired-child') {
  // Both builds in this one process, warmed up, then passes in A B B A order: a paired
  // comparison that load on the machine disturbs less than separate processes do.
  const [, a, b, n, concurrency, reps] = argv;
  const builds = [await load(a), await load(b)];
  const out = [[], []];
  for (const Dovetail of builds)
    for (let i = 0; i < 2; i++) await w1(Dovetail, Number(n), Number(concurrency), false);
  for (let rep = 0; rep < Number(reps); rep++) {
    for (const which of rep % 2 === 0 ? [0, 1] : [1, 0]) {
      out[which].push(await w1(builds[which], Number(n), Number(concurrency), false));
    }
  }
  process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}

const runs = option('--runs', 9);
const n = option('--n', 100_000);
const concurrency = option('--concurrency', 100);
const withListener = argv.includes('--listener');

// 1. A current dist/ (built under the lock the child-process tests use, so nobody's build is torn).
const build = [process.execPath, path.join(root, '__tests__', 'fixtures', 'build.mjs')];
const lock = path.join(root, 'node_modules', '.dovetail-build.lock');
const hasFlock = spawnSync('flock', ['--version'], { stdio: 'ignore' }).status === 0;
execFileSync(hasFlock ? 'flock' : build[0], hasFlock ? [lock, ...build] : build.slice(1), {
  cwd: root,
  stdio: 'inherit',
});

// 2. Two snapshots of it under node_modules/.cache (so `mitt`, `p-limit`... still resolve, and a
//    rebuild by someone else during the runs changes neither).
const cache = path.join(root, 'node_modules', '.cache', 'dovetail-events-cost');
rmSync(cache, { recursive: true, force: true });
const withEvents = path.join(cache, 'with-events');
const noEmission = path.join(cache, 'no-emission');
mkdirSync(cache, { recursive: true });
cpSync(path.join(root, 'dist'), withEvents, { recursive: true });
cpSync(path.join(root, 'dist'), noEmission, { recursive: true });
const eventsFile = path.join(noEmission, 'events', 'bus.js');
const source = readFileSync(eventsFile, 'utf8');
const signature = /(\n\s*wants\(event, source\) \{)/;
if (!signature.test(source))
  throw new Error(`no \`wants(event, source) {\` in ${eventsFile}: update this script`);
writeFileSync(eventsFile, source.replace(signature, '$1\n        return false;'));

// 3. Alternate fresh processes.
const cases = [
  { label: 'with events (no listener)', dir: withEvents, listener: '0', samples: [], cpu: [] },
  { label: 'emission removed', dir: noEmission, listener: '0', samples: [], cpu: [] },
];
if (withListener)
  cases.push({
    label: 'with one `done` listener',
    dir: withEvents,
    listener: '1',
    samples: [],
    cpu: [],
  });
const env = { ...process.env };
delete env.DOVETAIL_TRACE;
for (let run = 0; run < runs; run++) {
  for (const c of cases) {
    const child = spawnSync(
      process.execPath,
      [
        fileURLToPath(import.meta.url),
        '--child',
        c.dir,
        String(n),
        String(concurrency),
        c.listener,
      ],
      { encoding: 'utf8', env },
    );
    if (child.status !== 0) throw new Error(`${c.label}: exit ${child.status}\n${child.stderr}`);
    const sample = JSON.parse(child.stdout.trim());
    c.samples.push(sample.nsPerTask);
    c.cpu.push(sample.cpuNsPerTask);
    process.stderr.write('.');
  }
}
process.stderr.write('\n');
let paired;
if (argv.includes('--paired')) {
  const child = spawnSync(
    process.execPath,
    [
      fileURLToPath(import.meta.url),
      '--paired-child',
      withEvents,
      noEmission,
      String(n),
      String(concurrency),
      String(runs),
    ],
    { encoding: 'utf8', env, maxBuffer: 1 << 24 },
  );
  if (child.status !== 0) throw new Error(`paired: exit ${child.status}\n${child.stderr}`);
  paired = JSON.parse(child.stdout.trim());
}
// The event path's calls in isolation: what one task with no listener spends in them (three
// `wants()` checks, queued / started / terminal, and `releaseExecution()`), on a real bus.
const direct = await (async () => {
  const { Events } = await import(pathToFileURL(path.join(withEvents, 'events', 'bus.js')).href);
  const { watchTaskChannel } = await import(
    pathToFileURL(path.join(withEvents, 'events', 'channel.js')).href
  );
  const { Tracer } = await import(pathToFileURL(path.join(withEvents, 'trace.js')).href);
  watchTaskChannel();
  const events = new Events(new Tracer(false, console, 'bench'));
  const task = { fn: () => 1, id: '1', channelContext: undefined };
  const loops = 10_000_000;
  const samples = [];
  let wanted = 0;
  for (let rep = 0; rep < 5; rep++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < loops; i++) {
      if (events.wants('queued', task)) wanted += 1;
      if (events.wants('started', task)) wanted += 1;
      if (events.wants('done', task)) wanted += 1;
      events.releaseExecution(task);
    }
    samples.push(Number(process.hrtime.bigint() - t0) / loops);
  }
  if (wanted !== 0) throw new Error('a listener-less bus wanted a payload');
  return samples;
})();
rmSync(cache, { recursive: true, force: true });

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};
const fmt = (ns) => Math.round(ns).toLocaleString('en-US');
console.log(
  `W1: ${n.toLocaleString('en-US')} tasks of \`async x => x\`, concurrency ${concurrency}, schedule()`,
);
console.log(
  `Node ${process.versions.node}, ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), ` +
    `load average ${os.loadavg()[0].toFixed(1)}, ${runs} runs each, fresh process per run`,
);
// Wall time is what a user sees; CPU time (user + system of the process) is what the code itself
// spends, and varies less when other processes compete for the cores.
for (const [title, key] of [
  ['wall time', 'samples'],
  ['CPU time', 'cpu'],
]) {
  const base = median(cases[1][key]);
  console.log(`\n${title}, ns per task:\n`);
  console.log('| build | median | min | max | median / emission removed |');
  console.log('|---|---:|---:|---:|---:|');
  for (const c of cases) {
    const m = median(c[key]);
    console.log(
      `| ${c.label} | ${fmt(m)} | ${fmt(Math.min(...c[key]))} | ${fmt(Math.max(...c[key]))} | ${(m / base).toFixed(3)} |`,
    );
  }
  const ratio = median(cases[0][key]) / base;
  console.log(
    `\nEvent path with no listener (${title}): ${((ratio - 1) * 100).toFixed(1)}% over the build without emission (budget 10%).`,
  );
}

if (paired !== undefined) {
  console.log(
    `\nPaired, one process (both builds warmed up, then ${runs} passes each in A B B A order), ns per task:\n`,
  );
  console.log('| build | median wall | median CPU |');
  console.log('|---|---:|---:|');
  const [withE, without] = paired;
  for (const [label, samples] of [
    ['with events (no listener)', withE],
    ['emission removed', without],
  ]) {
    console.log(
      `| ${label} | ${fmt(median(samples.map((x) => x.nsPerTask)))} | ${fmt(median(samples.map((x) => x.cpuNsPerTask)))} |`,
    );
  }
  // Per pair: how much slower the pass with events was than its neighbour without.
  const wallRatios = withE.map((x, i) => x.nsPerTask / without[i].nsPerTask);
  const cpuRatios = withE.map((x, i) => x.cpuNsPerTask / without[i].cpuNsPerTask);
  console.log(
    `\nMedian of per-pair ratios: wall ${median(wallRatios).toFixed(3)}, CPU ${median(cpuRatios).toFixed(3)} (budget 1.10).`,
  );
}

console.log(
  `\nDirect: the event path's calls for one task with no listener (3 \`wants()\` + \`releaseExecution()\`) ` +
    `take ${median(direct).toFixed(1)} ns (median of 5 × 10 M), ` +
    `${((median(direct) / median(cases[1].cpu)) * 100).toFixed(2)}% of the CPU time per task above.`,
);
