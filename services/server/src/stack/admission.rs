//! A bound on requests in flight. Past it, calls are refused at once with
//! RESOURCE_EXHAUSTED and a retry hint rather than queued: a queue in front of a saturated
//! model only turns overload into timeouts.

use super::{Gate, route_of};
use http::Request;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::body::Body;

pub(super) const SHED: &str = "longview_grpc_shed_total";

#[derive(Clone)]
pub struct Admission {
    in_flight: Option<Arc<Semaphore>>,
    limit: usize,
}

impl Admission {
    /// At most `limit` API calls at once; 0 admits everything.
    pub fn new(limit: usize) -> Self {
        Self {
            in_flight: (limit > 0).then(|| Arc::new(Semaphore::new(limit))),
            limit,
        }
    }
}

impl Gate for Admission {
    type Pass = Option<OwnedSemaphorePermit>;

    fn admit(&self, request: &mut Request<Body>) -> Result<Self::Pass, Status> {
        let Some(in_flight) = &self.in_flight else {
            return Ok(None);
        };
        if route_of(request).is_open() {
            return Ok(None);
        }
        match in_flight.clone().try_acquire_owned() {
            Ok(permit) => Ok(Some(permit)),
            Err(_) => {
                metrics::counter!(SHED).increment(1);
                Err(longview_worker::retry_later(format!(
                    "the server is at its limit of {} requests in flight \
                     (limits.max_concurrent_requests); retry shortly",
                    self.limit
                )))
            }
        }
    }
}
