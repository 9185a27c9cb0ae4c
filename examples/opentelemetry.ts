// OpenTelemetry spans for Dovetail tasks, printed by the SDK's console exporter.
//
//   npx tsx examples/opentelemetry.ts
//
// The setup is an application's usual one (a tracer provider and an AsyncLocalStorage context
// manager, registered globally; NodeSDK does the same); `instrument()` adds one span per task.
// A request span schedules a payment that fails once and is retried, then maps three items;
// each item makes a span of its own, which nests under the item's task span.
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  ConsoleSpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { Dovetail } from 'dovetailjs';
import { instrument } from 'dovetailjs/opentelemetry';

const provider = new BasicTracerProvider({
  spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter())],
});
trace.setGlobalTracerProvider(provider);
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());

const stop = instrument();
const tracer = trace.getTracer('example');
const dvt = new Dovetail({ concurrency: 2, retries: 1, retryBackoff: 10 });

let calls = 0;
await tracer.startActiveSpan('handle request', async (request) => {
  const receipt = await dvt.task.schedule(function charge() {
    calls += 1;
    if (calls === 1) throw new Error('card network busy');
    return 'receipt-42';
  });
  const sizes = await dvt.task.map(
    function resize(name: string) {
      // A span the task makes: a child of the task's span.
      return tracer.startActiveSpan(`write ${name}`, (write) => {
        write.end();
        return name.length;
      });
    },
    ['a.png', 'bb.png', 'ccc.png'],
  );
  request.end();
  console.log(`result: ${receipt}, sizes ${sizes.join(' ')}`);
});

stop();
await dvt.shutdown();
await provider.shutdown();
