// CPU profiles of Dovetail on W1 (100 000 no-op tasks at concurrency 100), one fresh process per
// case under `node --cpu-prof`, and the functions with the most self time in each.
//
//   node bench/profile.mjs [--n 100000] [--top 15] [--no-inline]
//
// --no-inline runs V8 with --no-turbo-inlining: slower overall, but self time stays with the
// function that spends it instead of being folded into whichever caller inlined it.
//
// Cases: `schedule` with defaults, `map` with defaults, and the full path (retries + timeout + a
// listener on every event). The .cpuprofile files land in reports/bench/profiles/ (open them in Chrome
// DevTools or speedscope for the call tree); the summary is printed as markdown.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const argv = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : fallback;
};
const n = opt('--n', 100_000);
const top = opt('--top', 15);

const cases = [
  { name: 'schedule-defaults', spec: { mode: 'schedule' } },
  { name: 'map-defaults', spec: { mode: 'map' } },
  { name: 'schedule-full', spec: { mode: 'schedule', full: true } },
];

/** Self time per function (name + file:line), in ms, from a V8 .cpuprofile. */
function selfTimes(profile) {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map();
  const { samples, timeDeltas } = profile;
  let total = 0;
  for (let i = 0; i < samples.length; i++) {
    const node = byId.get(samples[i]);
    const dt = (timeDeltas[i] ?? 0) / 1000;
    total += dt;
    const frame = node.callFrame;
    const file = frame.url ? frame.url.replace(/^file:\/\//, '').replace(`${root}/`, '') : '';
    const key = `${frame.functionName || '(anonymous)'}${file ? ` ${file}:${frame.lineNumber + 1}` : ''}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  return { total, rows: [...self.entries()].sort((a, b) => b[1] - a[1]) };
}

const dir = path.join(root, 'reports', 'bench', 'profiles');
mkdirSync(dir, { recursive: true });
for (const c of cases) {
  const caseDir = path.join(dir, c.name);
  rmSync(caseDir, { recursive: true, force: true });
  const spec = { workload: 'overhead', lib: 'dovetail', n, concurrency: 100, ...c.spec };
  const run = spawnSync(
    process.execPath,
    [
      ...(argv.includes('--no-inline') ? ['--no-turbo-inlining'] : []),
      '--cpu-prof',
      '--cpu-prof-dir',
      caseDir,
      '--cpu-prof-interval',
      '100',
      path.join(here, 'worker.mjs'),
      JSON.stringify(spec),
    ],
    { cwd: root, encoding: 'utf8' },
  );
  if (run.status !== 0) throw new Error(`${c.name}: ${run.stderr}`);
  const result = JSON.parse(run.stdout.trim());
  const file = readdirSync(caseDir).find((f) => f.endsWith('.cpuprofile'));
  const { total, rows } = selfTimes(JSON.parse(readFileSync(path.join(caseDir, file), 'utf8')));
  console.log(
    `### ${c.name}: ${Math.round(result.nsPerTask)} ns/task under the profiler, ${Math.round(total)} ms sampled\n`,
  );
  console.log('| Self ms | % | Function |\n| ---: | ---: | --- |');
  for (const [key, ms] of rows.slice(0, top))
    console.log(`| ${ms.toFixed(1)} | ${((ms / total) * 100).toFixed(1)}% | \`${key}\` |`);
  console.log(`\nProfile: ${path.relative(root, path.join(caseDir, file))}\n`);
}
