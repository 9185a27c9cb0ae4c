import { afterEach, describe, expect, it } from '@jest/globals';
import { DEFAULTS, Dovetail, type DovetailOptions } from '../src/index.js';
import { closeAll, create } from './helpers/instances.js';

afterEach(closeAll);

const build = (options: unknown): Dovetail =>
  new Dovetail({ autoRegister: false, shutdownOnExit: false, ...(options as DovetailOptions) });

describe('constructor validation', () => {
  const rangeCases: Array<[string, unknown, RegExp]> = [
    ['concurrency 0', { concurrency: 0 }, /`concurrency`.*0/],
    ['concurrency -1', { concurrency: -1 }, /`concurrency`.*-1/],
    ['concurrency 1.5', { concurrency: 1.5 }, /`concurrency`.*1\.5/],
    ['concurrency NaN', { concurrency: NaN }, /`concurrency`.*NaN/],
    ['timeout 0', { timeout: 0 }, /`timeout`.*0/],
    ['timeout -5', { timeout: -5 }, /`timeout`.*-5/],
    ['timeout NaN', { timeout: NaN }, /`timeout`.*NaN/],
    ['retries -1', { retries: -1 }, /`retries`.*-1/],
    ['retries 0.5', { retries: 0.5 }, /`retries`.*0\.5/],
    ['retries NaN', { retries: NaN }, /`retries`.*NaN/],
    ['retries Infinity', { retries: Infinity }, /`retries`.*Infinity/],
    ['retryBackoff -1', { retryBackoff: -1 }, /`retryBackoff`.*-1/],
    ['retryBackoff NaN', { retryBackoff: NaN }, /`retryBackoff`.*NaN/],
    ['perSecond 0', { rateLimit: { perSecond: 0 } }, /`rateLimit.perSecond`.*0/],
    ['perSecond -3', { rateLimit: { perSecond: -3 } }, /`rateLimit.perSecond`.*-3/],
    ['perSecond NaN', { rateLimit: { perSecond: NaN } }, /`rateLimit.perSecond`.*NaN/],
    ['burst 0', { rateLimit: { perSecond: 5, burst: 0 } }, /`rateLimit.burst`.*0/],
    ['burst 0.5', { rateLimit: { perSecond: 5, burst: 0.5 } }, /`rateLimit.burst`.*0\.5/],
  ];
  it.each(rangeCases)(
    'throws RangeError for %s, naming option and value',
    (_name, options, message) => {
      expect(() => build(options)).toThrow(RangeError);
      expect(() => build(options)).toThrow(message);
    },
  );

  const typeCases: Array<[string, unknown, RegExp]> = [
    ['concurrency string', { concurrency: '4' }, /`concurrency`.*"4"/],
    ['timeout string', { timeout: '100' }, /`timeout`/],
    ['retries boolean', { retries: true }, /`retries`.*true/],
    ['retryBackoff null', { retryBackoff: null }, /`retryBackoff`.*null/],
    ['rateLimit number', { rateLimit: 5 }, /`rateLimit`.*5/],
    ['perSecond string', { rateLimit: { perSecond: '10' } }, /`rateLimit.perSecond`/],
    ['trace string', { trace: 'yes' }, /`trace`/],
    ['traceLogger without debug', { traceLogger: {} }, /`traceLogger.debug`/],
    ['tracePrefix number', { tracePrefix: 3 }, /`tracePrefix`/],
    ['shutdownOnExit number', { shutdownOnExit: 1 }, /`shutdownOnExit`/],
    ['autoRegister string', { autoRegister: 'no' }, /`autoRegister`/],
    ['shouldRetry not a function', { shouldRetry: true }, /`shouldRetry`/],
  ];
  it.each(typeCases)('throws TypeError for %s, naming the option', (_name, options, message) => {
    expect(() => build(options)).toThrow(TypeError);
    expect(() => build(options)).toThrow(message);
  });

  it('throws TypeError for options that are not an object', () => {
    expect(() => new Dovetail(5 as never)).toThrow(TypeError);
    expect(() => new Dovetail(null as never)).toThrow(TypeError);
  });

  it('accepts Infinity for concurrency and timeout, and undefined for anything', () => {
    expect(() =>
      build({ concurrency: Infinity, timeout: Infinity, retries: undefined, rateLimit: undefined }),
    ).not.toThrow();
  });

  it('defaults burst to perSecond', async () => {
    const dvt = create({ rateLimit: { perSecond: 3 } });
    await Promise.all([1, 2, 3].map(() => dvt.task.schedule(() => 1)));
    expect(dvt.events.stats().throttled).toBe(0);
  });

  it('has the documented defaults', () => {
    expect(DEFAULTS).toMatchObject({
      concurrency: Infinity,
      timeout: Infinity,
      retries: 0,
      retryBackoff: 0,
      tracePrefix: 'Dovetail',
      shutdownOnExit: true,
      autoRegister: true,
    });
    expect(Object.isFrozen(DEFAULTS)).toBe(true);
    const dvt = create();
    expect(dvt.concurrency).toBe(Infinity);
    expect(dvt.isShutdown).toBe(false);
    expect(dvt.active).toBe(0);
    expect(dvt.pending).toBe(0);
  });

  it('stays usable after a rejected call', async () => {
    const dvt = create();
    expect(() => dvt.task.with({ retries: -1 })).toThrow(RangeError);
    expect(() => dvt.task.map(null as never, [])).toThrow(TypeError);
    await expect(dvt.task.schedule(async () => 'fine')).resolves.toBe('fine');
  });
});
