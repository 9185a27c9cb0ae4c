// The benchmark runner: `npm run bench` (full, writes docs/benchmarks.md and docs/benchmarks-*.svg)
// or `npm run bench -- --quick` (a small version in under a minute, written to reports/bench/; CI runs
// it so the harness never rots, and asserts no target).
//
// Every (workload, library) case runs in a fresh `node bench/worker.mjs` process, several times,
// rounds interleaved across libraries so that background noise spreads evenly; medians are
// reported and the targets of issue 6 are computed as ratios inside the same run.
//
// Options: --quick, --runs N (override the run count), --only W1,W5 (a subset, for development;
//          extensions are skipped), --skip-extras, --out DIR (where the markdown and the SVGs go),
//          --baseline REV (below).
//
// --baseline REV measures the current build against another commit in the same run: REV's sources
// are exported (git archive) into a temporary directory and built there with this checkout's
// TypeScript, its node_modules linked in; every Dovetail row then gets a twin, lib `dovetail-base`,
// labelled "(baseline <short rev>)", that runs the same adapter over <tmp>/dist/index.js beside
// its current row in every round (after it, then before it, alternately). The report gains an
// "Against the baseline" table (medians, current / baseline, min–max), also printed to stderr at
// the end, and goes to reports/bench-baseline/ unless --out says otherwise. The directory is
// removed at the end, also on failure or interruption. `npm run bench -- --baseline REV` rebuilds
// the current dist/ first; `node bench/run.mjs` uses it as it is.
//
// EXTENSION POINT: after the built-in workloads, the runner runs every `bench/extra-*.mjs` it finds
// (sorted by name) as `node bench/extra-<name>.mjs [--quick]`, in its own process, and appends
// whatever markdown it prints on stdout (a `## ...` section: heading, prose, tables) to the report.
// Progress and diagnostics go to stderr. A non-zero exit is reported in the document and fails
// the run. That is how, for example, a Redis back-end benchmark plugs in without editing this file.

import { execFileSync, spawn } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { barChart } from './svg.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const value = (name) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : undefined;
};
const quick = flag('--quick');
const only = value('--only')?.toUpperCase().split(',');
const baselineRev = flag('--baseline') ? value('--baseline') : undefined;
if (flag('--baseline') && (baselineRev === undefined || baselineRev.startsWith('--'))) {
  process.stderr.write('--baseline needs a revision, e.g. --baseline HEAD~1\n');
  process.exit(2);
}
// The quick version and a baseline comparison write under reports/ (ignored by git, Prettier and
// ESLint) so that they never overwrite the committed docs/benchmarks.md.
const outDir = path.resolve(
  root,
  value('--out') ??
    (baselineRev !== undefined ? 'reports/bench-baseline' : quick ? 'reports/bench' : 'docs'),
);
const started = Date.now();
/** The worker processes running now (at most one). */
const running = new Set();

// ---- the baseline (--baseline REV) ---------------------------------------------------------------

/**
 * Exports `rev` into a temporary directory and builds it there; the directory is removed when this
 * process exits, whatever the reason. Returns { rev, commit, short, subject, index, warnings }.
 */
