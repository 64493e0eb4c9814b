//! Compiles the .proto files with protox (a protobuf compiler in Rust), so building
//! Longview needs no system `protoc`.

use prost::Message;
use std::path::PathBuf;

const PROTOS: &[&str] = &[
    "longview/v1/common.proto",
    "longview/v1/embed.proto",
    "longview/v1/classify.proto",
    "longview/v1/sentiment.proto",
    "longview/v1/rag.proto",
    "longview/v1/recommend.proto",
    "longview/v1/monitor.proto",
    "longview/worker/v1/worker.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let descriptors = protox::compile(PROTOS, ["."])?;
    std::fs::write(
        out_dir.join("longview_descriptor.bin"),
        descriptors.encode_to_vec(),
    )?;
    tonic_prost_build::configure().compile_fds(descriptors)?;
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
