//! Longview's Embed service: a batch of texts in, one L2-normalised vector per text out,
//! with what the model read of each.
//!
//! Owns validation at the edge and the one error-to-Status mapping of this service. Must
//! not depend on other task services or on the model runtime directly (only the worker).

mod error;
mod service;

pub use error::EmbedError;
pub use service::{EmbedLimits, EmbedService};
