// A client of a metered API with two quotas, requests per minute and tokens per minute, as LLM
// APIs have: one Dovetail instance spends the token budget (each call's `cost` is its tokens),
// a second one the request budget; a 429 pauses both for its `Retry-After` and the call retries.
//
//   npx tsx examples/metered-api.ts
//
// The API is a `node:http` server on a loopback port, in this process. It enforces both quotas as
// token buckets that hold one second's worth (APIs enforce per-minute quotas over short periods,
// so a client cannot spend a minute's budget in its first second) and answers 429 with
// `Retry-After` when a request would overdraw either. Part way through, another job on the same
// API key spends 6 000 tokens at once, so the client meets a 429 it could not have foreseen.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Dovetail, InstanceEvent, retryAfter } from 'dovetailjs';

const RPM = 3_000;
const TPM = 300_000;
/** The share of each quota the client plans to use: the rest absorbs timing on the way. */
const BUDGET = 0.9;
const NEIGHBOUR_TOKENS = 6_000;

/** Tokens of a request, counted the same way at both ends: prompt words plus `max_tokens`. */
const tokensOf = (prompt: string, maxTokens: number): number =>
  prompt.split(/\s+/).filter(Boolean).length + maxTokens;

// ---- the API --------------------------------------------------------------------------------

/** A bucket of `perMinute` units that holds one second's worth. */
class Quota {
  readonly capacity: number;
  private level: number;
  private at = performance.now();
  readonly perMinute: number;
  constructor(perMinute: number) {
    this.perMinute = perMinute;
    this.capacity = perMinute / 60;
    this.level = this.capacity;
  }
  /** The whole seconds until `units` are there: 0 when they are. */
  wait(units: number): number {
    const now = performance.now();
    this.level = Math.min(this.capacity, this.level + ((now - this.at) * this.perMinute) / 60_000);
    this.at = now;
    return this.level >= units ? 0 : Math.ceil(((units - this.level) * 60) / this.perMinute);
  }
  /** Spends `units`, overdrawing the bucket if need be (someone else on the same key does). */
  spend(units: number): void {
    this.wait(0);
    this.level -= units;
  }
}

const quotas = { requests: new Quota(RPM), tokens: new Quota(TPM) };
const seen = { ok: 0, tooMany: 0, overRequests: 0, overTokens: 0, sentAt: [] as number[] };

