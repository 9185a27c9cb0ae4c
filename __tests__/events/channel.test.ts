// The `dovetail:task` channel's stores: what a subscriber binds to `start` is entered in the
// scheduling call's context, and every attempt of the task runs inside it.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel';
import { TASK_CHANNEL, TASK_RETRY_CHANNEL } from '../../src/index.js';
import { closeAll, create } from '../helpers/instances.js';

const channel = tracingChannel<unknown, { executionId: string }>(TASK_CHANNEL);
const noop = (): void => {};
const subscribers = { start: noop, end: noop, asyncStart: noop, asyncEnd: noop, error: noop };

afterEach(async () => {
  await closeAll();
  jest.useRealTimers();
});

describe('dovetail:task stores', () => {
  it('runs every attempt inside the stores bound to start, made from the scheduling context', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
    const request = new AsyncLocalStorage<string>();
    const span = new AsyncLocalStorage<string>();
    channel.start.bindStore(span, (m) => `span of ${m.executionId} in ${request.getStore()}`);
    try {
      const dvt = create({ retries: 1, retryBackoff: 10, concurrency: 1 });
      const seen: (string | undefined)[] = [];
      const task = request.run('request-1', () =>
        dvt.task.schedule(async () => {
          seen.push(span.getStore());
          await Promise.resolve();
          seen.push(span.getStore());
          if (seen.length === 2) throw new Error('again');
        }),
      );
      await jest.advanceTimersByTimeAsync(10);
      await task;
      expect(seen).toEqual(Array(4).fill(`span of ${task.id} in request-1`));
      // Outside the task, the store is not entered.
      expect(span.getStore()).toBeUndefined();
    } finally {
      channel.start.unbindStore(span);
    }
  });

  it('publishes no retry when nobody subscribes to dovetail:task', async () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'] });
    const retries: unknown[] = [];
    const onRetry = (m: unknown): void => {
      retries.push(m);
    };
    subscribe(TASK_RETRY_CHANNEL, onRetry);
    try {
      const dvt = create({ retries: 1, retryBackoff: 10 });
      let calls = 0;
      const run = (): Promise<void> =>
        dvt.task.schedule(() => {
          calls += 1;
          if (calls % 2 === 1) throw new Error('once');
        });
      const first = run();
      await jest.advanceTimersByTimeAsync(10);
      await first;
      expect(retries).toHaveLength(0);
      channel.subscribe(subscribers);
      try {
        const second = run();
        await jest.advanceTimersByTimeAsync(10);
        await second;
      } finally {
        channel.unsubscribe(subscribers);
      }
      expect(retries).toHaveLength(1);
    } finally {
      unsubscribe(TASK_RETRY_CHANNEL, onRetry);
    }
  });
});
