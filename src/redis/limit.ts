import type { BackendHooks, SharedLimit } from '../policies/backend.js';
import { ANNOUNCE, Followed, type Control, type ControlMessage } from './control.js';
import { RESIZE } from './gate-scripts.js';
import { script, type Store } from './store.js';

/**
 * Writes the shared limit, makes the shared gate (keys starting with ARGV[3], when it exists)
 * hold that many slots, and tells every process: all in one script, so no process sees the new
 * limit before the slots follow it.
 */
const WRITE = script(`${RESIZE}${ANNOUNCE}
redis.call('SET', KEYS[1], ARGV[1])
local gate = ARGV[3]
if redis.call('EXISTS', gate .. ':limit') == 1 then
  resize(gate, ARGV[1], redis.call('PTTL', gate .. ':limit'))
end
announce(KEYS[3], KEYS[2], '"kind":"limit","limit":' .. ARGV[2])
return 1
`);

/**
 * The concurrency limit of every process on a key: the string `<prefix><key>:limit`, the last
 * value written (by a write of `dvt.concurrency` or by an instance being constructed). A write
 * adds or removes the shared gate's slots in the same script (see `RESIZE` in `gate-scripts.ts`) and is
 * published on the key's control channel; each process follows it (as `RedisPause` does).
 * No value (Redis restarted empty): each process keeps its limit until the next write.
 * @internal
 */
export class RedisLimit extends Followed implements SharedLimit {
  readonly #follow: (limit: number) => void;

  constructor(
    store: Store,
    control: Control,
    initial: number,
    follow: (limit: number) => void,
    hooks: BackendHooks | undefined,
  ) {
    super(store, control, 'limit', 'concurrency', hooks);
    this.#follow = follow;
    this.write(initial);
  }

  write(limit: number): void {
    const text = limit === Infinity ? 'inf' : String(limit);
    this.change(WRITE, [text, limit === Infinity ? '"inf"' : text, this.store.keyOf('gate')]);
  }

  message(message: ControlMessage): void {
    if (message.kind !== 'limit' || this.closed) return;
    this.heard();
    this.apply(message.limit);
  }

  protected apply(value: unknown): void {
    const limit = value === 'inf' ? Infinity : Number(value);
    if (limit === Infinity || (Number.isInteger(limit) && limit >= 1)) this.#follow(limit);
  }
}
