//! Longview model workers: each model lives on its own OS thread behind a bounded queue;
//! callers get a cheap, cloneable [`Worker`] (encoders) or [`Generator`] (answers) handle.
//!
//! Owns the model threads, batching, warm-up and the health they publish, and the remote
//! OpenAI-compatible generator behind the same [`Generator`] interface. Must not depend
//! on any task service: classify, sentiment, rag and recommend all depend on this.

mod batch;
mod error;
mod generator;
mod grpc;
mod local_generator;
mod metrics;
mod openai;
mod openai_wire;
mod remote;
mod texts;
mod thread;
pub mod wire;
mod worker;

pub use error::{WorkerError, retry_after, retry_later};
pub use generator::{GenerationEvent, Generator, GeneratorConfig, GeneratorState, TextStream};
pub use grpc::WorkerApi;
pub use local_generator::{GeneratorCounters, LocalGenerator, LocalGeneratorConfig};
pub use longview_models::{
    ChatMessage, GenerateParams, GenerationStats, GeneratorInfo, ModelInfo, Output, Role, Sampling,
    StopReason,
};
pub use metrics::describe_metrics;
pub use openai::{OpenAiConfig, OpenAiGenerator};
pub use remote::RemoteConfig;
pub use texts::EmbeddedText;
pub use worker::{Loaded, Worker, WorkerConfig, WorkerState};
