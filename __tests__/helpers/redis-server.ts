// A real redis-server for tests: a free loopback port, a temporary directory, no persistence.
import { afterAll, afterEach, beforeAll, describe, it } from '@jest/globals';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { closeAll } from './instances.js';
import { killWorkers } from './workers.js';

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

/** What {@link useRedisServer} gives a suite. */
export interface RedisSuite {
  /** The suite's server (up at the start of every test). */
  readonly server: RedisServer;
  /** A client of the suite's own, for what the tests read or write in Redis directly. */
  readonly admin: Redis;
  /**
   * A new client for the code under test: it reconnects every 50 ms after the server comes back
   * (errors while it is away are expected) and is closed after the test.
   */
  connect(): Redis;
  /** A key no other test of the suite uses: `<prefix>-<n>`. */
  nextKey(): string;
}

/**
 * One redis-server for the tests of a `describeRedis` suite, started before them and removed
 * after. After each test: the worker processes are killed, the instances shut down, the server
 * started again if a test stopped it (empty), and the test's clients closed.
 */
export function useRedisServer(prefix: string): RedisSuite {
  let server: RedisServer | undefined;
  let admin: Redis | undefined;
  const clients: Redis[] = [];
  let keySeq = 0;
  const fastClient = (url: string): Redis => {
    const client = new Redis(url, { retryStrategy: () => 50 });
    client.on('error', () => {});
    return client;
  };
  const suite: RedisSuite = {
    get server(): RedisServer {
      if (server === undefined) throw new Error('the redis-server starts in beforeAll');
      return server;
    },
    get admin(): Redis {
      if (admin === undefined) throw new Error('the admin client connects in beforeAll');
      return admin;
    },
    connect: (): Redis => {
      const client = fastClient(suite.server.url);
      clients.push(client);
      return client;
    },
    nextKey: (): string => `${prefix}-${++keySeq}`,
  };

  beforeAll(async () => {
    server = await RedisServer.start();
    admin = fastClient(server.url);
  });

  afterEach(async () => {
    killWorkers();
    await closeAll();
    await server?.resume();
    const client = admin;
    if (client !== undefined && client.status !== 'ready')
      await new Promise((resolve) => client.once('ready', resolve));
    await Promise.all(
      clients.splice(0).map((client) => client.quit().catch(() => client.disconnect())),
    );
  });

  afterAll(async () => {
    await admin?.quit();
    await server?.stop();
  });

  return suite;
}
