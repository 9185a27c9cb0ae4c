import type { BackendHooks, SharedPause } from '../policies/backend.js';
import { ANNOUNCE, Followed, type Control, type ControlMessage } from './control.js';
import { script, type Store } from './store.js';

/**
 * Sets the shared pause to end at ARGV[1] (epoch ms, or 'inf' for untimed) unless it already
 * ends later, and tells every process. The key expires at the end (PEXPIREAT, on Redis's clock);
 * an untimed pause has no expiry. Answers the end in force.
 */
const PAUSE = script(`${ANNOUNCE}
local current = redis.call('GET', KEYS[1])
local wanted = ARGV[1]
if current == 'inf' then return current end
if current and wanted ~= 'inf' and tonumber(current) >= tonumber(wanted) then return current end
redis.call('SET', KEYS[1], wanted)
local ends = '"inf"'
if wanted ~= 'inf' then
  redis.call('PEXPIREAT', KEYS[1], wanted)
  ends = wanted
end
announce(KEYS[3], KEYS[2], '"kind":"pause","until":' .. ends)
return wanted
`);

/** Lifts the shared pause and tells every process. */
const RESUME = script(`${ANNOUNCE}
redis.call('DEL', KEYS[1])
announce(KEYS[3], KEYS[2], '"kind":"resume"')
return 1
`);

/** What the store holds, as `Pause.follow` takes it. */
function endOf(value: unknown): number | undefined {
  if (value === null || value === undefined) return undefined;
  if (value === 'inf') return Infinity;
  const until = Number(value);
  return Number.isFinite(until) ? until : undefined;
}

/**
 * The pause of every process on a key: the string `<prefix><key>:pause` holds its end (epoch
 * ms, `inf` when untimed) and expires then; a change is published on the key's control channel.
 * Each process follows it: on a message, when its subscriber (re)connects, and on the control's
 * periodic sync. @internal
 */
export class RedisPause extends Followed implements SharedPause {
  readonly #follow: (until: number | undefined) => void;

  constructor(
    store: Store,
    control: Control,
    follow: (until: number | undefined) => void,
    hooks: BackendHooks | undefined,
  ) {
    super(store, control, 'pause', 'pause', hooks);
    this.#follow = follow;
  }

  pause(until: number): void {
    this.change(PAUSE, [until === Infinity ? 'inf' : String(Math.ceil(until))], (value) =>
      this.apply(value),
    );
  }

  resume(): void {
    this.change(RESUME, []);
  }

  message(message: ControlMessage): void {
    if (this.closed || (message.kind !== 'pause' && message.kind !== 'resume')) return;
    this.heard();
    if (message.kind === 'pause') this.apply(message.until);
    else this.#follow(undefined);
  }

  protected apply(value: unknown): void {
    this.#follow(endOf(value));
  }
}
