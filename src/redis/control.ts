import type { Redis } from 'ioredis';
import type { BackendHooks } from '../policies/backend.js';
import type { Script, Store } from './store.js';

/** One message on a key's control channel: a change another process made. @internal */
export type ControlMessage = (
  | { readonly kind: 'pause'; readonly until: number | 'inf' }
  | { readonly kind: 'resume' }
  | { readonly kind: 'limit'; readonly limit: number | 'inf' }
  | { readonly kind: 'circuit' }
) & {
  /** The key's count of changes after this one (`<prefix><key>:changes`). */
  readonly seq?: number;
};

/** A part of the back end that follows what other processes change. @internal */
export interface Follower {
  /** A message arrived on the key's channel. */
  message(message: ControlMessage): void;
  /** Reads the shared state again (a change may have gone unheard); never rejects. */
  sync(): Promise<void>;
}

/**
 * Lua: `announce(counter, channel, body)` counts one change of the key's shared controls in
 * the string `counter` (INCR) and publishes `{<body>,"seq":<count>}` on `channel`. Every script
 * that changes a control ends with it, so a process that reads the count and finds one it has
 * not heard of knows that it missed a message. @internal
 */
export const ANNOUNCE = `
local function announce(counter, channel, body)
  local seq = redis.call('INCR', counter)
  redis.call('PUBLISH', channel, '{' .. body .. ',"seq":' .. seq .. '}')
end
`;

/**
 * The control channel of one back end: a `PUBLISH` on `<prefix><key>:control` tells every
 * process of a change (a pause, a resume, a new limit, a change of the breaker), within a round
 * trip. A subscriber connection (`client.duplicate()`, made when the first control needs it)
 * hears them. Each change also counts in the string `<prefix><key>:changes`, and its message
 * carries the count.
 *
 * A message is lost only with the subscriber's connection. When the subscription is (re)made,
 * the shared state is read (one `MGET` of the count, the pause and the limit; the breaker reads
 * its hash), and so it is when a message's count skips one. As a fallback for a connection that
 * died without saying so, the same `MGET` runs every `syncInterval` ms (an unref'd timer), and
 * the breaker reads its hash again only when the count moved unheard. So the cost of following
 * is one command per process per `syncInterval`, whatever happens. @internal
 */
export class Control {
  readonly #store: Store;
  readonly #hooks: BackendHooks | undefined;
  readonly #followers = new Set<Follower>();
  readonly channel: string;
  /** The Redis key counting the changes. */
  readonly counter: string;
  #subscriber: Redis | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** The count of changes last known here (by a message or a read); undefined: not yet read. */
  #seen: number | undefined;
  /** Messages heard: a read answered after one of them may be older than it. */
  #heard = 0;
  #reading = false;
  /** A read reaching every follower is due once the one in flight ends. */
  #again = false;
  #closed = false;

  constructor(store: Store, hooks: BackendHooks | undefined) {
    this.#store = store;
    this.#hooks = hooks;
    this.channel = `${store.settings.prefix}${store.settings.key}:control`;
    this.counter = store.keyOf('changes');
  }

  /** Starts following for `follower` (subscribing on first use). */
  follow(follower: Follower): void {
    if (this.#closed) return;
    this.#followers.add(follower);
    this.#subscribe();
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => void this.#read(false), this.#store.settings.syncInterval);
      this.#timer.unref();
    }
  }

