// Worker processes for the dovetailjs/redis tests (__tests__/redis/fixtures/worker.ts), each a
// real child process; killWorkers() ends those still running.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const WORKER = fileURLToPath(new URL('../redis/fixtures/worker.ts', import.meta.url));

const children = new Set<ChildProcess>();

/** What a worker in mode 'run' prints. */
export interface WorkerReport {
  starts: number[];
  wall: number[];
  peak: number;
  failed: number;
  waited: number;
  stats: Record<string, number>;
}

/** Starts one worker with `config`; `output` is what it printed, once it exited with 0. */
export function startWorker(config: Record<string, unknown>): {
  child: ChildProcess;
  output: Promise<string>;
} {
  const child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
  const output = new Promise<string>((resolve, reject) => {
    child.once('exit', (code, signal) => {
      children.delete(child);
      if (code === 0) resolve(out);
      else reject(new Error(`worker exited with ${code ?? signal}: ${err}`));
    });
  });
  return { child, output };
}

/** Runs workers to their end; their reports (the last line each printed). */
export async function runWorkers(configs: Record<string, unknown>[]): Promise<WorkerReport[]> {
  const outputs = await Promise.all(configs.map((config) => startWorker(config).output));
  return outputs.map((text) => JSON.parse(text.trim().split('\n').pop() ?? '{}') as WorkerReport);
}

/** Resolves when the worker prints `line` (rejects if it exits first). */
export function printed(child: ChildProcess, line: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let seen = '';
    child.stdout?.on('data', (chunk: string) => {
      seen += chunk;
      if (seen.includes(line)) resolve();
    });
    child.once('exit', () => reject(new Error(`the worker exited before printing "${line}"`)));
  });
}

/** SIGKILLs every worker still running. */
export function killWorkers(): void {
  for (const child of children) child.kill('SIGKILL');
}
