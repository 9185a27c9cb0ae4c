// Signal handling and runMain, in real child processes against the built package: exit codes,
// signals and keep-alive behaviour cannot be observed inside the test runner's own process.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { join } from 'node:path';
import { runMain, setAppShutdownHook } from '../src/index.js';
import { FIXTURES, ensureBuilt, lines, run, start } from './fixtures/child.js';

ensureBuilt(); // Synchronously at load: concurrent tests may start before a beforeAll hook ends.
// Child processes on a busy 2-core machine: allow for slow starts.
jest.setTimeout(30_000);

const SIGNALS = join(FIXTURES, 'signals.mjs');
const MAIN = join(FIXTURES, 'main.mjs');

/**
 * Starts a fixture, waits for `ready`, sends the signals in turn, and returns the result with
 * `afterSignal`: the ms from the last signal to the exit.
 */
async function signalled(script: string, mode: string, ...signals: NodeJS.Signals[]) {
  const child = start(script, [mode]);
  await child.waitFor('ready');
  let sent = 0;
  for (const [index, signal] of signals.entries()) {
    if (index > 0) await new Promise((resolve) => setTimeout(resolve, 200));
    child.kill(signal);
    sent = performance.now();
  }
  const result = await child.result;
  return { ...result, afterSignal: performance.now() - sent };
}

describe('signal handler', () => {
  it.concurrent(
    'on SIGINT without an app listener, waits for the running task and exits 130',
    async () => {
      const result = await signalled(SIGNALS, 'drain', 'SIGINT');
      expect(lines(result.stdout)).toEqual(['ready', 'task done', 'exit 130']);
      expect(result.code).toBe(130);
      expect(result.stderr).toBe('');
    },
  );

  it.concurrent('on SIGTERM without an app listener, exits 143', async () => {
    const result = await signalled(SIGNALS, 'drain', 'SIGTERM');
    expect(lines(result.stdout)).toEqual(['ready', 'task done', 'exit 143']);
    expect(result.code).toBe(143);
  });

  it.concurrent(
    'after the 10 000 ms grace, aborts the running task signal and exits 130',
    async () => {
      const result = await signalled(SIGNALS, 'hang', 'SIGINT');
      expect(lines(result.stdout)).toEqual(['ready', 'aborted ShutdownError', 'exit 130']);
      expect(result.code).toBe(130);
      expect(result.afterSignal).toBeGreaterThanOrEqual(9_900);
    },
    25_000,
  );

  it.concurrent(
    'reports a hook that throws as a DOVETAIL_SHUTDOWN_HOOK_ERROR warning and still exits 143',
    async () => {
      const result = await signalled(SIGNALS, 'hook-throws', 'SIGTERM');
      expect(result.stderr).toMatch(/\[DOVETAIL_SHUTDOWN_HOOK_ERROR\] Warning: .*hook broke/);
      expect(result.code).toBe(143);
    },
  );

  it.concurrent(
    'on process.exit() with a task running, aborts its signal synchronously',
    async () => {
      const result = await run(SIGNALS, ['exit']);
      // The fixture's own 'exit' listener was added first, so it prints first.
      expect(lines(result.stdout)).toEqual(['exit 3', 'aborted at exit: ShutdownError']);
      expect(result.code).toBe(3);
    },
  );

  it.concurrent('exits at once on a second signal while the first is being handled', async () => {
    const result = await signalled(SIGNALS, 'second', 'SIGINT', 'SIGINT');
    expect(lines(result.stdout)).toEqual(['ready', 'exit 130']);
    expect(result.code).toBe(130);
    expect(result.afterSignal).toBeLessThan(5_000);
  });

  it.concurrent(
    'shuts instances down but does not end a process whose app listens for SIGINT',
    async () => {
      const result = await signalled(SIGNALS, 'app-listener', 'SIGINT');
      expect(lines(result.stdout)).toEqual([
        'ready',
        'app got SIGINT',
        // The library's listener is still there while the app runs: the shut-down instance is
        // untracked only after the poll saw isShutdown, and the count is read in the same turn.
        expect.stringMatching(/^instances shut down; listeners [01]$/),
        'app still alive',
        'exit 7',
      ]);
      expect(result.code).toBe(7);
    },
  );

  it.concurrent(
    'counts an app `once` listener registered before the library as the app handling the signal',
    async () => {
      const result = await signalled(SIGNALS, 'app-once', 'SIGINT');
      expect(lines(result.stdout)).toEqual([
        'ready',
        'app got SIGINT',
        'app still alive',
        'exit 7',
      ]);
      expect(result.code).toBe(7);
    },
  );

  it.concurrent('runs the app hook instead of the default shutdown, then exits 130', async () => {
    const result = await signalled(SIGNALS, 'hook', 'SIGINT');
    expect(lines(result.stdout)).toEqual([
      'ready',
      'hook SIGINT isShutdown=false',
      'hook done',
      'exit 130',
    ]);
    expect(result.code).toBe(130);
  });

  it.concurrent(
    'keeps one listener per signal for 100 instances and removes it when none is left',
    async () => {
      const result = await run(SIGNALS, ['many']);
      expect(lines(result.stdout)).toEqual([
        'listeners 1 1',
        'after shutdown 0 0',
        'opted out 0',
        'exit 0',
      ]);
      expect(result.stderr).not.toMatch(/MaxListenersExceededWarning/);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
    },
  );

  it.concurrent('never keeps the process alive: an idle instance lets it exit', async () => {
    const result = await run(SIGNALS, ['idle']);
    expect(lines(result.stdout)).toEqual(['idle', 'exit 0']);
    expect(result.code).toBe(0);
  });
});

