import { objectText } from './util.js';

// Validation shared by the constructor, with() and map(): one rule per kind of value, each
// message naming the option and the value received.

const show = (value: unknown): string => {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'symbol' || typeof value === 'bigint') return value.toString();
  if (value !== null && typeof value === 'object') return objectText(value);
  return String(value);
};

const typeName = (value: unknown): string => (value === null ? 'null' : typeof value);

export function describe(value: unknown): string {
  return `${show(value)} (${typeName(value)})`;
}

/** A number, not NaN. */
export function assertNumber(name: string, value: unknown): asserts value is number {
  if (typeof value !== 'number') {
    throw new TypeError(`\`${name}\` must be a number, received ${describe(value)}`);
  }
  if (Number.isNaN(value)) throw new RangeError(`\`${name}\` must not be NaN, received NaN`);
}

/** An integer >= 1, or Infinity. */
export function assertCount(name: string, value: unknown): asserts value is number {
  assertNumber(name, value);
  if (!(value >= 1) || (!Number.isInteger(value) && value !== Infinity)) {
    throw new RangeError(`\`${name}\` must be an integer >= 1 or Infinity, received ${value}`);
  }
}

/** A number > 0, or Infinity. */
export function assertPositive(name: string, value: unknown): asserts value is number {
  assertNumber(name, value);
  if (!(value > 0)) throw new RangeError(`\`${name}\` must be a number > 0, received ${value}`);
}

/** A finite number >= 0. */
export function assertNonNegative(name: string, value: unknown): asserts value is number {
  assertNumber(name, value);
  if (!(value >= 0) || value === Infinity) {
    throw new RangeError(`\`${name}\` must be a finite number >= 0, received ${value}`);
  }
}

/** An integer >= 0. */
export function assertRetries(name: string, value: unknown): asserts value is number {
  assertNumber(name, value);
  if (!(value >= 0) || !Number.isInteger(value)) {
    throw new RangeError(`\`${name}\` must be an integer >= 0, received ${value}`);
  }
}

export function assertBoolean(name: string, value: unknown): asserts value is boolean {
  if (typeof value !== 'boolean') {
    throw new TypeError(`\`${name}\` must be a boolean, received ${describe(value)}`);
  }
}

export function assertString(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string') {
    throw new TypeError(`\`${name}\` must be a string, received ${describe(value)}`);
  }
}

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export function assertFunction(name: string, value: unknown): asserts value is Function {
  if (typeof value !== 'function') {
    throw new TypeError(`\`${name}\` must be a function, received ${describe(value)}`);
  }
}

export function assertObject(name: string, value: unknown): asserts value is object {
  if (value === null || typeof value !== 'object') {
    throw new TypeError(`\`${name}\` must be an object, received ${describe(value)}`);
  }
}

export function assertSignal(name: string, value: unknown): asserts value is AbortSignal {
  if (!(value instanceof AbortSignal)) {
    throw new TypeError(`\`${name}\` must be an AbortSignal, received ${describe(value)}`);
  }
}
