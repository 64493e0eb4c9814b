//! gRPC health follows readiness: every service is NOT_SERVING until what it needs is
//! ready (the warm model; for Sentiment also its head), the whole server ("") once all
//! are, and everything NOT_SERVING again when draining.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    services: Vec<&'static str>,
    ready: Arc<Mutex<HashSet<&'static str>>>,
}

impl Health {
    /// Marks every service (and the whole server, "") NOT_SERVING.
    pub async fn new(reporter: HealthReporter, services: Vec<&'static str>) -> Self {
        let health = Self {
            reporter,
            services,
            ready: Arc::default(),
        };
        health.set_all(ServingStatus::NotServing).await;
        health
    }

    /// Marks `names` SERVING, and the whole server once every service is. Returns true
    /// when that made the whole server ready.
    pub async fn mark_ready(&self, names: &[&'static str]) -> bool {
        for name in names.iter().filter(|n| self.services.contains(n)) {
            self.reporter
                .set_service_status(*name, ServingStatus::Serving)
                .await;
        }
        let all = {
            let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
            ready.extend(names.iter().copied());
            self.services.iter().all(|s| ready.contains(s))
        };
        if all {
            self.reporter
                .set_service_status("", ServingStatus::Serving)
                .await;
        }
        all
    }

    /// Everything NOT_SERVING: load balancers stop sending new work.
    pub async fn drain(&self) {
        self.set_all(ServingStatus::NotServing).await;
    }

    async fn set_all(&self, status: ServingStatus) {
        self.reporter.set_service_status("", status).await;
        for service in &self.services {
            self.reporter.set_service_status(*service, status).await;
        }
    }
}
