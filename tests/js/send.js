// Sends one trace with the OpenTelemetry JavaScript SDK's OTLP/HTTP exporter (as an
// application would) and prints its trace id. Usage: node send.js URL json|proto gzip|none
'use strict';
const { trace, SpanKind } = require('@opentelemetry/api');
const { TracerProvider, SimpleSpanProcessor } = require('@opentelemetry/sdk-trace');
const { resourceFromAttributes } = require('@opentelemetry/resources');

const [url, encoding, compression] = process.argv.slice(2);
const { OTLPTraceExporter } = encoding === 'proto'
  ? require('@opentelemetry/exporter-trace-otlp-proto')
  : require('@opentelemetry/exporter-trace-otlp-http');

async function main() {
  const exporter = new OTLPTraceExporter({ url, compression, timeoutMillis: 10000 });
  const provider = new TracerProvider({
    resource: resourceFromAttributes({
      'service.name': `js-${encoding}-${compression}`,
      'deployment.environment': 'ci',
    }),
    spanProcessors: [new SimpleSpanProcessor({ exporter })],
  });
  const tracer = provider.getTracer('callscope-js-test');
  const root = tracer.startSpan('GET /checkout', { kind: SpanKind.SERVER });
  root.setAttribute('http.route', '/checkout');
  const ctx = trace.setSpan(require('@opentelemetry/api').context.active(), root);
  const child = tracer.startSpan('charge', {
    kind: SpanKind.CLIENT,
    links: [{ context: root.spanContext(), attributes: { reason: 'retry-of' } }],
  }, ctx);
  child.end();
  root.end();
  await provider.forceFlush();
  await provider.shutdown();
  process.stdout.write(root.spanContext().traceId + '\n');
}

main().catch((err) => { console.error(err); process.exit(1); });
