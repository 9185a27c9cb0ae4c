import { randomUUID } from 'node:crypto';
import { CircuitOpenError } from '../errors.js';
import type { BackendHooks } from '../policies/backend.js';
import { neverCounts, viewOf } from '../resilience/circuit.js';
import type {
  CircuitControl,
  CircuitListener,
  CircuitState,
  CircuitView,
} from '../resilience/circuit-view.js';
import type { ResolvedCircuitOptions } from '../resilience/circuit-options.js';
import { ANNOUNCE, type Control, type ControlMessage, type Follower } from './control.js';
import { script, type Store } from './store.js';

/**
 * The breaker of every process on a key, one script for every step so that each is atomic on
 * Redis's clock. KEYS: the hash `<prefix><key>:circuit` (s: state, g: generation, r: end of
 * the open period in epoch ms or 'inf', n: failures in a row, o: failures that opened it, p:
 * trials passed, c:<i>/f:<i>: calls/failures of ratio bucket i), the sorted set
 * `<prefix><key>:circuit:trials` (a member per trial running, scored by when its lease ends),
 * the control channel and the count of changes (see `ANNOUNCE`). ARGV: op, the caller's
 * generation, failed (0/1), the trial's id, then
 * threshold (0 in ratio mode), ratio failures, window, minimumCalls, halfOpenAfter,
 * halfOpenCalls, leaseTime. Answers { state, generation, end, failures that opened it, granted }.
 * Every change of state takes a new generation and is published; an outcome of an earlier
 * generation changes nothing.
 */
const CIRCUIT = script(`${ANNOUNCE}
local h, trials, channel = KEYS[1], KEYS[2], KEYS[3]
local op, gen, failed, id = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1', ARGV[4]
local threshold, share, window = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local minimum, after, calls, lease = tonumber(ARGV[8]), tonumber(ARGV[9]), tonumber(ARGV[10]), tonumber(ARGV[11])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local s = redis.call('HGET', h, 's') or 'closed'
local g = tonumber(redis.call('HGET', h, 'g') or '0')
local r = redis.call('HGET', h, 'r') or '0'
local o = tonumber(redis.call('HGET', h, 'o') or '0')
local function enter(state, ends, opened)
  s, g, r, o = state, g + 1, ends, opened
  redis.call('DEL', h, trials)
  redis.call('HSET', h, 's', s, 'g', g, 'r', r, 'o', o, 'n', 0, 'p', 0)
  announce(KEYS[4], channel, '"kind":"circuit"')
end
local function answer(granted) return { s, g, tostring(r), o, granted } end
if op == 'isolate' then
  if s ~= 'open' or r ~= 'inf' then
    local n = tonumber(redis.call('HGET', h, 'n') or '0')
    if s == 'open' then n = o end
    enter('open', 'inf', n)
  end
  return answer(0)
end
if op == 'reset' then
  if s ~= 'closed' then enter('closed', '0', 0) else
    local fields = redis.call('HKEYS', h)
    for _, f in ipairs(fields) do if string.sub(f, 2, 2) == ':' then redis.call('HDEL', h, f) end end
    redis.call('HSET', h, 'n', 0)
  end
  return answer(0)
end
if s == 'open' and r ~= 'inf' and now >= tonumber(r) then enter('half-open', r, 0) end
if op == 'read' then return answer(0) end
if op == 'admit' then
  if s == 'closed' then return answer(1) end
  if s ~= 'half-open' then return answer(0) end
  redis.call('ZREMRANGEBYSCORE', trials, '-inf', now)
  local running = redis.call('ZCARD', trials)
  local passed = tonumber(redis.call('HGET', h, 'p') or '0')
  if running + passed >= calls then return answer(0) end
  redis.call('ZADD', trials, now + lease, id)
  redis.call('PEXPIRE', trials, lease)
  return answer(1)
end
if gen ~= g then return answer(0) end
if op == 'abandon' then
  redis.call('ZREM', trials, id)
  return answer(0)
end
-- op == 'outcome'
if s == 'half-open' then
  redis.call('ZREM', trials, id)
  if failed then enter('open', now + after, 1)
  elseif redis.call('HINCRBY', h, 'p', 1) >= calls then enter('closed', '0', 0) end
  return answer(0)
end
if s ~= 'closed' then return answer(0) end
if threshold > 0 then
  if not failed then redis.call('HSET', h, 'n', 0) return answer(0) end
  local n = redis.call('HINCRBY', h, 'n', 1)
  if n >= threshold then enter('open', now + after, n) end
  return answer(0)
end
local width = window / 10
local bucket = math.floor(now / width)
redis.call('HINCRBY', h, 'c:' .. bucket, 1)
if failed then redis.call('HINCRBY', h, 'f:' .. bucket, 1) end
local total, fails = 0, 0
local fields = redis.call('HGETALL', h)
for i = 1, #fields, 2 do
  local f = fields[i]
  if string.sub(f, 2, 2) == ':' then
    local b = tonumber(string.sub(f, 3))
    if b <= bucket - 10 then redis.call('HDEL', h, f)
    elseif string.sub(f, 1, 1) == 'c' then total = total + tonumber(fields[i + 1])
    else fails = fails + tonumber(fields[i + 1]) end
  end
end
if total >= minimum and fails / total >= share then enter('open', now + after, fails) end
return answer(0)
`);

