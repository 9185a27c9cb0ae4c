// retryAfter (API.md 0.2, "Resilience" and "Precise semantics"): every form of source, the three
// HTTP-date forms of RFC 9110 §5.6.7 against a fixed `now`, delay-seconds at its edges, garbage,
// and two properties. The dates are written by the test's own formatters (IMF-fixdate by
// Date#toUTCString, whose format ECMAScript fixes), never by the code under test.
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import fc from 'fast-check';
import { retryAfter } from '../../src/index.js';

const NOW = Date.UTC(2025, 0, 15, 12, 0, 0); // Wed, 15 Jan 2025 12:00:00 GMT
const MAX = Number.MAX_SAFE_INTEGER;

const SHORT_DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const LONG_DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n: number, width = 2): string => String(n).padStart(width, '0');
const clock = (d: Date): string =>
  `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;

const imfFixdate = (ms: number): string => new Date(ms).toUTCString();
const rfc850 = (ms: number): string => {
  const d = new Date(ms);
  const date = `${pad(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${pad(d.getUTCFullYear() % 100)}`;
  return `${LONG_DAYS[d.getUTCDay()]}, ${date} ${clock(d)} GMT`;
};
const asctime = (ms: number): string => {
  const d = new Date(ms);
  const date = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2, ' ')}`;
  return `${SHORT_DAYS[d.getUTCDay()]} ${date} ${clock(d)} ${pad(d.getUTCFullYear(), 4)}`;
};

/** Epoch ms of a UTC date in any year, 0 to 99 included (Date.UTC reads those as 19xx). */
const utc = (year: number, month: number, day: number, h = 0, m = 0, s = 0): number => {
  const d = new Date(0);
  d.setUTCFullYear(year, month, day);
  d.setUTCHours(h, m, s);
  return d.getTime();
};

afterEach(() => {
  jest.useRealTimers();
});

describe('retryAfter: forms of source', () => {
  it('reads a string value', () => {
    expect(retryAfter('120')).toBe(120_000);
  });

  it('reads a Headers, whatever the case the field was set with', () => {
    expect(retryAfter(new Headers({ 'Retry-After': '5' }))).toBe(5_000);
    expect(retryAfter(new Headers({ 'RETRY-AFTER': imfFixdate(NOW + 9_000) }), NOW)).toBe(9_000);
  });

  it('reads a Response built with new Response(null, { headers })', () => {
    const response = new Response(null, { status: 429, headers: { 'Retry-After': '30' } });
    expect(retryAfter(response)).toBe(30_000);
  });

  it('reads an HTTP-date from a Response', () => {
    const headers = new Headers([['retry-after', imfFixdate(NOW + 61_000)]]);
    expect(retryAfter(new Response(null, { headers }), NOW)).toBe(61_000);
  });

  it('gives undefined for a Response without the header', () => {
    expect(retryAfter(new Response(null, { headers: { 'content-type': 'text/plain' } }))).toBe(
      undefined,
    );
  });

  it('reads an object whose headers field is a Headers (error.response of a fetch wrapper)', () => {
    const error = { status: 503, headers: new Headers({ 'retry-after': '2' }) };
    expect(retryAfter(error)).toBe(2_000);
  });

  it.each(['retry-after', 'Retry-After', 'RETRY-AFTER', 'rEtRy-AfTeR'])(
    'reads a plain headers object with the key %s',
    (key) => {
      expect(retryAfter({ headers: { 'content-length': '0', [key]: '4' } })).toBe(4_000);
    },
  );

  it('reads a plain headers object without a prototype (Node http headers)', () => {
    const headers = Object.assign(Object.create(null) as object, { 'retry-after': '6' });
    expect(retryAfter({ headers })).toBe(6_000);
  });

  it('prefers the exact retry-after key over another case', () => {
    expect(retryAfter({ headers: { 'Retry-After': '1', 'retry-after': '2' } })).toBe(2_000);
  });

  it('takes the first matching key in key order when none is lowercase', () => {
    expect(retryAfter({ headers: { 'RETRY-AFTER': '3', 'Retry-After': '1' } })).toBe(3_000);
  });

  it('takes the first item of a string[] value', () => {
    expect(retryAfter({ headers: { 'retry-after': ['3', '9'] } })).toBe(3_000);
    expect(retryAfter(['7', '1'])).toBe(7_000);
  });

  it('takes only the first item of an array, even when a later one would parse', () => {
    expect(retryAfter({ headers: { 'retry-after': ['soon', '9'] } })).toBe(undefined);
  });

  it('gives undefined for an empty array', () => {
    expect(retryAfter({ headers: { 'retry-after': [] } })).toBe(undefined);
    expect(retryAfter([])).toBe(undefined);
  });

  it('accepts a number as delay-seconds, in plain headers and as the source', () => {
    expect(retryAfter({ headers: { 'Retry-After': 8 } })).toBe(8_000);
    expect(retryAfter(8)).toBe(8_000);
  });

  it('reads any headers object with a get method (a Map with lowercase keys)', () => {
    expect(retryAfter(new Map([['retry-after', '11']]))).toBe(11_000);
    expect(retryAfter({ headers: new Map([['retry-after', ['12']]]) })).toBe(12_000);
  });

  it('gives undefined for a Headers holding two Retry-After fields (joined with ", ")', () => {
    const headers = new Headers();
    headers.append('Retry-After', '5');
    headers.append('Retry-After', '5');
    expect(headers.get('retry-after')).toBe('5, 5');
    expect(retryAfter(headers)).toBe(undefined);
  });

  it('gives undefined when the headers hold no retry-after', () => {
    expect(retryAfter(new Headers({ 'x-retry-after': '5' }))).toBe(undefined);
    expect(retryAfter({ headers: { 'x-retry-after': '5', retry: '5' } })).toBe(undefined);
    expect(retryAfter({ headers: {} })).toBe(undefined);
  });
});

describe('retryAfter: delay-seconds', () => {
  it.each([
    ['0', 0],
    ['1', 1_000],
    ['120', 120_000],
    [' 3 ', 3_000],
    ['\t7\t', 7_000],
    ['007', 7_000],
    ['86400', 86_400_000],
    ['9007199254740', 9_007_199_254_740_000], // the largest count of seconds that stays exact
  ])('reads %j as %d ms', (value, expected) => {
    expect(retryAfter(value)).toBe(expected);
  });

  it.each(['9007199254741', '99999999999999999999', '9'.repeat(400)])(
    'clamps %s to Number.MAX_SAFE_INTEGER',
    (value) => {
      expect(retryAfter(value)).toBe(MAX);
    },
  );

  it.each(['1.5', '1.0', '-1', '-0', '+1', '1e3', '0x10', '1 2', '12abc', '١٢', '', '   ', '\n5'])(
    'gives undefined for %j (delay-seconds is 1*DIGIT)',
    (value) => {
      expect(retryAfter(value)).toBe(undefined);
    },
  );

  it.each([
    [0, 0],
    [5, 5_000],
    [1e300, MAX],
  ])('reads the number %d as %d ms', (value, expected) => {
    expect(retryAfter(value)).toBe(expected);
  });

  it('reads the number -0 as 0, not -0', () => {
    expect(Object.is(retryAfter(-0), 0)).toBe(true);
  });

  it.each([-1, 1.5, Number.NaN, Infinity, -Infinity])('gives undefined for the number %d', (n) => {
    expect(retryAfter(n)).toBe(undefined);
  });
});

describe('retryAfter: HTTP-dates against a fixed now', () => {
  const at = (offset: number): number => NOW + offset;
  const day = 86_400_000;
  const table: [string, string, number][] = [];
  for (const [form, format] of [
    ['IMF-fixdate', imfFixdate],
    ['RFC 850', rfc850],
    ['asctime', asctime],
  ] as const) {
    table.push(
      [form, format(at(90_000)), 90_000],
      [form, format(at(1_000)), 1_000],
      [form, format(at(0)), 0],
      [form, format(at(-1_000)), 0],
      [form, format(at(-365 * day)), 0],
      [form, format(at(3 * day + 7_000)), 3 * day + 7_000],
      [form, format(at(40 * 365 * day)), 40 * 365 * day],
      [form, format(at(-40 * 365 * day)), 0],
    );
  }
  table.push(
    ['IMF-fixdate', 'Sun, 06 Nov 1994 08:49:37 GMT', 0],
    ['RFC 850', 'Sunday, 06-Nov-94 08:49:37 GMT', 0],
    ['asctime', 'Sun Nov  6 08:49:37 1994', 0],
    ['IMF-fixdate', 'Fri, 31 Dec 9999 23:59:59 GMT', utc(9999, 11, 31, 23, 59, 59) - NOW],
    ['asctime', 'Thu Jan 16 12:00:00 2025', day],
  );

  it.each(table)('%s %j gives %d ms', (_form, value, expected) => {
    expect(retryAfter(value, NOW)).toBe(expected);
  });

  it('reads the RFC 9110 examples exactly', () => {
    const when = utc(1994, 10, 6, 8, 49, 37);
    for (const value of [
      'Sun, 06 Nov 1994 08:49:37 GMT',
      'Sunday, 06-Nov-94 08:49:37 GMT',
      'Sun Nov  6 08:49:37 1994',
    ]) {
      expect(retryAfter(value, when - 37_000)).toBe(37_000);
    }
  });

  it('reads a date with spaces or tabs around it', () => {
    expect(retryAfter(`  ${imfFixdate(at(5_000))}\t`, NOW)).toBe(5_000);
  });

  it('rounds a fractional distance up', () => {
    expect(retryAfter(imfFixdate(at(5_000)), NOW + 0.75)).toBe(5_000);
    expect(retryAfter(imfFixdate(at(5_000)), NOW + 250)).toBe(4_750);
  });

  it('matches names in any case', () => {
    expect(retryAfter('wed, 15 JAN 2025 12:00:09 gmt', NOW)).toBe(9_000);
    expect(retryAfter('WEDNESDAY, 15-jan-25 12:00:09 GMT', NOW)).toBe(9_000);
    expect(retryAfter('wed jan 15 12:00:09 2025', NOW)).toBe(9_000);
  });

  it('does not check the weekday against the date', () => {
    expect(retryAfter('Mon, 15 Jan 2025 12:00:09 GMT', NOW)).toBe(9_000);
  });

  it('accepts a zero-padded day in asctime as well as a space-padded one', () => {
    expect(retryAfter('Sun Nov 06 08:49:37 1994', utc(1994, 10, 6, 8, 49, 30))).toBe(7_000);
    expect(retryAfter('Sun Nov  6 08:49:37 1994', utc(1994, 10, 6, 8, 49, 30))).toBe(7_000);
  });

  it('reads second 60 (a leap second) as the next minute', () => {
    expect(retryAfter('Wed, 15 Jan 2025 12:00:60 GMT', NOW)).toBe(60_000);
  });

  it('reads Feb 29 in leap years only', () => {
    const now = utc(1990, 0, 1);
    expect(retryAfter('Thu, 29 Feb 2024 00:00:00 GMT', now)).toBe(utc(2024, 1, 29) - now);
    expect(retryAfter('Tue, 29 Feb 2000 00:00:00 GMT', now)).toBe(utc(2000, 1, 29) - now);
    expect(retryAfter('Sat, 29 Feb 2025 00:00:00 GMT', now)).toBe(undefined);
    expect(retryAfter('Mon, 29 Feb 2100 00:00:00 GMT', now)).toBe(undefined);
  });

  it('reads years 0 to 99 as such, not as 1900 to 1999', () => {
    const now = utc(49, 0, 1);
    expect(retryAfter('Sat, 01 Jan 0050 00:00:00 GMT', now)).toBe(utc(50, 0, 1) - now);
    expect(retryAfter('Sat Jan  1 00:00:00 0050', now)).toBe(utc(50, 0, 1) - now);
  });

  it.each([
    'Fri, 31 Feb 2025 12:00:00 GMT',
    'Thu, 31 Apr 2025 12:00:00 GMT',
    'Wed, 00 Jan 2025 12:00:00 GMT',
    'Wed, 32 Jan 2025 12:00:00 GMT',
    'Wed, 15 Jan 2025 24:00:00 GMT',
    'Wed, 15 Jan 2025 12:60:00 GMT',
    'Wed, 15 Jan 2025 12:00:61 GMT',
    'Wednesday, 31-Feb-25 12:00:00 GMT',
    'Wed Feb 31 12:00:00 2025',
  ])('gives undefined for a date that does not exist: %j', (value) => {
    expect(retryAfter(value, NOW)).toBe(undefined);
  });

  it.each([
    'Wed, 5 Jan 2025 12:00:00 GMT', // day must be two digits
    'Wed, 15 Jan 25 12:00:00 GMT', // year must be four
    'Wed, 15 Jan 2025 12:00:00 UTC',
    'Wed, 15 Jan 2025 12:00:00 +0000',
    'Wed, 15 Jan 2025 12:00:00',
    'Wed, 15 Jan 2025 12:00 GMT',
    'Wed,  15 Jan 2025 12:00:00 GMT',
    'Wed 15 Jan 2025 12:00:00 GMT',
    '15 Jan 2025 12:00:00 GMT',
    'Wednesday, 15 Jan 2025 12:00:00 GMT', // long day name belongs to RFC 850
    'Wed, 15-Jan-25 12:00:00 GMT', // RFC 850 wants the long day name
    'Wednesday, 15-Jan-2025 12:00:00 GMT',
    'Wednesday, 15-Jan-25 12:00:00',
    'Wed Jan 15 12:00:00 2025 GMT',
    'Wed Jan 5 12:00:00 2025', // one digit needs the padding space
    'Wed Jan 15 12:00:00 25',
    'Wed, 15 Jam 2025 12:00:00 GMT',
    'Wde, 15 Jan 2025 12:00:00 GMT',
    '2025-01-15T12:00:00Z',
    '2025-01-15',
    'Wed Jan 15 2025 12:00:00 GMT+0000 (Coordinated Universal Time)', // Date#toString
    '1 2 3', // Date.parse reads it as 2 Jan 2003
    'foo 12', // Date.parse reads it as 1 Dec 2001
    'Wed, 15 Jan 2025 12:00:00 GMT, Wed, 15 Jan 2025 12:00:00 GMT',
  ])('gives undefined for what is no HTTP-date: %j', (value) => {
    expect(retryAfter(value, NOW)).toBe(undefined);
  });

  it('reads asctime (which names no zone) as GMT whatever the local time zone', () => {
    // Date.parse reads it in local time. Node re-reads the zone when process.env.TZ is set on the
    // worker's real process (a test sees a copy); the precondition shows the change took.
    const host =
      (globalThis as { __dovetailHostProcess?: NodeJS.Process }).__dovetailHostProcess ?? process;
    const saved = host.env['TZ'];
    try {
      host.env['TZ'] = 'America/New_York';
      expect(new Date(NOW).getTimezoneOffset()).toBe(300);
      expect(retryAfter('Wed Jan 15 12:00:09 2025', NOW)).toBe(9_000);
      expect(retryAfter('Wednesday, 15-Jan-25 12:00:09 GMT', NOW)).toBe(9_000);
    } finally {
      if (saved === undefined) delete host.env['TZ'];
      else host.env['TZ'] = saved;
    }
  });

  describe('RFC 850 two-digit years: the window (now - 50, now + 50] in years', () => {
    it.each([
      [2025, '25', 2025],
      [2025, '75', 2075], // 50 years ahead: not "more than 50", so the future
      [2025, '76', 1976], // 51 ahead: the most recent past year with those digits
      [2025, '99', 1999],
      [2025, '00', 2000],
      [2060, '10', 2110], // 50 back would be the window's open end: a century on
      [2060, '11', 2011],
      [2099, '00', 2100],
      [2099, '49', 2149],
      [2099, '50', 2050],
    ])('in %d, year %s is %d', (nowYear, digits, year) => {
      const now = utc(nowYear, 5, 15);
      const expected = Math.max(0, utc(year, 0, 1) - now);
      expect(retryAfter(`Sunday, 01-Jan-${digits} 00:00:00 GMT`, now)).toBe(expected);
    });

    it('tells 2075 from 1975 by the result, not only by 0', () => {
      const now = utc(2025, 5, 15);
      expect(retryAfter('Friday, 01-Jan-75 00:00:00 GMT', now)).toBe(utc(2075, 0, 1) - now);
      expect(retryAfter('Friday, 01-Jan-76 00:00:00 GMT', utc(1970, 0, 1))).toBe(
        utc(1976, 0, 1) - utc(1970, 0, 1),
      );
    });
  });
});

describe('retryAfter: now', () => {
  it('defaults to Date.now(), read at call time', () => {
    jest.useFakeTimers({ doNotFake: ['nextTick', 'queueMicrotask'], now: NOW });
    const value = imfFixdate(NOW + 30_000);
    expect(retryAfter(value)).toBe(30_000);
    jest.setSystemTime(NOW + 10_000);
    expect(retryAfter(value)).toBe(20_000);
  });

  it('does not change delay-seconds', () => {
    expect(retryAfter('5', 0)).toBe(5_000);
    expect(retryAfter('5', -1e15)).toBe(5_000);
  });

  it('throws TypeError when now is not a number', () => {
    expect(() => retryAfter('5', '1' as unknown as number)).toThrow(
      new TypeError('`now` must be a number, received "1" (string)'),
    );
  });

  it.each([Number.NaN, Infinity, -Infinity])('throws RangeError when now is %d', (now) => {
    expect(() => retryAfter('5', now)).toThrow(RangeError);
    expect(() => retryAfter('5', now)).toThrow(/`now` must/);
  });
});

describe('retryAfter: garbage gives undefined', () => {
  it.each([
    ['undefined', undefined],
    ['null', null],
    ['true', true],
    ['a symbol', Symbol('retry-after')],
    ['a bigint', 10n],
    ['a function', () => '5'],
    ['a function with headers', Object.assign(() => '5', { headers: { 'retry-after': '5' } })],
    ['an empty object', {}],
    ['an object without headers', { status: 429, retryAfter: '5', 'retry-after': '5' }],
    ['headers: null', { headers: null }],
    ['headers: undefined', { headers: undefined }],
    ['headers: a string', { headers: 'Retry-After: 5' }],
    ['headers: a number', { headers: 5 }],
    ['a null value', { headers: { 'retry-after': null } }],
    ['an object value', { headers: { 'retry-after': { value: '5' } } }],
    ['a nested array', { headers: { 'retry-after': [['5']] } }],
    ['an array of numbers NaN', [Number.NaN]],
    ['a Date', new Date(NOW + 5_000)],
    ['an Error', new Error('429')],
  ])('%s', (_name, value) => {
    const result = retryAfter(value, NOW);
    expect(result).toBe(undefined);
  });
});

describe('retryAfter: properties', () => {
  it('reads String(n) as n * 1000 for any integer n >= 0, clamped to MAX_SAFE_INTEGER', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), (n) => {
        expect(retryAfter(String(n))).toBe(Math.min(n * 1000, MAX));
      }),
    );
  });

  it('clamps delay-seconds of any length to a finite number', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 10n ** 60n }), (n) => {
        const ms = n * 1000n;
        const expected = ms > BigInt(MAX) ? MAX : Number(ms);
        expect(retryAfter(String(n))).toBe(expected);
      }),
    );
  });

  // Seconds from 0000-01-01T00:00:00Z to 9999-12-31T23:59:59Z: four-digit years.
  const seconds = fc.integer({ min: -62_167_219_200, max: 253_402_300_799 });
  const instant = fc.integer({ min: -62_167_219_200_000, max: 253_402_300_799_999 });

  it('gives max(0, d - now) for any IMF-fixdate d and any now', () => {
    fc.assert(
      fc.property(seconds, instant, (s, now) => {
        const d = s * 1000;
        expect(retryAfter(imfFixdate(d), now)).toBe(Math.max(0, d - now));
      }),
    );
  });

  it('gives max(0, d - now) for any asctime d and any now', () => {
    fc.assert(
      fc.property(seconds, instant, (s, now) => {
        const d = s * 1000;
        expect(retryAfter(asctime(d), now)).toBe(Math.max(0, d - now));
      }),
    );
  });

  it('gives max(0, d - now) for any RFC 850 d within 49 years of now', () => {
    const span = 49 * 365 * 86_400; // under 49 years: inside the window whatever the date
    fc.assert(
      fc.property(
        fc.integer({ min: -60_000_000_000, max: 250_000_000_000 }),
        fc.integer({ min: -span, max: span }),
        (nowSeconds, offset) => {
          const now = nowSeconds * 1000 + 123;
          const d = (nowSeconds + offset) * 1000;
          expect(retryAfter(rfc850(d), now)).toBe(Math.max(0, d - now));
        },
      ),
    );
  });
});
