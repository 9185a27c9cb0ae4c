// The hedging benchmark: `node bench/extra-hedge.mjs [--quick]` (after `npm run build`), also run
// by `npm run bench`, which appends the markdown section it prints on stdout (progress on stderr).
//
// The upstream of bench/upstream.mjs in tail mode (10 ms, or 200 ms with probability 3%, seeded),
// in a child process, with room for every request (64 workers: no queueing at the server). 2 000
// requests (`fetch`, body read) sent at a steady 400/s through a concurrency of 20, for each row:
//   - plain: p-limit(20) around fetch, no Dovetail (the reference);
//   - Dovetail without `hedge`;
//   - Dovetail with `hedge: { delay: 'p95' }`;
//   - Dovetail with `hedge: { delay: 30 }`.
// Latency is from the call to the body read. Extra requests are what the server received beyond
// the 2 000; aborted is what it saw its clients close before the response ended (losing copies).
// Three runs per row, rounds interleaved, medians reported; --quick: one run of 400 requests.
//
// Targets (issue 17): with 'p95' p99 <= 0.25x plain, p50 <= 1.1x plain, extra <= 10%, losing
// copies aborted at the server; with 30, p99 <= 0.3x plain and extra <= 6%; without hedge, p50
// and p99 within 1.1x plain. They are checked and printed; a miss is reported, not an exit code
// (the machine is shared and a loaded run is not a broken build).

import pLimit from 'p-limit';
import { startUpstream } from './upstream.mjs';

const quick = process.argv.includes('--quick');
const REQUESTS = quick ? 400 : 2000;
const RATE = 400;
const CONCURRENCY = 20;
const RUNS = quick ? 1 : 3;
const log = (text) => process.stderr.write(`    ${text}\n`);
const now = () => performance.now();

const { Dovetail, currentTask } = await import('../dist/index.js');

const ROWS = [
  { id: 'plain', label: 'plain: p-limit(20) + fetch' },
  { id: 'none', label: 'Dovetail, no hedge' },
  { id: 'p95', label: "Dovetail, `hedge: { delay: 'p95' }`", hedge: { delay: 'p95' } },
  { id: 'fixed30', label: 'Dovetail, `hedge: { delay: 30 }`', hedge: { delay: 30 } },
];

const quantile = (sorted, q) =>
  sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)];
};

async function get(url, signal) {
  const response = await fetch(url, { signal });
  await response.text();
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
}

/** One run of one row: REQUESTS calls at RATE/s, each timed from its call to its body. */
async function run(row, upstream) {
  await upstream.reset();
  let dvt;
  let call;
  if (row.id === 'plain') {
    const limit = pLimit(CONCURRENCY);
    call = () => limit(() => get(upstream.url));
  } else {
    dvt = new Dovetail({
      concurrency: CONCURRENCY,
      hedge: row.hedge,
      autoRegister: false,
      shutdownOnExit: false,
    });
    call = () => dvt.task.schedule(() => get(upstream.url, currentTask().signal));
  }
  const latencies = [];
  let failed = 0;
  const pending = [];
  const start = now();
  for (let i = 0; i < REQUESTS; i++) {
    // A steady rate: request i is due at start + i / RATE s, whatever the earlier ones did.
    const due = start + (i * 1000) / RATE;
    const wait = due - now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const t0 = now();
    pending.push(
      call().then(
        () => latencies.push(now() - t0),
        () => (failed += 1),
      ),
    );
  }
  await Promise.all(pending);
  const elapsed = now() - start;
  // Losing copies are aborted by now; give the server a moment to see the last closes.
  await new Promise((resolve) => setTimeout(resolve, 300));
  const server = await upstream.stats();
  const hedged = dvt?.events.stats().hedged ?? 0;
  await dvt?.shutdown();
  latencies.sort((a, b) => a - b);
  return {
    p50: quantile(latencies, 0.5),
    p99: quantile(latencies, 0.99),
    extra: (server.requests - REQUESTS) / REQUESTS,
    aborted: server.aborted,
    hedged,
    failed,
    rate: (REQUESTS * 1000) / elapsed,
  };
}

