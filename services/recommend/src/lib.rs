//! Longview's Recommend service: a user's history (items by text or stored id, with
//! weights and times) against up to 10,000 candidates, each scored from content
//! similarity, popularity, recency and the caller's own features, with the parts shown.
//!
//! Owns the scoring arithmetic, the per-tenant item and profile store (redb on local
//! disk), the item embedding cache (moka in memory over the store) and this service's
//! error-to-Status mapping. Must not depend on other task services or candle.

mod cache;
mod embedder;
mod error;
mod items;
mod model;
mod ranking;
pub mod request;
pub mod score;
mod service;
mod store;

pub use cache::{CacheUsage, EmbeddingCache, HITS_METRIC, MISSES_METRIC, VectorSource, vector_key};
pub use embedder::{Embedded, Embedder};
pub use error::RecommendError;
pub use model::BlendModel;
pub use ranking::ScoringDefaults;
pub use request::RecommendLimits;
pub use service::{RecommendService, RecommendSettings};
pub use store::{Store, StoreError, StoreHandle, StoredItem};