/** What the store holds, as this process follows it. */
interface Mirror {
  readonly state: CircuitState;
  readonly generation: number;
  readonly retryAt: number;
  readonly failures: number;
}

// Tickets: closed-period grants are the generation itself; trials are numbered from here, each
// with its id in the trial set.
const TRIAL_BASE = 2 ** 40;

/**
 * A circuit breaker whose counts and state live in Redis for every process on the key (see
 * CIRCUIT). This process keeps a mirror of the state, so that a closed or open circuit admits or
 * refuses without a round trip; each outcome is one script; a half-open circuit asks Redis for
 * each trial (`halfOpenCalls` in total across processes, each trial a lease that a killed
 * process gives back after `leaseTime`). A change is published on the key's control channel, and
 * every process reads the state again then (and on the periodic sync). The listener hears each
 * change of state once per process, when this process learns of it; `circuit_open`'s `error` is
 * the failure's only in the process that recorded it. @internal
 */
export class RedisCircuit implements CircuitControl, Follower {
  readonly view: CircuitView;
  readonly #store: Store;
  readonly #control: Control;
  readonly #hooks: BackendHooks | undefined;
  readonly #listener: CircuitListener;
  readonly #options: ResolvedCircuitOptions;
  readonly #keys: string[];
  #mirror: Mirror = { state: 'closed', generation: 0, retryAt: 0, failures: 0 };
  /** The state last announced to the listener. */
  #announced: CircuitState = 'closed';
  /**
   * The error refused attempts get in the current generation, and until when (performance.now())
   * the half-open trials count as all taken without asking Redis again.
   */
  #refusal: { generation: number; fullUntil: number; error: CircuitOpenError } | undefined;
  readonly #trials = new Map<number, { generation: number; id: string }>();
  #nextTrial = TRIAL_BASE;
  #syncing = false;
  #again = false;
  #closed = false;

  constructor(
    store: Store,
    control: Control,
    options: ResolvedCircuitOptions,
    listener: CircuitListener,
    hooks: BackendHooks | undefined,
  ) {
    this.#store = store;
    this.#control = control;
    this.#hooks = hooks;
    this.#listener = listener;
    this.#options = options;
    const hash = store.keyOf('circuit');
    this.#keys = [hash, `${hash}:trials`, control.channel, control.counter];
    this.view = viewOf(this);
    control.follow(this);
  }

