// Runs each example as a user would, as its own process against the built package, and checks its
// output and exit code. `node --import tsx file.ts` is what `npx tsx file.ts` runs, minus npx's
// start-up time and its wrapper process (signals here must reach the service itself).
import { describe, expect, it, jest } from '@jest/globals';
import { request } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { ROOT, ensureBuilt, lines, run, start } from '../fixtures/child.js';
import { itWithTmux, openTerminal } from '../helpers/tmux.js';

ensureBuilt();
// Each example is a process start plus tsx's compile: allow for a busy machine.
jest.setTimeout(30_000);

const EXAMPLES = join(ROOT, 'examples');
const TSX = ['--import', 'tsx'];

// Not a terminal: a plain line at each quarter, the failures, the summary. How many items failed
// by a quarter depends on which finished first; at the end it is 2.
const SCRIPT_OUTPUT = [
  'retrying item 2 after: /docs/page-3: 503 Service Unavailable',
  expect.stringMatching(/^progress: 3\/12 pages \(25%\), [0-2] failed$/),
  expect.stringMatching(/^progress: 6\/12 pages \(50%\), [0-2] failed$/),
  expect.stringMatching(/^progress: 9\/12 pages \(75%\), [0-2] failed$/),
  'progress: 12/12 pages (100%), 2 failed',
  'FAILED /docs/page-5: 404 Not Found',
  'FAILED /docs/page-9: 404 Not Found',
  'summary: 12 checked, 10 ok, 2 failed, 1 retried, peak 3 running (limit 3)',
];

