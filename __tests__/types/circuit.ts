// Compile-time checks of the circuit breaker's public types (run by `npm run typecheck`; never
// executed).
import {
  CircuitOpenError,
  DovetailError,
  type CircuitBreakerOptions,
  type CircuitState,
  type CircuitView,
} from '../../src/index.js';

declare const view: CircuitView;

const state: CircuitState = view.state;
// @ts-expect-error the state is read-only
view.state = 'open';
// @ts-expect-error the view has no admit(): only the engine asks
view.admit();
// @ts-expect-error a state is one of the three names
const wrong: CircuitState = 'isolated';

const consecutive: CircuitBreakerOptions = { threshold: 3, halfOpenAfter: 1000, halfOpenCalls: 2 };
const ratio: CircuitBreakerOptions = { ratio: { failures: 0.5, window: 10_000 } };
// Explicit undefined is accepted under exactOptionalPropertyTypes.
const unset: CircuitBreakerOptions = {
  threshold: undefined,
  ratio: undefined,
  halfOpenAfter: undefined,
  halfOpenCalls: undefined,
  isFailure: undefined,
};
// @ts-expect-error a ratio needs its window
const noWindow: CircuitBreakerOptions = { ratio: { failures: 0.5 } };
// @ts-expect-error isFailure returns a boolean
const badPredicate: CircuitBreakerOptions = { isFailure: () => 'yes' };

const error = new CircuitOpenError('open', { retryAt: Infinity, cause: new Error('down') });
const retryAt: number = error.retryAt;
const base: DovetailError = error;
const name: string = error.name;
// @ts-expect-error retryAt is read-only
error.retryAt = 0;

export { state, wrong, consecutive, ratio, unset, noWindow, badPredicate, retryAt, base, name };