describe('runMain', () => {
  it.concurrent(
    'exits 0 on success without cutting off pending output, and shuts instances down',
    async () => {
      const result = await run(MAIN, ['ok']);
      const out = lines(result.stdout);
      expect(out[0]).toBe('result 2,4,6');
      expect(out[1]).toHaveLength(1024 * 1024);
      expect(out.slice(2)).toEqual(['end of output', 'after runMain exitCode=0 isShutdown=true']);
      expect(result.code).toBe(0);
      expect(result.stderr).toBe('');
    },
  );

  it.concurrent('prints the stack on stderr and exits 1 when main throws', async () => {
    const result = await run(MAIN, ['throw']);
    expect(result.stderr).toMatch(/^Error: boom from main\n\s+at /);
    expect(lines(result.stdout)).toEqual(['exit 1 isShutdown=true']);
    expect(result.code).toBe(1);
  });

  it.concurrent('lets tasks main did not await finish before the shutdown completes', async () => {
    const result = await run(MAIN, ['drain']);
    expect(lines(result.stdout)).toEqual(['background task done', 'exit 0 isShutdown=true']);
    expect(result.code).toBe(0);
  });

  it.concurrent('aborts main signal on SIGINT, shuts instances down and exits 130', async () => {
    const result = await signalled(MAIN, 'signal', 'SIGINT');
    const out = lines(result.stdout);
    expect(out).toContain('main aborted: CancelledError: received SIGINT');
    expect(out.at(-1)).toBe('exit 130 isShutdown=true');
    expect(result.code).toBe(130);
    // The abort reason that main rethrows is expected, not reported.
    expect(result.stderr).toBe('');
  });

  it.concurrent('exits 130 after the grace when main ignores its signal', async () => {
    const result = await signalled(MAIN, 'ignore', 'SIGINT');
    expect(lines(result.stdout)).toEqual(['ready', 'exit 130 isShutdown=true']);
    expect(result.code).toBe(130);
  });

  it.concurrent('exits at once on a second signal, with the code of that signal', async () => {
    const result = await signalled(MAIN, 'second', 'SIGINT', 'SIGTERM');
    expect(lines(result.stdout)).toEqual(['ready', 'exit 143 isShutdown=true']);
    expect(result.code).toBe(143);
    expect(result.afterSignal).toBeLessThan(5_000);
  });
});

describe('argument checks', () => {
  afterEach(() => setAppShutdownHook(null));

  it('runMain rejects a non-function main with TypeError, before calling anything', () => {
    expect(() => runMain(42 as never)).toThrow(TypeError);
    expect(() => runMain(42 as never)).toThrow('`main` must be a function, received 42 (number)');
  });

  it('runMain rejects a negative or infinite grace with RangeError, and a wrong type with TypeError', () => {
    let called = 0;
    const main = (): void => {
      called += 1;
    };
    expect(() => runMain(main, { grace: -1 })).toThrow(RangeError);
    expect(() => runMain(main, { grace: Infinity })).toThrow(RangeError);
    expect(() => runMain(main, { grace: '1' as never })).toThrow(TypeError);
    expect(() => runMain(main, 5 as never)).toThrow(TypeError);
    expect(called).toBe(0);
  });

  it('setAppShutdownHook accepts a function or null and rejects anything else with TypeError', () => {
    expect(() => setAppShutdownHook(() => {})).not.toThrow();
    expect(() => setAppShutdownHook(null)).not.toThrow();
    expect(() => setAppShutdownHook('x' as never)).toThrow(TypeError);
  });
});
