import type { Redis } from 'ioredis';
import type { BackendHooks } from '../policies/backend.js';
import type { Script, Store } from './store.js';

/** One message on a key's control channel: a change another process made. @internal */
export type ControlMessage =
  | { readonly kind: 'pause'; readonly until: number | 'inf' }
  | { readonly kind: 'resume' }
  | { readonly kind: 'limit'; readonly limit: number | 'inf' }
  | { readonly kind: 'circuit' };

/** A part of the back end that follows what other processes change. @internal */
export interface Follower {
  /** A message arrived on the key's channel. */
  message(message: ControlMessage): void;
  /** Reads the shared state again (a message may have been lost); never rejects. */
  sync(): Promise<void>;
}

/**
 * The control channel of one back end: a `PUBLISH` on `<prefix><key>:control` tells every
 * process of a change (a pause, a resume, a new limit, a change of the breaker), within a round
 * trip. A subscriber connection (`client.duplicate()`, made when the first control needs it)
 * hears them. A message can be lost (the subscriber reconnecting while Redis restarts), so each
 * follower reads the shared state again when the subscriber (re)connects, and every
 * `syncInterval` ms while it follows anything (an unref'd timer: it never keeps the process
 * alive). @internal
 */
export class Control {
  readonly #store: Store;
  readonly #hooks: BackendHooks | undefined;
  readonly #followers = new Set<Follower>();
  readonly channel: string;
  #subscriber: Redis | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(store: Store, hooks: BackendHooks | undefined) {
    this.#store = store;
    this.#hooks = hooks;
    this.channel = `${store.settings.prefix}${store.settings.key}:control`;
  }

  /** Starts following for `follower` (subscribing on first use). */
  follow(follower: Follower): void {
    if (this.#closed) return;
    this.#followers.add(follower);
    this.#subscribe();
    if (this.#timer === undefined) {
      this.#timer = setInterval(() => this.#syncAll(), this.#store.settings.syncInterval);
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
    const subscriber = this.#store.client.duplicate();
    this.#subscriber = subscriber;
    // Its failures show as failures of the commands on the main connection; a reconnect is
    // followed by a sync, so a message missed meanwhile is made up for.
    subscriber.on('error', () => undefined);
    subscriber.on('ready', () => this.#syncAll());
    subscriber.on('message', (channel: string, text: string) => {
      if (channel !== this.channel) return;
      const message = parse(text);
      if (message === undefined) return;
      for (const follower of this.#followers) follower.message(message);
    });
    subscriber.subscribe(this.channel).then(
      // What changed before the subscription took effect is read now.
      () => this.#syncAll(),
      (error: unknown) => this.#store.report('control', error, this.#hooks),
    );
  }

  #syncAll(): void {
    for (const follower of this.#followers) void follower.sync();
  }
}

/** Encodes a message for `PUBLISH` (also from a Lua script: a plain JSON object). @internal */
export function encode(message: ControlMessage): string {
  return JSON.stringify(message);
}

function parse(text: string): ControlMessage | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    if (typeof value !== 'object' || value === null) return undefined;
    const kind = (value as { kind?: unknown }).kind;
    return kind === 'pause' || kind === 'resume' || kind === 'limit' || kind === 'circuit'
      ? (value as ControlMessage)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A value one Redis string holds for every process on a key (the pause's end, the limit),
 * followed by this process: told by a message, or read again by {@link Followed.sync}. @internal
 */
export abstract class Followed implements Follower {
  protected readonly store: Store;
  protected readonly control: Control;
  protected readonly hooks: BackendHooks | undefined;
  protected readonly operation: 'pause' | 'concurrency';
  /** The Redis key of the value. */
  protected readonly key: string;
  /** Counts this process's own changes: a sync read before one of them is stale. */
  #changes = 0;
  #syncing = false;
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

  async sync(): Promise<void> {
    if (this.#syncing || this.#closed) return;
    this.#syncing = true;
    const changes = this.#changes;
    const store = this.store;
    try {
      const value = await store.call(this.operation, () => store.client.get(this.key));
      store.recovered();
      if (changes === this.#changes && !this.#closed) this.apply(value);
    } catch (error) {
      store.failed(this.operation, error, this.hooks);
    } finally {
      this.#syncing = false;
    }
  }

  /**
   * Runs `source` (a script that changes the value and publishes the change); `then` gets its
   * answer. A failure is reported: the change holds in this process, and the others learn of it
   * only through a later change once Redis answers again.
   */
  protected change(
    source: Script,
    args: readonly string[],
    then: (value: unknown) => void = () => undefined,
  ): void {
    this.#changes += 1;
    const store = this.store;
    store
      .call(this.operation, () => store.script(source, [this.key, this.control.channel], args))
      .then(
        (value) => {
          store.recovered();
          if (!this.#closed) then(value);
        },
        (error: unknown) => store.failed(this.operation, error, this.hooks),
      );
  }
}
