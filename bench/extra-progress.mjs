// What `onProgress` costs `map` (issue 19, "Progress"): 100 000 items of `x => x` through
// `dvt.task.map`, concurrency 100, without the option and with one that keeps the last report.
// Per case: wall ns per item and heap bytes allocated per item. The heap figure is read with a
// new space large enough (256 MB) that no scavenge runs during the pass, so the growth of
// `heapUsed` is what the pass allocated (the results array included, the same in every case).
//
//   node bench/extra-progress.mjs [--quick] [--runs 5] [--n 100000] [--baseline path/to/dist/index.js]
//
// `npm run bench` runs it as an extension (bench/run.mjs appends the markdown it prints).
// --baseline adds the case without the option on another build (say, one of the commit before:
// `git archive REV src tsconfig.json tsconfig.build.json package.json | tar -x -C DIR`, link
// node_modules there, `npx tsc -p DIR/tsconfig.build.json`). Each run of a case is a fresh
// process; the cases alternate so that drift on a shared machine hits them alike. Prints a
// markdown section with the medians. Builds nothing: run `npm run build` first.

import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const option = (name) => {
  const at = argv.indexOf(name);
  return at >= 0 ? argv[at + 1] : undefined;
};

if (argv[0] === '--child') {
  const [, entry, mode, n] = argv;
  const { Dovetail } = await import(pathToFileURL(entry ?? '').href);
  const items = Array.from({ length: Number(n) }, (_, i) => i);
  const dvt = new Dovetail({ concurrency: 100, autoRegister: false, shutdownOnExit: false });
  let last;
  const options = mode === 'progress' ? { onProgress: (p) => (last = p) } : undefined;
  await dvt.task.map((x) => x, items.slice(0, 10_000), options); // warm-up
  globalThis.gc?.();
  const heap = process.memoryUsage().heapUsed;
  const t0 = process.hrtime.bigint();
  await dvt.task.map((x) => x, items, options);
  const ns = Number(process.hrtime.bigint() - t0) / items.length;
  const bytes = (process.memoryUsage().heapUsed - heap) / items.length;
  if (mode === 'progress' && last?.done !== items.length) throw new Error('onProgress not heard');
  process.stdout.write(JSON.stringify({ ns, bytes }));
  await dvt.shutdown();
} else {
  const quick = argv.includes('--quick');
  const runs = Number(option('--runs') ?? (quick ? 1 : 5));
  const n = Number(option('--n') ?? (quick ? 20_000 : 100_000));
  const load = os.loadavg()[0] ?? 0;
  const current = path.join(here, '..', 'dist', 'index.js');
  const cases = [
    ['map, no onProgress', current, 'none'],
    ['map, onProgress', current, 'progress'],
  ];
  const baseline = option('--baseline');
  if (baseline !== undefined) cases.push(['map, no onProgress (baseline)', baseline, 'none']);
  const samples = cases.map(() => []);
  for (let run = 0; run < runs; run++) {
    cases.forEach(([, entry, mode], i) => {
      const flags = ['--expose-gc', '--min-semi-space-size=256', '--max-semi-space-size=256'];
      const child = spawnSync(
        process.execPath,
        [...flags, fileURLToPath(import.meta.url), '--child', entry, mode, String(n)],
        { encoding: 'utf8' },
      );
      if (child.status !== 0) throw new Error(child.stderr);
      samples[i]?.push(JSON.parse(child.stdout));
    });
  }
  const median = (values) => values.sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
  const rows = cases.map(([label], i) => {
    const ns = median((samples[i] ?? []).map((sample) => sample.ns));
    const bytes = median((samples[i] ?? []).map((sample) => sample.bytes));
    return `| ${label} | ${ns.toFixed(0)} | ${bytes.toFixed(0)} |`;
  });
  const lines = [
    '## onProgress: what it costs map',
    '',
    `${n.toLocaleString('en-US')} items of \`x => x\` through \`dvt.task.map\`, concurrency 100, without ` +
      'and with an `onProgress` that keeps the last report; each case in a fresh process, ' +
      `median of ${runs} run(s). Heap bytes per item are read with a 256 MB new space (no ` +
      'scavenge during the pass), the results array included. The machine load at the start ' +
      `(1-minute average) was ${load.toFixed(1)} on ${os.cpus().length} cores.`,
    '',
    '| Case | ns per item | heap bytes per item |',
    '| --- | ---: | ---: |',
    ...rows,
    '',
    'Reproduce: `npm run build && node bench/extra-progress.mjs` (or `--quick`; `--baseline',
    'DIR/dist/index.js` adds another build without the option).',
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
