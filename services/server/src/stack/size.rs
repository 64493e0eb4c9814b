//! Request message limits per RPC. Each gRPC message announces its length in a 5-byte
//! prefix; a message over its RPC's limit is refused from that prefix, before any of it
//! is buffered, with RESOURCE_EXHAUSTED naming the limit and the setting that sets it.
//! For client streams the limit applies to each message.

use super::{BoxFuture, Route, route_of};
use bytes::{Buf, Bytes};
use http::{Request, Response};
use http_body::{Body as HttpBody, Frame, SizeHint};
use serde::Serialize;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tonic::Status;
use tonic::body::Body;
use tower::Service;

/// The `[limits]` section, resolved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RequestLimits {
    /// API calls served at once; 0 means no limit.
    pub max_concurrent_requests: usize,
    /// The server's cap on one call; `None` leaves it to the caller's deadline.
    #[serde(serialize_with = "crate::config::seconds_opt")]
    pub request_timeout: Option<Duration>,
    /// Bytes per request message, for RPCs without their own limit.
    pub max_request_bytes: usize,
    /// Per-RPC limits, by "package.Service/Method".
    pub request_bytes: BTreeMap<String, usize>,
}

impl RequestLimits {
    pub fn request_timeout(&self) -> Option<Duration> {
        self.request_timeout
    }

    pub fn limit_for(&self, route: &Route) -> usize {
        self.request_bytes
            .get(&route.path())
            .copied()
            .unwrap_or(self.max_request_bytes)
    }

    /// The largest message any RPC accepts: what tonic's own decoder must allow, so that
    /// this layer, which names the limit, is the one that refuses.
    pub fn largest(&self) -> usize {
        self.request_bytes
            .values()
            .copied()
            .fold(self.max_request_bytes, usize::max)
    }
}

#[derive(Clone)]
pub struct SizeLimit<S> {
    inner: S,
    limits: Arc<RequestLimits>,
}

impl<S> SizeLimit<S> {
    pub fn new(inner: S, limits: Arc<RequestLimits>) -> Self {
        Self { inner, limits }
    }
}

impl<S> Service<Request<Body>> for SizeLimit<S>
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
        let route = route_of(&request);
        let limit = self.limits.limit_for(&route);
        let (parts, body) = request.into_parts();
        let body = Limited {
            inner: body,
            frames: Frames::new(limit),
            rpc: route.path(),
        };
        Box::pin(self.inner.call(Request::from_parts(parts, Body::new(body))))
    }
}

/// Follows gRPC message framing across data frames.
#[derive(Debug)]
struct Frames {
    limit: usize,
    prefix: [u8; 5],
    prefix_len: usize,
    /// Bytes of the current message still to come.
    remaining: usize,
}

impl Frames {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            prefix: [0; 5],
            prefix_len: 0,
            remaining: 0,
        }
    }

    /// Walks `chunk`; returns the length of the first message over the limit.
    fn check(&mut self, mut chunk: &[u8]) -> Result<(), usize> {
        while chunk.has_remaining() {
            if self.remaining > 0 {
                let skip = self.remaining.min(chunk.len());
                self.remaining -= skip;
                chunk.advance(skip);
                continue;
            }
            self.prefix[self.prefix_len] = chunk.get_u8();
            self.prefix_len += 1;
            if self.prefix_len == self.prefix.len() {
                self.prefix_len = 0;
                let len = u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]) as usize;
                if len > self.limit {
                    return Err(len);
                }
                self.remaining = len;
            }
        }
        Ok(())
    }
}

struct Limited {
    inner: Body,
    frames: Frames,
    rpc: String,
}

impl HttpBody for Limited {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
            && let Err(len) = self.frames.check(data)
        {
            let status = Status::resource_exhausted(format!(
                "request message of {len} bytes is over the limit of {} bytes for {} \
                 (limits.max_request_bytes, or limits.request_bytes.\"{}\")",
                self.frames.limit, self.rpc, self.rpc
            ));
            return Poll::Ready(Some(Err(status)));
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

    fn message(len: usize) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&(len as u32).to_be_bytes());
        bytes.extend(std::iter::repeat_n(7u8, len));
        bytes
    }

    #[test]
    fn messages_under_the_limit_pass_in_any_split() {
        let stream: Vec<u8> = [message(10), message(0), message(100)].concat();
        for split in [1, 2, 3, 5, 7, 64, stream.len()] {
            let mut frames = Frames::new(100);
            for chunk in stream.chunks(split) {
                assert_eq!(frames.check(chunk), Ok(()), "split {split}");
            }
        }
    }

    #[test]
    fn the_first_message_over_the_limit_is_reported_from_its_prefix() {
        let mut frames = Frames::new(100);
        assert_eq!(frames.check(&message(50)), Ok(()));
        let big = message(101);
        assert_eq!(frames.check(&big[..3]), Ok(()));
        assert_eq!(frames.check(&big[3..6]), Err(101));
    }

    #[test]
    fn per_rpc_limits_override_the_default() {
        let limits = RequestLimits {
            max_concurrent_requests: 0,
            request_timeout: None,
            max_request_bytes: 1000,
            request_bytes: [("longview.v1.Embed/Embed".to_string(), 10)].into(),
        };
        assert_eq!(
            limits.limit_for(&Route::parse("/longview.v1.Embed/Embed")),
            10
        );
        assert_eq!(
            limits.limit_for(&Route::parse("/longview.v1.Classify/Classify")),
            1000
        );
        assert_eq!(limits.largest(), 1000);
    }
}
