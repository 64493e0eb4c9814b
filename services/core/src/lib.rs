//! Longview's domain: documents as token sequences, windows over them with exact character
//! offsets, scores and their aggregation, and the input checks every service shares.
//!
//! Must not depend on candle, tonic or rdkafka: everything here is plain data and
//! arithmetic, testable without a model or a network.

pub mod aggregate;
pub mod head;
pub mod input;
pub mod masking;
pub mod redact;
pub mod sentences;
pub mod span;
pub mod tenant;
pub mod text;
pub mod tokens;
pub mod usage;
pub mod window;

pub use input::{InputError, TokenLimit};
pub use masking::{Masking, MaskingSettings};
pub use redact::Redactor;
pub use span::{CharIndex, Span};
pub use tenant::Tenant;
pub use tokens::TokenizedText;
pub use usage::Usage;
pub use window::{Window, WindowPlan, WindowSpec, WindowSpecError};
