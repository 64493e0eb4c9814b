//! Longview's Rag service: documents in (chunked by token windows with exact character
//! spans, embedded by the workers), passages out by dense, BM25 or hybrid retrieval, and
//! answers streamed with citations that slice the stored text exactly.
//!
//! Owns ingestion, the two vector stores behind [`store::VectorStore`] (embedded: a
//! usearch HNSW index and records on local disk; or a Qdrant server), the BM25 index,
//! fusion, extractive answers and the prompt for generative ones. Must not depend on
//! other task services or on the model runtime directly (only the worker); generators
//! plug in through [`generator::TextGenerator`].

mod ask;
mod chunk;
mod error;
pub mod extract;
pub mod fuse;
pub mod gate;
pub mod generator;
pub mod ingest;
pub mod lexical;
pub mod mask;
pub mod prompt;
pub mod record;
pub mod retrieve;
mod service;
pub mod store;
mod validate;

pub use error::RagError;
pub use ingest::{ChunkSettings, embed_documents};
pub use retrieve::{Mode, Retriever};
pub use service::{RagBackend, RagService};
pub use validate::{Document, RagLimits};
