// Types of bench/upstream.mjs, for the TypeScript tests that import it.

/** The server's configuration; every field may be changed mid-run. */
export interface UpstreamConfig {
  /** Workers serving at once. */
  capacity: number;
  /** Milliseconds each request takes in `fixed` mode. */
  service: number;
  /** Requests that may wait behind the workers; one more gets a 503. */
  queueLimit: number;
  /** `fixed`: `service` ms each; `tail`: `tailFast` ms, or `tailSlow` ms with probability `tailP`. */
  mode: 'fixed' | 'tail';
  tailFast: number;
  tailSlow: number;
  tailP: number;
  /** Seed of the generator that picks the slow requests in `tail` mode. */
  seed: number;
}

/** The server's counters. */
export interface UpstreamStats {
  requests: number;
  served: number;
  rejected: number;
  aborted: number;
  abortedWaiting: number;
  abortedServing: number;
  maxBusy: number;
  maxQueued: number;
  busy: number;
  queued: number;
  config: UpstreamConfig;
}

/** A server running in a child process. */
export interface Upstream {
  readonly port: number;
  /** `http://127.0.0.1:<port>/` */
  readonly url: string;
  readonly pid: number;
  configure(change: Partial<UpstreamConfig>): Promise<UpstreamConfig>;
  stats(): Promise<UpstreamStats>;
  reset(): Promise<UpstreamStats>;
  /** Closes the server and waits for the child to exit. */
  stop(): Promise<void>;
}

export function startUpstream(
  options?: Partial<UpstreamConfig> & { port?: number },
): Promise<Upstream>;

/** mulberry32: a small seeded generator of numbers in [0, 1). */
export function mulberry32(seed: number): () => number;
