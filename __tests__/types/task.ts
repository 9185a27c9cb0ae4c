// Compile-time checks of the public types (run by `npm run typecheck`; never executed).
import { readFile, stat, type Stats } from 'node:fs';
import { Dovetail, type MapProgress, type Task } from '../../src/index.js';

declare const dvt: Dovetail;

// schedule infers the result and checks the arguments.
const a: Task<number> = dvt.task.schedule(async (x: number) => x * 2, 1);
const b: Task<string> = dvt.task.schedule((s: string) => s, 'x');
const c: Task<boolean> = dvt.task.schedule(Promise.resolve(true));
// @ts-expect-error wrong argument type
dvt.task.schedule(async (x: number) => x, 'not a number');
// @ts-expect-error missing argument
dvt.task.schedule(async (x: number) => x);

// A Task is a Promise with id and cancel.
const p: Promise<number> = a;
const id: string = a.id;
const cancelled: boolean = a.cancel('reason');

// map keeps the element type and resolves to an array of results.
const lengths: Promise<number[]> = dvt.task.map(async (s: string) => s.length, ['a']);
const iter: AsyncIterableIterator<string> = dvt.task.mapIterable((n: number) => String(n), [1]);
// @ts-expect-error items of the wrong type
dvt.task.map((s: string) => s.length, [1, 2]);

// onProgress receives { done, failed, running, total }, total possibly undefined; map items'
// payloads have an optional index.
dvt.task.map((s: string) => s, ['a'], {
  onProgress: ({ done, failed, running, total }) => {
    const counts: number = done + failed + running;
    // @ts-expect-error total may be undefined
    const known: number = total;
    void [counts, known];
  },
});
dvt.task.mapIterable((n: number) => n, [1], { onProgress: (p: MapProgress) => void p.total });
// @ts-expect-error onProgress must be a function
dvt.task.map((s: string) => s, ['a'], { onProgress: 'log' });
dvt.events.on('retry', (p) => {
  const index: number | undefined = p.index;
  void index;
});

// Callback APIs: parameters and result come from the function.
const text: Task<Buffer> = dvt.task.fromCallback(readFile, 'package.json');
const statTask: (path: string) => Task<Stats> = dvt.task.promisify(
  stat as (
    path: string,
    callback: (error: NodeJS.ErrnoException | null, stats: Stats) => void,
  ) => void,
);
const legacy = (x: number, done: (error: Error | null, value?: string) => void): void =>
  done(null, String(x));
const legacyTask: Task<string | undefined> = dvt.task.fromCallback(legacy, 1);
// @ts-expect-error wrong argument for the callback API
dvt.task.fromCallback(legacy, 'one');

// wrap keeps the parameters.
const wrapped: (n: number) => Task<number> = dvt.task.wrap(async (n: number) => n);
// @ts-expect-error wrong argument to the wrapped function
wrapped('x');
// wrap keeps `this`: a method wrapped keeps its object's type, and a plain call is refused.
const counter = {
  step: 2,
  next: dvt.task.wrap(function (this: { step: number }, n: number) {
    return n + this.step;
  }),
};
const stepped: Task<number> = counter.next(1);
const { next: detached } = counter;
// @ts-expect-error a method that needs its object, called without one
void detached(1);

// with() validates override names.
dvt.task.with({ timeout: 10, retries: 1, retryBackoff: 5, shouldRetry: () => true });
// @ts-expect-error unknown override
dvt.task.with({ timout: 10 });

void [b, c, p, id, cancelled, lengths, iter, text, statTask, legacyTask, stepped];

// Another overload of an overloaded API: through an arrow function that picks it.
const utf8: Task<string | undefined> = dvt.task.fromCallback(
  (path: string, done: (error: NodeJS.ErrnoException | null, text?: string) => void) =>
    readFile(path, 'utf8', done),
  'package.json',
);
void utf8;

// returnErrors: a slot may hold what was thrown, so the result is not typed as the values alone.
async function returnErrorsTypes(): Promise<void> {
  const kept = await dvt.task.map(async (n: number) => n, [1], { returnErrors: true });
  // @ts-expect-error a slot may be an error
  const onlyNumbers: number[] = kept;
  const plain: number[] = await dvt.task.map(async (n: number) => n, [1]);
  void [onlyNumbers, plain];
}
void returnErrorsTypes;
