import { assertNumber } from '../internal/assert.js';

// Date.parse is not used for HTTP-dates: it reads an asctime date (which has no zone) in the
// process's local time zone rather than GMT, maps RFC 850's two-digit years with a fixed pivot
// where RFC 9110 wants a 50-year window around now, rolls "31 Feb" over into March, and accepts
// strings that are no HTTP-date at all ("1 2 3", and "120" as the year 120).

/** The largest delay returned: past it a number of milliseconds stops being exact. */
const LARGEST = Number.MAX_SAFE_INTEGER;

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const MONTH = `(?<month>${MONTHS.join('|')})`;
const DAY_NAME = '(?:mon|tue|wed|thu|fri|sat|sun)';
const DAY_NAME_LONG = '(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)';
const TIME = '(?<hour>\\d{2}):(?<minute>\\d{2}):(?<second>\\d{2})';

// RFC 9110 §5.6.7, names in any case (`\d` without the `u` flag is [0-9] only):
// IMF-fixdate `Sun, 06 Nov 1994 08:49:37 GMT`, RFC 850 `Sunday, 06-Nov-94 08:49:37 GMT` (the only
// one with a two-digit year) and asctime `Sun Nov  6 08:49:37 1994` (a one-digit day padded with
// a space).
const HTTP_DATES = [
  `^${DAY_NAME}, (?<day>\\d{2}) ${MONTH} (?<year>\\d{4}) ${TIME} GMT$`,
  `^${DAY_NAME_LONG}, (?<day>\\d{2})-${MONTH}-(?<year>\\d{2}) ${TIME} GMT$`,
  `^${DAY_NAME} ${MONTH} (?<day>\\d{2}| \\d) ${TIME} (?<year>\\d{4})$`,
].map((pattern) => new RegExp(pattern, 'i'));

/** The header's value stripped of optional whitespace (space and tab) at both ends. */
const OWS = /^[ \t]+|[ \t]+$/g;

/**
 * The number of milliseconds an HTTP `Retry-After` asks the client to wait, or `undefined` when
 * there is no such header or its value is not one RFC 9110 allows.
 *
 * `source` is any of:
 * - the header's value: a string, either delay-seconds (`"120"`, with spaces or tabs around it
 *   allowed) or an HTTP-date in any of the three forms RFC 9110 §5.6.7 has recipients accept:
 *   IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94 08:49:37 GMT`)
 *   and asctime (`Sun Nov  6 08:49:37 1994`). A number counts as delay-seconds; of an array, the
 *   first item counts;
 * - a `Headers` (or any object with a `get(name)` method, such as a `Map` or axios's headers);
 * - a `Response`, or any object with a `headers` field holding one of those or a plain object
 *   whose `retry-after` key, in any case, holds the value (Node's `IncomingMessage`, got's and
 *   undici's responses, `error.response` from fetch wrappers). An exact `retry-after` key wins;
 *   otherwise the first matching key in the object's key order.
 *
 * What it gives:
 * - delay-seconds (`1*DIGIT`: digits only) times 1000. `"1.5"`, `"-1"`, `"+1"` and `"1e3"` are
 *   not delay-seconds and give `undefined`, as do a negative, fractional or non-finite number. A
 *   value too large to count exactly in milliseconds gives `Number.MAX_SAFE_INTEGER`;
 * - for a date, the milliseconds from `now` to it, rounded up, and 0 for a date not after `now`.
 *   Names (`Sun`, `Nov`, `GMT`) match in any case; everything else must follow the grammar
 *   exactly (`06`, not `6`, in an IMF-fixdate). A date that does not exist (`31 Feb`, hour 24)
 *   gives `undefined`; second 60 (a leap second) is read as the next minute's first second; a
 *   weekday that does not match the date is not checked. An RFC 850 two-digit year is the year
 *   with those digits that is at most 50 years after `now`'s year and less than 50 before it, as
 *   RFC 9110 asks;
 * - `undefined` for anything else: no header, an empty or unparsable value, a `Headers` holding
 *   several `Retry-After` fields (it joins them with `", "`, and the field allows one value),
 *   `null`, or a value of another type. Never `NaN`, never a negative number.
 *
 * @param source - The header value, the headers, or an object holding them (see above). Typed
 * `unknown` so that a `retryDelay(error)` callback can pass what it caught.
 * @param now - The current time as epoch milliseconds, against which a date is measured.
 * @defaultValue `now`: `Date.now()`, read at call time
 * @returns Milliseconds to wait (an integer >= 0), or `undefined`.
 * @throws TypeError when `now` is not a number; RangeError when it is NaN or infinite.
 * @example
 * ```ts
 * import { Dovetail, retryAfter } from 'dovetailjs';
 *
 * retryAfter('120'); // 120_000
 * retryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.UTC(2015, 9, 21, 7, 27, 30)); // 30_000
 * retryAfter(new Headers({ 'Retry-After': '5' })); // 5_000
 * retryAfter({ headers: { 'retry-after': ['2'] } }); // 2_000
 * retryAfter('soon'); // undefined
 *
 * const dvt = new Dovetail({ concurrency: 4 });
 * const response = await dvt.task.schedule(() => fetch('https://api.example.com/items'));
 * if (response.status === 429) {
 *   const wait = retryAfter(response) ?? 1_000;
 *   if (wait > 0) dvt.pause(wait); // pause() refuses 0
 * }
 * ```
 */
