// The connection a shared gate (`gate.ts`) waits on for slots: a BLMOVE blocks the connection it
// is sent on, so each gate in use has one of its own.
import type { Redis } from 'ioredis';
import { noop } from '../internal/util.js';
import type { Store } from './store.js';

/**
 * One period of use of a gate's waiting connection: a duplicate of the client that never
 * reconnects (when it closes, the gate's next request opens another). The requests for a slot
 * are BLMOVEs pipelined on it, answered in order. @internal
 */
export class Link {
  readonly #connection: Redis;
  /** Became ready: a link that ends before is a failure, not a reason to try again at once. */
  #ready = false;
  /** When each request still waiting on it was sent (answers come back in order). */
  readonly #sent: number[] = [];

  /** @param ended - Called when the connection has ended. */
  constructor(store: Store, ended: (link: Link) => void) {
    const connection = store.client.duplicate({
      // One connection per period of use: when it closes, the next request opens another.
      retryStrategy: () => null,
      autoResendUnfulfilledCommands: false,
      connectTimeout: store.settings.timeout,
      enableReadyCheck: false,
    });
    connection.on('error', noop);
    connection.once('ready', () => (this.#ready = true));
    connection.once('end', () => ended(this));
    this.#connection = connection;
  }

  /** Moves a free slot from `slots` to `held`, waiting up to `seconds`: the slot, or `null`. */
  take(slots: string, held: string, seconds: number): Promise<string | null> {
    this.#sent.push(performance.now());
    return this.#connection.blmove(slots, held, 'LEFT', 'RIGHT', seconds).then(
      (slot) => {
        this.#sent.shift();
        return slot;
      },
      (error: unknown) => {
        this.#sent.shift();
        throw error;
      },
    );
  }

  /** Whether its connection closed after it was ready (killed, Redis restarted, closed here). */
  get lost(): boolean {
    const status = this.#connection.status;
    return this.#ready && (status === 'end' || status === 'close');
  }

  /** When its oldest request still unanswered was sent (`performance.now()`), if any. */
  get oldest(): number | undefined {
    return this.#sent[0];
  }

  /** Closes the connection at once (a request waiting on it fails). */
  close(): void {
    this.#connection.disconnect();
  }
}