function buildBaseline(rev) {
  const git = (...args) =>
    execFileSync('git', args, {
      cwd: root,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    }).trim();
  const fail = (message) => {
    process.stderr.write(`--baseline ${rev}: ${message}\n`);
    process.exit(1);
  };
  let commit;
  try {
    commit = git('rev-parse', '--verify', '--end-of-options', `${rev}^{commit}`);
  } catch {
    fail('not a commit of this repository');
  }
  const short = git('rev-parse', '--short', commit);
  const line = git('log', '-1', '--format=%s', commit);
  const subject = line.length > 80 ? `${line.slice(0, 79)}…` : line;
  const dir = mkdtempSync(path.join(os.tmpdir(), `dovetail-baseline-${short}-`));
  process.on('exit', () => {
    // Interrupted: a worker may still be running off the build about to be removed.
    for (const child of running) child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'])
    process.once(signal, () => process.exit(128 + os.constants.signals[signal]));
  process.stderr.write(`baseline ${rev} = ${short}: building it in ${dir}\n`);
  const built = Date.now();
  try {
    // An export of the commit's tree, not a worktree: nothing to register in the repository.
    const tar = path.join(dir, 'source.tar');
    git('archive', '--format=tar', `--output=${tar}`, commit);
    execFileSync('tar', ['-xf', tar, '-C', dir], { stdio: ['ignore', 2, 2] });
    rmSync(tar);
    // Its imports (p-limit, mitt, ...) and the compiler's @types resolve to this checkout's.
    symlinkSync(path.join(root, 'node_modules'), path.join(dir, 'node_modules'), 'junction');
  } catch (error) {
    fail(`could not export it: ${error.message}`);
  }
  if (!existsSync(path.join(dir, 'tsconfig.build.json'))) fail('it has no tsconfig.build.json');
  try {
    // The compiler's diagnostics go to stderr: stdout carries the document.
    execFileSync(
      process.execPath,
      [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'],
      { cwd: dir, stdio: ['ignore', 2, 2] },
    );
  } catch {
    fail('its build failed (tsc -p tsconfig.build.json, output above)');
  }
  const index = path.join(dir, 'dist', 'index.js');
  if (!existsSync(index)) fail('its build wrote no dist/index.js');
  const warnings = [];
  const dependencies = (file) =>
    JSON.stringify(JSON.parse(readFileSync(file, 'utf8')).dependencies ?? {});
  if (
    dependencies(path.join(dir, 'package.json')) !== dependencies(path.join(root, 'package.json'))
  )
    warnings.push(
      `${short} declares other dependencies than this checkout; it runs against this checkout's node_modules.`,
    );
  process.stderr.write(
    `baseline ${short} built in ${((Date.now() - built) / 1000).toFixed(1)} s\n${warnings.map((w) => `warning: ${w}\n`).join('')}`,
  );
  return { rev, commit, short, subject, index, warnings };
}
const baseline = baselineRev === undefined ? undefined : buildBaseline(baselineRev);

/** With --baseline, every Dovetail row followed by its twin over the baseline build. */
const withBaseline = (rows) =>
  baseline === undefined
    ? rows
    : rows.flatMap((r) =>
        r.lib === 'dovetail'
          ? [
              r,
              {
                ...r,
                id: `${r.id}-base`,
                lib: 'dovetail-base',
                label: `${r.label} (baseline ${baseline.short})`,
                twinOf: r.id,
              },
            ]
          : [r],
      );

// ---- the suite ---------------------------------------------------------------------------------

const scale = quick ? 0.1 : 1;
const N1 = 100_000 * scale;
const N1B = 1_000_000 * scale;
const RUNS_FAST = Number(value('--runs') ?? (quick ? 1 : 5));
const RUNS_SLOW = Number(value('--runs') ?? (quick ? 1 : 3));
// Bottleneck dispatches each start from a timer (about 2.6 ms per task here whatever the
// concurrency), so at 100 000 tasks one run would take minutes: it runs W1 on fewer tasks (ns per
// task does not depend on the count) and only W2 of the sleep workloads.
const BOTTLENECK_N1 = quick ? 200 : 500;

const row = (id, lib, mode, label, extra = {}) => ({ id, lib, mode, label, ...extra });
const DEFERRED_FLOOR = row(
  'floor-deferred',
  'floor-deferred',
  'schedule',
  'the same semaphore, body started a microtask later',
);
const W1_ROWS = withBaseline([
  row('floor', 'floor', 'schedule', 'hand-written semaphore (floor)'),
  DEFERRED_FLOOR,
  row('p-limit', 'p-limit', 'schedule', 'p-limit'),
  row('p-queue', 'p-queue', 'schedule', 'p-queue'),
  row('bottleneck', 'bottleneck', 'schedule', 'bottleneck', { n: BOTTLENECK_N1 }),
  row('p-map', 'p-map', 'map', 'p-map'),
  row('naive', 'naive', 'schedule', 'naive: p-limit + p-retry + p-timeout + mitt'),
  row('dvt-schedule', 'dovetail', 'schedule', 'Dovetail schedule (defaults)'),
  row('dvt-map', 'dovetail', 'map', 'Dovetail map (defaults)'),
  row('dvt-full', 'dovetail', 'schedule', 'Dovetail schedule, full path', { full: true }),
]);
const W1B_ROWS = withBaseline([
  row('p-limit', 'p-limit', 'schedule', 'p-limit (Promise.all)'),
  // One run: its peak RSS varies by well under 1% between runs, and one run takes 10-25 s here.
  row('p-queue', 'p-queue', 'schedule', 'p-queue (Promise.all, 1 run)', { runs: 1 }),
  row('p-map', 'p-map', 'map', 'p-map'),
  row('p-map-iter', 'p-map', 'iterate', 'pMapIterable (async generator)'),
  row('dvt-map', 'dovetail', 'map', 'Dovetail map'),
  row('dvt-iter', 'dovetail', 'iterate', 'Dovetail mapIterable (async generator)'),
  row('dvt-iter-small', 'dovetail', 'iterate', 'Dovetail mapIterable (async generator)', {
    n: N1B / 10,
  }),
]);
const SLEEP_ROWS = withBaseline([
  row('floor', 'floor', 'schedule', 'hand-written semaphore (floor)'),
  DEFERRED_FLOOR,
  row('p-limit', 'p-limit', 'schedule', 'p-limit'),
  row('p-queue', 'p-queue', 'schedule', 'p-queue'),
  row('p-map', 'p-map', 'map', 'p-map'),
  row('bottleneck', 'bottleneck', 'schedule', 'bottleneck', { only: ['W2'] }),
  row('dvt-schedule', 'dovetail', 'schedule', 'Dovetail schedule'),
  row('dvt-map', 'dovetail', 'map', 'Dovetail map'),
]);
const SLEEPS = [
  { id: 'W2', n: 1000 * scale, sleep: 100, concurrency: 50 },
  { id: 'W3', n: 10_000 * scale, sleep: 50, concurrency: 100 },
  { id: 'W4', n: 100_000 * scale, sleep: 1, concurrency: 100 },
];
const RATE = { perSecond: 100, burst: 10 };
const N5 = quick ? 100 : 500;
const W5_ROWS = withBaseline([
  row('floor', 'floor', 'schedule', 'plain token bucket (floor)'),
  row('floor-deferred', 'floor-deferred', 'schedule', 'the same, body started a microtask later'),
  row('p-queue', 'p-queue', 'schedule', 'p-queue { intervalCap: 100, interval: 1000 }'),
  row('bottleneck', 'bottleneck', 'schedule', 'bottleneck { minTime: 10 } (no burst)'),
  row('dovetail', 'dovetail', 'schedule', 'Dovetail rateLimit { perSecond: 100, burst: 10 }'),
]);
const W6_ROWS = withBaseline([
  row('none', 'dovetail', 'schedule', 'Dovetail, no listeners'),
  row('scoped', 'dovetail', 'schedule', 'Dovetail, 1 000 function-scoped listeners', {
    scopedListeners: 1000,
  }),
]);

/** Every case: { key, workload id, row, spec, runs }. */
const cases = [];
const add = (w, r, spec, runs) => {
  if (only !== undefined && !only.includes(w)) return;
  cases.push({
    key: `${w}/${r.id}`,
    w,
    row: r,
    runs,
    spec: {
      lib: r.lib,
      mode: r.mode,
      full: r.full,
      scopedListeners: r.scopedListeners,
      baseline: r.lib === 'dovetail-base' ? baseline.index : undefined,
      ...spec,
    },
  });
};
for (const r of W1_ROWS)
  add('W1', r, { workload: 'overhead', n: r.n ?? N1, concurrency: 100 }, RUNS_FAST);
for (const r of W1B_ROWS)
  add(
    'W1B',
    r,
    { workload: 'overhead', n: r.n ?? N1B, concurrency: 100 },
    Math.min(r.runs ?? Infinity, RUNS_SLOW),
  );
for (const s of SLEEPS)
  for (const r of SLEEP_ROWS)
    if (r.only === undefined || r.only.includes(s.id))
      add(
        s.id,
        r,
        { workload: 'sleep', n: s.n, sleep: s.sleep, concurrency: s.concurrency },
        RUNS_SLOW,
      );
for (const r of W5_ROWS)
  add('W5', r, { workload: 'rate', n: N5, rateLimit: RATE, concurrency: Infinity }, RUNS_SLOW);
for (const r of W6_ROWS) add('W6', r, { workload: 'overhead', n: N1, concurrency: 100 }, RUNS_FAST);

// ---- running -----------------------------------------------------------------------------------

function runWorker(spec) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(here, 'worker.mjs'), JSON.stringify(spec)], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), quick ? 60_000 : 240_000);
    child.on('close', (code, signal) => {
      running.delete(child);
      clearTimeout(timer);
      const line = stdout.trim().split('\n').pop();
      if (code === 0 && line) {
        try {
          resolve(JSON.parse(line));
          return;
        } catch {
          // fall through: reported as a failure below
        }
      }
      resolve({
        failed: `exit ${code ?? signal}: ${stderr.trim().split('\n').slice(-3).join(' ')}`,
      });
    });
  });
}

