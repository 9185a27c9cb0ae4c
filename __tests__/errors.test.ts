import { describe, expect, it } from '@jest/globals';
import { CancelledError, DovetailError, ShutdownError, TimeoutError } from '../src/index.js';

describe('errors', () => {
  it.each([
    ['TimeoutError', TimeoutError],
    ['CancelledError', CancelledError],
    ['ShutdownError', ShutdownError],
  ] as const)('%s is an Error and a DovetailError with its name set', (name, ErrorClass) => {
    const error = new ErrorClass('message here');
    expect(error).toBeInstanceOf(Error);
    expect(error).toBeInstanceOf(DovetailError);
    expect(error.name).toBe(name);
    expect(error.message).toBe('message here');
    expect(String(error)).toBe(`${name}: message here`);
    expect(error.stack).toContain(name);
  });

  it('keeps options.cause like Error', () => {
    const cause = new Error('root');
    expect(new CancelledError('x', { cause }).cause).toBe(cause);
    expect(new ShutdownError(undefined, { cause: 'why' }).cause).toBe('why');
    expect(new TimeoutError('t', { cause, timeout: 5 }).cause).toBe(cause);
    expect('cause' in new CancelledError()).toBe(false);
  });

  it('TimeoutError carries timeout and says it in its default message', () => {
    const error = new TimeoutError(undefined, { timeout: 250 });
    expect(error.timeout).toBe(250);
    expect(error.message).toBe('timed out after 250 ms');
  });

  it('has default messages', () => {
    expect(new CancelledError().message).toBe('task cancelled');
    expect(new ShutdownError().message).toMatch(/shut down/);
    expect(Number.isNaN(new TimeoutError().timeout)).toBe(true);
  });
});
