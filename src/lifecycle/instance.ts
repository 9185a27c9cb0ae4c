/** Options of `shutdown()`. */
export interface ShutdownOptions {
  /**
   * `true`: wait for running and queued tasks. `false`: cancel queued tasks, abort the signal of
   * running ones, and resolve without waiting for them.
   * @defaultValue `true`
   */
  wait?: boolean | undefined;
}

/** An instance as the lifecycle modules see it (a `Dovetail`). @internal */
export interface Instance {
  readonly isShutdown: boolean;
  shutdown(options?: ShutdownOptions): Promise<void>;
}