const results = new Map(cases.map((c) => [c.key, []]));
const failures = [];
const maxRuns = Math.max(0, ...cases.map((c) => c.runs));
/** The cases in the order of `round`: a baseline twin runs before its current row every other round. */
const orderOf = (round) => {
  if (baseline === undefined || round % 2 === 0) return cases;
  const order = [...cases];
  for (let i = 0; i + 1 < order.length; i++)
    if (order[i + 1].row.twinOf !== undefined) {
      [order[i], order[i + 1]] = [order[i + 1], order[i]];
      i += 1;
    }
  return order;
};
for (let round = 0; round < maxRuns; round++) {
  for (const c of orderOf(round)) {
    if (round >= c.runs) continue;
    const result = await runWorker(c.spec);
    if (result.failed !== undefined) {
      failures.push(`${c.key}: ${result.failed}`);
      process.stderr.write(`  ${c.key} run ${round + 1}: FAILED ${result.failed}\n`);
      continue;
    }
    results.get(c.key).push(result);
    const shown =
      result.nsPerTask !== undefined
        ? `${Math.round(result.nsPerTask)} ns/task`
        : `${Math.round(result.ms)} ms`;
    process.stderr.write(
      `  ${c.key} run ${round + 1}/${c.runs}: ${shown}, ${result.rssMB.toFixed(0)} MB\n`,
    );
  }
}

