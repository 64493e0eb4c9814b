//! Longview's Sentiment service: a label and calibrated probabilities per document, per
//! sentence, and per entity (companies and tickers found by cashtag or a watchlist).
//!
//! Owns sentence splitting, entity finding, the sentiment model choice (a trained head on
//! the shared encoder, or a user's own sequence classifier on its own worker) and this
//! service's error-to-Status mapping. Must not depend on other task services or candle.

mod analysis;
mod entities;
mod error;
mod model;
mod service;

pub use analysis::{Analysis, DocumentInput, EntityResult, SentenceResult, Wanted, analyse};
pub use entities::{Watchlist, WatchlistEntry};
pub use error::SentimentError;
pub use model::SentimentModel;
pub use service::{SentimentLimits, SentimentService};
