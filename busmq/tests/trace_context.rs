//! A trace follows a message from producer to consumer (SPEC P6, feature `opentelemetry`): the
//! push made inside the producer's span carries its W3C `traceparent`, and the consumer's span,
//! parented with `Delivery::trace_context`, lands in the same trace, as an in-memory span
//! exporter records them.

use busmq::memory::Memory;
use busmq::{Bus, Headers};
use futures::StreamExt;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

fn span<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no span {name}: {spans:?}"))
}

// A current-thread runtime: the subscriber below is this thread's default.
#[tokio::test]
async fn a_trace_follows_a_message_from_producer_to_consumer() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder().with_simple_exporter(exporter.clone()).build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("busmq-test"));
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));

    let bus = Bus::new(Memory::new().store());
    bus.connect().await.unwrap();
    let queue = bus.queue("traced").unwrap();
    queue.attach().await.unwrap();
    // The trace context is taken when `push` is called, inside the producer's span.
    let produce = tracing::info_span!("produce");
    produce.in_scope(|| queue.push(&"job")).await.unwrap();
    drop(produce);
    queue.push(&"untraced").await.unwrap();
    let explicit = Headers::new()
        .with(Headers::TRACEPARENT, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
    let given =
        tracing::info_span!("ignored").in_scope(|| queue.push_with(&"given", explicit.clone()));
    given.await.unwrap();

    let mut consumer = queue.consume::<String>().await.unwrap();
    let job = consumer.next().await.unwrap().unwrap();
    assert!(job.headers().get(Headers::TRACEPARENT).is_some(), "{:?}", job.headers());
    let consume = tracing::info_span!("consume");
    consume.set_parent(job.trace_context().expect("a trace context")).unwrap();
    consume.in_scope(|| tracing::info!("handling {}", job.body()));
    drop(consume);
    let untraced = consumer.next().await.unwrap().unwrap();
    assert!(untraced.headers().is_empty() && untraced.trace_context().is_none());
    let given = consumer.next().await.unwrap().unwrap();
    assert_eq!(given.headers(), &explicit, "a traceparent given by the caller is kept");
    let parent = given.trace_context().unwrap();
    assert_eq!(
        parent.span().span_context().trace_id().to_string(),
        "0af7651916cd43dd8448eb211c80319c"
    );

    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let (produce, consume) = (span(&spans, "produce"), span(&spans, "consume"));
    assert_eq!(consume.span_context.trace_id(), produce.span_context.trace_id());
    assert_eq!(consume.parent_span_id, produce.span_context.span_id());
    bus.disconnect().await.unwrap();
}