const median = (values) => {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/** Median of `field` over the runs of case `key` (NaN when it did not run). */
const med = (key, field) =>
  median((results.get(key) ?? []).map((r) => r[field]).filter((v) => v !== undefined));
const spread = (key, field) => {
  const values = (results.get(key) ?? []).map((r) => r[field]);
  return values.length > 1 ? [Math.min(...values), Math.max(...values)] : undefined;
};

// ---- formatting ----------------------------------------------------------------------------------

const int = (v) => (Number.isFinite(v) ? Math.round(v).toLocaleString('en-US') : 'n/a');
const fix = (v, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');
const pct = (v) => (Number.isFinite(v) ? `${(v * 100).toFixed(1)}%` : 'n/a');
const ratio = (a, b) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? a / b : NaN);
const times = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : 'n/a');
/** A markdown table: the first `left` columns aligned left, the others right. */
const table = (head, rows, left = 1) =>
  [
    `| ${head.join(' | ')} |`,
    `|${head.map((h, i) => (i < left ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

// ---- targets (issue 6), as ratios measured in this run --------------------------------------------

const targets = [];
const target = (name, measured, shown, met) =>
  targets.push({ name, shown, met: Number.isFinite(measured) ? met : undefined });
if (results.has('W1/dvt-schedule')) {
  const s = med('W1/dvt-schedule', 'nsPerTask');
  const r = ratio(s, med('W1/p-limit', 'nsPerTask'));
  target('W1 `schedule` (defaults) ≤ 1.3× p-limit ns/task', r, times(r), r <= 1.3);
  const q = med('W1/p-queue', 'nsPerTask');
  const b = med('W1/bottleneck', 'nsPerTask');
  target(
    'W1 `schedule` (defaults) below p-queue and bottleneck',
    s,
    `${int(s)} vs ${int(q)} and ${int(b)} ns`,
    s < q && s < b,
  );
  const f = ratio(med('W1/dvt-full', 'nsPerTask'), med('W1/p-limit', 'nsPerTask'));
  target(
    'W1 full path (retries + timeout + listener on every event) ≤ 3× p-limit',
    f,
    times(f),
    f <= 3,
  );
  const nv = ratio(med('W1/dvt-full', 'nsPerTask'), med('W1/naive', 'nsPerTask'));
  target('W1 full path ≤ ⅓ of the naive composition', nv, times(nv), nv <= 1 / 3);
  const m = ratio(med('W1/dvt-map', 'nsPerTask'), med('W1/p-map', 'nsPerTask'));
  target('W1 `map` (defaults) ≤ 2× p-map ns/task', m, times(m), m <= 2);
}
if (results.has('W1B/dvt-map')) {
  const base = med('W1B/p-map', 'rssMB');
  const m = ratio(med('W1B/dvt-map', 'rssMB'), base);
  target(`W1b \`map\` at ${int(N1B)} items: peak RSS ≤ 1.5× p-map's`, m, times(m), m <= 1.5);
  const it = ratio(med('W1B/dvt-iter', 'rssMB'), base);
  target(
    `W1b \`mapIterable\` at ${int(N1B)} items: peak RSS ≤ 1.5× p-map's`,
    it,
    times(it),
    it <= 1.5,
  );
  const g = ratio(med('W1B/dvt-iter', 'rssMB'), med('W1B/dvt-iter-small', 'rssMB'));
  target(
    `W1b \`mapIterable\` peak RSS at ${int(N1B)} ≤ 1.2× its peak at ${int(N1B / 10)}`,
    g,
    times(g),
    g <= 1.2,
  );
}
for (const w of ['W2', 'W3']) {
  if (!results.has(`${w}/dvt-schedule`)) continue;
  for (const [id, name] of [
    ['dvt-schedule', 'schedule'],
    ['dvt-map', 'map'],
  ]) {
    const c = med(`${w}/${id}`, 'ceiling');
    // The reference each form is held against, measured in the same run.
    const [refKey, refName] =
      name === 'map' ? [`${w}/p-map`, 'p-map'] : [`${w}/floor-deferred`, 'deferred floor'];
    const ref = results.has(refKey) ? ` (${refName} ${pct(med(refKey, 'ceiling'))})` : '';
    target(`${w} \`${name}\` ceiling hit ≥ 99%`, c, `${pct(c)}${ref}`, c >= 0.99);
  }
}
if (results.has('W4/dvt-map')) {
  const c = med('W4/dvt-map', 'ceiling');
  target(
    'W4 `map` ceiling hit ≥ 80%',
    c,
    `${pct(c)} (p-map ${pct(med('W4/p-map', 'ceiling'))})`,
    c >= 0.8,
  );
  const s = med('W4/dvt-schedule', 'ceiling');
  const p = med('W4/p-limit', 'ceiling');
  target("W4 `schedule` ceiling hit ≥ p-limit's", s, `${pct(s)} vs ${pct(p)}`, s >= p);
}
if (results.has('W5/dovetail')) {
  const rate = med('W5/dovetail', 'rate');
  target(
    'W5 achieved rate within 2% of 100/s',
    rate,
    `${fix(rate, 2)}/s`,
    Math.abs(rate - 100) <= 2,
  );
  const d = med('W5/dovetail', 'deviation');
  const floors = ['floor', 'floor-deferred']
    .filter((id) => results.has(`W5/${id}`))
    .map(
      (id) =>
        `${id === 'floor' ? 'floor' : 'deferred floor'} ${fix(med(`W5/${id}`, 'deviation'), 2)}`,
    );
  target(
    'W5 every start within 5 ms of its ideal token-bucket time',
    d,
    `${fix(d, 2)} ms (largest)${floors.length > 0 ? `; ${floors.join(', ')}` : ''}`,
    d <= 5,
  );
}
if (results.has('W6/scoped')) {
  const r = ratio(med('W6/scoped', 'nsPerTask'), med('W6/none', 'nsPerTask'));
  target('W6 1 000 function-scoped listeners ≤ 1.1× no listeners', r, times(r), r <= 1.1);
}

