//! Longview's model runtime: loads Hugging Face model directories with candle and turns
//! token sequences into pooled, L2-normalised vectors; loads llama-architecture GGUF chat
//! models and generates answers from them.
//!
//! Owns tokenizers (tokenizer.json or GGUF metadata), chat templates, encoders, pooling,
//! text generation, devices and fetching the default models. Must not depend on tonic or
//! rdkafka: it knows nothing of transports.

mod candle_bert;
mod chat;
mod device;
mod encoder;
mod error;
mod fast_bert;
mod generate;
mod gguf;
mod gguf_tokenizer;
mod llama;
mod model_dir;
pub mod pull;
mod requantize;
pub mod sequence_head;
mod token_bytes;
mod tokenizer;
pub mod train;

pub use chat::{ChatMessage, ChatTemplate, Role};
pub use device::DeviceKind;
pub use encoder::{Backend, Encoder, ModelInfo, Output, SequenceStates};
pub use error::ModelError;

pub use fast_bert::{FastBert, Precision, int8_accelerated};
pub use generate::{
    ChatPrompter, GenerateParams, GenerationStats, GeneratorInfo, Sampling, StopReason,
};
pub use gguf_tokenizer::ChatTokenizer;
pub use llama::LlamaGenerator;
pub use model_dir::{ModelDir, Pooling};
pub use token_bytes::{TextDecoder, TokenBytes, VocabKind};
pub use tokenizer::{SpecialTokens, TextTokenizer};