/** GET over loopback on a fresh connection; resolves with the status and body. */
function get(port: number, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Runs a TypeScript example to its end, checks that it ended cleanly, and gives its lines. */
async function output(example: string): Promise<string[]> {
  const result = await start(join(EXAMPLES, example), [], TSX, 50_000).result;
  expect(result.stderr).toBe('');
  expect(result.code).toBe(0);
  return lines(result.stdout);
}

describe('examples', () => {
  it.concurrent(
    'npm run demo (quickstart.mjs) names items by their index, as the results are',
    async () => {
      const result = await run(join(EXAMPLES, 'quickstart.mjs'));
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(lines(result.stdout)).toEqual([
        'Dovetail demo: 10 items, concurrency 3, retries 2, timeout 300 ms',
        // The item the code calls 4 fails once; item 7 sleeps 1 s and times out on all 3 attempts.
        '  retry: item 4 attempt 1 failed (Error: upstream 503), next in 20 ms',
        '  retry: item 7 attempt 1 failed (TimeoutError: timed out after 300 ms), next in 20 ms',
        '  retry: item 7 attempt 2 failed (TimeoutError: timed out after 300 ms), next in 40 ms',
        ...Array.from({ length: 10 }, (_, i) =>
          i === 7 ? '  7: TimeoutError after 300 ms' : `  ${i}: item-${i}`,
        ),
        'peak running: 3 (limit 3)',
        expect.stringMatching(/^stats: \{"queued":10,"started":13,"done":9,"error":1,"retries":3,/),
      ]);
      // Item 7 alone takes three 300 ms attempts and 20 + 40 ms of backoff; the upper bound is
      // only there to catch a hang on a busy machine.
      expect(result.elapsed).toBeGreaterThanOrEqual(900);
      expect(result.elapsed).toBeLessThan(20_000);
    },
  );

  it.concurrent(
    'script.mts (tsx on Node 20/22) maps with bounded concurrency and prints a summary',
    async () => {
      const result = await run(join(EXAMPLES, 'script.mts'), [], TSX);
      expect(result.stderr).toBe('');
      expect(lines(result.stdout)).toEqual(SCRIPT_OUTPUT);
      expect(result.code).toBe(0);
    },
  );

  itWithTmux(
    'script.mts draws a progress bar in a real terminal (tmux) that moves and ends at 100%',
    async () => {
      const PAGES = 150;
      const terminal = await openTerminal(
        `dovetail-test-${process.pid}`,
        [process.execPath, ...TSX, join(EXAMPLES, 'script.mts'), String(PAGES)],
        { cwd: ROOT, env: { ...process.env, DOVETAIL_TRACE: '', NODE_OPTIONS: '' } },
      );
      const bar = new RegExp(
        `^checking \\[.*\\] (\\d+)% \\| (\\d+)/${PAGES} pages \\| (\\d+) failed$`,
      );
      const seen: number[] = [];
      let screen: string[] = [];
      try {
        // Read the screen every 100 ms until the program has ended (it takes a few seconds).
        const deadline = performance.now() + 45_000;
        while (performance.now() < deadline) {
          screen = await terminal.screen();
          const drawn = screen.map((row) => bar.exec(row)).find((match) => match !== null);
          if (drawn != null) seen.push(Number(drawn[1]));
          if (screen.some((row) => row.startsWith('[exit '))) break;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      } finally {
        await terminal.close();
      }
      // The bar moved: it was read part-way at least twice, never going back, and ended at 100%.
      const partWay = new Set(seen.filter((percent) => percent > 0 && percent < 100));
      expect(partWay.size).toBeGreaterThanOrEqual(2);
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
      expect(seen.at(-1)).toBe(100);
      // One bar, redrawn in place: the final screen has it once, with the retry line above it (no
      // plain progress lines, which are for output that is not a terminal).
      const bars = screen.filter((row) => bar.test(row));
      expect(bars).toEqual([
        expect.stringMatching(`100% \\| ${PAGES}/${PAGES} pages \\| 2 failed$`),
      ]);
      expect(screen.some((row) => row.startsWith('progress:'))).toBe(false);
      const end = screen.slice(screen.indexOf(bars[0] ?? '') - 1);
      expect(end).toEqual([
        'retrying item 2 after: /docs/page-3: 503 Service Unavailable',
        bars[0],
        'FAILED /docs/page-5: 404 Not Found',
        'FAILED /docs/page-9: 404 Not Found',
        `summary: ${PAGES} checked, ${PAGES - 2} ok, 2 failed, 1 retried, peak 3 running (limit 3)`,
        '[exit 0]',
      ]);
    },
    60_000,
  );

  it.concurrent('script.mjs, with its await using, gives the same output', async () => {
    const file = join(EXAMPLES, 'script.mjs');
    const source = readFileSync(file, 'utf8');
    expect(source).toMatch(/^await using dvt = /m);
    let result;
    if (Number(process.versions.node.split('.')[0]) >= 24) {
      result = await run(file);
    } else {
      // Node < 24 cannot parse `await using`: run the file lowered by TypeScript, as is.
      const lowered = ts.transpileModule(source, {
        fileName: 'script.mjs',
        compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
      }).outputText;
      result = await run('--eval', [lowered], ['--input-type=module']);
    }
    expect(result.stderr).toBe('');
    expect(lines(result.stdout)).toEqual(SCRIPT_OUTPUT);
    expect(result.code).toBe(0);
  });

  it.concurrent(
    'legacy-callbacks.ts brings a callback API under retries and timeouts',
    async () => {
      const result = await run(join(EXAMPLES, 'legacy-callbacks.ts'), [], TSX);
      expect(result.stderr).toBe('');
      expect(lines(result.stdout)).toEqual([
        'alpha: value of alpha',
        'retry: attempt 1 failed (Error: ECONNRESET), next in 50 ms',
        'flaky: value of flaky',
        'retry: attempt 1 failed (TimeoutError: timed out after 400 ms), next in 50 ms',
        'retry: attempt 2 failed (TimeoutError: timed out after 400 ms), next in 100 ms',
        'stuck: gave up, timed out after 400 ms on each of 3 attempts',
        'package name: dovetailjs',
        expect.stringMatching(/^stats: \{"queued":4,"started":7,"done":3,"error":1,"retries":3,/),
      ]);
      expect(result.code).toBe(0);
    },
  );

  it.concurrent(
    'service.ts drains on SIGTERM: requests in flight finish, new ones get 503, then it exits 0',
    async () => {
      const child = start(join(EXAMPLES, 'service.ts'), [], TSX);
      await child.waitFor(/^listening on /);
      const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(child.stdout())?.[1]);
      expect(port).toBeGreaterThan(0);
      const inFlight = ['1', '2', '3'].map((user) => get(port, `/?user=${user}`));
      for (const user of ['1', '2', '3']) await child.waitFor(`request user=${user}`);
      child.kill('SIGTERM');
      await child.waitFor('SIGTERM: draining');
      const late = await get(port, '/?user=late');
      expect(late).toEqual({ status: 503, body: 'shutting down\n' });
      const answers = await Promise.all(inFlight);
      for (const [index, answer] of answers.entries()) {
        const user = String(index + 1);
        expect(answer.status).toBe(200);
        expect(JSON.parse(answer.body)).toEqual({
          user,
          parts: [`profile of user ${user}`, `orders of user ${user}`, `settings of user ${user}`],
        });
      }
      const result = await child.result;
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('');
      expect(lines(result.stdout).slice(-2)).toEqual([
        expect.stringMatching(/^drained: \{"queued":9,"started":9,"done":9,"error":0,/),
        'closed',
      ]);
    },
    30_000,
  );

  it.concurrent(
    'http-upstream.ts waits out a 429 for every task and stops calling during an outage',
    async () => {
      const result = await run(join(EXAMPLES, 'http-upstream.ts'), [], TSX);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      const out = lines(result.stdout);
      // Every task settled.
      expect(out[0]).toMatch(/^tasks: 80 settled, \d+ ok, \d+ short-circuited$/);
      const server =
        /^server: (\d+) requests, (\d+) answered 429, (\d+) answered 503, (\d+) early after a 429, (\d+) during the outage$/.exec(
          out[1] ?? '',
        );
      expect(server).not.toBeNull();
      const [, , tooMany, , early, duringOutage] = (server ?? []).map(Number);
      // A 429 was heard, and after it no request came before its Retry-After time.
      expect(tooMany).toBeGreaterThan(0);
      expect(early).toBe(0);
      // During the 1 s outage: the 3 failures that open the breaker (and what was already on its
      // way), then only one trial per 300 ms half-open period.
      expect(duringOutage).toBeGreaterThanOrEqual(1);
      expect(duringOutage).toBeLessThanOrEqual(3 + 2 + Math.ceil(1000 / 300));
      expect(out[2]).toMatch(/^stats: \d+ retries, [1-9]\d* short-circuited$/);
      expect(out[3]).toBe('changes: paused, circuit_open, circuit_closed');
    },
    30_000,
  );
  it.concurrent(
    'opentelemetry.ts prints a span per task through the console exporter, nested as scheduled',
    async () => {
      const result = await run(join(EXAMPLES, 'opentelemetry.ts'), [], TSX);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      expect(lines(result.stdout).at(-1)).toBe('result: receipt-42, sizes 5 6 7');
      // The console exporter prints each span as an inspected object: its name, id and parent.
      const spans = result.stdout
        .split(/^\{$/m)
        .slice(1)
        .map((block) => ({
          block,
          name: /^ {2}name: '(.+)',$/m.exec(block)?.[1],
          id: /^ {2}id: '(\w+)',$/m.exec(block)?.[1],
          parent: /^ {2}parentSpanContext: \{\n\s+traceId: '\w+',\n\s+spanId: '(\w+)'/m.exec(
            block,
          )?.[1],
        }));
      const byName = (name: string) => spans.filter((span) => span.name === name);
      const request = byName('handle request');
      expect(request).toHaveLength(1);
      const charge = byName('dovetail schedule charge');
      expect(charge.map((span) => span.parent)).toEqual([request[0]?.id]);
      expect(charge[0]?.block).toContain("'dovetail.attempts': 2");
      expect(charge[0]?.block).toContain("name: 'dovetail.retry'");
      const items = byName('dovetail map resize');
      expect(items.map((span) => span.parent)).toEqual(Array(3).fill(request[0]?.id));
      const writes = spans.filter((span) => span.name?.startsWith('write ') === true);
      expect(writes).toHaveLength(3);
      expect(new Set(writes.map((span) => span.parent))).toEqual(
        new Set(items.map((span) => span.id)),
      );
    },
    30_000,
  );

  it.concurrent(
    'metered-api.ts keeps within a requests and a tokens quota and waits out the 429 it meets',
    async () => {
      const out = await output('metered-api.ts');
      expect(out[0]).toBe(
        'quotas: 3000 requests/min, 300000 tokens/min; the client plans for 90% of each',
      );
      const phase = (line: string | undefined) =>
        /^(.+): (\d+) requests, (\d+) tokens in [\d.]+ s: (\d+) requests\/min \(quota 3000\), (\d+) tokens\/min \(quota 300000\); paused ([\d.]+) s$/
          .exec(line ?? '')
          ?.slice(1)
          .map((field, i) => (i === 0 ? field : Number(field)));
      // Short prompts: the request quota binds; the client's even pace needs no pause.
      const [name, count, , rpm, , paused] = phase(out[1]) ?? [];
      expect([name, count, paused]).toEqual(['short prompts', 100, 0]);
      expect(rpm).toBeGreaterThan(0.4 * 2700);
      expect(rpm).toBeLessThanOrEqual(3000);
      // Long prompts: the token quota binds, and the neighbour's spending costs a pause.
      const [longName, longCount, , , tpm, longPaused] = phase(out[2]) ?? [];
      expect([longName, longCount]).toEqual(['long prompts', 45]);
      expect(tpm).toBeGreaterThan(0.4 * 300_000);
      expect(tpm).toBeLessThanOrEqual(300_000);
      expect(longPaused).toBeGreaterThanOrEqual(0.9);
      // Every 429 was over the token quota, was retried once, and nothing was sent while paused.
      const [tooMany, overRequests, overTokens, retries, ok, failed, duringPause] = (
        /^429s: (\d+) \((\d+) over the request quota, (\d+) over the token quota\), (\d+) retries, (\d+) ok, (\d+) failed, (\d+) sent while paused$/.exec(
          out[3] ?? '',
        ) ?? []
      )
        .slice(1)
        .map(Number);
      expect(tooMany).toBeGreaterThanOrEqual(1);
      expect([overRequests, overTokens, retries]).toEqual([0, tooMany, tooMany]);
      expect([ok, failed, duringPause]).toEqual([145, 0, 0]);
    },
    60_000,
  );

  it.concurrent(
    'circuit-breaker.ts serves every page, with the fallback while the breaker is open, and traces each call under its page',
    async () => {
      const out = await output('circuit-breaker.ts');
      const numbers = (pattern: RegExp, line: string | undefined) =>
        (pattern.exec(line ?? '') ?? []).slice(1).map(Number);
      const [pages, recommended, fallbacks] = numbers(
        /^pages: (\d+) served, (\d+) with recommendations, (\d+) with the fallback$/,
        out[0],
      );
      expect(pages).toBe(80);
      expect((recommended ?? 0) + (fallbacks ?? 0)).toBe(80);
      expect(recommended).toBeGreaterThan(0);
      // A page short-circuited by the open breaker does not wait out the 200 ms timeout.
      const [, timedOut, open] = numbers(
        /^slowest page: (\d+) ms with recommendations, (\d+) ms when the call timed out, (\d+) ms when the breaker was open$/,
        out[1],
      );
      expect(timedOut).toBeGreaterThanOrEqual(190);
      // (Against the timed-out page rather than 200 ms: a loaded machine can stall any page.)
      expect(open).toBeLessThan(timedOut ?? NaN);
      // During the 800 ms outage: the calls already in flight (at most the concurrency, 10) and
      // one trial per 300 ms half-open period reach the upstream; the rest are short-circuited.
      const [, duringOutage, shortCircuited] = numbers(
        /^upstream: (\d+) requests, (\d+) during the outage; (\d+) calls short-circuited$/,
        out[2],
      );
      expect(duringOutage).toBeGreaterThanOrEqual(1);
      expect(duringOutage).toBeLessThanOrEqual(10 + Math.ceil(800 / 300) + 1);
      expect(shortCircuited).toBeGreaterThan(0);
      // A busy machine can time out a call outside the outage too: every failure is one or other.
      const timeouts = (fallbacks ?? 0) - (shortCircuited ?? 0);
      expect(timeouts).toBeGreaterThanOrEqual(duringOutage ?? NaN);
      // The breaker opened: three failures in a row came first.
      expect(timeouts).toBeGreaterThanOrEqual(3);
      const changes = (out[3] ?? '').replace(/^breaker: /, '').split(', ');
      expect(changes[0]).toBe('circuit_open');
      expect(changes.at(-1)).toBe('circuit_closed');
      // One span per call, each a child of its page's span, its outcome and error as it happened.
      expect(out[4]).toBe(
        `spans: 80 pages, 80 calls (80 under their page): ${recommended} done, ` +
          `${timeouts} error TimeoutError, ${shortCircuited} error CircuitOpenError`,
      );
    },
    30_000,
  );

  /** The crawler's report: pages finished, aborted, still running; per host; the queue. */
  function crawlReport(out: string[]) {
    const end = out.findIndex((line) => /^(crawled|interrupted): /.test(line));
    const [, how, done, ok, missing, aborted, running] =
      /^(\w+): (\d+) of 3000 pages in [\d.]+ s \((?:(\d+) 200)?(?:, )?(?:(\d+) 404)?\); (\d+) aborted in flight, (\d+) still running$/.exec(
        out[end] ?? '',
      ) ?? [];
    const hosts = [...(out[end + 1] ?? '').matchAll(/(\w)\.test (\d+) \(at most (\d+) at once\)/g)];
    const queue = /^queue: at most (\d+) waiting \(maxQueue 100\), (\d+) shed$/.exec(
      out[end + 2] ?? '',
    );
    return {
      progress: out.slice(0, end),
      how,
      done: Number(done),
      ok: Number(ok ?? 0),
      missing: Number(missing ?? 0),
      aborted: Number(aborted),
      running: Number(running),
      served: hosts.map((host) => Number(host[2])),
      peaks: hosts.map((host) => Number(host[3])),
      waiting: Number(queue?.[1]),
      shed: Number(queue?.[2]),
    };
  }

  it.concurrent(
    'crawler.ts crawls 3000 pages over 5 hosts, at most 4 at once per host, with a bounded queue and progress',
    async () => {
      const report = crawlReport(await output('crawler.ts'));
      expect(report).toMatchObject({ how: 'crawled', done: 3000, ok: 2970, missing: 30 });
      expect([report.aborted, report.running, report.shed]).toEqual([0, 0, 0]);
      expect(report.served).toEqual([600, 600, 600, 600, 600]);
      for (const peak of report.peaks) expect(peak).toBeGreaterThanOrEqual(1);
      for (const peak of report.peaks) expect(peak).toBeLessThanOrEqual(4);
      expect(report.waiting).toBeLessThan(100);
      // A line per tenth, from onProgress, with the total it was given.
      expect(report.progress).toHaveLength(10);
      report.progress.forEach((line, i) =>
        expect(line).toMatch(
          new RegExp(`^progress: ${(i + 1) * 300}/3000 \\(0 failed, \\d+ in flight\\)$`),
        ),
      );
      expect(report.progress.at(-1)).toBe('progress: 3000/3000 (0 failed, 0 in flight)');
    },
    60_000,
  );

  it.concurrent(
    'crawler.ts stops on Ctrl-C: exit 130, the requests in flight aborted, what finished reported',
    async () => {
      const child = start(join(EXAMPLES, 'crawler.ts'), [], TSX, 60_000);
      await child.waitFor(/^progress: 600\//);
      child.kill('SIGINT');
      const result = await child.result;
      expect(result.stderr).toBe('');
      expect(result.code).toBe(130);
      const report = crawlReport(lines(result.stdout));
      expect(report.how).toBe('interrupted');
      // `done` counts the results the loop received, and mapIterable yields them in input order:
      // when onProgress counted 600 finished, up to its window (maxQueue, 100) of them may still
      // wait behind an earlier page that is slower.
      expect(report.done).toBeGreaterThanOrEqual(600 - 100);
      expect(report.done).toBeLessThan(3000);
      expect(report.ok + report.missing).toBe(report.done);
      // Nothing runs on: the requests in flight (at most the instance's 16) were aborted, and
      // every page a host answered was either reported or among them.
      expect(report.running).toBe(0);
      expect(report.aborted).toBeLessThanOrEqual(16);
      const served = report.served.reduce((sum, n) => sum + n, 0);
      expect(served).toBeGreaterThanOrEqual(report.done);
      expect(served).toBeLessThanOrEqual(report.done + report.aborted);
      for (const peak of report.peaks) expect(peak).toBeLessThanOrEqual(4);
      expect(report.shed).toBe(0);
    },
    60_000,
  );

  it.concurrent(
    'adaptive.ts: the adaptive limit follows the upstream capacity up and down, with nothing refused',
    async () => {
      const out = await output('adaptive.ts');
      const phases = out.slice(0, 3).map((line) => {
        const [capacity, limit, perSecond, most, , refused] = (
          /^capacity (\d+): limit (\d+), (\d+) served\/s \(at most (\d+)\), median latency (\d+) ms \(service 50 ms\), (\d+) refused$/.exec(
            line,
          ) ?? []
        )
          .slice(1)
          .map(Number);
        return { capacity, limit, perSecond, most, refused };
      });
      expect(phases.map((phase) => phase.capacity)).toEqual([4, 16, 2]);
      const [four, sixteen, two] = phases.map((phase) => phase.limit ?? NaN);
      // Up when the capacity grows fourfold, down when it falls to an eighth.
      expect(sixteen).toBeGreaterThan(four ?? NaN);
      expect(two).toBeLessThan((sixteen ?? NaN) / 1.5);
      for (const phase of phases) {
        expect(phase.refused).toBe(0);
        expect(phase.limit).toBeGreaterThanOrEqual(1);
        expect(phase.limit).toBeLessThanOrEqual(100);
      }
      // Where the upstream is the bottleneck, the client keeps it busy.
      expect(phases[0]?.perSecond).toBeGreaterThan(0.5 * 80);
      expect(phases[2]?.perSecond).toBeGreaterThan(0.5 * 40);
      expect(phases[1]?.perSecond).toBeGreaterThan(phases[0]?.perSecond ?? NaN);
      const [served, rejected, , changes, seconds] = (
        /^upstream: (\d+) served, (\d+) refused \(503\), at most (\d+) queued; (\d+) limit changes in ([\d.]+) s$/.exec(
          out[3] ?? '',
        ) ?? []
      )
        .slice(1)
        .map(Number);
      expect(served).toBeGreaterThan(0);
      expect(rejected).toBe(0);
      // The limit is recomputed per window of samples: a few changes a second, not one per task.
      expect(changes).toBeGreaterThanOrEqual(2);
      expect(changes).toBeLessThanOrEqual(10 * (seconds ?? 0));
    },
    60_000,
  );
});