// ---- the document --------------------------------------------------------------------------------

const cpus = os.cpus();
const gitHead = (() => {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: root,
      encoding: 'utf8',
    }).trim();
  } catch {
    return 'unknown';
  }
})();
const lines = [];
const say = (...text) => lines.push(...text);
say(
  '# Benchmarks',
  '',
  `Generated by \`${baseline === undefined ? `npm run bench${quick ? ' -- --quick' : ''}\` (bench/run.mjs)` : `node bench/run.mjs ${argv.join(' ')}\``} on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, commit ${gitHead}.`,
  '',
  `- Node ${process.version} (V8 ${process.versions.v8}), ${os.type()} ${os.release()} ${os.arch()}`,
  `- ${cpus.length} × ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB RAM, load average at start ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' / ')}`,
  `- Every case runs in a fresh process (\`node bench/worker.mjs\`); ${RUNS_FAST} runs for W1 and W6, ${RUNS_SLOW} for the others, rounds interleaved across libraries; the tables show medians. Peak RSS is the child's own \`process.resourceUsage().maxRSS\` (it includes Node's baseline of about 40 MB).`,
  "- Dovetail is measured through its public API from the built package (`import { Dovetail } from 'dovetailjs'`, i.e. dist/). Every library runs the same workload code (bench/worker.mjs) through a small adapter (bench/adapters.mjs).",
  ...(baseline === undefined
    ? []
    : [
        `- Baseline: commit ${baseline.short} (\`${baseline.rev}\`: ${baseline.subject}), exported from git into a temporary directory and built there with this checkout's TypeScript and node_modules; its rows, marked "(baseline ${baseline.short})", run the same adapter over that build's dist/index.js, beside their current row in every round (after it, then before it, alternately).`,
        ...baseline.warnings.map((w) => `- **Warning**: ${w}`),
      ]),
  '',
);
if (quick)
  say(
    '> **Quick mode**: workloads scaled down tenfold and one run each. The figures only show that the harness works; targets are indicative, not assessed.',
    '',
  );