  get state(): CircuitState {
    const mirror = this.#mirror;
    if (mirror.state === 'open' && Date.now() >= mirror.retryAt) this.#announce('half-open');
    return this.#announced;
  }

  admit(): number | CircuitOpenError | Promise<number | CircuitOpenError> {
    const mirror = this.#mirror;
    if (mirror.state === 'closed') return mirror.generation;
    const refused = this.refusal();
    if (refused !== undefined) return refused;
    return this.#claim();
  }

  refusal(): CircuitOpenError | undefined {
    const mirror = this.#mirror;
    if (mirror.state === 'closed') return undefined;
    if (this.state === 'open') return this.#refuse(false);
    const refusal = this.#refusal;
    return refusal !== undefined &&
      refusal.generation === mirror.generation &&
      performance.now() < refusal.fullUntil
      ? refusal.error
      : undefined;
  }

  record(ticket: number, ok: boolean, error?: unknown): void {
    if (!ok && neverCounts(error)) {
      this.abandon(ticket);
      return;
    }
    let failed = !ok;
    let threw = false;
    let thrown: unknown;
    const isFailure = this.#options.isFailure;
    if (!ok && isFailure !== undefined) {
      try {
        failed = Boolean(isFailure(error));
      } catch (problem) {
        // Counted as a failure, as in the in-process breaker.
        failed = threw = true;
        thrown = problem;
      }
    }
    const trial = this.#trials.get(ticket);
    this.#trials.delete(ticket);
    const generation = trial?.generation ?? ticket;
    this.#run('outcome', generation, failed, trial?.id ?? '', failed ? error : undefined);
    if (threw) throw thrown;
  }

  abandon(ticket: number): void {
    const trial = this.#trials.get(ticket);
    if (trial === undefined) return;
    this.#trials.delete(ticket);
    this.#run('abandon', trial.generation, false, trial.id, undefined);
  }

  isolate(): void {
    const mirror = this.#mirror;
    this.#apply({ ...mirror, state: 'open', retryAt: Infinity }, undefined, true);
    this.#run('isolate', mirror.generation, false, '', undefined);
  }

  reset(): void {
    const mirror = this.#mirror;
    this.#apply({ ...mirror, state: 'closed', retryAt: 0, failures: 0 }, undefined, true);
    this.#run('reset', mirror.generation, false, '', undefined);
  }

  message(message: ControlMessage): void {
    if (message.kind === 'circuit') void this.sync();
  }

