//! W3C trace context in message headers (feature `opentelemetry`, SPEC P6): a push writes the
//! `traceparent` (and `tracestate`) of the current `tracing` span's OpenTelemetry context, and
//! a delivery turns them back into a context that a consumer's span takes as its parent.
//!
//! The format is written and read here rather than through the SDK's propagator, so that the
//! library depends on the OpenTelemetry API only and injection does not depend on which global
//! propagator the application installed. `Headers` also implements the API's `Injector` and
//! `Extractor`, for applications that propagate more (baggage, other formats) themselves.

use super::Headers;
use super::traceparent::{self, TraceParent};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use std::str::FromStr;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = Headers::TRACEPARENT;
const TRACESTATE: &str = Headers::TRACESTATE;

/// Adds the trace context of the current `tracing` span, unless the headers name a parent
/// already (the caller chose it) or the span has no valid OpenTelemetry context.
pub(crate) fn inject_current(headers: &mut Headers) {
    if headers.contains_key(TRACEPARENT) {
        return;
    }
    inject(&tracing::Span::current().context(), headers);
}

fn inject(cx: &Context, headers: &mut Headers) {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return;
    }
    let (trace_id, span_id) = (sc.trace_id().to_string(), sc.span_id().to_string());
    let flags = (sc.trace_flags() & TraceFlags::SAMPLED).to_u8();
    let parent = TraceParent { trace_id: &trace_id, span_id: &span_id, flags };
    headers.insert(TRACEPARENT, traceparent::format(&parent));
    let state = sc.trace_state().header();
    if !state.is_empty() {
        headers.insert(TRACESTATE, state);
    }
}

/// The remote parent named by the headers, if they carry a valid `traceparent`.
pub(crate) fn extract(headers: &Headers) -> Option<Context> {
    let sc = span_context(headers)?;
    Some(Context::new().with_remote_span_context(sc))
}

/// The parent named by `traceparent` (see `traceparent.rs` for the format), with the
/// `tracestate` that was kept.
fn span_context(headers: &Headers) -> Option<SpanContext> {
    let parent = traceparent::parse(headers.get(TRACEPARENT)?)?;
    let trace_id = TraceId::from_hex(parent.trace_id).ok()?;
    let span_id = SpanId::from_hex(parent.span_id).ok()?;
    let flags = TraceFlags::new(parent.flags) & TraceFlags::SAMPLED;
    // A tracestate that does not parse is dropped, not the parent (as the recommendation asks).
    let state =
        headers.get(TRACESTATE).and_then(|s| TraceState::from_str(s).ok()).unwrap_or_default();
    let sc = SpanContext::new(trace_id, span_id, flags, true, state);
    sc.is_valid().then_some(sc)
}

impl Injector for Headers {
    fn set(&mut self, key: &str, value: String) {
        self.insert(key, value);
    }
}

impl Extractor for Headers {
    fn get(&self, key: &str) -> Option<&str> {
        Headers::get(self, key)
    }

    fn keys(&self) -> Vec<&str> {
        self.iter().map(|(k, _)| k).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn with_parent(value: &str) -> Headers {
        Headers::new().with(TRACEPARENT, value)
    }

    #[test]
    fn a_context_written_reads_back_with_its_state() {
        let headers = with_parent(PARENT).with(TRACESTATE, "vendor=1,other=x");
        let cx = extract(&headers).expect("a parent");
        let mut out = Headers::new();
        inject(&cx, &mut out);
        assert_eq!(out, headers);
        let span = cx.span();
        let sc = span.span_context();
        assert!(sc.is_remote() && sc.is_sampled());
        assert_eq!(sc.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    }

    #[test]
    fn malformed_parents_are_ignored_and_a_bad_state_only_drops_the_state() {
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "zz-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ] {
            assert!(extract(&with_parent(bad)).is_none(), "{bad}");
        }
        let later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-more";
        let cx = extract(&with_parent(later)).expect("a later version keeps its first fields");
        assert!(cx.span().span_context().is_sampled());
        let cx =
            extract(&with_parent(PARENT).with(TRACESTATE, "no-equals-sign")).expect("a parent");
        assert_eq!(cx.span().span_context().trace_state().header(), "");
    }

    #[test]
    fn without_a_span_nothing_is_injected_and_a_given_parent_is_kept() {
        let mut headers = Headers::new();
        inject_current(&mut headers);
        assert!(headers.is_empty());
        let mut given = with_parent(PARENT);
        inject_current(&mut given);
        assert_eq!(given, with_parent(PARENT));
    }
}
