// A real redis-server for tests: a free loopback port, a temporary directory, no persistence.
import { describe, it } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether `redis-server` can be run here. */
export const hasRedisServer: boolean =
  spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

/** The line printed when the Redis tests are skipped. */
export const SKIP_LINE =
  'dovetailjs/redis tests skipped: redis-server not found (install it: apt-get install -y redis-server; with CI set they fail instead)';

/** Whether the suite must fail rather than skip when the server is missing. */
export const requireRedis: boolean =
  (process.env['CI'] ?? '') !== '' && process.env['CI'] !== 'false';

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** A running redis-server that can be stopped and started again on the same port. */
export class RedisServer {
  readonly port: number;
  readonly dir: string;
  #child: ChildProcess | undefined;

  private constructor(port: number, dir: string) {
    this.port = port;
    this.dir = dir;
  }

  /** `redis://127.0.0.1:<port>` */
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts a server on a free port (or `port`) and waits until it accepts connections. */
  static async start(port?: number): Promise<RedisServer> {
    const server = new RedisServer(
      port ?? (await freePort()),
      mkdtempSync(join(tmpdir(), 'dovetail-redis-')),
    );
    await server.resume();
    return server;
  }

  /** Whether the server process runs. */
  get running(): boolean {
    return this.#child !== undefined;
  }

  /** Starts the server again (after `pause()`), on the same port, empty. */
  async resume(): Promise<void> {
    if (this.#child !== undefined) return;
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        this.dir,
      ],
      { stdio: 'ignore' },
    );
    this.#child = child;
    child.once('exit', () => {
      if (this.#child === child) this.#child = undefined;
    });
    const deadline = Date.now() + 10_000;
    while (!(await canConnect(this.port))) {
      if (this.#child !== child)
        throw new Error(`redis-server on port ${this.port} exited at start`);
      if (Date.now() > deadline)
        throw new Error(`redis-server on port ${this.port} did not start within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }

  /** Stops the server process (SIGKILL: like a crash, nothing saved) and waits for it to exit. */
  async pause(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    this.#child = undefined;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await exited;
    }
  }

  /** Stops the server and removes its directory. */
  async stop(): Promise<void> {
    await this.pause();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * `describe` for suites that need redis-server: runs them when it is installed; otherwise skips
 * them with one line saying how to enable them, or, with `CI` set, fails.
 */
export function describeRedis(name: string, body: () => void): void {
  if (hasRedisServer) {
    describe(name, body);
  } else if (requireRedis) {
    describe(name, () => {
      it('needs redis-server (CI is set, so a missing server is a failure)', () => {
        throw new Error(SKIP_LINE);
      });
    });
  } else {
    process.stderr.write(`${SKIP_LINE}\n`);
    describe.skip(`${name} (${SKIP_LINE})`, body);
  }
}
