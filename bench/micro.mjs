// Two micro-measurements behind the hot-path notes (STYLE.md §10), on W1 (100 000 no-op tasks at
// concurrency 100, all submitted at once), each case in a fresh process, medians of --runs:
//
//   1. plain p-limit, and plain p-limit with one AsyncLocalStorage.run() anywhere in the process
//      (on Node < 24 that switches promise hooks on for every promise);
//   2. p-limit + p-timeout per task, versus p-limit + a bare setTimeout/clearTimeout pair per task.
//
//   node bench/micro.mjs [--runs 5] [--n 100000]

import { AsyncLocalStorage } from 'node:async_hooks';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import pLimit from 'p-limit';
import pTimeout from 'p-timeout';

const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1] : fallback;
};
const n = Number(opt('--n', 100_000));

const CASES = {
  'p-limit': (limit, fn, x) => limit(fn, x),
  'p-limit, one als.run() in the process': (limit, fn, x) => limit(fn, x),
  'p-limit + p-timeout (5000 ms)': (limit, fn, x) =>
    limit(() => pTimeout(fn(x), { milliseconds: 5000 })),
  'p-limit + setTimeout/clearTimeout pair': (limit, fn, x) =>
    limit(() => {
      const timer = setTimeout(() => {}, 5000);
      return fn(x).finally(() => clearTimeout(timer));
    }),
};

const child = opt('--case', undefined);
if (child !== undefined) {
  if (child.includes('als.run')) new AsyncLocalStorage().run(1, () => {});
  const submit = CASES[child];
  const limit = pLimit(100);
  const fn = async (x) => x;
  const items = Array.from({ length: n }, (_, i) => i);
  const t0 = process.hrtime.bigint();
  await Promise.all(items.map((x) => submit(limit, fn, x)));
  const ns = Number(process.hrtime.bigint() - t0) / n;
  process.stdout.write(`${ns}\n`);
} else {
  const runs = Number(opt('--runs', 5));
  const self = fileURLToPath(import.meta.url);
  const samples = Object.fromEntries(Object.keys(CASES).map((c) => [c, []]));
  for (let r = 0; r < runs; r++)
    for (const c of Object.keys(CASES)) {
      const out = spawnSync(process.execPath, [self, '--case', c, '--n', String(n)], {
        encoding: 'utf8',
      });
      if (out.status !== 0) throw new Error(out.stderr);
      samples[c].push(Number(out.stdout));
    }
  const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
  const base = median(samples['p-limit']);
  console.log(
    `Node ${process.version}, ${n} tasks, concurrency 100, median of ${runs} fresh processes\n`,
  );
  console.log('| Case | ns/task | min–max | added to p-limit |\n| --- | ---: | ---: | ---: |');
  for (const [c, v] of Object.entries(samples)) {
    const m = median(v);
    console.log(
      `| ${c} | ${Math.round(m)} | ${Math.round(Math.min(...v))}–${Math.round(Math.max(...v))} | ${c === 'p-limit' ? '' : `+${Math.round(m - base)}`} |`,
    );
  }
}
