// A program in a real terminal: a tmux server of its own (a private socket, so that it never
// meets a user's tmux), one pane running the program, its screen read with capture-pane.
import { it } from '@jest/globals';
import { execFile, spawnSync } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';

const exec = promisify(execFile);

const hasTmux = spawnSync('tmux', ['-V'], { stdio: 'ignore' }).status === 0;
const SKIP =
  'skipped: tmux not found (install it: apt-get install -y tmux; with CI set this fails instead)';

/**
 * `it` for a test that needs tmux: skipped with a note when tmux is missing, a failure instead
 * when `CI` is set (as the Redis tests do with redis-server).
 */
export function itWithTmux(name: string, test: () => Promise<void>, timeout: number): void {
  const ci = (process.env['CI'] ?? '') !== '' && process.env['CI'] !== 'false';
  if (hasTmux) it(name, test, timeout);
  else if (ci) it(name, () => Promise.reject(new Error(`${name}: ${SKIP}`)));
  else it.skip(`${name} (${SKIP})`, test);
}

/** Quotes `word` for the POSIX shell that tmux runs the pane's command with. */
const quote = (word: string): string => `'${word.replaceAll("'", `'\\''`)}'`;

export interface Terminal {
  /** The visible screen, one string per line, trailing blank lines dropped. */
  screen(): Promise<string[]>;
  /** Stops the tmux server and everything running in it. */
  close(): Promise<void>;
}

/**
 * Runs `argv` in a `width` x `height` pane of a new tmux server on the socket `name`, in `cwd`.
 * When the program ends, the pane prints `[exit <code>]` and stays open, so its last screen can
 * still be read.
 */
export async function openTerminal(
  name: string,
  argv: readonly string[],
  options: { cwd: string; env: NodeJS.ProcessEnv; width?: number; height?: number },
): Promise<Terminal> {
  const tmux = (...args: string[]) =>
    exec('tmux', ['-u', '-L', name, '-f', '/dev/null', ...args], {
      cwd: options.cwd,
      // The server takes its environment from the client that starts it.
      env: options.env,
    });
  const command = `${argv.map(quote).join(' ')}; echo "[exit $?]"; exec sleep 600`;
  await tmux(
    'new-session',
    '-d',
    '-x',
    String(options.width ?? 100),
    '-y',
    String(options.height ?? 30),
    '-c',
    options.cwd,
    command,
  );
  return {
    async screen() {
      const { stdout } = await tmux('capture-pane', '-p', '-J');
      const rows = stdout.split('\n').map((row) => row.trimEnd());
      while (rows.length > 0 && rows.at(-1) === '') rows.pop();
      return rows;
    },
    async close() {
      const socket = await tmux('display-message', '-p', '#{socket_path}').then(
        ({ stdout }) => stdout.trim(),
        () => '',
      );
      await tmux('kill-server').catch(() => undefined);
      // tmux 3.3 leaves the socket file of a killed server behind.
      if (socket !== '') await rm(socket, { force: true });
    },
  };
}