else
  say(
    '> The machine is a shared 2-core virtual machine, slower than the one the reference figures of issue 6 came from (p-limit takes about 7 000 ns per task here against 2 842 there), so compare the ratios, measured in the same run, rather than the absolute numbers. The load average at the start of the run is given above.',
    '',
  );

// ---- against the baseline (--baseline REV) ------------------------------------------------------

/** What each workload is compared on (lower is better for all of them); W1b is about memory too. */
const COMPARED = {
  overhead: [['nsPerTask', 'ns/task']],
  sleep: [['ms', 'wall ms']],
  rate: [['ms', 'ms to the last start']],
  W1B: [
    ['nsPerTask', 'ns/task'],
    ['rssMB', 'peak RSS MB'],
  ],
};
const range = (key, field) => {
  const s = spread(key, field);
  return s ? `${int(s[0])}–${int(s[1])}` : '';
};
const againstBaseline = cases
  .filter((c) => c.row.twinOf !== undefined)
  .flatMap((b) => {
    const current = cases.find((c) => c.key === `${b.w}/${b.row.twinOf}`);
    // Two rows of a workload may differ only by their task count (W1b's mapIterable).
    const label = `${current.row.label}${current.row.n === undefined ? '' : `, ${int(current.row.n)} tasks`}`;
    return (COMPARED[b.w] ?? COMPARED[b.spec.workload]).map(([field, unit]) => {
      const [now, then] = [med(current.key, field), med(b.key, field)];
      return [
        b.w,
        label,
        unit,
        int(now),
        int(then),
        times(ratio(now, then)),
        range(current.key, field),
        range(b.key, field),
      ];
    });
  });
const baselineTable =
  againstBaseline.length === 0
    ? undefined
    : table(
        [
          'Workload',
          'Case',
          'Measure',
          'Current (median)',
          `Baseline ${baseline.short} (median)`,
          'Current / baseline',
          'Current min–max',
          'Baseline min–max',
        ],
        againstBaseline,
        3,
      );
if (baselineTable !== undefined)
  say(
    '## Against the baseline',
    '',
    `The current build (dist/) against commit ${baseline.short}, measured in this run with the rounds interleaved. Current / baseline below 1.00× means faster now.${maxRuns > 1 ? '' : ' With one run per case there is no min–max.'}`,
    '',
    baselineTable,
    '',
  );

if (targets.length > 0) {
  say(
    '## Targets',
    '',
    table(
      ['Target (issue 6)', 'Measured', 'Result'],
      targets.map((t) => [
        t.name,
        t.shown,
        t.met === undefined ? 'n/a' : t.met ? '**met**' : '**missed**',
      ]),
    ),
    '',
    "The deferred floor is the hand-written semaphore under the rule API.md sets for `schedule()`: the function body never runs inside the call that scheduled it, so it starts a microtask later, once the caller's own loop has returned. Workloads that submit every task at once through `schedule()` (W2, W3, W5) cannot start their first task before the caller has made all its calls; the plain floor starts its first tasks inside those calls.",
    '',
  );
}

const written = [];
const chart = (file, options) => {
  writeFileSync(path.join(outDir, file), barChart(options));
  written.push(file);
  say(`![${options.title}](${file})`, '');
};
mkdirSync(outDir, { recursive: true });

