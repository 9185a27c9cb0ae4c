// What the event path costs when nobody listens (issue 4, "Cost"): W1 (100 000 tasks of
// `async x => x` through `schedule`, concurrency 100, all submitted at once) on the built package
// as it is, against a copy of the same build whose `Events.wants()` answers `false` at once, so
// that no emission call does anything (no payload, no listener lookup, no trace, no channel
// check). Counters still count in both: they are not part of the event path.
//
//   node bench/events-cost.mjs [--runs 9] [--n 100000] [--concurrency 100] [--listener]
//
// Each run is a fresh process; the two builds alternate (A B A B ...) so that drift on a shared
// machine hits both alike. Prints the median ns per task of each build and their ratio.
// --listener adds a third case for scale: the real build with one unscoped `done` listener.
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

if (argv[0] === '--child') {
  // One measurement in this fresh process: W1 through the build in argv[1].
  const [, dir, n, concurrency, listener] = argv;
  const { Dovetail } = await import(pathToFileURL(path.join(dir, 'index.js')).href);
  const dvt = new Dovetail({ concurrency: Number(concurrency) });
  let heard = 0;
  if (listener === '1') dvt.events.on('done', () => void (heard += 1));
  const identity = async (x) => x;
  const items = Array.from({ length: Number(n) }, (_, i) => i);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const results = await Promise.all(items.map((x) => dvt.task.schedule(identity, x)));
  const ns = Number(process.hrtime.bigint() - t0);
  const cpu = process.cpuUsage(cpu0);
  await dvt.shutdown();
  if (results.length !== Number(n)) throw new Error(`${results.length} results for ${n} tasks`);
  if (listener === '1' && heard !== Number(n)) throw new Error(`listener heard ${heard} of ${n}`);
  const cpuNs = (cpu.user + cpu.system) * 1000;
  process.stdout.write(
    `${JSON.stringify({ nsPerTask: ns / Number(n), cpuNsPerTask: cpuNs / Number(n) })}\n`,
  );
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
const eventsFile = path.join(noEmission, 'events.js');
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
