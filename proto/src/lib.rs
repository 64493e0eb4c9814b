//! Longview's gRPC contracts, generated from the `.proto` files beside this crate.
//!
//! Owns the wire types and service traits only; it depends on nothing else of ours, and
//! nothing here should leak past a service's edge into the model runtime.

#![allow(clippy::all, missing_docs)]

/// The public API, `longview.v1`.
pub mod v1 {
    tonic::include_proto!("longview.v1");
}

/// The internal API between task roles and model workers, `longview.worker.v1`.
pub mod worker {
    /// Version 1 of the worker API.
    pub mod v1 {
        tonic::include_proto!("longview.worker.v1");
    }
}

/// Encoded file descriptors of every Longview proto, for server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/longview_descriptor.bin"));

/// Fully qualified gRPC service names, as health checks and reflection know them.
pub mod service_names {
    pub const EMBED: &str = "longview.v1.Embed";
    pub const CLASSIFY: &str = "longview.v1.Classify";
    pub const SENTIMENT: &str = "longview.v1.Sentiment";
    pub const RAG: &str = "longview.v1.Rag";
    pub const RECOMMEND: &str = "longview.v1.Recommend";
    pub const MONITOR: &str = "longview.v1.Monitor";
    pub const WORKER: &str = "longview.worker.v1.Worker";
}
