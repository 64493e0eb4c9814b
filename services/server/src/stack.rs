//! The tower stack in front of every gRPC service, outermost first:
//!
//! 1. [`observe`]: one span, one metrics sample and one outcome-levelled log line per request;
//! 2. drain: UNAVAILABLE for new calls once the server drains;
//! 3. [`crate::auth`]: API key → tenant (into the request's extensions), role permission,
//!    per-tenant quota;
//! 4. admission: a bound on requests in flight, shedding the excess with RESOURCE_EXHAUSTED;
//! 5. [`deadline`]: the caller's `grpc-timeout` (and the server's own cap) → DEADLINE_EXCEEDED;
//! 6. [`size`]: per-RPC request message limits, refused before the message is buffered.
//!
//! Health and reflection pass the gates untouched, so probes and `grpcurl` work without
//! keys and keep answering while the server drains or sheds load.

mod admission;
pub mod deadline;
mod observe;
pub mod size;

use crate::auth::Auth;
use http::{Request, Response};
use longview_proto::service_names as names;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::watch;
use tonic::Status;
use tonic::body::Body;
use tower::util::BoxCloneService;
use tower::{Layer, Service, ServiceBuilder};

pub use admission::Admission;
pub use observe::describe_metrics;
pub use size::RequestLimits;

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

/// What a request's path says about it; the outermost layer puts it in the extensions.
#[derive(Clone, Debug)]
pub struct Route {
    /// The gRPC service, or "unknown" for services this server does not know (bounded
    /// metric labels).
    pub service: &'static str,
    pub method: String,
    pub access: Access,
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Health and reflection: no key, never shed, answered while draining.
    Open,
    /// A Longview API, callable with a key allowed this role.
    Role(&'static str),
    /// Not a service of ours; the router answers UNIMPLEMENTED.
    Unknown,
}

const HEALTH: &str = "grpc.health.v1.Health";
const REFLECTION: &str = "grpc.reflection.v1.ServerReflection";
const REFLECTION_ALPHA: &str = "grpc.reflection.v1alpha.ServerReflection";

/// Every service Longview can serve and the role (the `--target` name) it belongs to.
const ROLES: [(&str, &str); 7] = [
    (names::EMBED, "embed"),
    (names::CLASSIFY, "classify"),
    (names::SENTIMENT, "sentiment"),
    (names::RAG, "rag"),
    (names::RECOMMEND, "recommend"),
    (names::MONITOR, "monitor"),
    (names::WORKER, "worker"),
];

impl Route {
    /// Parses "/package.Service/Method".
    pub fn parse(path: &str) -> Self {
        let (service, method) = path
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("", ""));
        let open = [HEALTH, REFLECTION, REFLECTION_ALPHA]
            .into_iter()
            .find(|known| *known == service);
        if let Some(known) = open {
            return Self::new(known, method, Access::Open);
        }
        match ROLES.iter().find(|(known, _)| *known == service) {
            Some((known, role)) => Self::new(known, method, Access::Role(role)),
            None => Self::new("unknown", "unknown", Access::Unknown),
        }
    }

    fn new(service: &'static str, method: &str, access: Access) -> Self {
        Self {
            service,
            method: method.to_string(),
            access,
        }
    }

    /// "service/method", as limits are configured.
    pub fn path(&self) -> String {
        format!("{}/{}", self.service, self.method)
    }

    pub fn is_open(&self) -> bool {
        self.access == Access::Open
    }
}

/// The route of a request inside the stack (the observe layer always sets it).
pub fn route_of<B>(request: &Request<B>) -> Route {
    request
        .extensions()
        .get::<Route>()
        .cloned()
        .unwrap_or_else(|| Route::parse(request.uri().path()))
}

/// Everything the stack needs, shared by every connection.
#[derive(Clone)]
pub struct StackLayer {
    pub auth: Arc<Auth>,
    pub admission: Admission,
    pub limits: Arc<RequestLimits>,
    pub draining: watch::Receiver<bool>,
}

impl<S> Layer<S> for StackLayer
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Service = BoxCloneService<Request<Body>, Response<Body>, Infallible>;

    fn layer(&self, routes: S) -> Self::Service {
        let stack = ServiceBuilder::new()
            .layer_fn(observe::Observe::new)
            .layer(GateLayer(Draining(self.draining.clone())))
            .layer(GateLayer(self.auth.clone()))
            .layer(GateLayer(self.admission.clone()))
            .layer_fn(|inner| deadline::Deadline::new(inner, self.limits.clone()))
            .layer_fn(|inner| size::SizeLimit::new(inner, self.limits.clone()))
            .service(routes);
        BoxCloneService::new(stack)
    }
}

/// A check before the service runs: refuse with a status, or admit with a pass held
/// until the service's response is ready (a permit, for instance).
pub trait Gate: Send + Sync + 'static {
    type Pass: Send + 'static;

    fn admit(&self, request: &mut Request<Body>) -> Result<Self::Pass, Status>;
}

impl<G: Gate> Gate for Arc<G> {
    type Pass = G::Pass;

    fn admit(&self, request: &mut Request<Body>) -> Result<Self::Pass, Status> {
        G::admit(self, request)
    }
}

#[derive(Clone)]
struct GateLayer<G>(G);

impl<G: Clone, S> Layer<S> for GateLayer<G> {
    type Service = Gated<G, S>;

    fn layer(&self, inner: S) -> Self::Service {
        Gated {
            gate: self.0.clone(),
            inner,
        }
    }
}

#[derive(Clone)]
pub struct Gated<G, S> {
    gate: G,
    inner: S,
}

impl<G, S> Service<Request<Body>> for Gated<G, S>
where
    G: Gate + Clone,
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
        match self.gate.admit(&mut request) {
            Err(status) => Box::pin(std::future::ready(Ok(status.into_http()))),
            Ok(pass) => {
                let response = self.inner.call(request);
                Box::pin(async move {
                    let response = response.await;
                    drop(pass);
                    response
                })
            }
        }
    }
}

/// New calls get UNAVAILABLE once draining starts; in-flight ones carry on.
#[derive(Clone)]
struct Draining(watch::Receiver<bool>);

impl Gate for Draining {
    type Pass = ();

    fn admit(&self, request: &mut Request<Body>) -> Result<(), Status> {
        if *self.0.borrow() && !route_of(request).is_open() {
            return Err(Status::unavailable(
                "the server is shutting down; retry on another instance",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_name_service_method_and_access() {
        let route = Route::parse("/longview.v1.Classify/ClassifyStream");
        assert_eq!(route.service, names::CLASSIFY);
        assert_eq!(route.method, "ClassifyStream");
        assert_eq!(route.access, Access::Role("classify"));
        assert!(Route::parse("/grpc.health.v1.Health/Watch").is_open());
        let unknown = Route::parse("/evil.Service/Anything");
        assert_eq!(
            (unknown.service, unknown.access),
            ("unknown", Access::Unknown)
        );
        assert_eq!(Route::parse("garbage").access, Access::Unknown);
    }
}
