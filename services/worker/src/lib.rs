//! Longview model workers: each model lives on its own OS thread behind a bounded queue;
//! callers get a cheap, cloneable [`Worker`] handle.
//!
//! Owns the model thread, batching, warm-up and the health it publishes. Must not depend
//! on any task service: classify, sentiment, rag and recommend all depend on this.

mod batch;
mod error;
mod grpc;
mod metrics;
mod remote;
mod texts;
mod thread;
pub mod wire;
mod worker;

pub use error::{WorkerError, retry_after, retry_later};
pub use grpc::WorkerApi;
pub use longview_models::{ModelInfo, Output};
pub use metrics::describe_metrics;
pub use remote::RemoteConfig;
pub use texts::EmbeddedText;
pub use worker::{Loaded, Worker, WorkerConfig, WorkerState};
