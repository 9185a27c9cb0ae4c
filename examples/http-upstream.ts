// A client of a real upstream that enforces a quota and then goes down for a while, called
// through Dovetail with `fetch`: jittered, capped retries; a 429's `Retry-After` read with
// `retryAfter()` and turned into `pause()`, so that every task of the instance waits, not only the
// one that heard it; and a circuit breaker that stops calling the upstream during its outage.
//
//   npx tsx examples/http-upstream.ts
//
// The upstream is a `node:http` server on a loopback port, in this process. It grants 6 requests,
// then answers 429 with `Retry-After: 1` until that second has passed; after 20 requests in all it
// is down (503) for 1 s, then up again. The client prints what happened, and what the server saw.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CircuitOpenError, Dovetail, InstanceEvent, retryAfter } from 'dovetailjs';

// ---- the upstream ---------------------------------------------------------------------------

const QUOTA = 6;
const RETRY_AFTER_S = 1;
const OUTAGE_AFTER = 20;
const OUTAGE_MS = 1000;

const seen = { requests: 0, tooMany: 0, down: 0, early: 0, duringOutage: 0 };
let blockedUntil = 0;
/** When the client first heard a 429 (set by the client below). */
let heardAt = 0;
let outageUntil = 0;

function upstream(request: IncomingMessage, response: ServerResponse): void {
  const now = Date.now();
  seen.requests += 1;
  // A request the client sent after it heard the first 429 and before its Retry-After time is
  // one it should not have sent (those already on their way when it heard the 429 are not). Both
  // ends share this process's clock, so a slow event loop cannot blur the line.
  const sentAt = Number(request.headers['x-sent-at']);
  if (heardAt > 0 && sentAt >= heardAt && sentAt < blockedUntil) seen.early += 1;
  if (outageUntil === 0 && seen.requests > OUTAGE_AFTER) outageUntil = now + OUTAGE_MS;
  if (now < outageUntil) {
    seen.duringOutage += 1;
    seen.down += 1;
    response.writeHead(503).end('down');
    return;
  }
  if (seen.requests > QUOTA && blockedUntil === 0) {
    blockedUntil = now + RETRY_AFTER_S * 1000;
  }
  if (now < blockedUntil) {
    seen.tooMany += 1;
    response.writeHead(429, { 'Retry-After': String(RETRY_AFTER_S) }).end('slow down');
    return;
  }
  response.writeHead(200, { 'Content-Type': 'application/json' });
  response.end(JSON.stringify({ path: request.url }));
}

// ---- the client -----------------------------------------------------------------------------

/** A failed response, kept whole so that `retryAfter()` can read its headers. */
class HttpError extends Error {
  readonly response: Response;
  constructor(response: Response) {
    super(`${response.status} ${response.statusText}`);
    this.response = response;
  }
}

const server = createServer(upstream);
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const dvt = new Dovetail({
  concurrency: 3,
  timeout: 2000,
  retries: 6,
  retryBackoff: 50,
  retryJitter: 'full',
  retryMaxDelay: 1000,
  // A 429 says when to come back: hold the whole instance until then, and sleep as long.
  retryDelay: (error) => {
    if (!(error instanceof HttpError) || error.response.status !== 429) return undefined;
    heardAt ||= Date.now();
    const wait = retryAfter(error.response);
    if (wait !== undefined && wait > 0) dvt.pause(wait);
    return wait;
  },
  circuitBreaker: {
    threshold: 3,
    halfOpenAfter: 300,
    // Being told to slow down is not an outage.
    isFailure: (error) => !(error instanceof HttpError && error.response.status === 429),
  },
});

const changes: string[] = [];
for (const name of [InstanceEvent.PAUSED, InstanceEvent.CIRCUIT_OPEN, InstanceEvent.CIRCUIT_CLOSED])
  dvt.events.on(name, () => void changes.push(name));

const began = Date.now();
const get = dvt.task.wrap(async (path: string) => {
  const response = await fetch(`${base}${path}`, {
    signal: dvt.task.current()?.signal ?? null,
    headers: { 'x-sent-at': String(Date.now()) },
  });
  if (!response.ok) {
    await response.body?.cancel();
    throw new HttpError(response);
  }
  return (await response.json()) as { path: string };
});

// 80 calls, a few at a time, as a service's requests would come.
const outcomes: PromiseSettledResult<{ path: string }>[] = [];
for (let round = 0; round < 16; round++) {
  const batch = Array.from({ length: 5 }, (_, i) => get(`/item/${round * 5 + i}`));
  outcomes.push(...(await Promise.allSettled(batch)));
  await new Promise((resolve) => setTimeout(resolve, 100));
}
server.close();
await dvt.shutdown();

const ok = outcomes.filter((outcome) => outcome.status === 'fulfilled').length;
const shortCircuited = outcomes.filter(
  (outcome) => outcome.status === 'rejected' && outcome.reason instanceof CircuitOpenError,
).length;
const stats = dvt.events.stats();
console.log(`tasks: ${outcomes.length} settled, ${ok} ok, ${shortCircuited} short-circuited`);
console.log(
  `server: ${seen.requests} requests, ${seen.tooMany} answered 429, ${seen.down} answered 503, ` +
    `${seen.early} early after a 429, ${seen.duringOutage} during the outage`,
);
console.log(`stats: ${stats.retries} retries, ${stats.shortCircuited} short-circuited`);
console.log(`changes: ${[...new Set(changes)].join(', ')}`);
console.log(`total: ${((Date.now() - began) / 1000).toFixed(1)} s`);
