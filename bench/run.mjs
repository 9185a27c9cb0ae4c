// The benchmark runner: `npm run bench` (full, writes docs/benchmarks.md and docs/benchmarks-*.svg)
// or `npm run bench -- --quick` (a small version in under a minute, written to reports/bench/; CI runs
// it so the harness never rots, and asserts no target).
//
// Every (workload, library) case runs in a fresh `node bench/worker.mjs` process, several times,
// rounds interleaved across libraries so that background noise spreads evenly; medians are
// reported and the targets of issues 6 and 15 are computed as ratios inside the same run. A case
// that fails (its worker throws, or a check the runner makes on its figures fails: a limit broken,
// Dovetail starting tasks out of priority order) is shown in its row, the other cases go on, and
// the run exits 1 at the end.
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
        // A row of a feature the baseline may not have (noBaseline) gets no twin.
        r.lib === 'dovetail' && r.noBaseline !== true
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
  row(
    'dvt-resilient',
    'dovetail',
    'schedule',
    'Dovetail schedule, full path + closed breaker + full jitter',
    { full: true, resilient: true, noBaseline: true },
  ),
  row('dvt-open', 'dovetail', 'schedule', 'Dovetail schedule, open circuit (all fail fast)', {
    openCircuit: true,
    workload: 'shortCircuit',
    noBaseline: true,
  }),
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
// Issue 15. `levels: 0`: the tasks carry no priority (plain `schedule`). `strictOrder`: a start out
// of priority order is a failure of the run, not a figure (only Dovetail is held to it).
const N7 = 100_000 * scale;
const LEVELS = 10;
const W7_ROWS = withBaseline([
  row('floor-heap', 'floor-heap', 'prioritized', 'hand-written binary heap (floor)'),
  row('p-queue', 'p-queue', 'prioritized', 'p-queue `add(fn, { priority })`'),
  row('dovetail', 'dovetail', 'prioritized', 'Dovetail, one `with({ priority })` per level', {
    strictOrder: true,
  }),
  row('dovetail-plain', 'dovetail', 'schedule', 'Dovetail, no priorities (all 0)', {
    levels: 0,
    strictOrder: true,
  }),
]);
const W8 = {
  hot: quick ? 20 : 200,
  coldKeys: 99,
  perCold: quick ? 1 : 10,
  sleep: 10,
  concurrency: 20,
  perKey: { concurrency: 1 },
};
const W8_N = W8.hot + W8.coldKeys * W8.perCold;
// The hot key holds one slot at most: the cold tasks share the other 19 at best, and the hot key's
// tasks run one after another.
const W8_FLOORS = {
  coldMs: (W8.coldKeys * W8.perCold * W8.sleep) / (W8.concurrency - W8.perKey.concurrency),
  ms: Math.max(W8.hot * W8.sleep, (W8_N * W8.sleep) / W8.concurrency),
};
const W8_ROWS = withBaseline([
  row('dovetail', 'dovetail', 'keyed', 'Dovetail `perKey: { concurrency: 1 }`, `with({ key })`'),
  row('p-limit-gk', 'p-limit', 'keyed', 'p-limit: global pLimit(20) around per-key pLimit(1)', {
    nesting: 'global-around-key',
  }),
  row('p-limit-kg', 'p-limit', 'keyed', 'p-limit: per-key pLimit(1) around global pLimit(20)', {
    nesting: 'key-around-global',
  }),
  row(
    'bottleneck',
    'bottleneck',
    'keyed',
    'bottleneck Group (1 per key), chained to a global (20)',
  ),
]);
const N9A = 100_000 * scale;
const W9A_PER_KEY = { concurrency: 1, rateLimit: { perSecond: 1000 } };
const W9A_ROWS = withBaseline([
  row('dovetail', 'dovetail', 'keyed', 'Dovetail `perKey: { concurrency: 1, rateLimit }`'),
]);
const N9B = 1_000_000 * scale;
// The heap after a full collection is the same to a few bytes per task from one run to the next,
// and one Dovetail run takes several seconds: W9b runs once unless --runs says otherwise.
const RUNS_HEAP = Number(value('--runs') ?? 1);
const W9B_ROWS = withBaseline([
  row(
    'floor-heap',
    'floor-heap',
    'prioritized',
    'hand-written binary heap (floor), priorities 0–9',
  ),
  row('floor', 'floor', 'schedule', 'hand-written semaphore (floor), no priorities', { levels: 0 }),
  row('dovetail', 'dovetail', 'prioritized', 'Dovetail, priorities 0–9'),
  row('dovetail-plain', 'dovetail', 'schedule', 'Dovetail, no priorities', { levels: 0 }),
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
      resilient: r.resilient,
      openCircuit: r.openCircuit,
      scopedListeners: r.scopedListeners,
      nesting: r.nesting,
      baseline: r.lib === 'dovetail-base' ? baseline.index : undefined,
      ...spec,
    },
  });
};
for (const r of W1_ROWS)
  add('W1', r, { workload: r.workload ?? 'overhead', n: r.n ?? N1, concurrency: 100 }, RUNS_FAST);
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
for (const r of W7_ROWS)
  add(
    'W7',
    r,
    { workload: 'priority', n: N7, concurrency: 10, levels: r.levels ?? LEVELS },
    RUNS_SLOW,
  );
