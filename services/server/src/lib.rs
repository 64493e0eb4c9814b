//! The `longview` binary's library: command line, configuration, telemetry, role wiring
//! and graceful drain. Integration tests start servers through [`serve::start`].

pub mod cli;
pub mod client;
pub mod config;
mod health;
pub mod models;
pub mod recommend;
pub mod recommend_client;
mod roles;
pub mod serve;
pub mod telemetry;

pub use config::{ServeConfig, Target};
pub use serve::{RunningServer, start, start_with_worker};
