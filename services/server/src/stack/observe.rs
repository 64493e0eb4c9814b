//! Per request: a span (the parent of every span the service opens), and when the
//! response ends, one sample of `longview_grpc_request_seconds` and
//! `longview_grpc_requests_total` by service, method and code, and one log line whose
//! level follows the outcome: OK at debug, client errors at info, server errors at error.
//! Document text never reaches the line: only the route, the code, the status message and
//! the time taken.

use super::{BoxFuture, Route};
use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::body::Body;
use tonic::{Code, Status};
use tower::Service;
use tracing::Instrument;
use tracing::field::Empty;

/// API calls (not health or reflection) between arrival and the end of their response.
const IN_FLIGHT: &str = "longview_grpc_requests_in_flight";

const REQUESTS: &str = "longview_grpc_requests_total";
const REQUEST_SECONDS: &str = "longview_grpc_request_seconds";

/// Registers the stack's metrics' help text with the installed recorder.
pub fn describe_metrics() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        REQUESTS,
        Unit::Count,
        "gRPC calls by service, method and code."
    );
    describe_histogram!(
        REQUEST_SECONDS,
        Unit::Seconds,
        "Seconds from a call's arrival to the end of its response."
    );
    describe_gauge!(IN_FLIGHT, Unit::Count, "API calls being served.");
    describe_counter!(
        super::admission::SHED,
        Unit::Count,
        "Calls refused because the server was at its concurrency limit."
    );
}

#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
}

impl<S> Observe<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S> Service<Request<Body>> for Observe<S>
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> BoxFuture {
        let route = Route::parse(request.uri().path());
        let span = tracing::info_span!(
            "grpc",
            otel.name = %route.path(),
            otel.kind = "server",
            rpc.system = "grpc",
            rpc.service = route.service,
            rpc.method = %route.method,
            tenant = Empty,
            rpc.grpc.status_code = Empty,
        );
        crate::otel::continue_trace(&span, request.headers());
        request.extensions_mut().insert(route.clone());
        if !route.is_open() {
            metrics::gauge!(IN_FLIGHT).increment(1.0);
        }
        // Entered while the inner layers decide synchronously (auth records the tenant).
        let response = span.in_scope(|| self.inner.call(request));
        // Recorded even if the caller goes away before the response (dropped, CANCELLED).
        let mut outcome = Some(Outcome {
            route,
            started: Instant::now(),
            span: span.clone(),
            status: None,
        });
        Box::pin(async move {
            let response = response.instrument(span).await?;
            let (parts, body) = response.into_parts();
            if let Some(outcome) = &mut outcome {
                outcome.status = Status::from_header_map(&parts.headers);
            }
            let body = Observed {
                inner: body,
                outcome: outcome.take(),
            };
            Ok(Response::from_parts(parts, Body::new(body)))
        })
    }
}

/// What is known about a request until its response ends; recorded once, when it ends
/// or is dropped.
struct Outcome {
    route: Route,
    started: Instant,
    span: tracing::Span,
    status: Option<Status>,
}

impl Drop for Outcome {
    fn drop(&mut self) {
        self.record();
    }
}

impl Outcome {
    fn trailers(&mut self, trailers: &HeaderMap) {
        if let Some(status) = Status::from_header_map(trailers) {
            self.status = Some(status);
        }
    }

    /// Records the request. A response that ended without any status was abandoned by
    /// the client: CANCELLED.
    fn record(&mut self) {
        let status = self
            .status
            .take()
            .unwrap_or_else(|| Status::cancelled("the client went away"));
        let code = status.code();
        let seconds = self.started.elapsed().as_secs_f64();
        if !self.route.is_open() {
            metrics::gauge!(IN_FLIGHT).decrement(1.0);
        }
        // Unknown methods of known services would make method labels unbounded.
        let method = match code {
            Code::Unimplemented => "unknown".to_string(),
            _ => std::mem::take(&mut self.route.method),
        };
        let labels = [
            ("service", self.route.service.to_string()),
            ("method", method),
            ("code", code_name(code).to_string()),
        ];
        metrics::counter!(REQUESTS, &labels).increment(1);
        metrics::histogram!(REQUEST_SECONDS, &labels).record(seconds);
        self.span.record("rpc.grpc.status_code", code as i32);
        let _entered = self.span.enter();
        let code = code_name(code);
        match severity(status.code()) {
            Severity::Ok => tracing::debug!(code, seconds, "request"),
            Severity::Client => {
                tracing::info!(code, seconds, message = status.message(), "request")
            }
            Severity::Server => {
                tracing::error!(code, seconds, message = status.message(), "request")
            }
        }
    }
}

enum Severity {
    Ok,
    Client,
    Server,
}

/// Whose problem a code is: the caller's (bad input, no key, its own deadline, quota) or
/// the server's.
fn severity(code: Code) -> Severity {
    match code {
        Code::Ok => Severity::Ok,
        Code::Cancelled
        | Code::InvalidArgument
        | Code::DeadlineExceeded
        | Code::NotFound
        | Code::AlreadyExists
        | Code::PermissionDenied
        | Code::ResourceExhausted
        | Code::FailedPrecondition
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unimplemented
        | Code::Unauthenticated => Severity::Client,
        Code::Unknown | Code::Internal | Code::Unavailable | Code::DataLoss => Severity::Server,
    }
}

/// The canonical name, as gRPC documents it (the `code` label).
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// The response body, watched for the trailers that carry the status.
struct Observed {
    inner: Body,
    outcome: Option<Outcome>,
}

impl HttpBody for Observed {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(trailers), Some(outcome)) = (frame.trailers_ref(), &mut self.outcome) {
                    outcome.trailers(trailers);
                }
            }
            Poll::Ready(Some(Err(status))) => {
                if let Some(outcome) = &mut self.outcome {
                    outcome.status = Some(Status::new(status.code(), status.message()));
                }
            }
            // Dropping the outcome records it.
            Poll::Ready(None) => self.outcome = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_follows_whose_problem_it_is() {
        assert!(matches!(severity(Code::Ok), Severity::Ok));
        assert!(matches!(severity(Code::InvalidArgument), Severity::Client));
        assert!(matches!(severity(Code::Unauthenticated), Severity::Client));
        assert!(matches!(severity(Code::Internal), Severity::Server));
        assert_eq!(code_name(Code::DeadlineExceeded), "DEADLINE_EXCEEDED");
    }
}