  async sync(): Promise<void> {
    if (this.#closed) return;
    // A read in flight may have been answered before the change this call is for: read again.
    if (this.#syncing) {
      this.#again = true;
      return;
    }
    this.#syncing = true;
    try {
      do {
        this.#again = false;
        await this.#call('read', 0, false, '', undefined);
      } while (this.#again && !this.#closed);
    } catch {
      // Reported by #call.
    } finally {
      this.#syncing = false;
    }
  }

  /** Stops following (this process shuts down). */
  close(): Promise<void> {
    this.#closed = true;
    return this.#control.unfollow(this);
  }

  /** Asks Redis for one of the half-open trials. */
  async #claim(): Promise<number | CircuitOpenError> {
    const id = randomUUID();
    let granted: boolean;
    try {
      granted = await this.#call('admit', 0, false, id, undefined);
    } catch (error) {
      if (this.#store.settings.onBackendError === 'fail') throw error;
      // 'local': Redis cannot count the trials; this process lets one through at a time.
      granted = ![...this.#trials.values()].some((t) => t.id.startsWith('local:'));
      if (!granted) return this.#refuse(true);
      const ticket = (this.#nextTrial += 1);
      this.#trials.set(ticket, { generation: this.#mirror.generation, id: `local:${id}` });
      return ticket;
    }
    const mirror = this.#mirror;
    if (!granted) return mirror.state === 'closed' ? mirror.generation : this.#refuse(true);
    if (mirror.state === 'closed') return mirror.generation;
    const ticket = (this.#nextTrial += 1);
    this.#trials.set(ticket, { generation: mirror.generation, id });
    return ticket;
  }

  #refuse(full: boolean): CircuitOpenError {
    const mirror = this.#mirror;
    const refusal = this.#refusal;
    // Trials all taken: asked again after a while, as one may be given back (abandoned, or its
    // process killed and its lease expired).
    const fullUntil = full
      ? performance.now() + Math.min(1_000, this.#store.settings.leaseTime)
      : 0;
    if (refusal !== undefined && refusal.generation === mirror.generation) {
      if (full) refusal.fullUntil = fullUntil;
      return refusal.error;
    }
    const calls = this.#options.halfOpenCalls;
    const message = full
      ? `circuit is half-open: ${calls === 1 ? 'its trial attempt has' : `all ${calls} trial attempts have`} started`
      : undefined;
    const error = new CircuitOpenError(message, { retryAt: mirror.retryAt });
    this.#refusal = { generation: mirror.generation, fullUntil, error };
    return error;
  }

  /** Runs one step in the background; a failure is reported (`backend_error`). */
  #run(op: string, generation: number, failed: boolean, id: string, error: unknown): void {
    this.#call(op, generation, failed, id, error).catch(() => undefined);
  }

  /** Runs one step of the script and follows its answer; resolves whether it granted. */
  async #call(
    op: string,
    generation: number,
    failed: boolean,
    id: string,
    error: unknown,
  ): Promise<boolean> {
    const store = this.#store;
    const { threshold, ratio, halfOpenAfter, halfOpenCalls } = this.#options;
    let answer: unknown;
    try {
      answer = await store.call('circuit', () =>
        store.script(CIRCUIT, this.#keys, [
          op,
          generation,
          failed ? 1 : 0,
          id,
          threshold ?? 0,
          ratio?.failures ?? 1,
          ratio?.window ?? 1,
          ratio?.minimumCalls ?? 1,
          halfOpenAfter,
          halfOpenCalls,
          store.settings.leaseTime,
        ]),
      );
    } catch (problem) {
      store.failed('circuit', problem, this.#hooks);
      throw problem;
    }
    store.recovered();
    const [state, gen, end, opened, granted] = answer as [string, number, string, number, number];
    this.#apply(
      {
        state: state === 'open' || state === 'half-open' ? state : 'closed',
        generation: Number(gen),
        retryAt: end === 'inf' ? Infinity : Number(end),
        failures: Number(opened),
      },
      error,
      false,
    );
    return Number(granted) === 1;
  }

  /** Follows what the store answered (or, `local`, what this process just did). */
  #apply(next: Mirror, error: unknown, local: boolean): void {
    const mirror = this.#mirror;
    // An answer of an earlier generation is stale; a local change goes first, Redis confirms it.
    if (!local && next.generation < mirror.generation) return;
    if (local && next.state === mirror.state && next.retryAt === mirror.retryAt) return;
    // A local change takes a generation between this one and the store's next: answers of the
    // current one (in flight before it) are stale, the store's confirmation is not.
    this.#mirror = local ? { ...next, generation: Math.floor(mirror.generation) + 0.5 } : next;
    if (this.#closed) return;
    if (next.state === 'open' && Date.now() < next.retryAt) {
      if (this.#announced !== 'open') {
        this.#announced = 'open';
        this.#listener.opened(next.failures, error, next.retryAt);
      }
      return;
    }
    this.#announce(next.state === 'open' ? 'half-open' : next.state);
  }

  #announce(state: CircuitState): void {
    if (this.#announced === state || this.#closed) return;
    this.#announced = state;
    if (state === 'half-open') this.#listener.halfOpened();
    else if (state === 'closed') this.#listener.closed();
    else {
      const mirror = this.#mirror;
      this.#listener.opened(mirror.failures, undefined, mirror.retryAt);
    }
  }
}
