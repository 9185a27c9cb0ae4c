/** What a signal watcher cancels. */
export interface Cancellable {
  cancel(reason?: unknown): boolean;
}

// Tasks that share a `with({ signal })` signal share one abort listener, removed with the last of
// them: one per task would trip Node's MaxListenersExceededWarning at 11 tasks in flight.
interface Watchers {
  readonly members: Set<Cancellable>;
  readonly listener: () => void;
}
const watched = new WeakMap<AbortSignal, Watchers>();

/** Cancels `member` with `signal.reason` when `signal` aborts (until {@link unwatch}). */
export function watch(signal: AbortSignal, member: Cancellable): void {
  let group = watched.get(signal);
  if (group === undefined) {
    const members = new Set<Cancellable>();
    const listener = (): void => {
      watched.delete(signal);
      for (const each of [...members]) each.cancel(signal.reason);
    };
    group = { members, listener };
    watched.set(signal, group);
    signal.addEventListener('abort', listener, { once: true });
  }
  group.members.add(member);
}

/** Stops watching `signal` for `member`; the listener goes with the last member. */
export function unwatch(signal: AbortSignal, member: Cancellable): void {
  const group = watched.get(signal);
  if (group === undefined) return;
  group.members.delete(member);
  if (group.members.size === 0) {
    watched.delete(signal);
    signal.removeEventListener('abort', group.listener);
  }
}