for (const r of W8_ROWS)
  add(
    'W8',
    r,
    {
      workload: 'keys',
      n: W8_N,
      keys: { hot: W8.hot, coldKeys: W8.coldKeys, perCold: W8.perCold },
      sleep: W8.sleep,
      concurrency: W8.concurrency,
      perKey: W8.perKey,
      // Its slowest row (bottleneck) takes about 7 s here; three runs of a stuck row should not
      // cost 12 minutes.
      killAfter: 60_000,
    },
    RUNS_SLOW,
  );
for (const r of W9A_ROWS)
  add('W9A', r, { workload: 'keyMemory', n: N9A, perKey: W9A_PER_KEY, gc: true }, RUNS_SLOW);
for (const r of W9B_ROWS)
  add(
    'W9B',
    r,
    { workload: 'queueMemory', n: N9B, concurrency: 1, levels: r.levels ?? LEVELS, gc: true },
    RUNS_HEAP,
  );

// ---- running -----------------------------------------------------------------------------------

function runWorker(spec) {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [...(spec.gc ? ['--expose-gc'] : []), path.join(here, 'worker.mjs'), JSON.stringify(spec)],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    // A workload whose tasks never settle (an engine that loses a waiting task) ends here.
    const limit = spec.killAfter ?? (quick ? 60_000 : 240_000);
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      child.kill('SIGKILL');
    }, limit);
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
      // The worker's own account of a throw (its last `error:` line), else the end of its stderr.
      const thrown = killed
        ? `killed after ${limit / 1000} s (did every task settle?)`
        : /^error: (.*)$/m.exec(stderr)?.[1];
      resolve({
        failed: `exit ${code ?? signal}: ${thrown ?? stderr.trim().split('\n').slice(-3).join(' ')}`,
      });
    });
  });
}

const results = new Map(cases.map((c) => [c.key, []]));
const failures = [];
/** Per case, what went wrong in it (its last failure or broken check), shown in its row. */
const errors = new Map();
/** Records what went wrong in case `c`; the same failure in several runs is listed once. */
const fail = (c, message, failsTheRun = true) => {
  errors.set(c.key, message);
  const line = `${c.key}: ${message}`;
  if (failsTheRun && !failures.includes(line)) failures.push(line);
};

/**
 * What makes a run's figures meaningless (a limit broken) or wrong (a start out of priority order
 * on a `strictOrder` row), else undefined.
 */