const upstream = await startUpstream({
  mode: 'tail',
  tailFast: 10,
  tailSlow: 200,
  tailP: 0.03,
  capacity: 64,
  queueLimit: 10_000,
  seed: 17,
});
const results = Object.fromEntries(ROWS.map((row) => [row.id, []]));
try {
  // A short warm-up (connections, JIT), not measured.
  await Promise.all(Array.from({ length: 40 }, () => get(upstream.url)));
  for (let round = 0; round < RUNS; round++) {
    for (const row of round % 2 === 0 ? ROWS : [...ROWS].reverse()) {
      const result = await run(row, upstream);
      results[row.id].push(result);
      log(
        `hedge/${row.id} run ${round + 1}/${RUNS}: p50 ${result.p50.toFixed(1)} ms, p99 ${result.p99.toFixed(1)} ms, extra ${(result.extra * 100).toFixed(1)}%, aborted ${result.aborted}, hedged ${result.hedged}, failed ${result.failed}`,
      );
    }
  }
} finally {
  await upstream.stop();
}

const med = (id, field) => median(results[id].map((r) => r[field]));
const plain = { p50: med('plain', 'p50'), p99: med('plain', 'p99') };
const ms = (x) => `${x.toFixed(1)} ms`;
const pct = (x) => `${(x * 100).toFixed(1)}%`;
const ratio = (x, of) => `${(x / of).toFixed(2)}×`;

const lines = [];
lines.push('## Hedged requests (issue 17)');
lines.push('');
lines.push(
  `\`node bench/extra-hedge.mjs${quick ? ' --quick' : ''}\`: the upstream of bench/upstream.mjs in tail mode (10 ms, or 200 ms with probability 3%, seeded; 64 workers, so no queueing at the server), ${REQUESTS} \`fetch\` requests at a steady ${RATE}/s through a concurrency of ${CONCURRENCY}, latency from the call to the body. Medians of ${RUNS} run${RUNS === 1 ? '' : 's'} per row, rounds interleaved. Extra: requests the server received beyond ${REQUESTS}; aborted: requests whose client closed them before the response ended (losing copies).`,
);
lines.push('');
lines.push(
  '| row | p50 | p99 | p50 / plain | p99 / plain | extra requests | aborted at the server | hedges sent |',
);
lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
for (const row of ROWS) {
  const p50 = med(row.id, 'p50');
  const p99 = med(row.id, 'p99');
  lines.push(
    `| ${row.label} | ${ms(p50)} | ${ms(p99)} | ${ratio(p50, plain.p50)} | ${ratio(p99, plain.p99)} | ${pct(med(row.id, 'extra'))} | ${med(row.id, 'aborted')} | ${med(row.id, 'hedged')} |`,
  );
}
lines.push('');
const targets = [
  ["'p95': p99 <= 0.25x plain", med('p95', 'p99') <= 0.25 * plain.p99],
  ["'p95': p50 <= 1.1x plain", med('p95', 'p50') <= 1.1 * plain.p50],
  ["'p95': extra requests <= 10%", med('p95', 'extra') <= 0.1],
  ["'p95': losing copies aborted at the server", med('p95', 'aborted') > 0],
  ['30: p99 <= 0.3x plain', med('fixed30', 'p99') <= 0.3 * plain.p99],
  ['30: extra requests <= 6%', med('fixed30', 'extra') <= 0.06],
  ['no hedge: p50 within 1.1x plain', med('none', 'p50') <= 1.1 * plain.p50],
  ['no hedge: p99 within 1.1x plain', med('none', 'p99') <= 1.1 * plain.p99],
];
lines.push('| target | met |');
lines.push('| --- | --- |');
for (const [what, met] of targets) lines.push(`| ${what} | ${met ? 'yes' : '**no**'} |`);
lines.push('');
for (const [what, met] of targets) log(`target ${what}: ${met ? 'met' : 'MISSED'}`);
process.stdout.write(lines.join('\n') + '\n');