  /** Stops following for `follower`; the last one closes the subscriber. */
  unfollow(follower: Follower): Promise<void> {
    this.#followers.delete(follower);
    if (this.#followers.size > 0) return Promise.resolve();
    return this.close();
  }

  /** Closes the subscriber connection and stops the timer. */
  close(): Promise<void> {
    this.#closed = true;
    this.#followers.clear();
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    const subscriber = this.#subscriber;
    this.#subscriber = undefined;
    // Closed at once, not by QUIT: a subscriber has nothing to flush, and a QUIT sent while it
    // is still connecting fails its ready check, which ioredis answers by connecting again.
    subscriber?.disconnect();
    return Promise.resolve();
  }

  #subscribe(): void {
    if (this.#subscriber !== undefined) return;
    // Subscribed on each 'ready' (the first connection and every reconnection), and the state
    // read once that subscription answers: a change made before it is read, one made after it
    // is heard.
    const subscriber = this.#store.client.duplicate({ autoResubscribe: false });
    this.#subscriber = subscriber;
    // Its failures show as failures of the commands on the main connection.
    subscriber.on('error', () => undefined);
    subscriber.on('ready', () => {
      subscriber.subscribe(this.channel).then(
        () => {
          this.#seen = undefined;
          void this.#read(true);
        },
        (error: unknown) => this.#store.report('control', error, this.#hooks),
      );
    });
    subscriber.on('message', (channel: string, text: string) => {
      if (channel !== this.channel) return;
      const message = parse(text);
      if (message === undefined) return;
      this.#heard += 1;
      const seen = this.#seen;
      const seq = message.seq;
      if (seq !== undefined) this.#seen = seq;
      for (const follower of this.#followers) follower.message(message);
      // A count skipped: a message between was lost (the subscriber reconnected unnoticed).
      if (seq !== undefined && seen !== undefined && seq > seen + 1) void this.#read(true);
    });
  }

  /**
   * One `MGET` of the count and of every followed string; the breaker reads its own state when
   * `all`, or when the count moved without a message. Never rejects (a failure is reported).
   */
  async #read(all: boolean): Promise<void> {
    if (this.#closed || this.#followers.size === 0) return;
    if (this.#reading) {
      // One read at a time; a read that must reach every follower is not dropped.
      if (all) this.#again = true;
      return;
    }
    this.#reading = true;
    const strings = [...this.#followers].filter((f): f is Followed => f instanceof Followed);
    const marks = strings.map((follower) => follower.mark());
    const heard = this.#heard;
    const store = this.#store;
    try {
      const values = await store.call('control', () =>
        store.client.mget(this.counter, ...strings.map((follower) => follower.key)),
      );
      store.recovered();
      strings.forEach((follower, i) => follower.take(values[i + 1] ?? null, marks[i] ?? 0));
      const count = Number(values[0] ?? 0);
      // A message heard meanwhile is newer than this read: the count it set stands.
      const moved = heard === this.#heard && count !== this.#seen;
      if (heard === this.#heard) this.#seen = count;
      if (all || moved) {
        for (const follower of this.#followers) {
          if (!(follower instanceof Followed)) void follower.sync();
        }
      }
    } catch (error) {
      store.failed('control', error, this.#hooks);
    } finally {
      this.#reading = false;
    }
    if (this.#again) {
      this.#again = false;
      await this.#read(true);
    }
  }
}

function parse(text: string): ControlMessage | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null) return undefined;
    const { kind, seq } = value as { kind?: unknown; seq?: unknown };
    if (seq !== undefined && typeof seq !== 'number') return undefined;
    return kind === 'pause' || kind === 'resume' || kind === 'limit' || kind === 'circuit'
      ? (value as ControlMessage)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A value one Redis string holds for every process on a key (the pause's end, the limit),
 * followed by this process: told by a message, or read by the control's `MGET`. @internal
 */
export abstract class Followed implements Follower {
  protected readonly store: Store;
  protected readonly control: Control;
  protected readonly hooks: BackendHooks | undefined;
  protected readonly operation: 'pause' | 'concurrency';
  /** The Redis key of the value. */
  readonly key: string;
  /** Counts this process's own changes and the messages heard: a read made before is stale. */
  #changes = 0;
  #closed = false;

  constructor(
    store: Store,
    control: Control,
    part: string,
    operation: 'pause' | 'concurrency',
    hooks: BackendHooks | undefined,
  ) {
    this.store = store;
    this.control = control;
    this.hooks = hooks;
    this.operation = operation;
    this.key = store.keyOf(part);
    control.follow(this);
  }

  /** A message arrived (see {@link Followed.heard}). */
  abstract message(message: ControlMessage): void;

  /** What the Redis string holds (`null` when absent), to follow. */
  protected abstract apply(value: unknown): void;

  /** Whether this process stopped following. */
  protected get closed(): boolean {
    return this.#closed;
  }

  /** Stops following (this process shuts down); the shared value stays. */
  close(): Promise<void> {
    this.#closed = true;
    return this.control.unfollow(this);
  }

  /** Read by the control's `MGET` (see {@link Followed.take}). */
  sync(): Promise<void> {
    return Promise.resolve();
  }

  /** Where this follower stands, before a read. */
  mark(): number {
    return this.#changes;
  }

  /** A read's value, sent when {@link Followed.mark} said `mark`: applied unless stale. */
  take(value: unknown, mark: number): void {
    if (mark === this.#changes && !this.#closed) this.apply(value);
  }

  /** A message for this value is being followed: reads sent before it are stale. */
  protected heard(): void {
    this.#changes += 1;
  }

  /**
   * Runs `source` (a script that changes the value and announces the change: KEYS the value,
   * the channel, the count of changes); `then` gets its answer. A failure is reported: the
   * change holds in this process, and the others learn of it only through a later change once
   * Redis answers again.
   */
  protected change(
    source: Script,
    args: readonly string[],
    then: (value: unknown) => void = () => undefined,
  ): void {
    this.#changes += 1;
    const store = this.store;
    const keys = [this.key, this.control.channel, this.control.counter];
    store
      .call(this.operation, () => store.script(source, keys, args))
      .then(
        (value) => {
          store.recovered();
          if (!this.#closed) then(value);
        },
        (error: unknown) => store.failed(this.operation, error, this.hooks),
      );
  }
}