function brokenCheck(c, result) {
  const { concurrency, perKey } = c.spec;
  if (perKey !== undefined && result.keyPeak > perKey.concurrency)
    return `per-key limit broken: ${result.keyPeak} tasks of one key ran at once (limit ${perKey.concurrency})`;
  if (result.peak > concurrency)
    return `limit broken: ${result.peak} tasks ran at once (limit ${concurrency})`;
  if (c.row.strictOrder && result.orderViolations > 0)
    return `starts out of priority order: ${result.orderViolations.toLocaleString('en-US')} adjacent pairs of ${c.spec.n.toLocaleString('en-US')} starts`;
  return undefined;
}

/** The progress line's figure for one run. */
function progress(result) {
  if (result.bytesPerTask !== undefined)
    return `${Math.round(result.bytesPerTask)} B per queued task`;
  if (result.heapRatio !== undefined)
    return `heap ${result.startMB.toFixed(2)} -> ${result.endMB.toFixed(2)} MB`;
  if (result.coldMs !== undefined)
    return `${Math.round(result.coldMs)} ms to the last cold task, ${Math.round(result.ms)} ms in all`;
  if (result.nsPerTask !== undefined) return `${Math.round(result.nsPerTask)} ns/task`;
  return `${Math.round(result.ms)} ms`;
}

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
      fail(c, result.failed);
      process.stderr.write(`  ${c.key} run ${round + 1}: FAILED ${result.failed}\n`);
      continue;
    }
    results.get(c.key).push(result);
    // The figures are kept and shown beside the problem; a baseline's twin does not fail the run.
    const broken = brokenCheck(c, result);
    if (broken !== undefined) fail(c, broken, c.row.twinOf === undefined);
    process.stderr.write(
      `  ${c.key} run ${round + 1}/${c.runs}: ${progress(result)}, ${result.rssMB.toFixed(0)} MB${broken === undefined ? '' : ` (${broken})`}\n`,
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
const mb = (v) => fix(v, 2);
/** W7's order column: 0 adjacent pairs out of order is the exact order. */
const orderShown = (v) =>
  !Number.isFinite(v) ? 'n/a' : v === 0 ? 'exact' : `${int(v)} pairs out of order`;
/** A case's median of `field`, formatted, or a dash when it has none (its Status says why). */
const cell = (key, field, format = int) => {
  const v = med(key, field);
  return Number.isFinite(v) ? format(v) : '—';
};
/** A case's Status cell: what failed or broke in it (a `|` would end the cell), else ok. */
const status = (key) =>
  errors.has(key)
    ? `**${errors.get(key).replaceAll('|', '\\|')}**`
    : results.get(key)?.length
      ? 'ok'
      : '—';
/**
 * The table of workload `w`: one line per row, each cell from `columns` (pairs of a heading and
 * `(row, key) => text`), the Status last; `lead`: lines put first (a computed floor).
 */
const caseTable = (w, rows, columns, lead = []) =>
  table(
    [...columns.map(([heading]) => heading), 'Status'],
    [
      ...lead,
      ...rows.map((r) => {
        const key = `${w}/${r.id}`;
        return [...columns.map(([, text]) => text(r, key)), status(key)];
      }),
    ],
  );
const label = (r) => r.label;
const form = (r) => r.mode;
const rss = (r, key) => cell(key, 'rssMB', (v) => fix(v, 0));
/** Whether any case of workload `w` was run. */
const ran = (w) => cases.some((c) => c.w === w);
/** A markdown table: the first `left` columns aligned left, the others right. */
const table = (head, rows, left = 1) =>
  [
    `| ${head.join(' | ')} |`,
    `|${head.map((h, i) => (i < left ? ' --- ' : ' ---: ')).join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

// ---- targets (issues 6, 15 and 16), as ratios measured in this run -------------------------------------

const targets = [];
/** `rows`: the cases the figure comes from; one with an error makes the target a row error. */
const target = (name, measured, shown, met, rows = []) =>
  targets.push({
    name,
    shown,
    met: Number.isFinite(measured) ? met : undefined,
    rowError: rows.some((key) => errors.has(key)),
  });
if (results.has('W1/dvt-resilient')) {
  const r = ratio(med('W1/dvt-resilient', 'nsPerTask'), med('W1/dvt-full', 'nsPerTask'));
  const rows = ['W1/dvt-resilient', 'W1/dvt-full'];
  target(
    'W1 full path with a closed breaker and full jitter ≤ 1.05× without',
    r,
    times(r),
    r <= 1.05,
    rows,
  );
}
if (results.has('W1/dvt-open')) {
  const r = ratio(med('W1/dvt-open', 'nsPerTask'), med('W1/p-limit', 'nsPerTask'));
  const rows = ['W1/dvt-open'];
  target('W1 tasks against an open circuit ≤ 0.5× p-limit ns/task', r, times(r), r <= 0.5, rows);
}
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
if (ran('W7')) {
  const ns = med('W7/dovetail', 'nsPerTask');
  const rows = ['W7/dovetail'];
  const h = ratio(ns, med('W7/floor-heap', 'nsPerTask'));
  target('W7 priorities ≤ 1.2× the binary-heap floor ns/task', h, times(h), h <= 1.2, rows);
  const q = ratio(ns, med('W7/p-queue', 'nsPerTask'));
  target("W7 priorities ≤ 0.3× p-queue's ns/task", q, times(q), q <= 0.3, rows);
  const v = med('W7/dovetail', 'orderViolations');
  target('W7 starts in exact priority order', v, orderShown(v), v === 0);
}
if (ran('W8')) {
  const rows = ['W8/dovetail'];
  for (const [field, what] of [
    ['coldMs', 'the last cold task done'],
    ['ms', 'everything done'],
  ]) {
    const ms = med('W8/dovetail', field);
    const r = ratio(ms, W8_FLOORS[field]);
    target(
      `W8 ${what} ≤ 1.1× its floor (${int(W8_FLOORS[field])} ms)`,
      r,
      `${int(ms)} ms, ${times(r)}`,
      r <= 1.1,
      rows,
    );
  }
}
if (ran('W9A')) {
  const r = med('W9A/dovetail', 'heapRatio');
  target(
    `W9a heap after ${int(N9A)} distinct keys within 5% of the start (after / start)`,
    r,
    `${times(r)} (${cell('W9A/dovetail', 'startMB', mb)} → ${cell('W9A/dovetail', 'endMB', mb)} MB)`,
    r <= 1.05,
    ['W9A/dovetail'],
  );
}
if (ran('W9B')) {
  const [p, plain] = [
    med('W9B/dovetail', 'bytesPerTask'),
    med('W9B/dovetail-plain', 'bytesPerTask'),
  ];
  const r = ratio(p, plain);
  target(
    'W9b heap per queued task: with priorities ≤ 1.05× without',
    r,
    `${int(p)} vs ${int(plain)} B, ${times(r)}`,
    r <= 1.05,
    ['W9B/dovetail', 'W9B/dovetail-plain'],
  );
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
  `- Every case runs in a fresh process (\`node bench/worker.mjs\`); ${RUNS_FAST} runs for W1 and W6, ${RUNS_HEAP} for W9b, ${RUNS_SLOW} for the others, rounds interleaved across libraries; the tables show medians. Peak RSS is the child's own \`process.resourceUsage().maxRSS\` (it includes Node's baseline of about 40 MB).`,
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

/**
 * What each workload is compared on (lower is better for all of them), with the figures' format
 * when whole numbers would hide the difference; W1b is about memory too.
 */
const COMPARED = {
  overhead: [['nsPerTask', 'ns/task']],
  sleep: [['ms', 'wall ms']],
  rate: [['ms', 'ms to the last start']],
  W1B: [
    ['nsPerTask', 'ns/task'],
    ['rssMB', 'peak RSS MB'],
  ],
  priority: [['nsPerTask', 'ns/task']],
  keys: [
    ['coldMs', 'ms to the last cold task'],
    ['ms', 'ms to the last task'],
  ],
  keyMemory: [
    ['liveMB', 'heap MB with every key live', mb],
    ['endMB', 'heap MB after', mb],
  ],
  queueMemory: [['bytesPerTask', 'heap bytes per queued task']],
};
const range = (key, field, format = int) => {
  const s = spread(key, field);
  return s ? `${format(s[0])}–${format(s[1])}` : '';
};
const againstBaseline = cases
  .filter((c) => c.row.twinOf !== undefined)
  .flatMap((b) => {
    const current = cases.find((c) => c.key === `${b.w}/${b.row.twinOf}`);
    // Two rows of a workload may differ only by their task count (W1b's mapIterable).
    const label = `${current.row.label}${current.row.n === undefined ? '' : `, ${int(current.row.n)} tasks`}`;
    return (COMPARED[b.w] ?? COMPARED[b.spec.workload]).map(([field, unit, format = int]) => {
      const [now, then] = [med(current.key, field), med(b.key, field)];
      return [
        b.w,
        label,
        unit,
        format(now),
        format(then),
        times(ratio(now, then)),
        range(current.key, field, format),
        range(b.key, field, format),
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
      ['Target (issue 6; W7–W9: issue 15)', 'Measured', 'Result'],
      targets.map((t) => [
        t.name,
        t.shown,
        t.rowError
          ? '**row error**'
          : t.met === undefined
            ? 'n/a'
            : t.met
              ? '**met**'
              : '**missed**',
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

if (ran('W7')) {
  const [heap, pq] = [med('W7/floor-heap', 'nsPerTask'), med('W7/p-queue', 'nsPerTask')];
  say(
    '## W7: priorities',
    '',
    `${int(N7)} no-op tasks at concurrency 10, all submitted at once, with priorities 0–${LEVELS - 1} from a seeded generator (the same sequence for every library). The floor is the hand-written semaphore of W1 over a binary max-heap (priority, then submission order); Dovetail holds one \`dvt.task.with({ priority })\` per level, made up front, and schedules each task through its level's; its last row passes no priority at all (plain \`schedule\`). Start order compares the order in which the bodies started with the one owed: the first 10 at once in submission order, the others by priority, then submission order; it counts the adjacent pairs of starts out of that order. A Dovetail row out of order is an error of the run.`,
    '',
    caseTable('W7', W7_ROWS, [
      ['Library', label],
      ['Form', form],
      ['ns/task (median)', (r, key) => cell(key, 'nsPerTask')],
      ['min–max', (r, key) => range(key, 'nsPerTask')],
      ['× heap floor', (r, key) => times(ratio(med(key, 'nsPerTask'), heap))],
      ['× p-queue', (r, key) => times(ratio(med(key, 'nsPerTask'), pq))],
      ['Start order', (r, key) => orderShown(med(key, 'orderViolations'))],
      ['Peak RSS MB', rss],
    ]),
    '',
  );
}
if (ran('W8')) {
  /** The most seen in any run: a limit broken once is broken. */
  const most = (key, field) => int(Math.max(...results.get(key).map((r) => r[field])));
  const versus = (key, field) => times(ratio(med(key, field), W8_FLOORS[field]));
  say(
    '## W8: head-of-line blocking',
    '',
    `A hot key's ${int(W8.hot)} tasks submitted first, then ${W8.coldKeys} cold keys × ${W8.perCold} (in rounds: one task of each cold key in turn); every task waits on a ${W8.sleep} ms timer; per-key concurrency ${W8.perKey.concurrency}, instance concurrency ${W8.concurrency}. Floors (computed): the cold tasks all done after ${int(W8_FLOORS.coldMs)} ms (${int(W8_N - W8.hot)} × ${W8.sleep} ms over the ${W8.concurrency - W8.perKey.concurrency} slots the hot key leaves), everything after ${int(W8_FLOORS.ms)} ms (the hot key's tasks one after another). Most running: the most task bodies seen running at once in any run, in all and of one key; a row above a limit is an error.`,
    '',
    caseTable(
      'W8',
      W8_ROWS,
      [
        ['Library', label],
        ['Last cold task done ms', (r, key) => cell(key, 'coldMs')],
        ['× floor', (r, key) => versus(key, 'coldMs')],
        ['Everything done ms', (r, key) => cell(key, 'ms')],
        ['× floor', (r, key) => versus(key, 'ms')],
        [
          'Most running (all / one key)',
          (r, key) => `${most(key, 'peak')} / ${most(key, 'keyPeak')}`,
        ],
      ],
      [
        [
          'floor (computed)',
          int(W8_FLOORS.coldMs),
          '1.00×',
          int(W8_FLOORS.ms),
          '1.00×',
          `${W8.concurrency} / ${W8.perKey.concurrency}`,
          '',
        ],
      ],
    ),
    '',
  );
}
if (ran('W9A') || ran('W9B')) say('## W9: memory', '');
if (ran('W9A')) {
  const { perSecond, burst = perSecond } = W9A_PER_KEY.rateLimit;
  say(
    '### W9a: distinct keys leave no key state',
    '',
    `${int(N9A)} distinct keys, one no-op task each, all submitted at once to \`new Dovetail({ perKey: { concurrency: 1, rateLimit: { perSecond: ${perSecond} } } })\` through \`with({ key })\`. After they settle the run waits until every key's bucket is full again (burst / perSecond = ${fix(burst / perSecond, 1)} s, on a real timer: a key's state may be dropped only then), collects garbage (\`global.gc()\`; W9 workers run with \`--expose-gc\`) and reads \`heapUsed\`. The start is read the same way after a warm-up of ${int(Math.max(1000, N9A / 10))} other keys, so that compiled code and tables made on first use count in both; "every key live" is read right after the submissions.`,
    '',
    caseTable('W9A', W9A_ROWS, [
      ['Case', label],
      ['Keys', () => int(N9A)],
      ['Heap at start MB', (r, key) => cell(key, 'startMB', mb)],
      ['Heap with every key live MB', (r, key) => cell(key, 'liveMB', mb)],
      ['Heap after MB', (r, key) => cell(key, 'endMB', mb)],
      ['After / start', (r, key) => cell(key, 'heapRatio', times)],
      ['Bytes left per key', (r, key) => cell(key, 'bytesLeftPerKey', (v) => fix(v, 1))],
    ]),
    '',
  );
}
if (ran('W9B')) {
  // Each row against the row of the same library without priorities (a twin against its own).
  const without = (r) =>
    r.lib.startsWith('floor')
      ? 'W9B/floor'
      : `W9B/dovetail-plain${r.twinOf === undefined ? '' : '-base'}`;
  say(
    '### W9b: heap per queued task',
    '',
    `An instance at concurrency 1 whose first task holds the slot on a promise the bench releases after the measure; ${int(N9B)} no-op tasks are scheduled behind it (with seeded priorities 0–${LEVELS - 1}, through one \`with({ priority })\` per level, or through plain \`schedule\`) and, while they all wait, the heap after a full collection is compared with the heap before them (the array holding the tasks is made beforehand, so it is not counted). Then the first task is released and all of them run. The floors are the semaphore of W1 and the binary heap of W7. ${RUNS_HEAP} run(s) per case.`,
    '',
    caseTable('W9B', W9B_ROWS, [
      ['Case', label],
      ['Form', form],
      ['Queued tasks', () => int(N9B)],
      ['Heap bytes per queued task', (r, key) => cell(key, 'bytesPerTask')],
      [
        '× without priorities',
        (r, key) => times(ratio(med(key, 'bytesPerTask'), med(without(r), 'bytesPerTask'))),
      ],
      ['Peak RSS MB', rss],
    ]),
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
  'node bench/run.mjs --only W7,W8,W9A,W9B   # the queue-control workloads (issue 15)',
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
  `wrote ${[path.relative(root, file), ...written].join(', ')} in ${((Date.now() - started) / 1000).toFixed(0)} s\n`,
);
if (baselineTable !== undefined)
  process.stderr.write(
    `\nAgainst the baseline ${baseline.short} (current / baseline below 1.00× = faster now):\n\n${await format(baselineTable)}`,
  );
if (failures.length > 0) {
  process.stderr.write(`${failures.length} case(s) failed\n`);
  process.exitCode = 1;
}
