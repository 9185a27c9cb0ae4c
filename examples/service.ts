// A node:http service whose handler fans out to a slow upstream through one shared Dovetail:
// at most 4 upstream calls at once across all requests, at most 20 per second, a timeout and a
// retry on each. On SIGTERM it drains: requests in flight finish, new ones get 503, then the
// server closes and the process exits on its own (code 0).
//
// Run it:   npx tsx examples/service.ts      (PORT=8080 to choose the port; 0 picks a free one)
// Try it:   curl 'http://127.0.0.1:8080/?user=7'
// Stop it:  kill -TERM <pid>
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Dovetail, ShutdownError } from 'dovetailjs';

const dvt = new Dovetail({
  concurrency: 4,
  rateLimit: { perSecond: 20, burst: 5 },
  timeout: 2_000,
  retries: 1,
  retryBackoff: 100,
});

/** The slow upstream: 300 ms per call. Each call takes its task's signal, as a real client would. */
function upstream(user: string, part: string, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve(`${part} of user ${user}`), 300);
    signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });
}

let draining = false;

async function handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
  const user =
    new URL(request.url ?? '/', 'http://localhost').searchParams.get('user') ?? 'anonymous';
  console.log(`request user=${user}`);
  // While draining, tell keep-alive clients not to come back on this connection.
  if (draining) response.setHeader('connection', 'close');
  try {
    const parts = await dvt.task.map(
      (part: string) => upstream(user, part, dvt.task.current()!.signal),
      ['profile', 'orders', 'settings'],
    );
    response.writeHead(200, { 'content-type': 'application/json' });
    response.end(`${JSON.stringify({ user, parts })}\n`);
  } catch (error) {
    // Work started after shutdown began rejects with ShutdownError: the service is going away.
    const status = error instanceof ShutdownError ? 503 : 502;
    response.writeHead(status, {
      'content-type': 'text/plain',
      'retry-after': '1',
      connection: 'close',
    });
    response.end(status === 503 ? 'shutting down\n' : `upstream failed: ${String(error)}\n`);
  }
}

const server = createServer((request, response) => void handle(request, response));

server.listen(Number(process.env.PORT ?? 8080), '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : address;
  console.log(`listening on http://127.0.0.1:${port}`);
});

// The service handles SIGTERM itself. Dovetail's own handler sees this listener, so it shuts its
// instances down but leaves ending the process to us (setAppShutdownHook is the other way, for a
// process that should then exit 143 as the signal would have).
process.once('SIGTERM', () => {
  console.log('SIGTERM: draining');
  draining = true;
  void dvt.shutdown({ wait: true }).then(() => {
    // Requests that arrived meanwhile got 503; the ones in flight have their answers. Stop
    // accepting connections, drop idle keep-alive ones, and let the event loop run empty.
    server.close(() => console.log('closed'));
    server.closeIdleConnections();
    console.log(`drained: ${JSON.stringify(dvt.events.stats())}`);
  });
});