if (results.has('W1/p-limit')) {
  const base = med('W1/p-limit', 'nsPerTask');
  say(
    '## W1: overhead',
    '',
    `${int(N1)} tasks of \`async x => x\` at concurrency 100, all submitted at once (\`Promise.all\` of one call per task, or the library's map form). Full path: \`retries: 3, retryBackoff: 10, timeout: 5000\` and one listener on every event; the naive path composes the same policies by hand.`,
    '',
    table(
      ['Library', 'Form', 'Tasks', 'ns/task (median)', 'min–max', '× p-limit', 'Peak RSS MB'],
      W1_ROWS.filter((r) => results.has(`W1/${r.id}`)).map((r) => {
        const key = `W1/${r.id}`;
        const ns = med(key, 'nsPerTask');
        const s = spread(key, 'nsPerTask');
        return [
          r.label,
          r.mode,
          int(r.n ?? N1),
          int(ns),
          s ? `${int(s[0])}–${int(s[1])}` : '',
          times(ratio(ns, base)),
          fix(med(key, 'rssMB'), 0),
        ];
      }),
    ),
    '',
  );
  chart('benchmarks-w1.svg', {
    title: `W1: ns per task, ${int(N1)} no-op tasks at concurrency 100 (median, log scale)`,
    unit: 'ns',
    log: true,
    bars: W1_ROWS.filter((r) => results.has(`W1/${r.id}`)).map((r) => ({
      label: r.label,
      value: med(`W1/${r.id}`, 'nsPerTask'),
      highlight: r.lib.startsWith('dovetail'),
    })),
  });
}
if (results.has('W1B/p-map')) {
  const base = med('W1B/p-map', 'rssMB');
  say(
    '## W1b: a large input',
    '',
    `The same no-op task over ${int(N1B)} items: an array for the \`map\` forms and for one-call-per-item, an async generator for the streaming forms.`,
    '',
    table(
      ['Library', 'Form', 'Items', 'ns/task (median)', 'Peak RSS MB', '× p-map RSS'],
      W1B_ROWS.filter((r) => results.has(`W1B/${r.id}`)).map((r) => {
        const key = `W1B/${r.id}`;
        const rss = med(key, 'rssMB');
        return [
          r.label,
          r.mode,
          int(r.n ?? N1B),
          int(med(key, 'nsPerTask')),
          fix(rss, 0),
          times(ratio(rss, base)),
        ];
      }),
    ),
    '',
  );
  chart('benchmarks-w1b.svg', {
    title: `W1b: peak RSS at ${int(N1B)} items (MB, median)`,
    unit: 'MB',
    bars: W1B_ROWS.filter((r) => results.has(`W1B/${r.id}`) && r.n === undefined).map((r) => ({
      label: r.label,
      value: med(`W1B/${r.id}`, 'rssMB'),
      highlight: r.lib.startsWith('dovetail'),
    })),
  });
}
const sleepsRun = SLEEPS.filter((s) => results.has(`${s.id}/p-limit`));
if (sleepsRun.length > 0) {
  say(
    '## W2–W4: ceiling hit',
    '',
    'Tasks that sleep on a real timer; ceiling hit = ideal wall time (rounds × sleep) / measured wall time. ' +
      sleepsRun
        .map(
          (s) =>
            `${s.id}: ${int(s.n)} × ${s.sleep} ms at concurrency ${s.concurrency} (ideal ${int(Math.ceil(s.n / s.concurrency) * s.sleep)} ms)`,
        )
        .join('; ') +
      ". Bottleneck runs W2 only (it starts about one task per 2.6 ms here, so W3 and W4 would take minutes); the naive composition's overhead shows in W1.",
    '',
    table(
      ['Library', 'Form', ...sleepsRun.flatMap((s) => [`${s.id} wall ms`, `${s.id} ceiling`])],
      SLEEP_ROWS.map((r) => [
        r.label,
        r.mode,
        ...sleepsRun.flatMap((s) => {
          const key = `${s.id}/${r.id}`;
          return results.has(key) ? [int(med(key, 'ms')), pct(med(key, 'ceiling'))] : ['—', '—'];
        }),
      ]),
    ),
    '',
  );
  const w = sleepsRun[sleepsRun.length - 1];
  chart('benchmarks-ceiling.svg', {
    title: `${w.id}: ceiling hit, ${int(w.n)} × ${w.sleep} ms at concurrency ${w.concurrency} (median, %)`,
    unit: '%',
    max: 100,
    bars: SLEEP_ROWS.filter((r) => results.has(`${w.id}/${r.id}`)).map((r) => ({
      label: r.label,
      value: med(`${w.id}/${r.id}`, 'ceiling') * 100,
      highlight: r.lib.startsWith('dovetail'),
    })),
  });
}
if (results.has('W5/dovetail')) {
  say(
    '## W5: rate limit',
    '',
    `${int(N5)} no-op tasks submitted at once under 100 per second, burst 10; ideal token-bucket schedule: 10 starts at t0, then one every 10 ms. Achieved rate = starts after the burst / time of the last start; deviation = the largest |start − ideal start| over all tasks (sorted by start time).`,
    '',
    table(
      ['Library', 'Rate (starts/s)', 'Largest deviation ms', 'Most starts in any 1 s'],
      W5_ROWS.filter((r) => results.has(`W5/${r.id}`)).map((r) => {
        const key = `W5/${r.id}`;
        return [
          r.label,
          fix(med(key, 'rate'), 2),
          fix(med(key, 'deviation'), 2),
          int(med(key, 'windowMax')),
        ];
      }),
    ),
    '',
  );
}
if (results.has('W6/none')) {
  // Each build against its own listener-free case.
  const none = (r) => med(r.twinOf === undefined ? 'W6/none' : 'W6/none-base', 'nsPerTask');
  say(
    '## W6: scoped listeners',
    '',
    `${int(N1)} no-op tasks at concurrency 100 of a function no listener is scoped to, with none or 1 000 function-scoped listeners (spread over every event) registered on the instance.`,
    '',
    table(
      ['Case', 'ns/task (median)', 'min–max', '× none'],
      W6_ROWS.map((r) => {
        const key = `W6/${r.id}`;
        const ns = med(key, 'nsPerTask');
        const s = spread(key, 'nsPerTask');
        return [r.label, int(ns), s ? `${int(s[0])}–${int(s[1])}` : '', times(ratio(ns, none(r)))];
      }),
    ),
    '',
  );
}

