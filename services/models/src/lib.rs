//! Longview's model runtime: loads Hugging Face model directories with candle and turns
//! token sequences into pooled, L2-normalised vectors.
//!
//! Owns tokenizers, encoders, pooling, devices and fetching the default model. Must not
//! depend on tonic or rdkafka: it knows nothing of transports.

mod candle_bert;
mod device;
mod encoder;
mod error;
mod fast_bert;
mod model_dir;
pub mod pull;
pub mod sequence_head;
mod tokenizer;
pub mod train;

pub use device::DeviceKind;
pub use encoder::{Backend, Encoder, ModelInfo, Output, SequenceStates};
pub use error::ModelError;
pub use fast_bert::{FastBert, Precision, int8_accelerated};
pub use model_dir::{ModelDir, Pooling};
pub use tokenizer::{SpecialTokens, TextTokenizer};
