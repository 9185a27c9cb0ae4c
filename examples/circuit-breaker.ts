// A service whose pages call a recommendations upstream through Dovetail: a timeout, a circuit
// breaker, and a fallback value (`.catch`) so that a page never fails for want of
// recommendations; OpenTelemetry spans (`instrument()`, the SDK's in-memory exporter) show what
// each call did, under the span of the page that made it.
//
//   npx tsx examples/circuit-breaker.ts
//
// The upstream is a `node:http` server on a loopback port, in this process. From 0.4 s to 1.2 s
// after its first request it hangs (answers nothing for a second): the client's 200 ms timeout
// fails those calls, three in a row open the breaker, and while it is open pages get the
// fallback at once instead of waiting out the timeout. 80 pages come in, one every 20 ms.
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { CircuitOpenError, Dovetail, InstanceEvent } from 'dovetailjs';
import { SpanAttribute, instrument } from 'dovetailjs/opentelemetry';

// ---- the upstream ---------------------------------------------------------------------------

const OUTAGE = { from: 400, to: 1200 };
const seen = { requests: 0, duringOutage: 0 };
let first = 0;

function upstream(request: IncomingMessage, response: ServerResponse): void {
  seen.requests += 1;
  first ||= Date.now();
  const now = Date.now() - first;
  if (now >= OUTAGE.from && now < OUTAGE.to) {
    seen.duringOutage += 1;
    const late = setTimeout(() => response.writeHead(503).end(), 1000);
    request.on('close', () => clearTimeout(late));
    return;
  }
  response.writeHead(200, { 'Content-Type': 'application/json' });
  response.end(JSON.stringify(['socks', 'boots', 'hat']));
}

const server = createServer(upstream);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

// ---- tracing, as an application sets it up --------------------------------------------------

const exporter = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
trace.setGlobalTracerProvider(provider);
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const stop = instrument();
const tracer = trace.getTracer('shop');

// ---- the service ----------------------------------------------------------------------------

const FALLBACK = ['bestsellers'];

const recommendations = new Dovetail({
  concurrency: 10,
  timeout: 200,
  circuitBreaker: { threshold: 3, halfOpenAfter: 300 },
});
const changes: string[] = [];
for (const name of [
  InstanceEvent.CIRCUIT_OPEN,
  InstanceEvent.CIRCUIT_HALF_OPEN,
  InstanceEvent.CIRCUIT_CLOSED,
])
  recommendations.events.on(name, () => void changes.push(name));

const recommend = recommendations.task.wrap(async function recommend(product: number) {
  const signal = recommendations.task.current()?.signal ?? null;
  const response = await fetch(`${base}/recommend?product=${product}`, { signal });
  if (!response.ok) throw new Error(`recommendations: ${response.status}`);
  return (await response.json()) as string[];
});

interface Page {
  items: string[];
  /** Why the page got the fallback. */
  why?: 'failed' | 'open';
  ms: number;
}

/** A page: its recommendations, or the fallback when the call fails or the breaker is open. */
function page(product: number): Promise<Page> {
  return tracer.startActiveSpan('GET /product', async (span) => {
    const began = performance.now();
    let why: Page['why'];
    const items = await recommend(product).catch((error: unknown) => {
      why = error instanceof CircuitOpenError ? 'open' : 'failed';
      return FALLBACK;
    });
    span.setAttribute('shop.fallback', items === FALLBACK);
    span.end();
    return { items, ms: performance.now() - began, ...(why && { why }) };
  });
}

const pages: Promise<Page>[] = [];
for (let product = 0; product < 80; product++) {
  pages.push(page(product));
  await sleep(20);
}
const served = await Promise.all(pages);
await recommendations.shutdown();
stop();
server.closeAllConnections();
server.close();

// ---- what happened --------------------------------------------------------------------------

const fallbacks = served.filter((one) => one.items === FALLBACK);
const slowest = (why?: Page['why']) =>
  Math.round(Math.max(0, ...served.filter((one) => one.why === why).map((one) => one.ms)));
const spans = exporter.getFinishedSpans();
const pageSpans = spans.filter((span) => span.name === 'GET /product');
const taskSpans = spans.filter((span) => span.name === 'dovetail wrap recommend');
const parents = new Set(pageSpans.map((span) => span.spanContext().spanId));
const nested = taskSpans.filter((span) => parents.has(span.parentSpanContext?.spanId ?? ''));
const byOutcome = new Map<string, number>();
for (const span of taskSpans) {
  const type = span.events.find((event) => event.name === 'exception')?.attributes?.[
    'exception.type'
  ];
  const outcome = `${String(span.attributes[SpanAttribute.OUTCOME])}${type === undefined ? '' : ` ${String(type)}`}`;
  byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + 1);
}
const OUTCOMES = ['done', 'error TimeoutError', 'error CircuitOpenError'];
const rank = (outcome: string) =>
  OUTCOMES.includes(outcome) ? OUTCOMES.indexOf(outcome) : OUTCOMES.length;
const stats = recommendations.events.stats();
console.log(
  `pages: ${served.length} served, ${served.length - fallbacks.length} with recommendations, ` +
    `${fallbacks.length} with the fallback`,
);
console.log(
  `slowest page: ${slowest()} ms with recommendations, ${slowest('failed')} ms when the call ` +
    `timed out, ${slowest('open')} ms when the breaker was open`,
);
console.log(
  `upstream: ${seen.requests} requests, ${seen.duringOutage} during the outage; ` +
    `${stats.shortCircuited} calls short-circuited`,
);
console.log(`breaker: ${changes.join(', ')}`);
console.log(
  `spans: ${pageSpans.length} pages, ${taskSpans.length} calls (${nested.length} under their page): ` +
    // In a fixed order (spans end in whatever order the calls did), successes first.
    [...byOutcome]
      .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b))
      .map(([outcome, count]) => `${count} ${outcome}`)
      .join(', '),
);
await provider.shutdown();
