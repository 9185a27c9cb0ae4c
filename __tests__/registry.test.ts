import { afterEach, describe, expect, it } from '@jest/globals';
import { join } from 'node:path';
import {
  Dovetail,
  ShutdownError,
  listActive,
  register,
  shutdownAll,
  unregister,
  type DovetailOptions,
} from '../src/index.js';
import { defer } from './helpers/defer.js';
import { FIXTURES, ensureBuilt, lines, run } from './fixtures/child.js';

ensureBuilt();

// These instances are registered (that is what is under test) but install no signal handler.
const made: Dovetail[] = [];
function make(options: DovetailOptions = {}): Dovetail {
  const dvt = new Dovetail({ shutdownOnExit: false, ...options });
  made.push(dvt);
  return dvt;
}

afterEach(async () => {
  await Promise.all(made.splice(0).map((dvt) => dvt.shutdown({ wait: false })));
});

describe('register / unregister / listActive', () => {
  it('lists instances with autoRegister (the default) in creation order', () => {
    const a = make();
    const b = make();
    const active = listActive();
    expect(active.indexOf(a)).toBeGreaterThanOrEqual(0);
    expect(active.indexOf(b)).toBeGreaterThan(active.indexOf(a));
  });

  it('leaves out instances built with autoRegister: false until register() adds them', () => {
    const dvt = make({ autoRegister: false });
    expect(listActive()).not.toContain(dvt);
    register(dvt);
    expect(listActive()).toContain(dvt);
  });

  it('register() is idempotent', () => {
    const dvt = make({ autoRegister: false });
    register(dvt);
    register(dvt);
    expect(listActive().filter((one) => one === dvt)).toHaveLength(1);
  });

  it('unregister() removes an instance and says whether it was registered', () => {
    const dvt = make();
    expect(unregister(dvt)).toBe(true);
    expect(listActive()).not.toContain(dvt);
    expect(unregister(dvt)).toBe(false);
  });

  it('returns a copy: changing it changes nothing in the registry', () => {
    const dvt = make();
    listActive().length = 0;
    expect(listActive()).toContain(dvt);
  });

  it('drops an instance from listActive() as soon as its shutdown begins, and it stays out', async () => {
    const dvt = make();
    const gate = defer();
    void dvt.task.schedule(() => gate.promise);
    const closing = dvt.shutdown();
    expect(listActive()).not.toContain(dvt);
    gate.resolve();
    await closing;
    register(dvt); // A shut-down instance is not registered again.
    expect(listActive()).not.toContain(dvt);
    expect(unregister(dvt)).toBe(false);
  });

  it('rejects anything but a Dovetail instance with TypeError', () => {
    expect(() => register({} as Dovetail)).toThrow(TypeError);
    expect(() => register(null as unknown as Dovetail)).toThrow(
      '`dvt` must be a Dovetail instance',
    );
    expect(() => unregister(42 as unknown as Dovetail)).toThrow(TypeError);
  });
});

describe('shutdownAll', () => {
  it('shuts every registered instance down and leaves the others alone', async () => {
    const a = make();
    const b = make();
    const loose = make({ autoRegister: false });
    await shutdownAll();
    expect(a.isShutdown).toBe(true);
    expect(b.isShutdown).toBe(true);
    expect(loose.isShutdown).toBe(false);
    expect(listActive()).toEqual([]);
  });

  it('waits for running tasks by default', async () => {
    const dvt = make();
    const gate = defer<number>();
    const task = dvt.task.schedule(() => gate.promise);
    let done = false;
    const all = shutdownAll().then(() => {
      done = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    gate.resolve(7);
    await all;
    expect(done).toBe(true);
    await expect(task).resolves.toBe(7);
  });

  it('with wait: false aborts running tasks, even of an instance already shutting down with wait', async () => {
    const dvt = make();
    const aborted = defer<unknown>();
    void dvt.task
      .schedule(
        () =>
          new Promise<void>((resolve) => {
            const signal = dvt.task.current()!.signal;
            signal.addEventListener('abort', () => {
              aborted.resolve(signal.reason);
              resolve();
            });
          }),
      )
      .catch(() => {});
    await new Promise((resolve) => setImmediate(resolve));
    const waiting = dvt.shutdown({ wait: true });
    await shutdownAll({ wait: false });
    expect(await aborted.promise).toBeInstanceOf(ShutdownError);
    await waiting;
    expect(dvt.isShutdown).toBe(true);
  });

  it('resolves at once with nothing registered', async () => {
    await Promise.all(listActive().map((dvt) => dvt.shutdown()));
    await expect(shutdownAll()).resolves.toBeUndefined();
  });

  it('validates its options before shutting anything down', async () => {
    const dvt = make();
    expect(() => shutdownAll({ wait: 'yes' as never })).toThrow(TypeError);
    expect(() => shutdownAll(3 as never)).toThrow(TypeError);
    expect(dvt.isShutdown).toBe(false);
  });
});

describe('shutdownOnExit', () => {
  it('adds one SIGINT/SIGTERM listener for any number of instances and removes it with the last', async () => {
    const before = [process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')];
    const many = Array.from({ length: 20 }, () => new Dovetail({ autoRegister: false }));
    expect([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')]).toEqual([
      before[0]! + 1,
      before[1]! + 1,
    ]);
    await Promise.all(many.slice(1).map((dvt) => dvt.shutdown()));
    expect(process.listenerCount('SIGINT')).toBe(before[0]! + 1);
    await many[0]!.shutdown();
    expect([process.listenerCount('SIGINT'), process.listenerCount('SIGTERM')]).toEqual(before);
  });

  it('adds no listener for instances with shutdownOnExit: false', async () => {
    const before = process.listenerCount('SIGINT');
    make();
    expect(process.listenerCount('SIGINT')).toBe(before);
  });
});

describe('garbage collection', () => {
  it('warns DOVETAIL_NOT_SHUT_DOWN for each instance collected without shutdown, registered or not', async () => {
    const result = await run(join(FIXTURES, 'gc.mjs'), [], ['--expose-gc']);
    expect(lines(result.stdout)).toEqual([
      'active 1 listeners 1',
      'warnings DOVETAIL_NOT_SHUT_DOWN,DOVETAIL_NOT_SHUT_DOWN',
      // Collected instances leave the registry and release the signal listener.
      'active 0 listeners 0',
    ]);
    expect(result.stderr.match(/\[DOVETAIL_NOT_SHUT_DOWN\]/g)).toHaveLength(2);
    expect(result.code).toBe(0);
  }, 30_000);
});
