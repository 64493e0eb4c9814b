//! Longview's Classify service: documents of any length are split into overlapping token
//! windows, every window is scored against a label set, and window scores are aggregated
//! into document scores with the windows that drove them as evidence.
//!
//! Owns request validation, windowed scoring and aggregation, and this service's one
//! error-to-Status mapping. Must not depend on other task services or on candle.

mod classifier;
mod error;
mod heads;
mod options;
mod scorer;
mod service;
mod zero_shot;

pub use classifier::{Classification, LabelEvidence, WindowResult};
pub use error::ClassifyError;
pub use heads::{HeadRegistry, heads_dir};
pub use options::{ClassifyLimits, ClassifyPlan, DocumentAggregation, LabelSpec};
pub use service::ClassifyService;
pub use zero_shot::{ZeroShotScorer, prototype_text};