async function api(request: IncomingMessage, response: ServerResponse): Promise<void> {
  let body = '';
  for await (const chunk of request) body += String(chunk);
  const { prompt, max_tokens } = JSON.parse(body) as { prompt: string; max_tokens: number };
  seen.sentAt.push(Number(request.headers['x-sent-at']));
  const tokens = tokensOf(prompt, max_tokens);
  // A request is charged only when it is served: a 429 costs nothing.
  const waitRequests = quotas.requests.wait(1);
  const waitTokens = quotas.tokens.wait(tokens);
  if (waitRequests > 0 || waitTokens > 0) {
    seen.tooMany += 1;
    if (waitRequests > 0) seen.overRequests += 1;
    if (waitTokens > 0) seen.overTokens += 1;
    const seconds = Math.max(waitRequests, waitTokens);
    response.writeHead(429, { 'Retry-After': String(seconds) }).end();
    return;
  }
  quotas.requests.spend(1);
  quotas.tokens.spend(tokens);
  seen.ok += 1;
  if (seen.ok === 130) quotas.tokens.spend(NEIGHBOUR_TOKENS);
  // The model takes a while, longer for a longer answer.
  await new Promise((resolve) => setTimeout(resolve, 20 + max_tokens / 20));
  response.writeHead(200, { 'Content-Type': 'application/json' });
  response.end(JSON.stringify({ usage: { total_tokens: tokens } }));
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

const server = createServer((request, response) => void api(request, response));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/completions`;

// Each budget is spent at 90% of its quota's rate, from a bucket that holds a tenth of a second's
// worth: the client spreads its calls evenly and never needs the server's whole burst.
const budget = (perMinute: number) => ({
  perSecond: (perMinute * BUDGET) / 60,
  burst: Math.floor((perMinute * BUDGET) / 600),
});
/** The requests-per-minute budget: one token a request. */
const requests = new Dovetail({ rateLimit: budget(RPM) });
/** The tokens-per-minute budget: each call costs its tokens. Retries and pauses live here. */
const tokens = new Dovetail({
  concurrency: 8,
  rateLimit: budget(TPM),
  retries: 5,
  retryBackoff: 100,
  retryJitter: 'full',
  // A 429 says when the budget is back: hold both instances until then, and retry then.
  retryDelay: (error) => {
    if (!(error instanceof HttpError) || error.response.status !== 429) return undefined;
    const wait = retryAfter(error.response);
    if (wait !== undefined && wait > 0)
      for (const instance of [tokens, requests]) instance.pause(wait);
    return wait;
  },
});

/** When the client was paused: [from, to) in epoch ms. */
const pauses: [number, number][] = [];
tokens.events.on(InstanceEvent.PAUSED, (p) => {
  // A 429 heard while paused moves the end of the pause: still one pause.
  const last = pauses.at(-1);
  if (last !== undefined && last[1] > p.at) last[1] = p.until ?? Infinity;
  else pauses.push([p.at, p.until ?? Infinity]);
});
tokens.events.on(InstanceEvent.RESUMED, (p) => {
  const last = pauses.at(-1);
  if (last !== undefined) last[1] = p.at;
});

async function post(prompt: string, maxTokens: number): Promise<number> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'x-sent-at': String(Date.now()) },
    body: JSON.stringify({ prompt, max_tokens: maxTokens }),
  });
  if (!response.ok) {
    await response.body?.cancel();
    throw new HttpError(response);
  }
  const { usage } = (await response.json()) as { usage: { total_tokens: number } };
  return usage.total_tokens;
}

/** One completion: its tokens from the token budget, then a request from the request budget. */
const complete = (prompt: string, maxTokens: number): Promise<number> =>
  tokens.task
    .with({ cost: tokensOf(prompt, maxTokens) })
    .schedule(() => requests.task.schedule(post, prompt, maxTokens));

/** Runs `count` completions at once and reports the rates they got. */
async function phase(name: string, count: number, prompt: string, maxTokens: number) {
  const began = Date.now();
  const pausedBefore = pausedMs();
  const used = await Promise.all(Array.from({ length: count }, () => complete(prompt, maxTokens)));
  const seconds = (Date.now() - began) / 1000;
  const paused = (pausedMs() - pausedBefore) / 1000;
  const total = used.reduce((sum, n) => sum + n, 0);
  const perMinute = (n: number, s: number) => Math.round((n * 60) / s);
  console.log(
    `${name}: ${count} requests, ${total} tokens in ${seconds.toFixed(1)} s: ` +
      `${perMinute(count, seconds)} requests/min (quota ${RPM}), ` +
      `${perMinute(total, seconds)} tokens/min (quota ${TPM}); paused ${paused.toFixed(1)} s`,
  );
}

function pausedMs(): number {
  return pauses.reduce((sum, [from, to]) => sum + Math.min(to, Date.now()) - from, 0);
}

console.log(
  `quotas: ${RPM} requests/min, ${TPM} tokens/min; the client plans for ${BUDGET * 100}% of each`,
);
// Short prompts: the request quota binds. Long prompts: the token quota binds.
await phase('short prompts', 100, 'Say yes or no.', 16);
await phase('long prompts', 45, 'Summarise this paragraph: '.padEnd(400, 'lorem ipsum '), 200);

const duringPause = seen.sentAt.filter((at) => pauses.some(([from, to]) => at >= from && at < to));
const stats = tokens.events.stats();
console.log(
  `429s: ${seen.tooMany} (${seen.overRequests} over the request quota, ${seen.overTokens} over ` +
    `the token quota), ${stats.retries} retries, ${stats.done} ok, ${stats.error} failed, ` +
    `${duringPause.length} sent while paused`,
);
server.close();
await Promise.all([tokens.shutdown(), requests.shutdown()]);