const builtInSeconds = (Date.now() - started) / 1000;
process.stderr.write(`built-in workloads done in ${builtInSeconds.toFixed(0)} s\n`);

// ---- extensions: bench/extra-*.mjs ---------------------------------------------------------------

const extras =
  only === undefined && !flag('--skip-extras')
    ? readdirSync(here)
        .filter((f) => /^extra-.*\.mjs$/.test(f))
        .sort()
    : [];
for (const file of extras) {
  process.stderr.write(`  ${file}\n`);
  const output = await new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(here, file), ...(quick ? ['--quick'] : [])], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.on('close', (code) => resolve({ code, stdout }));
  });
  if (output.code !== 0) failures.push(`${file}: exit ${output.code}`);
  say(
    output.stdout.trim() || `## ${file}`,
    '',
    ...(output.code !== 0 ? [`> ${file} failed (exit ${output.code}).`, ''] : []),
  );
}

if (failures.length > 0) say('## Failures', '', ...failures.map((f) => `- ${f}`), '');
say(
  '## Reproduce',
  '',
  '```sh',
  'npm run bench             # the full run (build, then every workload; about 8 minutes on 2 cores)',
  'npm run bench -- --quick  # a small version, written to reports/bench/',
  'node bench/run.mjs --only W1,W5 --runs 3   # a subset, without rebuilding',
  '```',
  '',
  `Total time of this run: ${((Date.now() - started) / 1000).toFixed(0)} s (built-in workloads ${builtInSeconds.toFixed(0)} s, the rest extensions).`,
  '',
);

const file = path.join(outDir, 'benchmarks.md');
/** `markdown` formatted the way the repository's Prettier check expects (best effort: a devDependency). */
const format = async (markdown) => {
  try {
    const prettier = await import('prettier');
    const config = (await prettier.resolveConfig(file)) ?? {};
    return await prettier.format(markdown, { ...config, filepath: file });
  } catch {
    // Without Prettier the document is still valid markdown.
    return markdown;
  }
};
const markdown = await format(lines.join('\n'));
writeFileSync(file, markdown);
process.stdout.write(markdown.endsWith('\n') ? markdown : `${markdown}\n`);
process.stderr.write(
  `wrote ${path.relative(root, file)} and ${written.join(', ')} in ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
);
if (baselineTable !== undefined)
  process.stderr.write(
    `\nAgainst the baseline ${baseline.short} (current / baseline below 1.00× = faster now):\n\n${await format(baselineTable)}`,
  );
if (failures.length > 0) {
  process.stderr.write(`${failures.length} case(s) failed\n`);
  process.exitCode = 1;
}
