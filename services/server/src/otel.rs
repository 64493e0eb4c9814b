//! OpenTelemetry traces over OTLP/gRPC, on when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//! Every tracing span (the request span of the tower stack, the service's span, the model
//! worker's events) becomes an OTLP span; callers' `traceparent` headers are honoured, so
//! a Longview call joins the caller's trace. The standard `OTEL_*` variables apply
//! (`OTEL_SERVICE_NAME`, `OTEL_BSP_SCHEDULE_DELAY`, ...).

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

pub const ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Flushes and stops the exporter when dropped; keep it until the process ends.
pub struct OtelGuard {
    provider: SdkTracerProvider,
}

impl Drop for OtelGuard {
    fn drop(&mut self) {
        if let Err(err) = self.provider.shutdown() {
            eprintln!("longview: flushing OpenTelemetry spans failed: {err}");
        }
    }
}

/// The tracing layer that exports spans, when the endpoint variable is set. Must run
/// inside the Tokio runtime: the gRPC exporter's connection lives there.
pub fn layer<S>() -> anyhow::Result<Option<(impl Layer<S>, OtelGuard)>>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
{
    if std::env::var_os(ENDPOINT_VAR).is_none_or(|v| v.is_empty()) {
        return Ok(None);
    }
    // The builder reads the endpoint, headers and timeout from the OTEL_* variables.
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()?;
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("longview");
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    ENABLED.store(true, Ordering::Relaxed);
    let layer = tracing_opentelemetry::layer().with_tracer(tracer);
    Ok(Some((layer, OtelGuard { provider })))
}

/// `OTEL_SERVICE_NAME` when set (the Helm chart sets `longview-<role>`), else "longview".
fn service_name() -> String {
    std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "longview".into())
}

/// Makes `span` a child of the caller's trace, when the request carries W3C trace context.
pub fn continue_trace(span: &tracing::Span, headers: &http::HeaderMap) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&Headers(headers))
    });
    // Fails only when no OpenTelemetry layer is installed, which ENABLED rules out.
    let _ = span.set_parent(parent);
}

struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
