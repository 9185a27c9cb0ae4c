// A callback-style API brought under retries and timeouts. `legacyClient` stands for an old
// driver that only takes Node-style `(error, value)` callbacks: it drops the connection now and
// then, and sometimes never answers at all. `promisify` turns each call into a task, so every call
// gets the instance's retries, per-attempt timeout, concurrency limit and events.
//
// Run it: npx tsx examples/legacy-callbacks.ts
import { readFile } from 'node:fs';
import { Dovetail, Event, TimeoutError } from 'dovetailjs';

type Callback<T> = (error: Error | null, value?: T) => void;

const attempts = new Map<string, number>();
const legacyClient = {
  /** Looks a key up; `flaky` fails on its first try, `stuck` never calls back. */
  get(key: string, callback: Callback<string>): void {
    const attempt = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, attempt);
    if (key === 'stuck') return;
    setTimeout(() => {
      if (key === 'flaky' && attempt === 1)
        callback(Object.assign(new Error('ECONNRESET'), { code: 'ECONNRESET' }));
      else callback(null, `value of ${key}`);
    }, 20);
  },
};

await using dvt = new Dovetail({ concurrency: 2, retries: 2, retryBackoff: 50, timeout: 400 });
dvt.events.on(Event.RETRY, (p) =>
  console.log(`retry: attempt ${p.attempt} failed (${String(p.error)}), next in ${p.sleep} ms`),
);

// One call of the callback API per task; `this` is bound as the legacy client expects.
const get = dvt.task.promisify(legacyClient.get.bind(legacyClient));

for (const key of ['alpha', 'flaky', 'stuck']) {
  try {
    console.log(`${key}: ${await get(key)}`);
  } catch (error) {
    if (!(error instanceof TimeoutError)) throw error;
    console.log(`${key}: gave up, ${error.message} on each of ${attempts.get(key)} attempts`);
  }
}

// A one-off call needs no wrapper: fromCallback passes the arguments and appends the callback.
// (readFile is overloaded; a small adapter picks the form with an encoding.)
const readText = (path: URL, callback: (error: Error | null, text: string) => void): void =>
  readFile(path, 'utf8', callback);
const manifest = await dvt.task.fromCallback(readText, new URL('../package.json', import.meta.url));
console.log(`package name: ${(JSON.parse(manifest) as { name: string }).name}`);
console.log(`stats: ${JSON.stringify(dvt.events.stats())}`);
