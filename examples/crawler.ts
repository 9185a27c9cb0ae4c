// A crawler: thousands of URLs over several hosts, at most a few requests at once per host
// (`key` + `perKey`), a bounded queue fed by a producer that waits for room (`maxQueue`,
// `onSizeLessThan`), progress lines from `onProgress`, and Ctrl-C through `runMain`: the crawl
// stops, says what it finished, and exits 130.
//
//   npx tsx examples/crawler.ts
//
// The hosts are five `node:http` servers on loopback ports, in this process; each page takes
// 5 to 25 ms, one page in a hundred is missing (404). Each server counts the requests it is
// serving at once, so the crawler can report that no host ever had more than its limit.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Dovetail, runMain } from 'dovetailjs';

const HOSTS = ['a.test', 'b.test', 'c.test', 'd.test', 'e.test'];
const PAGES = 3_000;
const PER_HOST = 4;
const MAX_QUEUE = 100;

// ---- the hosts ------------------------------------------------------------------------------

interface Host {
  name: string;
  server: Server;
  port: number;
  /** Requests being served now, and the most at once. */
  open: number;
  peak: number;
  /** Pages answered in full. */
  served: number;
}

async function startHost(name: string): Promise<Host> {
  const host = { name, open: 0, peak: 0, served: 0 } as Host;
  host.server = createServer((request, response) => {
    host.open += 1;
    host.peak = Math.max(host.peak, host.open);
    const page = Number(/\/page\/(\d+)/.exec(request.url ?? '')?.[1]);
    const timer = setTimeout(
      () => {
        if (page % 100 === 99) response.writeHead(404).end();
        else response.writeHead(200, { 'Content-Type': 'text/html' }).end(`<h1>${page}</h1>`);
      },
      5 + ((page * 7) % 21),
    );
    // A request the client gave up on (Ctrl-C) ends here too.
    response.on('close', () => {
      clearTimeout(timer);
      host.open -= 1;
    });
    response.on('finish', () => (host.served += 1));
  });
  await new Promise<void>((resolve) => host.server.listen(0, '127.0.0.1', resolve));
  host.port = (host.server.address() as AddressInfo).port;
  return host;
}

// ---- the crawler ----------------------------------------------------------------------------

await runMain(async (signal) => {
  const hosts = await Promise.all(HOSTS.map(startHost));
  const origin = new Map(hosts.map((host) => [host.name, `http://127.0.0.1:${host.port}`]));

  const dvt = new Dovetail({
    concurrency: 16,
    timeout: 5_000,
    retries: 2,
    retryBackoff: 50,
    // Never more than PER_HOST requests at once to one host, and a bounded queue.
    perKey: { concurrency: PER_HOST },
    maxQueue: MAX_QUEUE,
  });
  let peakWaiting = 0;

  /** The URLs to crawl, round the hosts; it yields only while the queue has room. */
  async function* frontier(): AsyncGenerator<URL> {
    for (let page = 0; page < PAGES; page++) {
      // A producer that waits for room: the queue never reaches maxQueue, nothing is shed.
      await dvt.onSizeLessThan(MAX_QUEUE / 2);
      peakWaiting = Math.max(peakWaiting, dvt.pending);
      const host = HOSTS[page % HOSTS.length] ?? '';
      yield new URL(`http://${host}/page/${page}`);
    }
  }
  // A `length` gives `onProgress` its total (an async generator has none of its own).
  const urls = Object.assign(frontier(), { length: PAGES });

  let aborted = 0;
  async function crawl(url: URL): Promise<number> {
    const taskSignal = dvt.task.current()?.signal ?? null;
    try {
      const response = await fetch(`${origin.get(url.host)}${url.pathname}`, {
        signal: taskSignal,
      });
      await response.arrayBuffer();
      return response.status;
    } catch (error) {
      if (taskSignal?.aborted === true) aborted += 1;
      throw error;
    }
  }

  let shown = 0;
  const statuses = new Map<number, number>();
  const began = Date.now();
  const report = (how: string) => {
    const done = [...statuses.values()].reduce((sum, n) => sum + n, 0);
    const byStatus = [...statuses].map(([status, n]) => `${n} ${status}`).join(', ');
    const seconds = ((Date.now() - began) / 1000).toFixed(1);
    console.log(
      `${how}: ${done} of ${PAGES} pages in ${seconds} s (${byStatus}); ` +
        `${aborted} aborted in flight, ${dvt.active} still running`,
    );
    const perHost = hosts.map(
      (host) => `${host.name} ${host.served} (at most ${host.peak} at once)`,
    );
    console.log(`per host: ${perHost.join(', ')}`);
    const { shed = 0 } = dvt.events.stats();
    console.log(`queue: at most ${peakWaiting} waiting (maxQueue ${MAX_QUEUE}), ${shed} shed`);
  };

  try {
    const results = dvt.task.mapIterable(crawl, urls, {
      // As many items in flight as the queue allows: the instance and the hosts' limits decide.
      concurrency: MAX_QUEUE,
      key: (url) => url.host,
      signal,
      onProgress: ({ done, failed, running, total = PAGES }) => {
        if (done + failed < shown + total / 10) return;
        shown = done + failed;
        console.log(`progress: ${shown}/${total} (${failed} failed, ${running} in flight)`);
      },
    });
    for await (const status of results) statuses.set(status, (statuses.get(status) ?? 0) + 1);
    report('crawled');
  } catch (error) {
    if (!signal.aborted) throw error;
    // Ctrl-C: the loop stopped, the requests in flight were aborted; say what was finished.
    await dvt.shutdown();
    report('interrupted');
    throw error;
  } finally {
    for (const host of hosts) host.server.close();
  }
});
