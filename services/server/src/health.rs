//! gRPC health follows the model: NOT_SERVING until the worker has loaded and warmed up,
//! SERVING after, NOT_SERVING again when draining.

use longview_worker::{Worker, WorkerState};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// Health of the served services, as one unit.
#[derive(Clone)]
pub struct Health {
    reporter: HealthReporter,
    services: Vec<&'static str>,
}

impl Health {
    /// Marks every service (and the whole server, "") NOT_SERVING.
    pub async fn new(reporter: HealthReporter, services: Vec<&'static str>) -> Self {
        let health = Self { reporter, services };
        health.set(ServingStatus::NotServing).await;
        health
    }

    pub async fn set(&self, status: ServingStatus) {
        self.reporter.set_service_status("", status).await;
        for service in &self.services {
            self.reporter.set_service_status(*service, status).await;
        }
    }

    /// Flips to SERVING once the worker is ready; returns the worker's failure otherwise.
    pub async fn follow(&self, worker: &Worker) -> Result<(), String> {
        let mut state = worker.watch_state();
        let settled = state
            .wait_for(|s| !matches!(s, WorkerState::Loading))
            .await
            .map(|s| s.clone());
        match settled {
            Ok(WorkerState::Ready(_)) => {
                self.set(ServingStatus::Serving).await;
                Ok(())
            }
            Ok(WorkerState::Failed(reason)) => Err(reason.to_string()),
            Ok(WorkerState::Loading) | Err(_) => Err("the model worker stopped".into()),
        }
    }
}
