import { describe, expect, it } from '@jest/globals';
import { resolveCircuitOptions } from '../../src/resilience/circuit-options.js';

describe('resolveCircuitOptions', () => {
  it('gives undefined (no breaker) when the option is absent', () => {
    expect(resolveCircuitOptions(undefined)).toBeUndefined();
  });

  it('fills the defaults of consecutive mode, frozen', () => {
    const resolved = resolveCircuitOptions({});
    expect(resolved).toEqual({
      threshold: 5,
      ratio: undefined,
      halfOpenAfter: 30_000,
      halfOpenCalls: 1,
      isFailure: undefined,
    });
    expect(Object.isFrozen(resolved)).toBe(true);
  });

  it('takes ratio mode instead of a threshold, with minimumCalls 10 by default', () => {
    const resolved = resolveCircuitOptions({ ratio: { failures: 0.5, window: 1000 } });
    expect(resolved?.threshold).toBeUndefined();
    expect(resolved?.ratio).toEqual({ failures: 0.5, window: 1000, minimumCalls: 10 });
    expect(Object.isFrozen(resolved?.ratio)).toBe(true);
  });

  it('keeps every value given', () => {
    const isFailure = (): boolean => true;
    expect(
      resolveCircuitOptions({ threshold: 2, halfOpenAfter: 5, halfOpenCalls: 3, isFailure }),
    ).toEqual({ threshold: 2, ratio: undefined, halfOpenAfter: 5, halfOpenCalls: 3, isFailure });
    expect(
      resolveCircuitOptions({ ratio: { failures: 1, window: Infinity, minimumCalls: 1 } })?.ratio,
    ).toEqual({ failures: 1, window: Infinity, minimumCalls: 1 });
  });

  it('accepts every field as an explicit undefined', () => {
    expect(
      resolveCircuitOptions({
        threshold: undefined,
        ratio: { failures: 0.1, window: 1, minimumCalls: undefined },
        halfOpenAfter: undefined,
        halfOpenCalls: undefined,
        isFailure: undefined,
      })?.ratio?.minimumCalls,
    ).toBe(10);
  });

  it('accepts halfOpenAfter: Infinity (open until reset())', () => {
    expect(resolveCircuitOptions({ halfOpenAfter: Infinity })?.halfOpenAfter).toBe(Infinity);
  });

  it('names its option under another name when asked', () => {
    expect(() => resolveCircuitOptions({ threshold: 0 }, 'breaker')).toThrow(
      new RangeError('`breaker.threshold` must be an integer >= 1, received 0'),
    );
  });

  const ratio = (fields: object): object => ({ ratio: { failures: 0.5, window: 100, ...fields } });
  it.each<[string, unknown, ErrorConstructor, string]>([
    ['a number', 5, TypeError, '`circuitBreaker` must be an object, received 5 (number)'],
    ['null', null, TypeError, '`circuitBreaker` must be an object, received null (null)'],
    ['true', true, TypeError, '`circuitBreaker` must be an object, received true (boolean)'],
    [
      'threshold and ratio together',
      { threshold: 3, ratio: { failures: 0.5, window: 100 } },
      TypeError,
      '`circuitBreaker` takes one of `threshold` or `ratio`, received both: threshold 3 (number), ratio {"failures":0.5,"window":100} (object)',
    ],
    [
      'a string threshold',
      { threshold: '5' },
      TypeError,
      '`circuitBreaker.threshold` must be a number, received "5" (string)',
    ],
    [
      'threshold 0',
      { threshold: 0 },
      RangeError,
      '`circuitBreaker.threshold` must be an integer >= 1, received 0',
    ],
    [
      'a fractional threshold',
      { threshold: 1.5 },
      RangeError,
      '`circuitBreaker.threshold` must be an integer >= 1, received 1.5',
    ],
    [
      'threshold Infinity',
      { threshold: Infinity },
      RangeError,
      '`circuitBreaker.threshold` must be an integer >= 1, received Infinity',
    ],
    [
      'threshold NaN',
      { threshold: NaN },
      RangeError,
      '`circuitBreaker.threshold` must not be NaN, received NaN',
    ],
    [
      'a ratio that is no object',
      { ratio: 0.5 },
      TypeError,
      '`circuitBreaker.ratio` must be an object, received 0.5 (number)',
    ],
    [
      'a ratio without failures',
      { ratio: { window: 100 } },
      TypeError,
      '`circuitBreaker.ratio.failures` must be a number, received undefined (undefined)',
    ],
    [
      'ratio.failures 0',
      ratio({ failures: 0 }),
      RangeError,
      '`circuitBreaker.ratio.failures` must be a number > 0 and <= 1, received 0',
    ],
    [
      'ratio.failures above 1',
      ratio({ failures: 1.01 }),
      RangeError,
      '`circuitBreaker.ratio.failures` must be a number > 0 and <= 1, received 1.01',
    ],
    [
      'ratio.failures negative',
      ratio({ failures: -0.5 }),
      RangeError,
      '`circuitBreaker.ratio.failures` must be a number > 0 and <= 1, received -0.5',
    ],
    [
      'a ratio without window',
      { ratio: { failures: 0.5 } },
      TypeError,
      '`circuitBreaker.ratio.window` must be a number, received undefined (undefined)',
    ],
    [
      'ratio.window 0',
      ratio({ window: 0 }),
      RangeError,
      '`circuitBreaker.ratio.window` must be a number > 0, received 0',
    ],
    [
      'ratio.window negative',
      ratio({ window: -1 }),
      RangeError,
      '`circuitBreaker.ratio.window` must be a number > 0, received -1',
    ],
    [
      'ratio.minimumCalls 0',
      ratio({ minimumCalls: 0 }),
      RangeError,
      '`circuitBreaker.ratio.minimumCalls` must be an integer >= 1, received 0',
    ],
    [
      'a fractional ratio.minimumCalls',
      ratio({ minimumCalls: 2.5 }),
      RangeError,
      '`circuitBreaker.ratio.minimumCalls` must be an integer >= 1, received 2.5',
    ],
    [
      'a string ratio.minimumCalls',
      ratio({ minimumCalls: '3' }),
      TypeError,
      '`circuitBreaker.ratio.minimumCalls` must be a number, received "3" (string)',
    ],
    [
      'halfOpenAfter 0',
      { halfOpenAfter: 0 },
      RangeError,
      '`circuitBreaker.halfOpenAfter` must be a number > 0, received 0',
    ],
    [
      'halfOpenAfter negative',
      { halfOpenAfter: -10 },
      RangeError,
      '`circuitBreaker.halfOpenAfter` must be a number > 0, received -10',
    ],
    [
      'a string halfOpenAfter',
      { halfOpenAfter: '1s' },
      TypeError,
      '`circuitBreaker.halfOpenAfter` must be a number, received "1s" (string)',
    ],
    [
      'halfOpenCalls 0',
      { halfOpenCalls: 0 },
      RangeError,
      '`circuitBreaker.halfOpenCalls` must be an integer >= 1, received 0',
    ],
    [
      'halfOpenCalls Infinity',
      { halfOpenCalls: Infinity },
      RangeError,
      '`circuitBreaker.halfOpenCalls` must be an integer >= 1, received Infinity',
    ],
    [
      'an isFailure that is no function',
      { isFailure: true },
      TypeError,
      '`circuitBreaker.isFailure` must be a function, received true (boolean)',
    ],
  ])('rejects %s', (_, value, type, message) => {
    let thrown: unknown;
    try {
      resolveCircuitOptions(value);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(type);
    expect((thrown as Error).message).toBe(message);
  });
});