export function retryAfter(source: unknown, now: number = Date.now()): number | undefined {
  assertNumber('now', now);
  if (!Number.isFinite(now)) {
    throw new RangeError(`\`now\` must be a finite number, received ${now}`);
  }
  return fromValue(headerValue(source), now);
}

/** The header's raw value held by `source`, or `source` itself when it holds none. */
function headerValue(source: unknown): unknown {
  if (source === null || typeof source !== 'object' || Array.isArray(source)) return source;
  if (hasGet(source)) return source.get('retry-after');
  if (!('headers' in source)) return undefined;
  const { headers } = source;
  if (headers === null || typeof headers !== 'object') return undefined;
  if (hasGet(headers)) return headers.get('retry-after');
  return fromPlainObject(headers);
}

function hasGet(value: object): value is { get(name: string): unknown } {
  return typeof (value as { get?: unknown }).get === 'function';
}

function fromPlainObject(headers: object): unknown {
  const fields = headers as Record<string, unknown>;
  if (Object.hasOwn(fields, 'retry-after')) return fields['retry-after'];
  const key = Object.keys(fields).find((name) => name.toLowerCase() === 'retry-after');
  return key === undefined ? undefined : fields[key];
}

function fromValue(value: unknown, now: number): number | undefined {
  const first: unknown = Array.isArray(value) ? value[0] : value;
  if (typeof first === 'number') {
    return Number.isInteger(first) && first >= 0 ? clamp(first * 1000) : undefined;
  }
  if (typeof first !== 'string') return undefined;
  const text = first.replace(OWS, '');
  if (/^\d+$/.test(text)) return clamp(Number(text) * 1000);
  const date = parseHttpDate(text, now);
  return date === undefined ? undefined : clamp(Math.ceil(date - now));
}

/** `ms` within [0, LARGEST]; also turns the -0 of the number -0 into 0. */
const clamp = (ms: number): number => Math.max(0, Math.min(ms, LARGEST));

/** An HTTP-date's epoch milliseconds, or `undefined` when `text` is none. */
function parseHttpDate(text: string, now: number): number | undefined {
  for (const pattern of HTTP_DATES) {
    const parts = pattern.exec(text)?.groups;
    if (parts === undefined) continue;
    const digits = parts['year'] ?? '';
    const year = digits.length === 2 ? fullYear(Number(digits), now) : Number(digits);
    const month = MONTHS.indexOf(String(parts['month']).toLowerCase());
    const day = Number(parts['day']); // ' 6' in asctime reads as 6
    const hour = Number(parts['hour']);
    const minute = Number(parts['minute']);
    const second = Number(parts['second']);
    // Written so that NaN fails too. Second 60 is a leap second.
    const exists =
      day >= 1 && day <= daysIn(year, month) && hour <= 23 && minute <= 59 && second <= 60;
    if (!exists) return undefined;
    // setUTCFullYear, not Date.UTC: Date.UTC reads the years 0 to 99 as 1900 to 1999.
    const date = new Date(0);
    date.setUTCFullYear(year, month, day);
    date.setUTCHours(hour, minute, second);
    return date.getTime();
  }
  return undefined;
}

/**
 * RFC 9110: a two-digit year that "appears to be more than 50 years in the future" is the most
 * recent past year with those digits. Years further back than 50 move forward a century, so that
 * the window is the 100 years (now - 50, now + 50], counted in years.
 */
function fullYear(twoDigits: number, now: number): number {
  const current = new Date(now).getUTCFullYear();
  const year = current - (((current % 100) + 100) % 100) + twoDigits;
  if (year - current > 50) return year - 100;
  if (current - year >= 50) return year + 100;
  return year;
}

function daysIn(year: number, month: number): number {
  if (month !== 1) return [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month] ?? 0;
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0) ? 29 : 28;
}
