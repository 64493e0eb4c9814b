//! Deadlines: the caller's `grpc-timeout`, capped by the server's own request timeout
//! when one is configured. When it passes, the handler is dropped (its queued model work
//! is skipped) and the caller gets DEADLINE_EXCEEDED. Covers the handler up to its
//! response; a response stream, once started, runs on.

use super::{BoxFuture, RequestLimits};
use http::{HeaderMap, Request, Response};
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::Status;
use tonic::body::Body;
use tower::Service;

#[derive(Clone)]
pub struct Deadline<S> {
    inner: S,
    limits: Arc<RequestLimits>,
}

impl<S> Deadline<S> {
    pub fn new(inner: S, limits: Arc<RequestLimits>) -> Self {
        Self { inner, limits }
    }
}

impl<S> Service<Request<Body>> for Deadline<S>
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

    fn call(&mut self, request: Request<Body>) -> BoxFuture {
        let caller = grpc_timeout(request.headers());
        let server = self.limits.request_timeout();
        let deadline = match (caller, server) {
            (Some(caller), Some(server)) if server < caller => Some(Passed::Server(server)),
            (Some(caller), _) => Some(Passed::Caller(caller)),
            (None, server) => server.map(Passed::Server),
        };
        let response = self.inner.call(request);
        let Some(deadline) = deadline else {
            return Box::pin(response);
        };
        Box::pin(async move {
            match tokio::time::timeout(deadline.duration(), response).await {
                Ok(response) => response,
                Err(_) => Ok(deadline.status().into_http()),
            }
        })
    }
}

/// Whose deadline applies.
#[derive(Clone, Copy, Debug)]
enum Passed {
    Caller(Duration),
    Server(Duration),
}

impl Passed {
    fn duration(self) -> Duration {
        match self {
            Passed::Caller(d) | Passed::Server(d) => d,
        }
    }

    fn status(self) -> Status {
        match self {
            Passed::Caller(d) => Status::deadline_exceeded(format!(
                "the call's deadline ({} ms) passed before it finished",
                d.as_millis()
            )),
            Passed::Server(d) => Status::deadline_exceeded(format!(
                "the server's request timeout ({} s, limits.request_timeout_seconds) passed \
                 before the call finished",
                d.as_secs_f64()
            )),
        }
    }
}

/// The `grpc-timeout` header: up to 8 digits and a unit (H, M, S, m, u, n). A malformed
/// header is ignored, as gRPC servers do.
pub fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(amount * 3600),
        "M" => Duration::from_secs(amount * 60),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(value: &str) -> Option<Duration> {
        let mut headers = HeaderMap::new();
        headers.insert("grpc-timeout", value.parse().unwrap());
        grpc_timeout(&headers)
    }

    #[test]
    fn grpc_timeout_units() {
        assert_eq!(parse("50m"), Some(Duration::from_millis(50)));
        assert_eq!(parse("2S"), Some(Duration::from_secs(2)));
        assert_eq!(parse("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse("99999999n"), Some(Duration::from_nanos(99_999_999)));
    }

    #[test]
    fn malformed_grpc_timeout_is_ignored() {
        for bad in ["", "m", "123456789m", "10x", "-5S", "1.5S"] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
