//! The `longview` binary's library: command line, layered configuration, telemetry
//! (logs, OTLP traces, Prometheus metrics), the tower stack (auth, quotas, limits,
//! deadlines), TLS, role wiring and graceful drain. Integration tests start servers through [`serve::start`].

pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod generator;
mod health;
pub mod models;
pub mod monitor;
pub mod otel;
mod prometheus;
pub mod rag;
pub mod rag_client;
pub mod recommend;
pub mod recommend_client;
mod roles;
pub mod security;
pub mod serve;
pub mod settings;
pub mod stack;
pub mod telemetry;
pub mod tls;

pub use config::{ServeConfig, Target};
pub use serve::{RunningServer, start, start_with_worker};
